import { kvCacheBytesPerToken, paramCounts, VARIANTS, variantSpec } from '@moas/gpt'
import { modelConfig, SYNTHETIC_ALPHABET } from '@moas/trainer'
import type { Command } from 'commander'
import { EXIT } from '../errors'
import type { Io } from '../io'
import { checkFits, collectSet, modelFlags, positiveInt, presetOption, variantName } from '../options'

/** Vocabulary sizes of the presets' default datasets: WikiText-2 characters (paper), the synthetic alphabet (smoke). */
const DEFAULT_VOCAB = { paper: 283, smoke: SYNTHETIC_ALPHABET.length } as const

export function infoCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('info')
    .description('validated model config, parameter counts and KV-cache size of a variant')
    .requiredOption('--attention <variant>', `attention variant: ${VARIANTS.join(', ')}`, variantName)
    .addOption(presetOption().default('paper'))
    .option('--vocab-size <n>', 'vocabulary size (default 283 for paper, the synthetic alphabet for smoke)', positiveInt)
    .option('--set <key=value>', 'any model config key, repeatable', collectSet)
    .option('--json', 'print one JSON object')
    .addHelpText(
      'after',
      `
--json prints {"config": {...}, "params": {"total", "excluding_position_embedding"}, "kv_cache_bytes_per_token"},
and for moas-kv "kv_cache_expected_bytes_per_token" (the bytes its routed levels hold at kv_budget).
Parameter counts exclude the position embedding the way the MoAS paper's table does (mha 7,190,016 at the paper config).

Example:
  moas info --attention moas --preset paper --json`,
    )
    .action((opts) => {
      const preset = opts.preset as keyof typeof DEFAULT_VOCAB
      const cfg = checkFits(modelConfig(preset, opts.vocabSize ?? DEFAULT_VOCAB[preset], modelFlags(opts)))
      const counts = paramCounts(cfg)
      const expected = variantSpec(cfg.attention).expectedKvFraction?.(cfg)
      const info = {
        config: cfg,
        params: { total: counts.total, excluding_position_embedding: counts.excludingPositionEmbedding },
        kv_cache_bytes_per_token: kvCacheBytesPerToken(cfg),
        ...(expected === undefined ? {} : { kv_cache_expected_bytes_per_token: Math.round(expected * kvCacheBytesPerToken(cfg)) }),
      }
      if (opts.json) io.stdout(`${JSON.stringify(info)}\n`)
      else {
        const n = (x: number) => x.toLocaleString('en-US')
        io.stdout(
          `${cfg.attention} (${preset} preset)\n` +
            Object.entries(cfg)
              .map(([k, v]) => `  ${k.padEnd(15)} ${JSON.stringify(v)}\n`)
              .join('') +
            `parameters                  ${n(counts.total)}\n` +
            `  excluding position emb.   ${n(counts.excludingPositionEmbedding)}\n` +
            `KV cache per token (fp32)   ${n(info.kv_cache_bytes_per_token)} bytes\n` +
            (info.kv_cache_expected_bytes_per_token === undefined
              ? ''
              : `  expected at the budget    ${n(info.kv_cache_expected_bytes_per_token)} bytes (the tokens' levels ${cfg.kv_route === 'random' ? 'drawn with kv_route_shares' : `at kv_budget ${cfg.kv_budget} of MHA's`}; the exported cache tensors hold the first figure)\n`),
        )
      }
      done(EXIT.ok)
    })
}
