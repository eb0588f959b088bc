/**
 * The CLI contract, in-process: main(argv, io) with captured output. Every bad input gives exactly one
 * line on stderr starting "moas: error:", a non-zero exit code, and no stack trace.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readLog } from '@moas/trainer/node'
import { beforeAll, describe, expect, it } from 'vitest'
import { reportError } from './errors'
import { asVersion1, expectOneLineError, run, tempDirs } from './test-helpers'

const tempDir = tempDirs('moas-cli-')

// A tiny trained run shared by the checkpoint tests: smoke preset, a small model, a few steps.
const TINY = ['--set', 'n_layer=1', '--set', 'n_embd=16', '--set', 'n_head=2', '--set', 'block_size=16', '--batch-size', '4', '--eval-iters', '2']
let runDir = ''
beforeAll(async () => {
  runDir = join(tempDir(), 'run')
  const r = await run(['train', '--attention', 'mha', '--preset', 'smoke', '--steps', '3', '--eval-interval', '2', '--out', runDir, ...TINY])
  expect(r.code, r.stderr).toBe(0)
})

describe('moas --help', () => {
  for (const cmd of ['train', 'eval', 'compare', 'generate', 'info']) {
    it(`${cmd} --help`, async () => {
      const r = await run([cmd, '--help'])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`Usage: moas ${cmd} [options]`)
      expect(r.stdout).toContain('Example')
    })
  }
  it('--help and --version', async () => {
    expect((await run(['--help'])).stdout).toMatch(/Commands:[\s\S]*train[\s\S]*compare/)
    expect((await run(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })
})

describe('bad input: one line, non-zero exit', () => {
  it('unknown flag, with a suggestion', async () => {
    const r = await run(['train', '--atention', 'mha'])
    expectOneLineError(r, /unknown option '--atention'.*--attention/)
    expect(r.code).toBe(2)
  })
  it('unknown command', async () => expectOneLineError(await run(['trian']), /unknown command 'trian'.*train/))
  it('bad values', async () => {
    expectOneLineError(await run(['train', '--attention', 'mha', '--steps', '-3']), /'--steps <n>' argument '-3' is invalid. expected a positive integer/)
    expectOneLineError(await run(['train', '--attention', 'mha', '--lr', 'fast']), /--lr <x>.*expected a number > 0/)
    expectOneLineError(await run(['train', '--attention', 'mha', '--preset', 'huge']), /argument 'huge' is invalid. Allowed choices are paper, smoke/)
    expectOneLineError(await run(['generate', '--checkpoint', runDir, '--prompt', 'a', '--temperature', '-1']), /--temperature/)
    expectOneLineError(await run(['compare', '--seeds', '0']), /--seeds <n>.*positive integer/)
  })
  it('unknown variant and config keys, with "did you mean"', async () => {
    expectOneLineError(await run(['info', '--attention', 'static-moa']), /unknown attention variant 'static-moa' \(did you mean 'static-moas'\?\)/)
    expectOneLineError(await run(['info', '--attention', 'mha', '--set', 'n_layers=3']), /unknown model config key 'n_layers' \(did you mean 'n_layer'\?\)/)
    expectOneLineError(await run(['info', '--attention', 'mha', '--set', 'n_head=5']), /n_embd \(384\) must be divisible by n_head \(5\)/)
    expectOneLineError(await run(['train', '--attention', 'mah']), /unknown attention variant 'mah'/)
  })
  it('missing required flags and conflicting flags', async () => {
    expectOneLineError(await run(['train']), /--attention <variant> is required/)
    expectOneLineError(await run(['eval', '--checkpoint', runDir]), /required option '--text <file>' not specified/)
    expectOneLineError(await run(['train', '--attention', 'mha', '--warmup', '10']), /--warmup only apply to --schedule cosine/)
    expectOneLineError(await run(['train', '--resume', runDir, '--out', join(runDir, 'other')]), /--resume continues in its own directory/)
  })
  it('missing files', async () => {
    expectOneLineError(await run(['eval', '--checkpoint', runDir, '--text', '/nonexistent/file.txt']), /--text \/nonexistent\/file.txt: no such file/)
    expectOneLineError(await run(['eval', '--checkpoint', '/nonexistent/ck', '--text', join(runDir, 'log.jsonl')]), /no checkpoint at \/nonexistent\/ck/)
    expectOneLineError(await run(['generate', '--checkpoint', '/nonexistent/ck', '--prompt', 'a']), /no checkpoint at/)
    expectOneLineError(await run(['train', '--resume', '/nonexistent/run']), /no checkpoint at/)
  })
  it('WikiText-2 missing: says how to supply it', async () => {
    const r = await run(['train', '--attention', 'mha', '--preset', 'paper', '--data-dir', '/nonexistent/data'])
    expectOneLineError(r, /WikiText-2 not found in the --data-dir folder .*MOAS_DATA_DIR/)
  })
  it('text with characters outside the vocabulary; --skip-unknown drops them', async () => {
    const f = join(tempDir(), 'odd.txt')
    writeFileSync(f, `${'the cat sees a dog. '.repeat(4)}ÆØÅ`)
    expectOneLineError(await run(['eval', '--checkpoint', runDir, '--text', f]), /"Æ", "Ø", "Å".*--skip-unknown/)
    const ok = await run(['eval', '--checkpoint', runDir, '--text', f, '--skip-unknown'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout).tokens).toBe(64) // 80 known characters → (80-1)/16 = 4 windows of 16
  })
  it('corrupted checkpoints', async () => {
    const copy = (name: string) => {
      const d = join(tempDir(), name)
      mkdirSync(d)
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'optimizer.safetensors', 'trainer_state.json', 'log.jsonl'])
        writeFileSync(join(d, f), readFileSync(join(runDir, f)))
      // An empty COMPLETE (a checkpoint from before checksum manifests) lets each decoding check speak;
      // with the manifest every one of these edits is refused as "changed since the checkpoint was saved".
      asVersion1(d)
      return d
    }
    const text = join(tempDir(), 't.txt')
    writeFileSync(text, 'the cat sees a dog. '.repeat(4))
    const badJson = copy('bad-json')
    writeFileSync(join(badJson, 'config.json'), '{"model": {"vocab_size": ')
    expectOneLineError(await run(['eval', '--checkpoint', badJson, '--text', text]), /config.json: not valid JSON/)

    const truncated = copy('truncated')
    const model = join(truncated, 'model.safetensors')
    truncateSync(model, statSync(model).size - 100)
    expectOneLineError(await run(['eval', '--checkpoint', truncated, '--text', text]), /model.safetensors.*(truncated|end|bytes)/i)
    expectOneLineError(await run(['generate', '--checkpoint', truncated, '--prompt', 'the']), /model.safetensors/)

    const garbage = copy('garbage')
    writeFileSync(join(garbage, 'model.safetensors'), 'not a safetensors file at all')
    expectOneLineError(await run(['eval', '--checkpoint', garbage, '--text', text]), /model.safetensors/)

    const badTok = copy('bad-tokenizer')
    writeFileSync(join(badTok, 'tokenizer.json'), '{"type": "bpe"}')
    expectOneLineError(await run(['eval', '--checkpoint', badTok, '--text', text]), /tokenizer.json.*"char"/)

    const badOpt = copy('bad-optimizer')
    const opt = join(badOpt, 'optimizer.safetensors')
    truncateSync(opt, statSync(opt).size - 8)
    expectOneLineError(await run(['train', '--resume', badOpt, '--steps', '4']), /optimizer.safetensors/)

    const badState = copy('bad-state')
    writeFileSync(join(badState, 'trainer_state.json'), '{"format": "something else"}')
    expectOneLineError(await run(['train', '--resume', badState, '--steps', '4']), /trainer_state.json: not a moas trainer state/)
  })
  it('a resume with a different config names the differing keys', async () => {
    const r = await run(['train', '--resume', runDir, '--steps', '4', '--lr', '0.01', '--set', 'dropout=0.2'])
    expectOneLineError(r, /cannot resume .*differs.*lr: 0.003 in the checkpoint, 0.01 now.*model.dropout: 0 in the checkpoint, 0.2 now/)
    expectOneLineError(await run(['train', '--resume', runDir, '--attention', 'moas']), /model.attention: "mha" in the checkpoint, "moas" now/)
    expectOneLineError(await run(['train', '--resume', runDir, '--data', 'wikitext-2']), /data.name: "synthetic" in the checkpoint, "wikitext-2" now/)
  })
  it('a fresh run into a folder that holds one is refused', async () => {
    expectOneLineError(await run(['train', '--attention', 'mha', '--out', runDir, ...TINY]), /already holds a run.*--resume/)
  })
  it('training that diverges stops with the step named and a non-zero exit', async () => {
    const dir = join(tempDir(), 'nan')
    const r = await run(['train', '--attention', 'mha', '--lr', '1e30', '--steps', '20', '--checkpoint-interval', '1', '--out', dir, ...TINY])
    expectOneLineError(r, /training diverged: (loss|gradient norm) .* at step \d+.*last good checkpoint \(step \d+\).*Try a lower --lr \(now 1e\+30\)/, true)
    expect(r.code).toBe(1)
    // the routers' auxiliary loss blowing up is its weight's doing, not the learning rate's: the advice names that key
    const aux = await run(['train', '--attention', 'moas', '--set', 'balance_weight=1e38', '--steps', '3', '--out', join(tempDir(), 'aux'), ...TINY])
    expectOneLineError(
      aux,
      /training diverged: .*The routers' auxiliary loss diverged \(weighted, [\d.e+]+ against a cross entropy of [\d.]+\): lower its weight, --set balance_weight=… \(now 1e\+38\)/,
      true,
    )
    expect(aux.stderr).not.toMatch(/lower --lr/)
  })
  it('an unexpected error asks for a report; known errors do not', () => {
    expect(reportError(new TypeError('x is undefined')).line).toMatch(/x is undefined \(unexpected error in moas: please report it/)
    const known = Object.assign(new Error('bad\n  thing'), { name: 'DataError' })
    expect(reportError(known)).toEqual({ line: 'bad thing', code: 1 })
  })
})

describe('commands', () => {
  it('train --resume continues a finished run to more steps; log and JSON lines', async () => {
    const dir = join(tempDir(), 'more')
    const a = await run(['train', '--attention', 'mha', '--steps', '2', '--eval-interval', '2', '--out', dir, ...TINY])
    expect(a.code, a.stderr).toBe(0)
    const lines = a.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => l.step)).toEqual([1, 2, 2])
    expect(lines[1]).toHaveProperty('val_loss')
    for (const k of ['loss', 'lr', 'ms', 'grad_norm']) expect(lines[0]).toHaveProperty(k)
    expect(lines[2]).toMatchObject({ done: true, status: 'finished', step: 2 })
    const b = await run(['train', '--resume', dir, '--steps', '4'])
    expect(b.code, b.stderr).toBe(0)
    expect(b.stderr).toMatch(/resuming at step 2 of 4/)
    expect(
      readFileSync(join(dir, 'log.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).step),
    ).toEqual([1, 2, 3, 4])
  })

  it('info prints the paper parameter counts', async () => {
    const counts: Record<string, number> = { mha: 7_190_016, 'static-moas': 10_139_136, moas: 10_287_744 }
    for (const [v, n] of Object.entries(counts)) {
      const r = await run(['info', '--attention', v, '--preset', 'paper', '--json'])
      const info = JSON.parse(r.stdout)
      expect(info.params.excluding_position_embedding).toBe(n)
      expect(info.params.total).toBe(n + 256 * 384)
      expect(info.config.vocab_size).toBe(283)
      expect(info.kv_cache_bytes_per_token).toBeGreaterThan(0)
    }
    expect((await run(['info', '--attention', 'gqa'])).stdout).toMatch(/excluding position emb\.\s+[\d,]+/)
  })

  it('info: moas-kv prints the bytes its routed levels hold at the budget; --set takes a level list', async () => {
    const r = await run(['info', '--attention', 'moas-kv', '--preset', 'paper', '--set', 'kv_budget=0.25', '--set', 'kv_levels=6,3,1', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const info = JSON.parse(r.stdout)
    expect(info.config.kv_levels).toEqual([6, 3, 1])
    // 2 · 4 layers · 6 heads · 64 · 4 bytes in the cache tensors; a quarter of it at the budget
    expect([info.kv_cache_bytes_per_token, info.kv_cache_expected_bytes_per_token]).toEqual([12_288, 3_072])
    expect((await run(['info', '--attention', 'moas-kv', '--preset', 'paper'])).stdout).toMatch(/expected at the budget\s+6,144 bytes/)
    expectOneLineError(await run(['info', '--attention', 'moas-kv', '--set', 'kv_levels=6,4,1']), /kv_levels: 4 does not divide n_head \(6\)/)
    expectOneLineError(
      await run(['info', '--attention', 'moas-kv', '--set', 'kv_budget=0']),
      /kv_budget must be a fraction of MHA's KV bytes per token with 0 < kv_budget <= 1/,
    )
    expect(JSON.parse((await run(['info', '--attention', 'mha', '--json'])).stdout)).not.toHaveProperty('kv_cache_expected_bytes_per_token')
  })

  it("info: a moas-kv control takes its per-layer shares as JSON; the random control's bytes follow them, the rule's are measured only", async () => {
    const shares = '[[1,0,0],[0,1,0],[0,0,1],[0,0,1]]'
    const r = await run(['info', '--attention', 'moas-kv', '--preset', 'paper', '--set', 'kv_route=random', '--set', `kv_route_shares=${shares}`, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const info = JSON.parse(r.stdout)
    expect(info.config.kv_route_shares).toEqual(JSON.parse(shares))
    // layers at 6, 2, 1 and 1 of 6 heads: (1 + 1/3 + 1/6 + 1/6) / 4 of MHA's 12,288 bytes
    expect(info.kv_cache_expected_bytes_per_token).toBe(Math.round(12_288 * ((1 + 1 / 3 + 1 / 6 + 1 / 6) / 4)))
    const rule = JSON.parse((await run(['info', '--attention', 'moas-kv', '--preset', 'paper', '--set', 'kv_route=rule', '--json'])).stdout)
    expect(rule.config.kv_route).toBe('rule')
    expect(rule).not.toHaveProperty('kv_cache_expected_bytes_per_token')
    expectOneLineError(
      await run(['info', '--attention', 'moas-kv', '--set', 'kv_route=random', '--set', 'kv_route_shares=[[0.5,0.5,0],[0.5']),
      /kv_route_shares: \[\[0.5,0.5,0\],\[0.5 is not a list of lists of numbers; write it as JSON/,
    )
  })

  it('compare writes the table and resumes', async () => {
    const out = join(tempDir(), 'cmp')
    const args = ['compare', '--variants', 'mha,mqa', '--seeds', '2', '--steps', '2', '--eval-interval', '2', '--out', out, ...TINY]
    const r = await run(args)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/\| mqa \| .* \| (within seed noise|better|worse)/)
    for (const f of ['results.md', 'results.json', 'val_loss.svg']) expect(statSync(join(out, f)).size).toBeGreaterThan(100)
    const again = await run(args)
    expect(again.stderr.match(/finished, skipped/g)).toHaveLength(4)
    expect(again.stdout).toBe(r.stdout)
  })

  it('compare measures each model decoding: the KV bytes its cache held per token and tokens/s, in the table and results.json', async () => {
    const out = join(tempDir(), 'cmp-kv')
    // n_head 4 so that moas-kv has three levels (4 / 2 / 1 KV heads)
    const tiny = [...TINY.filter((a, i) => a !== 'n_head=2' && TINY[i + 1] !== 'n_head=2'), '--set', 'n_head=4']
    const r = await run(['compare', '--variants', 'mha,mqa,moas-kv', '--seeds', '1', '--steps', '2', '--eval-interval', '2', '--out', out, ...tiny])
    expect(r.code, r.stderr).toBe(0)
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
    const held = Object.fromEntries(
      res.variants.map((v: { variant: string; kv_bytes_held_per_token: { mean: number } }) => [v.variant, v.kv_bytes_held_per_token.mean]),
    )
    // measured on the session's tensors: mha and mqa hold their whole layout (1 layer · 2 · heads · d 4 · 4 bytes)
    expect([held.mha, held.mqa]).toEqual([2 * 4 * 4 * 4, 2 * 1 * 4 * 4])
    // moas-kv holds each token's chosen level: between mqa's and mha's
    expect(held['moas-kv']).toBeGreaterThanOrEqual(held.mqa)
    expect(held['moas-kv']).toBeLessThanOrEqual(held.mha)
    for (const v of res.variants) expect(v.decode_tokens_per_s.mean, v.variant).toBeGreaterThan(0)
    expect(r.stdout).toMatch(/\| KV bytes\/token held \| decode tok\/s \|/)
    expect(r.stdout).toMatch(new RegExp(`\\| mha \\| [\\d,]+ \\([\\d,]+\\) \\| 4 \\| ${held.mha} \\| [\\d,]+ \\|`))
  })
})

describe('compare never mislabels: it refuses instead', () => {
  const base = (out: string, more: string[] = []) => [
    'compare',
    '--variants',
    'mha',
    '--seeds',
    '1',
    '--steps',
    '2',
    '--eval-interval',
    '2',
    '--out',
    out,
    ...TINY,
    ...more,
  ]

  it('--set attention beside --variants, and seeds past 32 bits', async () => {
    const out = join(tempDir(), 'c')
    expectOneLineError(
      await run(base(out, ['--set', 'attention=moas'])),
      /--set attention=moas: compare trains the variants of --variants \(now mha\); name them there and drop --set attention/,
    )
    expectOneLineError(
      await run(['compare', '--variants', 'mha', '--seeds', '2', '--first-seed', '4294967295', '--out', out, ...TINY]),
      /--first-seed 4294967295 with --seeds 2 reaches seed 4294967296, past the largest seed 4294967295 \(seeds are 32-bit\); lower --first-seed to at most 4294967294/,
    )
  })

  it('fewer --steps than the finished runs, another --device than they ran on, and --collect over another comparison', async () => {
    const out = join(tempDir(), 'c')
    expect((await run(base(out))).code).toBe(0)
    expectOneLineError(
      await run(['compare', '--variants', 'mha', '--seeds', '1', '--steps', '1', '--eval-interval', '2', '--out', out, ...TINY]),
      /holds a model trained 2 updates, more than the 1 asked for now; its losses would be labelled as a 1-update table/,
      true,
    )
    expectOneLineError(
      await run(base(out, ['--device', 'wasm'])),
      /was trained on cpu, not on wasm as asked now; rerun compare with --device cpu, or use another --out for wasm/,
      true,
    )
    // a table collected into the folder of a trained comparison would overwrite its results
    const other = join(tempDir(), 'd')
    expect((await run(base(other))).code).toBe(0)
    expectOneLineError(
      await run(['compare', '--collect', join(other, 'mha', 'seed-0'), '--out', out]),
      /holds the results of another comparison \(trained there by moas compare\); --collect writes its table into a folder of its own: choose a new --out/,
      true,
    )
    // the same collect again into its own folder is fine
    const table = join(tempDir(), 't')
    expect((await run(['compare', '--collect', join(other, 'mha', 'seed-0'), '--out', table])).code).toBe(0)
    expect((await run(['compare', '--collect', join(other, 'mha', 'seed-0'), '--out', table])).code).toBe(0)
    // --collect-list: the same runs from a file give the same table
    const list = join(tempDir(), 'runs.txt')
    writeFileSync(list, `# the runs\n${join(other, 'mha', 'seed-0')}\n\n`)
    const fromList = join(tempDir(), 'from-list')
    expect((await run(['compare', '--collect-list', list, '--out', fromList])).code).toBe(0)
    expect(readFileSync(join(fromList, 'results.md'), 'utf8')).toBe(readFileSync(join(table, 'results.md'), 'utf8'))
    writeFileSync(list, '# nothing\n')
    expectOneLineError(await run(['compare', '--collect-list', list, '--out', join(tempDir(), 'none')]), /--collect-list .*runs.txt: no run directory listed/)
  })
})

describe('export and generate with a model folder', () => {
  it('exports a folder that generates what the checkpoint generates; batches with --prompts', async () => {
    const out = join(tempDir(), 'model')
    const e = await run(['export', '--checkpoint', runDir, '--out', out])
    expect(e.code, e.stderr).toBe(0)
    expect(JSON.parse(e.stdout)).toMatchObject({ out, dtype: 'float32' })
    // coreutils' own checker accepts the folder's SHA256SUMS; a flipped byte is named by moas and by sha256sum
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' })).toMatch(/onnx\/model.onnx: OK/)
    const damaged = join(tempDir(), 'damaged')
    cpSync(out, damaged, { recursive: true })
    const onnx = readFileSync(join(damaged, 'onnx', 'model.onnx'))
    onnx[onnx.length - 100] ^= 0x10
    writeFileSync(join(damaged, 'onnx', 'model.onnx'), onnx)
    expect(spawnSync('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: damaged, encoding: 'utf8' }).stdout).toMatch(/onnx\/model.onnx: FAILED/)
    expectOneLineError(
      await run(['generate', '--model', damaged, '--prompt', 'the ']),
      /damaged\/onnx\/model.onnx: changed since export.*copy or export the folder again/,
    )
    const args = ['--prompt', 'the ', '--tokens', '12', '--temperature', '0', '--json']
    const a = await run(['generate', '--checkpoint', runDir, ...args])
    const b = await run(['generate', '--model', out, ...args])
    expect(b.code, b.stderr).toBe(0)
    expect(b.stdout.split('\n')[0]).toBe(a.stdout.split('\n')[0])
    const prompts = join(tempDir(), 'prompts.txt')
    writeFileSync(prompts, 'the cat\n\na dog\n')
    const batch = await run(['generate', '--model', out, '--prompts', prompts, '--tokens', '5', '--temperature', '0', '--json'])
    expect(batch.code, batch.stderr).toBe(0)
    const lines = batch.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => l.prompt)).toEqual(['the cat', 'a dog', undefined])
    expect(lines[2]).toMatchObject({ prompts: 2, prefill_tokens: 12, decode_tokens: 8 })
    // the same prompt alone gives the same text as in the left-padded batch
    const alone = await run(['generate', '--model', out, '--prompt', 'a dog', '--tokens', '5', '--temperature', '0', '--json'])
    expect(JSON.parse(alone.stdout.split('\n')[0]).completion).toBe(lines[1].completion)
    // --graph weights: the decoder built from the folder's weights writes the same text, and says so
    const w = await run(['generate', '--model', out, '--graph', 'weights', ...args])
    expect(w.code, w.stderr).toBe(0)
    expect(w.stdout.split('\n')[0]).toBe(a.stdout.split('\n')[0])
    expect([JSON.parse(w.stdout.split('\n')[1]).graph, JSON.parse(b.stdout.split('\n')[1]).graph]).toEqual(['weights', 'exported'])
    expectOneLineError(await run(['generate', '--model', out, '--graph', 'onnx', ...args]), /--graph onnx: choose exported .* or weights/)
    expectOneLineError(await run(['generate', '--checkpoint', runDir, '--graph', 'weights', ...args]), /--graph applies to --model/)
  })

  it('bad input: one line, non-zero exit, nothing half-written', async () => {
    const { existsSync, readdirSync } = await import('node:fs')
    const parent = tempDir()
    expectOneLineError(await run(['export', '--checkpoint', runDir, '--out', join(parent, 'm'), '--dtype', 'int8']), /--dtype int8: choose float32 or float16/)
    const broken = join(parent, 'broken-ck')
    mkdirSync(broken)
    for (const f of ['config.json', 'tokenizer.json', 'COMPLETE']) writeFileSync(join(broken, f), readFileSync(join(runDir, f)))
    writeFileSync(join(broken, 'model.safetensors'), 'garbage')
    expectOneLineError(await run(['export', '--checkpoint', broken, '--out', join(parent, 'm2')]), /model.safetensors/)
    expect(existsSync(join(parent, 'm2')), 'no folder where a failed export was asked for').toBe(false)
    expect(readdirSync(parent).filter((f) => f.startsWith('.'))).toEqual([]) // no staging left behind
    const full = join(parent, 'full')
    mkdirSync(full)
    writeFileSync(join(full, 'notes.txt'), 'mine')
    expectOneLineError(await run(['export', '--checkpoint', runDir, '--out', full]), /already holds 1 file\(s\) \(notes.txt\).*new or empty folder/)
    expect(readFileSync(join(full, 'notes.txt'), 'utf8')).toBe('mine')

    const model = join(parent, 'ok')
    expect((await run(['export', '--checkpoint', runDir, '--out', model])).code).toBe(0)
    expectOneLineError(await run(['generate', '--model', runDir, '--prompt', 'a']), /is a checkpoint, not an exported model folder/)
    expectOneLineError(await run(['generate', '--model', model, '--checkpoint', runDir, '--prompt', 'a']), /exactly one of --checkpoint DIR .* or --model DIR/)
    expectOneLineError(await run(['generate', '--model', model]), /exactly one of --prompt TEXT, --prompt-file FILE or --prompts FILE/)
    const r = await run(['generate', '--model', model, '--prompt', 'ZZ'])
    expectOneLineError(r, /"Z".*--skip-unknown/)
    expect(r.stdout).toBe('')
    expectOneLineError(await run(['generate', '--model', model, '--prompt', 'a', '--top-p', '1.5']), /--top-p 1.5: must be a number in \(0, 1\]/)
    const missing = join(parent, 'missing')
    mkdirSync(missing)
    for (const f of readdirSync(model)) if (f !== 'onnx') writeFileSync(join(missing, f), readFileSync(join(model, f)))
    expectOneLineError(await run(['generate', '--model', missing, '--prompt', 'a']), /onnx\/model.onnx is missing.*export it again/)
    mkdirSync(join(missing, 'onnx'))
    writeFileSync(join(missing, 'onnx', 'model.onnx'), 'not onnx')
    expectOneLineError(await run(['generate', '--model', missing, '--prompt', 'a']), /missing\/onnx\/model.onnx: changed since export.*export the folder again/)
  })
})

describe('analyze', () => {
  it('writes a self-contained HTML routing report for a routed model; an unrouted one is refused', async () => {
    const dir = join(tempDir(), 'moas-run')
    expect((await run(['train', '--attention', 'moas', '--preset', 'smoke', '--steps', '2', '--eval-interval', '2', '--out', dir, ...TINY])).code).toBe(0)
    const evals = readLog(join(dir, 'log.jsonl')).filter((r) => r.val_loss !== undefined)
    expect(evals.map((r) => r.routing!.share.map((l) => l.length))).toEqual([[3]]) // 1 layer, 3 schemes, logged by every eval
    expect(evals[0].routing!.share[0].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3)
    const text = join(tempDir(), 'text.txt')
    writeFileSync(text, 'the cat sees a dog.\nthe dog sees a cat.\n'.repeat(5))
    const out = join(tempDir(), 'report.html')
    const r = await run(['analyze', '--checkpoint', dir, '--text', text, '--out', out])
    expect(r.code, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout)
    expect(summary).toMatchObject({ out, characters: 200, labels: ['MHA', 'GQA', 'MQA'], training_evals: 1 })
    for (const share of summary.share_per_layer) expect(share.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 3)
    const html = readFileSync(out, 'utf8')
    expect(html).toMatch(/^<!doctype html>/)
    expect(html).toContain('By character class')
    expect(html).toContain('During training')
    // with --skip-unknown the report still shows every character, the unknown ones struck through
    const odd = join(tempDir(), 'odd.txt')
    writeFileSync(odd, 'the cat ☃ sees a dog.\n'.repeat(3))
    const oddOut = join(tempDir(), 'odd.html')
    const skipped = await run(['analyze', '--checkpoint', dir, '--text', odd, '--skip-unknown', '--out', oddOut])
    expect(skipped.code, skipped.stderr).toBe(0)
    expect(JSON.parse(skipped.stdout).characters).toBe(3 * 21)
    expect(readFileSync(oddOut, 'utf8').match(/<span class="unknown"[^>]*>☃<\/span>/g)).toHaveLength(3)
    expectOneLineError(await run(['analyze', '--checkpoint', runDir, '--text', text, '--out', out]), /variant 'mha' has no router to analyze/)
    expectOneLineError(await run(['analyze', '--text', text, '--out', out]), /exactly one of --checkpoint DIR .*or --model DIR/)

    // --out never destroys an input or a file moas did not write; rewriting its own report is fine
    const weights = readFileSync(join(dir, 'model.safetensors'))
    expectOneLineError(
      await run(['analyze', '--checkpoint', dir, '--text', text, '--out', join(dir, 'model.safetensors')]),
      /would overwrite a file inside the input .*write the report somewhere else/,
    )
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weights)).toBe(true)
    expectOneLineError(
      await run(['analyze', '--checkpoint', dir, '--text', text, '--out', text]),
      /would overwrite the input .*text\.txt; write the report somewhere else/,
    )
    const notes = join(tempDir(), 'notes.html')
    writeFileSync(notes, '<p>my notes</p>')
    expectOneLineError(
      await run(['analyze', '--checkpoint', dir, '--text', text, '--out', notes]),
      /exists and is not a report moas analyze wrote; choose another --out, or remove it first/,
    )
    expect(readFileSync(notes, 'utf8')).toBe('<p>my notes</p>')
    expectOneLineError(await run(['analyze', '--checkpoint', dir, '--text', text, '--out', '']), /--out is empty; name the HTML report to write/)
    expectOneLineError(await run(['analyze', '--checkpoint', dir, '--text', text, '--out', tempDir()]), /is a directory; name the HTML file to write/)
    expect((await run(['analyze', '--checkpoint', dir, '--text', text, '--out', out])).code).toBe(0)
  })
})

describe('compare --plan and --collect: runs trained anywhere, one table', () => {
  it("--plan writes a moas-kv control's per-layer shares as one quoted JSON word that trains as planned", async () => {
    const out = join(tempDir(), 'plan-kv')
    const set = ['--set', 'kv_route=random', '--set', 'kv_route_shares=[[0.2,0.3,0.5]]', '--set', 'n_head=4']
    const plan = await run([
      'compare',
      '--variants',
      'moas-kv',
      '--seeds',
      '1',
      '--steps',
      '2',
      '--eval-interval',
      '2',
      '--out',
      out,
      ...TINY,
      ...set,
      '--plan',
    ])
    expect(plan.code, plan.stderr).toBe(0)
    const command = plan.stdout.trim()
    expect(command).toContain(" --set 'kv_route_shares=[[0.2,0.3,0.5]]' ")
    const words = command.split(' ').map((w) => w.replace(/^'(.*)'$/, '$1'))
    const r = await run(words.slice(1))
    expect(r.code, r.stderr).toBe(0)
    const saved = JSON.parse(readFileSync(join(out, 'moas-kv', 'seed-0', 'config.json'), 'utf8')).model
    expect(saved).toMatchObject({ kv_route: 'random', kv_route_shares: [[0.2, 0.3, 0.5]] })
  }, 120_000)

  it('--plan prints the train commands whose runs compare then only tabulates; --collect gives the same table from the directories', async () => {
    const out = join(tempDir(), 'plan')
    const args = ['compare', '--variants', 'mha,mqa', '--seeds', '2', '--steps', '2', '--eval-interval', '2', '--out', out, ...TINY]
    const plan = await run([...args, '--plan'])
    expect(plan.code, plan.stderr).toBe(0)
    const commands = plan.stdout.trim().split('\n')
    expect(commands).toEqual(
      ['0/mha', '0/mqa', '1/mha', '1/mqa'].map((sv) => {
        const [seed, v] = sv.split('/')
        return `moas train --attention ${v} --seed ${seed} --preset smoke --steps 2 --batch-size 4 --eval-interval 2 --eval-iters 2 --set n_layer=1 --set n_embd=16 --set n_head=2 --set block_size=16 --out ${out}/${v}/seed-${seed}`
      }),
    )
    expect(plan.stderr).toMatch(/4 runs planned/)
    expect(statSync(out, { throwIfNoEntry: false })).toBeUndefined() // nothing trained, nothing written
    // Each command as a scheduler would run it (no shell quoting needed here: every word is plain).
    for (const c of commands) {
      const r = await run(c.split(' ').slice(1))
      expect(r.code, r.stderr).toBe(0)
    }
    const table = await run(args)
    expect(table.code, table.stderr).toBe(0)
    expect(table.stderr.match(/finished, skipped/g)).toHaveLength(4)

    const dirs = commands.map((c) => c.split(' ').at(-1)!)
    const collected = await run(['compare', '--collect', ...[...dirs].reverse(), '--out', join(tempDir(), 'collected')])
    expect(collected.code, collected.stderr).toBe(0)
    const rows = (md: string) => md.split('\n').filter((l) => l.startsWith('| m'))
    expect(rows(collected.stdout)).toEqual(rows(table.stdout))
    expect(rows(collected.stdout)).toHaveLength(4) // mha and mqa in the loss table and in the accuracy table
    // The runs record their model, not the preset name: --set widths match no preset, and the heading says so.
    expect(table.stdout).toContain('# moas compare: smoke preset on synthetic')
    expect(collected.stdout).toContain('# moas compare: custom preset on synthetic')

    // Another protocol, a twin, a missing --out: refused with the reason.
    const other = join(tempDir(), 'other')
    expect(
      (await run(['train', '--attention', 'mha', '--seed', '7', '--steps', '2', '--eval-interval', '2', '--lr', '0.01', ...TINY, '--out', other])).code,
    ).toBe(0)
    expectOneLineError(
      await run(['compare', '--collect', dirs[0], other, '--out', join(tempDir(), 'x')]),
      /was trained with a different protocol than .* \(lr: 0\.003 there, 0\.01 here; min_lr: 0\.003 there, 0\.01 here\); a table compares runs of one protocol: collect those separately/,
    )
    expectOneLineError(
      await run(['compare', '--collect', dirs[0], dirs[0], '--out', join(tempDir(), 'y')]),
      /are both mha seed 0; collect each \(variant, seed\) once/,
    )
    expectOneLineError(await run(['compare', '--collect', dirs[0]]), /--collect needs --out/)
    expectOneLineError(
      await run(['compare', '--collect', dirs[0], '--steps', '3', '--out', join(tempDir(), 'z')]),
      /--collect reads the protocol from the runs themselves; drop --steps/,
    )
  }, 120_000)
})
