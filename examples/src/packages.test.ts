/**
 * The packages as npm would ship them: each passes publint (package.json exports, files and types that
 * resolve), and the tarballs `pnpm pack` makes install into a scratch project outside the workspace, where
 * they import and run in Node (a real session, the `moas` binary) and bundle for the browser without a
 * Node built-in.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleEntry, nodeOnlyImports } from '@moas/tensor-core/testing'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const PUBLISHED = [
  'packages/tensor-core',
  'packages/attention-schemes',
  'packages/routing',
  'packages/gpt',
  'packages/inference',
  'packages/trainer',
  'apps/cli',
]
const pnpm = process.env.npm_execpath?.includes('pnpm') ? process.env.npm_execpath : 'pnpm'
const sh = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } })

describe('package lint (publint)', () => {
  for (const dir of PUBLISHED) {
    it(`${dir}: no publint errors or warnings`, async () => {
      const pkgDir = join(root, dir)
      const { messages, pkg } = await publint({ pkgDir, level: 'warning', strict: true })
      expect(messages.map((m) => `${m.type}: ${formatMessage(m, pkg)}`)).toEqual([])
    })
  }
})

describe('READMEs as the npm registry shows them', () => {
  // npm renders a package's README alone: a relative link resolves only against a `repository` field, and
  // none is set yet (no public repository URL), so every link must be absolute or an in-page anchor.
  for (const dir of PUBLISHED) {
    it(`${dir}/README.md: no relative links`, () => {
      const text = readFileSync(join(root, dir, 'README.md'), 'utf8')
      const targets = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1])
      expect(
        targets.filter((t) => !/^(https?:\/\/|#)/.test(t)),
        'write them as absolute URLs (npm package pages) or as plain text',
      ).toEqual([])
    })
  }
})

describe('consumer install of the packed tarballs', () => {
  let scratch = ''
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'moas-consumer-'))
    const tarballs = join(scratch, 'tarballs')
    for (const dir of PUBLISHED) sh(pnpm, ['pack', '--pack-destination', tarballs], join(root, dir))
    const files = readdirSync(tarballs)
    const byName = Object.fromEntries(files.map((f) => [`@moas/${f.replace(/^moas-/, '').replace(/-\d+\.\d+\.\d+\.tgz$/, '')}`, `file:${join(tarballs, f)}`]))
    expect(Object.keys(byName).sort()).toEqual([
      '@moas/attention-schemes',
      '@moas/cli',
      '@moas/gpt',
      '@moas/inference',
      '@moas/routing',
      '@moas/tensor-core',
      '@moas/trainer',
    ])
    // The tarballs depend on each other by version (pnpm pack rewrote workspace:*); overrides point those
    // at the local tarballs, since nothing is on the registry yet.
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: byName, pnpm: { overrides: byName } }, null, 2),
    )
    sh(pnpm, ['install', '--prefer-offline', '--ignore-workspace', '--config.confirmModulesPurge=false'], scratch)
  }, 240_000)
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))

  it('imports every entry in Node and runs a model through ONNX Runtime', () => {
    writeFileSync(
      join(scratch, 'use.mjs'),
      `
      import { resolveConfig } from '@moas/gpt'
      import { saveCheckpoint } from '@moas/gpt/node'
      import { CharTokenizer, DecoderSession, buildLogitsGraph, generate } from '@moas/inference'
      import { loadModel } from '@moas/inference/node'
      import { initParams } from '@moas/tensor-core'
      import { gradcheck } from '@moas/tensor-core/testing'
      import { TRAIN_PRESETS } from '@moas/trainer'
      import { loadDataset } from '@moas/trainer/node'
      import { groupedAttention } from '@moas/attention-schemes'
      import { topKGates } from '@moas/routing'
      const tok = CharTokenizer.fromText('abc ')
      const config = resolveConfig({ vocab_size: 4, block_size: 8, n_layer: 1, n_head: 2, n_embd: 8, attention: 'gqe' })
      await saveCheckpoint('ck', { config, params: initParams(buildLogitsGraph(config), 1), tokenizer: tok.toJSON() })
      const model = await loadModel('ck')
      const r = await generate(await DecoderSession.create(model), model.tokenizer, ['ab'], { maxNewTokens: 5, temperature: 0 })
      const data = await loadDataset('synthetic', { syntheticChars: 5000 })
      console.log(JSON.stringify({ completion: r.completions[0], smoke: TRAIN_PRESETS.smoke.steps, vocab: data.tokenizer.vocabSize, fns: [typeof gradcheck, typeof groupedAttention, typeof topKGates] }))
    `,
    )
    const out = JSON.parse(sh(process.execPath, ['use.mjs'], scratch))
    expect([...out.completion]).toHaveLength(5)
    expect(out.fns).toEqual(['function', 'function', 'function'])
    expect(out.vocab).toBeGreaterThan(10)
    expect(sh(join(scratch, 'node_modules', '.bin', 'moas'), ['--version'], scratch).trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it('bundles for the browser from the installed packages without a Node built-in', async () => {
    writeFileSync(
      join(scratch, 'page.mjs'),
      `
      import { DecoderSession, exportModelFiles } from '@moas/inference'
      import { TrainingSession } from '@moas/trainer'
      export { DecoderSession, exportModelFiles, TrainingSession }
    `,
    )
    const { imports } = await bundleEntry(join(scratch, 'page.mjs'))
    expect(nodeOnlyImports(imports)).toEqual([])
    expect(imports.map((i) => i.path)).toContain('onnxruntime-web')
  })
})

describe('pnpm bench (the root script)', () => {
  it('builds the bench and hands its flags to the runner: `pnpm bench --list` lists the benches', () => {
    const out = sh(pnpm, ['bench', '--list'], root)
    for (const name of ['mlp-step', 'prefill', 'core-heads', 'decode', 'train-step']) expect(out).toMatch(new RegExp(`^${name} `, 'm'))
  }, 120_000)
})

describe('the release check (`pnpm release` runs scripts/check-release.mjs before publishing)', () => {
  type ReleaseCheck = { publishedPackages: (root: string) => string[]; releaseProblems: (root: string) => string[] }
  const load = async () => (await import(new URL('../../scripts/check-release.mjs', import.meta.url).href)) as ReleaseCheck

  it('publishes exactly the packages this file lints and packs', async () => {
    expect((await load()).publishedPackages(root)).toEqual([...PUBLISHED].sort())
  })

  it('refuses a package without a repository or with the wrong directory, naming it and the fix, and a root that is not a workspace; passes a complete one', async () => {
    const { releaseProblems } = await load()
    const scratch = mkdtempSync(join(tmpdir(), 'moas-release-'))
    try {
      const write = (rel: string, pkg: object) => {
        execFileSync('mkdir', ['-p', join(scratch, rel)])
        writeFileSync(join(scratch, rel, 'package.json'), JSON.stringify(pkg))
      }
      expect(releaseProblems(scratch)).toEqual([expect.stringMatching(/no package\.json, so this is not the workspace root/)])
      write('.', { name: 'root', private: true })
      write('apps/private', { name: 'p', private: true })
      expect(releaseProblems(scratch)).toEqual([expect.stringMatching(/no package to publish/)])
      write('packages/a', { name: '@x/a', license: 'MIT' })
      write('packages/b', { name: '@x/b', license: 'MIT', repository: { type: 'git', url: 'git+https://example.org/x.git', directory: 'packages/a' } })
      write('packages/c', { name: '@x/c', license: 'MIT', repository: { type: 'git', url: 'git+https://example.org/x.git', directory: 'packages/c' } })
      const problems = releaseProblems(scratch)
      expect(problems).toHaveLength(2)
      expect(problems[0]).toMatch(/^@x\/a \(packages\/a\): no "repository" field.*"directory": "packages\/a"/)
      expect(problems[1]).toMatch(/^@x\/b \(packages\/b\): "repository.directory" is "packages\/a"/)
      rmSync(join(scratch, 'packages/a'), { recursive: true })
      rmSync(join(scratch, 'packages/b'), { recursive: true })
      expect(releaseProblems(scratch)).toEqual([])
    } finally {
      rmSync(scratch, { recursive: true, force: true })
    }
  })
})

describe('the GPU readiness check (scripts/device-check.mjs: one command per accelerator)', () => {
  const check = (args: string[]) => {
    try {
      return {
        code: 0,
        out: execFileSync(process.execPath, [join(root, 'scripts', 'device-check.mjs'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
        err: '',
      }
    } catch (e) {
      const x = e as { status: number; stdout: string; stderr: string }
      return { code: x.status, out: x.stdout, err: x.stderr }
    }
  }

  it('runs end to end where it can (wasm here): cpu and the device agree, and it says what ran', () => {
    const r = check(['wasm', '2'])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/^moas smoke model, 2 training steps on cpu and on wasm$/m)
    const worst = Number(/largest \|cpu - wasm\| = (\S+) \(tolerance 1e-3\)/.exec(r.out)![1])
    expect(worst).toBeLessThan(1e-3)
    expect(r.out).toMatch(/the wasm records say device wasm/)
  }, 300_000)

  it('where the device is missing it exits 1 with the reason, and a wrong argument with the usage', () => {
    const cuda = check(['cuda', '1'])
    // CI has no GPU; on a machine with CUDA the check runs instead
    if (cuda.code === 0) expect(cuda.out).toMatch(/the cuda records say device cuda/)
    else {
      expect(cuda.code).toBe(1)
      expect(cuda.err).toMatch(/execution provider 'cuda' is not available here.*\n.*device check: cuda did not run \(moas exited 1\)/)
    }
    const bad = check(['tpu'])
    expect(bad.code).toBe(2)
    expect(bad.err).toMatch(/^usage: node scripts\/device-check.mjs <cuda\|webgpu\|wasm> \[steps = 20\]/)
  }, 300_000)
})
