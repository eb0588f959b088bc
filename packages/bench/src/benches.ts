import type { Provider } from '@moas/tensor-core'
/**
 * The benchmark registry the runner picks from. Each bench is loaded lazily, so running one never needs
 * another's dependencies (the model benches import @moas/gpt and @moas/trainer; mlp-step only tensor-core).
 */
export interface BenchContext {
  threads: number
  /** ONNX Runtime execution provider of every session (--device). */
  provider: Provider
  /** Overrides of each bench's own defaults. */
  reps?: number
  warmup?: number
  variants?: string[]
  /** prefill: prompt lengths; decode: the long-context setting's contexts (--lengths). */
  lengths?: number[]
  profile: boolean
  progress: (bench: string, message: string) => void
}

export interface BenchOutput {
  /** The figures as printed (plain text). */
  text: string
  /** The same as a markdown section for results/<bench>.md. */
  markdown: string
  /** Everything measured, stored in results/<bench>.json. */
  result: unknown
  /** More files written next to them: name → contents (the prefill chart). */
  files?: Record<string, string>
}

interface Bench {
  about: string
  /**
   * Where its figures come from: 'any' provider --device names (the default), only some (with why: the
   * runner refuses the others rather than label cpu figures with them), or 'none' (no sessions at all).
   */
  devices?: 'any' | 'none' | { only: readonly Provider[]; why: string }
  /** Whether --profile applies (ONNX Runtime's profiler, on the cpu provider). */
  profiles?: boolean
  run: (ctx: BenchContext) => Promise<BenchOutput>
}

/** Why `bench` cannot run as asked (--device it does not measure on, --profile off cpu or where it has none), or null. */
export function benchRefusal(name: BenchName, provider: Provider, profile: boolean): string | null {
  const b: Bench = BENCHES[name]
  const d = b.devices ?? 'any'
  if (typeof d === 'object' && !d.only.includes(provider))
    return `bench ${name} measures on ${d.only.join(', ')} only (${d.why}); run it without --device ${provider}`
  if (profile && b.profiles && provider !== 'cpu')
    return `--profile reads ONNX Runtime's profiler on the cpu provider; drop --profile to run bench ${name} on ${provider}`
  return null
}

export const BENCHES = {
  'mlp-step': {
    about: 'one training step of a 4-block MLP (autodiff + AdamW) vs the same GEMMs alone',
    profiles: true,
    run: async (ctx) => {
      const m = await import('./mlpStep')
      const { formatProfile } = await import('./profile')
      const cfg = {
        ...m.MLP_STEP_DEFAULTS,
        threads: ctx.threads,
        provider: ctx.provider,
        ...(ctx.reps ? { reps: ctx.reps } : {}),
        ...(ctx.warmup ? { warmup: ctx.warmup } : {}),
      }
      const r = await m.runMlpStep(cfg, (msg) => ctx.progress('mlp-step', msg), ctx.profile)
      let text = m.describeMlpStep(r)
      if (r.profiles)
        text += `\n\n  ONNX Runtime profile, generated step:\n${formatProfile(r.profiles.step)}\n\n  ONNX Runtime profile, MatMul-only:\n${formatProfile(r.profiles.matmulOnly)}`
      const { profiles, ...rest } = r
      const result = profiles
        ? { ...rest, profiles: { step: { ...profiles.step, optimizedNodes: undefined }, matmulOnly: { ...profiles.matmulOnly, optimizedNodes: undefined } } }
        : rest
      return { text, markdown: m.mlpStepMarkdown(r), result }
    },
  },
  'dropout-mask': {
    about:
      "one paper-sized dropout site: uint16 noise compared in the graph vs a bool keep mask drawn in JS (what tensor-core builds); a whole step's masks per variant, full vs causal rows",
    run: async (ctx) => {
      const m = await import('./dropoutMask')
      const cfg = {
        ...m.DROPOUT_MASK_DEFAULTS,
        threads: ctx.threads,
        provider: ctx.provider,
        ...(ctx.reps ? { reps: ctx.reps } : {}),
        ...(ctx.warmup ? { warmup: ctx.warmup } : {}),
        ...(ctx.variants ? { variants: ctx.variants } : {}),
      }
      const r = await m.runDropoutMask(cfg, (msg) => ctx.progress('dropout-mask', msg))
      return { text: m.describeDropoutMask(r), markdown: m.dropoutMaskMarkdown(r), result: r }
    },
  },
  'ort-io': {
    about:
      'a KV-cache-sized tensor in and out of onnxruntime-node: feeding, returning, returning into a pre-allocated array (why long-context decode steps cost more than their kernels)',
    devices: { only: ['cpu'], why: "it times onnxruntime-node's cpu tensor transfers themselves" },
    run: async (ctx) => {
      const m = await import('./ortIo')
      const cfg = { ...m.ORT_IO_DEFAULTS, threads: ctx.threads, ...(ctx.reps ? { reps: ctx.reps } : {}), ...(ctx.warmup ? { warmup: ctx.warmup } : {}) }
      const r = await m.runOrtIo(cfg, (msg) => ctx.progress('ort-io', msg))
      return { text: m.describeOrtIo(r), markdown: m.ortIoMarkdown(r), result: r }
    },
  },
  export: {
    about: 'moas export: onnx/model.onnx size in float32 and float16 per variant, and the float16 logit difference (no timing)',
    run: async (ctx) => {
      const x = await import('./exportBench')
      const r = await x.runExport({ ...x.EXPORT_DEFAULTS, provider: ctx.provider, ...(ctx.variants ? { variants: ctx.variants } : {}) }, (msg) =>
        ctx.progress('export', msg),
      )
      return { text: x.describeExport(r), markdown: x.exportMarkdown(r), result: r }
    },
  },
  'kv-cache': {
    about: 'KV-cache bytes per token per variant (no timing)',
    devices: 'none',
    run: async () => {
      const k = await import('./kvCache')
      const rows = k.kvCacheTable()
      return { text: k.describeKvCache(rows), markdown: k.kvCacheMarkdown(rows), result: rows }
    },
  },
  prefill: {
    about:
      'the prefill sweep, 512 to 32k tokens: gqa vs gqe (ablations, mha, mqa), attention core alone, memory-efficient vs composed core, moas vs moas-topk; goals and an SVG chart',
    profiles: true,
    run: async (ctx) => {
      const p = await import('./prefill')
      const cfg = {
        ...p.PREFILL_DEFAULTS,
        threads: ctx.threads,
        provider: ctx.provider,
        ...(ctx.lengths ? { lengths: ctx.lengths } : {}),
        ...(ctx.variants ? { variants: ctx.variants } : {}),
        ...(ctx.reps ? { reps: ctx.reps, repsLong: ctx.reps } : {}),
        ...(ctx.warmup ? { warmup: ctx.warmup } : {}),
      }
      const r = await p.runPrefill(cfg, (msg) => ctx.progress('prefill', msg))
      let text = p.describePrefill(r)
      if (!ctx.profile) return { text, markdown: p.prefillMarkdown(r), result: r, files: { 'prefill.svg': p.prefillChart(r) } }
      const { formatProfile } = await import('./profile')
      const profiles = await p.profilePrefill(cfg, (msg) => ctx.progress('prefill', msg))
      for (const x of profiles) text += `\n\n  ONNX Runtime profile, ${x.setting} ${x.variant} prefill at T=${x.T}:\n${formatProfile(x.profile)}`
      const result = { ...r, profiles: profiles.map((x) => ({ ...x, profile: { ...x.profile, optimizedNodes: undefined } })) }
      return { text, markdown: p.prefillMarkdown(r), result, files: { 'prefill.svg': p.prefillChart(r) } }
    },
  },
  'attention-core': {
    about:
      "every attention-core candidate alone at GQE's setting, 1k to 16k tokens: tiled and one-GEMM GroupQueryAttention, opset-23 Attention, composed, and two tiled standard-op graphs (time and peak memory)",
    run: async (ctx) => {
      const a = await import('./attentionCore')
      const cfg = {
        ...a.ATTENTION_CORE_DEFAULTS,
        threads: ctx.threads,
        provider: ctx.provider,
        ...(ctx.lengths ? { lengths: ctx.lengths } : {}),
        ...(ctx.reps ? { reps: ctx.reps } : {}),
        ...(ctx.warmup ? { warmup: ctx.warmup } : {}),
      }
      const r = await a.runAttentionCore(cfg, (msg) => ctx.progress('attention-core', msg))
      return { text: a.describeAttentionCore(r), markdown: a.attentionCoreMarkdown(r), result: r }
    },
  },
  'core-heads': {
    about:
      "the memory-efficient attention core by query heads per call (8, 9, 16; gqa; gqe's two calls) at 1 thread and the run's threads: why GQE's core gains less than 16/9 on few threads",
    run: async (ctx) => {
      const c = await import('./coreHeads')
      const threads = [...new Set([1, ctx.threads])]
      const cfg = {
        ...c.CORE_HEADS_DEFAULTS,
        threads,
        provider: ctx.provider,
        ...(ctx.lengths ? { lengths: ctx.lengths } : {}),
        ...(ctx.reps ? { reps: ctx.reps } : {}),
        ...(ctx.warmup ? { warmup: ctx.warmup } : {}),
      }
      const r = await c.runCoreHeads(cfg, (msg) => ctx.progress('core-heads', msg))
      return { text: c.describeCoreHeads(r), markdown: c.coreHeadsMarkdown(r), result: r }
    },
  },
  decode: {
    about: 'tokens/s of KV-cache decoding per variant, batch 1 and 8, KV bytes held, vs full recompute',
    run: async (ctx) => {
      const d = await import('./decode')
      // --lengths sets the long-context setting's contexts (the memory-efficient one).
      const settings = ctx.lengths
        ? d.DECODE_DEFAULTS.settings.map((s) => (s.attention === 'memory-efficient' ? { ...s, contexts: ctx.lengths! } : s))
        : d.DECODE_DEFAULTS.settings
      const cfg = {
        ...d.DECODE_DEFAULTS,
        settings,
        threads: ctx.threads,
        provider: ctx.provider,
        ...(ctx.reps ? { steps: ctx.reps } : {}),
        ...(ctx.warmup ? { warmup: ctx.warmup } : {}),
      }
      const r = await d.runDecode(cfg, (msg) => ctx.progress('decode', msg), ctx.variants)
      return { text: d.describeDecode(r), markdown: d.decodeMarkdown(r), result: r }
    },
  },
  'js-decode': {
    about: 'moas against transformers.js on the same exported folder: greedy decode tokens/s at 2k and 8k of context, same text',
    run: async (ctx) => {
      const j = await import('./jsDecode')
      const cfg = {
        ...j.JS_DECODE_DEFAULTS,
        threads: ctx.threads,
        provider: ctx.provider,
        ...(ctx.variants ? { variant: ctx.variants[0] } : {}),
        ...(ctx.lengths ? { contexts: ctx.lengths } : {}),
        ...(ctx.reps ? { reps: ctx.reps } : {}),
      }
      const r = await j.runJsDecode(cfg, (msg) => ctx.progress('js-decode', msg))
      return { text: j.describeJsDecode(r), markdown: j.jsDecodeMarkdown(r), result: r }
    },
  },
  'train-step': {
    about: 'training step per attention variant at the paper config (ms/iter, tokens/s, GFLOP/s, vs mha)',
    profiles: true,
    run: async (ctx) => {
      const t = await import('./trainStep')
      const { formatProfile } = await import('./profile')
      const cfg = {
        ...t.TRAIN_STEP_DEFAULTS,
        threads: ctx.threads,
        provider: ctx.provider,
        profile: ctx.profile,
        ...(ctx.variants ? { variants: ctx.variants } : {}),
        ...(ctx.reps ? { reps: ctx.reps } : {}),
        ...(ctx.warmup ? { warmup: ctx.warmup } : {}),
      }
      const r = await t.runTrainStep(cfg, (msg) => ctx.progress('train-step', msg))
      let text = t.describeTrainStep(r)
      for (const [variant, p] of Object.entries(r.profiles ?? {}))
        text += `\n\n  ONNX Runtime profile, ${variant} step:\n${formatProfile({ ...p, optimizedNodes: [] })}`
      return { text, markdown: t.trainStepMarkdown(r), result: r }
    },
  },
  'torch-step': {
    about: "same-machine baseline: the PyTorch reference model's training step (opt-in, slow; needs torch)",
    devices: { only: ['cpu'], why: 'PyTorch runs on the cpu here, and its ratio is against the cpu step' },
    run: async (ctx) => {
      const t = await import('./torchStep')
      const cfg = {
        ...t.TORCH_STEP_DEFAULTS,
        threads: ctx.threads,
        ...(ctx.variants ? { variants: ctx.variants } : {}),
        ...(ctx.reps ? { reps: ctx.reps } : {}),
        ...(ctx.warmup ? { warmup: ctx.warmup } : {}),
      }
      const r = await t.runTorchStep(cfg, (msg) => ctx.progress('torch-step', msg))
      return { text: t.describeTorchStep(r), markdown: t.torchStepMarkdown(r), result: r }
    },
  },
} satisfies Record<string, Bench>

export type BenchName = keyof typeof BENCHES
export const DEFAULT_BENCHES: BenchName[] = ['mlp-step', 'kv-cache', 'prefill', 'decode', 'train-step']
export const benchNames = () => Object.keys(BENCHES) as BenchName[]
