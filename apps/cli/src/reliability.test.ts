/**
 * Reliability, as a user meets it: one writer per run directory (real concurrent processes), stop signals
 * that save (real SIGTERM / SIGHUP), bad numbers refused, compare never mislabels or clobbers, tampered
 * state refused or repaired, and a fuzz of flag values and checkpoint bytes. Every refusal is one line on
 * stderr, a non-zero exit, no stack trace, and the last good checkpoint still loads.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readSafetensors, resolveConfig, trainingStepBytes } from '@moas/gpt'
import { loadCheckpoint, saveCheckpoint } from '@moas/gpt/node'
import { mulberry32 } from '@moas/tensor-core'
import { initialParams, modelConfig } from '@moas/trainer'
import { readLog, readRun } from '@moas/trainer/node'
import { beforeAll, describe, expect, it } from 'vitest'
import { asVersion1, expectOneLineError, run, tempDirs } from './test-helpers'

const CLI = fileURLToPath(new URL('../dist/index.js', import.meta.url))
const tempDir = tempDirs('moas-rel-')

interface Done {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function start(args: string[], onOutput?: (stdout: string, child: ChildProcess, stderr: string) => void): Promise<Done> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MOAS_THREADS: '1' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => {
    stdout += d
    onOutput?.(stdout, child, stderr)
  })
  child.stderr.on('data', (d) => {
    stderr += d
    onOutput?.(stdout, child, stderr)
  })
  return new Promise((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })))
}

const records = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((r) => r.step !== undefined && !r.done)
const TINY = ['--set', 'n_layer=1', '--set', 'n_embd=16', '--set', 'n_head=2', '--set', 'block_size=16', '--batch-size', '4', '--eval-iters', '2']
const TRAIN = ['train', '--attention', 'mha', '--preset', 'smoke', ...TINY]

let runDir = ''
beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`pnpm build\` before these tests (pnpm test does)`)
  runDir = join(tempDir(), 'run')
  const r = await run([...TRAIN, '--steps', '4', '--eval-interval', '2', '--checkpoint-interval', '2', '--out', runDir])
  expect(r.code, r.stderr).toBe(0)
})

/** A copy of the shared run, to damage. */
function copyRun(name: string): string {
  const d = join(tempDir(), name)
  cpSync(runDir, d, { recursive: true })
  return d
}

/**
 * A writer that the test holds: `held` resolves once it has logged an update (it holds the run), so a
 * second writer is started only then and the order never depends on how fast this machine is.
 */
function holder(cmd: string[]) {
  let holding: () => void = () => {}
  const held = new Promise<void>((res) => {
    holding = res
  })
  let child: ChildProcess | null = null
  const done = start(cmd, (out, c) => {
    child = c
    if (records(out).length >= 1) holding()
  })
  return { held, done, stop: () => (child as ChildProcess | null)?.kill('SIGTERM') }
}

describe('one writer per run directory (real processes)', () => {
  it('two fresh trainings into one --out: one is refused with the holder named, the other runs; then the same for two resumes', async () => {
    const dir = join(tempDir(), 'race')
    const args = [...TRAIN, '--steps', '100000', '--checkpoint-interval', '50', '--out', dir]
    const a = holder(args)
    await a.held
    const refused = await start(args)
    expectOneLineError(refused, /is being written by another moas process \(pid \d+ on .*\); a run directory has one writer/)
    a.stop()
    const ran = await a.done
    expect(ran.code, ran.stderr).toBe(143)
    const saved = await readRun(dir)
    expect(saved.state.step).toBe(records(ran.stdout).length)
    expect(existsSync(`${dir}.lock`), 'the lock is released on exit').toBe(false)

    const resume = ['train', '--resume', dir, '--steps', String(saved.state.step + 100_000), '--checkpoint-interval', '1']
    const c = holder(resume)
    await c.held
    const d = await start(resume)
    expectOneLineError(d, /being written by another moas process \(pid \d+ on .*\); a run directory has one writer/, true)
    c.stop()
    const cr = await c.done
    expect(cr.code, cr.stderr).toBe(143)
    expect((await readRun(dir)).state.step).toBe(saved.state.step + records(cr.stdout).length)
    for (const leftover of ['.next', '.prev', '.lock']) expect(existsSync(`${dir}${leftover}`), leftover).toBe(false)
  })

  it('a stale lock left by a dead process is recognised, reported and taken over', async () => {
    const dir = copyRun('stale')
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    const pid = Number(dead.stdout)
    writeFileSync(
      `${dir}.lock`,
      JSON.stringify({ pid, host: execFileSync('hostname', { encoding: 'utf8' }).trim(), started: '2026-01-01T00:00:00Z', command: 'moas train' }),
    )
    const r = await start(['train', '--resume', dir, '--steps', '6'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(new RegExp(`removing a stale lock of .*process ${pid} .* is no longer running`))
    expect(existsSync(`${dir}.lock`)).toBe(false)
  })
})

describe('paths and pipes never fork a run', () => {
  it('a run reached through a symlink is resumed in its target: the link stays a link, nothing is left beside either', async () => {
    const dir = copyRun('linked-target')
    const link = join(tempDir(), 'link')
    symlinkSync(dir, link)
    const r = await start(['train', '--resume', link, '--steps', '6'])
    expect(r.code, r.stderr).toBe(0)
    expect(lstatSync(link).isSymbolicLink()).toBe(true)
    expect((await readRun(dir)).state.step).toBe(6)
    for (const base of [dir, link])
      for (const leftover of ['.next', '.prev', '.lock']) expect(existsSync(`${base}${leftover}`), `${base}${leftover}`).toBe(false)
  })

  it('two writers, one through a link and one through its target, share one lock: the second is refused', async () => {
    const dir = copyRun('linked-race')
    const link = join(tempDir(), 'link-race')
    symlinkSync(dir, link)
    const a = holder(['train', '--resume', link, '--steps', '100000', '--checkpoint-interval', '50'])
    await a.held
    const b = await start(['train', '--resume', dir, '--steps', '100000'])
    expectOneLineError(b, /is being written by another moas process \(pid \d+ on .*\); a run directory has one writer/, true)
    a.stop()
    expect((await a.done).code).toBe(143)
  })

  it('a reader that closes stdout (moas train | head) stops the run with a checkpoint, exit 141 and a note on stderr', async () => {
    const dir = join(tempDir(), 'piped')
    const child = spawn(process.execPath, [CLI, ...TRAIN, '--steps', '100000', '--out', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MOAS_THREADS: '1' },
    })
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.stdout.once('data', () => child.stdout.destroy())
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)))
    expect(code, stderr).toBe(141)
    expect(stderr).toMatch(/stdout was closed .*stopping after the current step and saving a checkpoint/)
    expect(stderr).toMatch(/interrupted at step (\d+); checkpoint saved/)
    const step = Number(/interrupted at step (\d+)/.exec(stderr)![1])
    expect((await readRun(dir)).state.step).toBe(step)
    expect(existsSync(`${dir}.lock`), 'the lock is released').toBe(false)
  })

  it('a closed stderr (2>&1 >/dev/null | true) only silences the notes: the run finishes and reports on stdout', async () => {
    const dir = join(tempDir(), 'no-stderr')
    const child = spawn(process.execPath, [CLI, ...TRAIN, '--steps', '5', '--out', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MOAS_THREADS: '1' },
    })
    child.stderr.destroy()
    let stdout = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)))
    expect(code, stdout).toBe(0)
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toMatchObject({ done: true, status: 'finished', step: 5 })
    expect((await readRun(dir)).state.step).toBe(5)
  })
})

describe('stop signals save (real signals)', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    it(`${signal} saves a checkpoint, says so and exits ${code}; --resume continues exactly`, async () => {
      const dir = join(tempDir(), signal)
      let sent = false
      const t = await start([...TRAIN, '--steps', '500', '--out', dir], (all, child) => {
        if (!sent && records(all).length >= 3) {
          sent = true
          child.kill(signal)
        }
      })
      expect(t.code, t.stderr).toBe(code)
      expect(t.stderr).toMatch(new RegExp(`${signal}: stopping after the current step and saving a checkpoint`))
      // how long the wait is: the current update's age and the recent updates' time (any numbers: no timing asserted)
      expect(t.stderr).toMatch(
        /the current update has run \d+ s and recent ones took up to [\d.]+ s \(evaluations included\), so the checkpoint follows in about \d+ s/,
      )
      expect(t.stderr).toMatch(/interrupted at step \d+; checkpoint saved/)
      const k = (await readRun(dir)).state.step
      expect(k).toBe(records(t.stdout).length)
      if (signal === 'SIGTERM') {
        const resumed = await start(['train', '--resume', dir, '--steps', String(k + 3)])
        expect(resumed.code, resumed.stderr).toBe(0)
        const ref = await start([...TRAIN, '--steps', String(k + 3), '--out', join(tempDir(), 'ref')])
        expect(readLog(join(dir, 'log.jsonl')).map((r) => r.loss)).toEqual(records(ref.stdout).map((r) => r.loss))
      }
    })
  }

  it('compare saves on SIGTERM and exits 143 too', async () => {
    const out = join(tempDir(), 'cmp')
    let sent = false
    const t = await start(
      ['compare', '--variants', 'mha,mqa', '--seeds', '1', '--steps', '3000', '--eval-interval', '1000', '--out', out, ...TINY],
      (_, child, stderr) => {
        if (!sent && stderr.includes('[1/2] mha seed 0: training')) {
          sent = true
          // signal once the run has logged an update (compare prints no per-step lines): no timing assumed
          const log = join(out, 'mha', 'seed-0', 'log.jsonl')
          const poll = setInterval(() => {
            if (existsSync(log) && readLog(log).some((r) => r.step >= 1)) {
              clearInterval(poll)
              child.kill('SIGTERM')
            }
          }, 50)
        }
      },
    )
    expect(t.code, t.stderr).toBe(143)
    expect(t.stderr).toMatch(/SIGTERM: stopping after the current step and saving a checkpoint/)
    const step = (await readRun(join(out, 'mha', 'seed-0'))).state.step
    expect(step).toBeGreaterThan(0)
    expect(step).toBeLessThan(3000)
  })
})

describe('bad numbers are refused', () => {
  it('a checkpoint holding a NaN weight: eval and generate refuse it, naming the tensor', async () => {
    const dir = join(tempDir(), 'nan')
    const cfg = resolveConfig({ vocab_size: 4, block_size: 8, n_layer: 1, n_head: 2, n_embd: 8, attention: 'mha' })
    const params = initialParams(cfg, 0)
    params.get('transformer.h.0.mlp.c_fc.weight')![3] = Number.NaN
    await saveCheckpoint(dir, { config: cfg, params, tokenizer: { type: 'char', vocab: ['a', 'b', 'c', ' '] } })
    const text = join(tempDir(), 't.txt')
    writeFileSync(text, 'abc abc abc abc ')
    expectOneLineError(
      await run(['eval', '--checkpoint', dir, '--text', text]),
      /'transformer.h.0.mlp.c_fc.weight' holds 1 non-finite value.*earlier checkpoint/,
    )
    expectOneLineError(await run(['generate', '--checkpoint', dir, '--prompt', 'ab']), /non-finite value/)
    expectOneLineError(await run(['export', '--checkpoint', dir, '--out', join(tempDir(), 'm')]), /non-finite value/)
  })

  it('nonsense flags and sizes: one line, exit 2 for flags, 1 for models that cannot exist here', async () => {
    const usage = async (args: string[], pattern: RegExp, env: Record<string, string> = {}) => {
      const r = await run(args, env)
      expectOneLineError(r, pattern)
      expect(r.code, args.join(' ')).toBe(2)
    }
    await usage([...TRAIN, '--schedule', 'cosine', '--lr', '0.001', '--min-lr', '0.25'], /--min-lr \(0.25\) is above the peak --lr \(0.001\)/)
    await usage(['train', '--resume', runDir, '--steps', '2'], /--steps 2 is below the run's step 4/)
    await usage([...TRAIN, '--set', 'attention=gqa'], /--set attention=gqa contradicts --attention mha/)
    await usage([...TRAIN, '--steps', '1'], /MOAS_THREADS='abc' is not a positive integer/, { MOAS_THREADS: 'abc' })
    await usage([...TRAIN, '--steps', '1'], /MOAS_THREADS='0' is not a positive integer/, { MOAS_THREADS: '0' })
    // the same reading, the same exit, for every command (eval and generate once exited 1 with another message)
    for (const cmd of [
      ['eval', '--checkpoint', runDir, '--text', join(tempDir(), 'none.txt')],
      ['generate', '--checkpoint', runDir, '--prompt', 'a'],
      ['info', '--attention', 'mha'],
      ['export', '--checkpoint', runDir, '--out', join(tempDir(), 'm')],
    ])
      await usage(cmd, /^moas: error: MOAS_THREADS='x' is not a positive integer; set it to a thread count such as \d+/, { MOAS_THREADS: 'x' })
    await usage(['info', '--attention', 'mha'], /MOAS_THREADS=100000 is far above this machine's \d+ cores; use at most \d+/, { MOAS_THREADS: '100000' })
    await usage([...TRAIN, '--steps', '1', '--threads', '10000'], /10000 is far above this machine's cores.*use at most \d+/)
    await usage(['train', '--attention', 'gqe-hardonly'], /unknown attention variant 'gqe-hardonly' \(did you mean 'gqe-hard-only'\?\)/)
    await usage(['info', '--attention', 'mhaa'], /unknown attention variant 'mhaa'/)
    await usage(['compare', '--variants', 'mha,moass'], /unknown attention variant 'moass'/)
    for (const [key, value] of [
      ['n_embd', '1.2e9'],
      ['n_layer', '1e8'],
      ['block_size', '1e12'],
    ]) {
      const r = await run(['info', '--attention', 'mha', '--set', `${key}=${value}`])
      expectOneLineError(r, /far too large for this machine: up to .* parameters .* GiB of memory; reduce n_layer/)
      expect(r.code).toBe(1)
    }
  })
})

describe('compare never mislabels or clobbers', () => {
  it('a rerun with another protocol flag is refused, not labelled with it', async () => {
    const out = join(tempDir(), 'cmp')
    const base = ['compare', '--variants', 'mha,mqa', '--seeds', '1', '--steps', '2', '--eval-interval', '2', '--out', out, ...TINY]
    expect((await run(base)).code).toBe(0)
    const results = readFileSync(join(out, 'results.md'), 'utf8')
    const r = await run([...base, '--lr', '0.01'])
    expectOneLineError(r, /mha\/seed-0 was trained with a different protocol .*lr: 0.003.* 0.01.*another --out/)
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toBe(results)
    expect((await run([...base, '--steps', '3'])).code, 'more steps of the same protocol resume').toBe(0)
  })

  it("an --out holding files that are not compare's is refused and left untouched", async () => {
    const out = join(tempDir(), 'mine')
    mkdirSync(out)
    writeFileSync(join(out, 'results.md'), 'my own notes')
    const r = await run(['compare', '--variants', 'mha', '--seeds', '1', '--steps', '2', '--out', out, ...TINY])
    expectOneLineError(r, /holds files that moas compare did not write \(results.md\).*empty or new --out/)
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toBe('my own notes')
    expect(readdirSync(out)).toEqual(['results.md'])
  })
})

describe('outputs leave no debris', () => {
  it('a hidden staging folder left by a killed export is removed by the next export beside it; a live one is left alone', async () => {
    const parent = tempDir()
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout)
    const stale = join(parent, `.model.exporting-${dead}`)
    const live = join(parent, `.model.exporting-${process.ppid}`)
    for (const d of [stale, live]) {
      mkdirSync(join(d, 'onnx'), { recursive: true })
      writeFileSync(join(d, 'onnx', 'model.onnx'), 'half an export')
    }
    const r = await run(['export', '--checkpoint', runDir, '--out', join(parent, 'model')])
    expect(r.code, r.stderr).toBe(0)
    expect(readdirSync(parent).sort()).toEqual([`.model.exporting-${process.ppid}`, 'model'])
  })
})

describe('messages that name the problem', () => {
  it('a reader that closes stdout early (moas generate | head) ends the command quietly', async () => {
    const child = spawn(process.execPath, [CLI, 'generate', '--checkpoint', runDir, '--prompt', 'a', '--tokens', '100000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.stdout.once('data', () => child.stdout.destroy())
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)))
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /)
    expect(code).toBe(0)
  })

  it('a file that is not UTF-8 is named as such', async () => {
    const f = join(tempDir(), 'latin1.txt')
    writeFileSync(f, Buffer.from([0x61, 0x62, 0x20, 0xe9, 0x74, 0xe9, 0x0a])) // "ab été" in latin-1
    expectOneLineError(await run(['eval', '--checkpoint', runDir, '--text', f]), /latin1.txt: not UTF-8 text \(invalid byte 0xe9 at offset 3\).*iconv/)
  })

  it('paths that are the wrong kind of thing: named with the flag, the cause and the fix, never a raw errno', async () => {
    const file = join(tempDir(), 'a-file')
    writeFileSync(file, 'mine')
    const model = join(tempDir(), 'exported')
    expect((await run(['export', '--checkpoint', runDir, '--out', model])).code).toBe(0)
    const cases: [string[], RegExp][] = [
      [[...TRAIN, '--out', file], /^moas: error: --out .*a-file is a file; --out names a folder \(created if missing\)/],
      [[...TRAIN, '--out', ''], /^moas: error: --out is empty; give it a folder path/],
      [['export', '--checkpoint', runDir, '--out', file], /--out .*a-file is a file/],
      [['compare', '--preset', 'smoke', '--out', file], /--out .*a-file is a file/],
      [
        [...TRAIN, '--out', join(file, 'sub')],
        /a-file\/sub: a file stands where a folder is needed .*\(ENOTDIR in \w+\); give a path whose folders are all folders/,
      ],
      [['eval', '--checkpoint', file, '--text', file], /a-file is a file; a checkpoint is a folder/],
      [
        ['eval', '--checkpoint', model, '--text', file],
        /exported is an exported model folder \(moas export\), not a training checkpoint: generate and analyze take it as --model/,
      ],
    ]
    for (const [args, pattern] of cases) {
      const r = await run(args)
      expectOneLineError(r, pattern)
      expect(r.stderr, args.join(' ')).not.toMatch(/^moas: error: E[A-Z]+:/)
    }
    expect(readFileSync(file, 'utf8')).toBe('mine')
  })

  it('a read-only file system is named as such (a real read-only tmpfs; skipped where mounting is not allowed)', async (ctx) => {
    const mnt = join(tempDir(), 'ro')
    mkdirSync(mnt)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', mnt], { stdio: 'ignore' })
    } catch {
      ctx.skip()
    }
    try {
      for (const args of [
        [...TRAIN, '--steps', '1', '--out', join(mnt, 'run')],
        [...TRAIN, '--steps', '1', '--out', join(mnt, 'a', 'b', 'run')], // a recursive mkdir there reports ENOENT
        ['export', '--checkpoint', runDir, '--out', join(mnt, 'model')],
      ])
        expectOneLineError(
          await run(args),
          /(writing in )?.*ro(\/a\/b)?: the file system is read-only \(EROFS in \w+\); choose a location on a writable file system/,
        )
    } finally {
      execFileSync('umount', [mnt])
    }
  })

  it("resuming on data that is not the run's (a character changed) names that, and does not send the user to --skip-unknown", async () => {
    const dir = join(tempDir(), 'own-data', 'wikitext-2')
    mkdirSync(dir, { recursive: true })
    const text = 'the cat sat on the mat and the dog ran to the park. '.repeat(120)
    for (const split of ['train', 'valid', 'test']) writeFileSync(join(dir, `${split}.txt`), text)
    const out = join(tempDir(), 'own-run')
    const trained = await run([...TRAIN, '--data', 'wikitext-2', '--data-dir', dirname(dir), '--steps', '2', '--out', out])
    expect(trained.code, trained.stderr).toBe(0)
    for (const split of ['train', 'valid', 'test']) writeFileSync(join(dir, `${split}.txt`), text.replace('cat', 'caZ'))
    const r = await run(['train', '--resume', out, '--data-dir', dirname(dir), '--steps', '4'])
    expectOneLineError(
      r,
      /wikitext-2.*character\(s\) not in the tokenizer vocabulary .*"Z".*this is not the data the run was trained on .*resume with that data/,
    )
  })

  it('data files that are binary or UTF-16 are refused by name, not trained on', async () => {
    const latin = Buffer.from('ab \xe9t\xe9\n', 'latin1')
    const utf16 = Buffer.from('the cat sat on the mat.\n'.repeat(20), 'utf16le') // valid UTF-8 byte for byte, with NULs
    for (const [name, bytes, why] of [
      ['latin1', latin, /not UTF-8 text \(invalid byte 0xe9 at offset 3\)/],
      ['utf16', utf16, /holds a NUL byte at offset 1, so it is a binary file or UTF-16 text.*iconv -f utf-16/],
    ] as const) {
      const dir = join(tempDir(), name, 'wikitext-2')
      mkdirSync(dir, { recursive: true })
      for (const split of ['train', 'valid', 'test']) writeFileSync(join(dir, `${split}.txt`), bytes)
      const r = await run([
        'train',
        '--attention',
        'mha',
        '--preset',
        'smoke',
        '--data',
        'wikitext-2',
        '--data-dir',
        dirname(dir),
        '--steps',
        '1',
        '--out',
        join(tempDir(), 'never'),
      ])
      expectOneLineError(r, new RegExp(`wikitext-2/(train|valid|test).txt: ${why.source}`))
    }
  })

  it('an interrupted first save (DIR.next without COMPLETE) is cleaned up by the next fresh run', async () => {
    const dir = join(tempDir(), 'first')
    mkdirSync(`${dir}.next`)
    writeFileSync(`${dir}.next/config.json`, '{"model": ')
    expectOneLineError(await run(['train', '--resume', dir]), /no checkpoint at/)
    const r = await run([...TRAIN, '--steps', '2', '--out', dir])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/removed .*first.next: an interrupted first save that never completed/)
    expect((await readRun(dir)).state.step).toBe(2)
  })

  it('disk full: names the path and what is intact (a real full tmpfs; skipped where mounting is not allowed)', async (ctx) => {
    const mnt = join(tempDir(), 'small')
    mkdirSync(mnt)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', mnt], { stdio: 'ignore' })
    } catch {
      ctx.skip()
    }
    try {
      // 96 KiB holds the first checkpoint of this tiny model (~70 KB) but not a second one beside it.
      const later = await run([...TRAIN, '--steps', '2', '--out', join(mnt, 'run')])
      expectOneLineError(
        later,
        /could not save the checkpoint of step 2 in .*small\/run \(ENOSPC: no space left on the device, at .*\); the last good checkpoint \(step 0\) is intact in .*; free space, then continue with --resume/,
        true,
      )
      expect((await readRun(join(mnt, 'run'))).state.step).toBe(0)
      expect(readdirSync(mnt).sort(), 'the failed save left no partial run.next behind').toEqual(['run'])
      rmSync(join(mnt, 'run'), { recursive: true, force: true })
      writeFileSync(join(mnt, 'ballast'), new Uint8Array(60_000)) // now not even the first save fits
      const first = await run([...TRAIN, '--steps', '2', '--out', join(mnt, 'run')])
      expectOneLineError(
        first,
        /could not save the checkpoint of step 0 .*ENOSPC.*nothing was trained yet and no checkpoint exists; free space or choose another --out/,
        true,
      )
      expect(readdirSync(mnt).sort(), 'a failed first save leaves nothing that keeps the disk full').toEqual(['ballast'])
      const again = await run([...TRAIN, '--steps', '2', '--out', join(mnt, 'run')])
      expectOneLineError(again, /could not save the checkpoint of step 0 .*ENOSPC/, true) // the same clear error: no "pass --resume" / "no checkpoint" loop
    } finally {
      execFileSync('umount', [mnt])
    }
  })
})

describe('limits that are limits', () => {
  it('arguments past what ONNX Runtime survives are refused with the limit and the file flags; --prompt-file takes a prompt of any length', async () => {
    const long = 'the cat sat. '.repeat(2500) // 32,500 bytes: onnxruntime-node would segfault (exit 139) in a real process
    const refused = spawnSync(process.execPath, [CLI, 'generate', '--checkpoint', runDir, '--prompt', long, '--tokens', '2'], { encoding: 'utf8' })
    expectOneLineError(
      { code: refused.status, stderr: refused.stderr },
      /the arguments take 32,5\d\d bytes, more than moas accepts \(24,000.*generate --prompt-file FILE.*compare --collect-list FILE/,
    )
    expect(refused.status).toBe(2)
    const file = join(tempDir(), 'long-prompt.txt')
    writeFileSync(file, long)
    const ok = spawnSync(process.execPath, [CLI, 'generate', '--checkpoint', runDir, '--prompt-file', file, '--tokens', '4', '--temperature', '0', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, MOAS_THREADS: '1' },
    })
    expect(ok.status, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout.split('\n')[0]).completion).toHaveLength(4)
    // a short prompt from a file is the same prompt as on the command line
    writeFileSync(file, 'the ')
    const args = ['--tokens', '6', '--temperature', '0', '--json']
    const a = await run(['generate', '--checkpoint', runDir, '--prompt-file', file, ...args])
    const b = await run(['generate', '--checkpoint', runDir, '--prompt', 'the ', ...args])
    expect(a.stdout.split('\n')[0]).toBe(b.stdout.split('\n')[0])
    expectOneLineError(
      await run(['generate', '--checkpoint', runDir, '--prompt-file', file, '--prompt', 'a']),
      /exactly one of --prompt TEXT, --prompt-file FILE or --prompts FILE/,
    )
  })

  it('a batch that cannot fit in memory is refused before anything is allocated, with the estimate and a size that fits; the estimate is below the measured peak', async () => {
    const r = await run(['train', '--attention', 'moas', '--preset', 'smoke', '--batch-size', '65536', '--out', join(tempDir(), 'huge')])
    expectOneLineError(
      r,
      /batch size 65536 needs at least [\d.]+ GiB for one training step .* against [\d.]+ GiB of memory; use a batch size of at most about \d+ \(--accum keeps the effective batch\)/,
    )
    expect(existsSync(join(tempDir(), 'huge'))).toBe(false)
    // the lower bound holds against the real process: its peak resident memory exceeds the estimate
    const cfg = modelConfig('smoke', 64, { attention: 'moas' })
    const B = 128
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'data:text/javascript,process.on("exit",()=>process.stderr.write("maxrss="+process.resourceUsage().maxRSS+"\\n"))',
        CLI,
        'train',
        '--attention',
        'moas',
        '--preset',
        'smoke',
        '--steps',
        '1',
        '--eval-iters',
        '1',
        '--batch-size',
        String(B),
        '--out',
        join(tempDir(), 'peak'),
      ],
      { encoding: 'utf8', env: { ...process.env, MOAS_THREADS: '1' } },
    )
    expect(child.status, child.stderr).toBe(0)
    const peak = Number(/maxrss=(\d+)/.exec(child.stderr)![1]) * 1024
    expect(peak).toBeGreaterThan(trainingStepBytes({ ...cfg, vocab_size: 51 }, B).total)
  })
})

describe('tampered run state', () => {
  it('an edited file is refused by the checksum manifest', async () => {
    const dir = copyRun('edited')
    const state = JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8'))
    writeFileSync(join(dir, 'trainer_state.json'), JSON.stringify({ ...state, step: 2 }))
    expectOneLineError(await run(['train', '--resume', dir, '--steps', '6']), /trainer_state.json: changed since the checkpoint was saved/)
  })

  it('without a manifest, a step that disagrees with the sampler and config, or a foreign sampler state, is refused', async () => {
    const dir = copyRun('inconsistent')
    asVersion1(dir)
    const original = readFileSync(join(dir, 'trainer_state.json'), 'utf8')
    const state = JSON.parse(original)
    writeFileSync(join(dir, 'trainer_state.json'), JSON.stringify({ ...state, step: 2 }))
    expectOneLineError(
      await run(['train', '--resume', dir, '--steps', '6']),
      /says step 2, but config.json's training.step is 4; .*batch sampler has drawn 4 batches.*do not belong together/,
    )
    writeFileSync(join(dir, 'trainer_state.json'), JSON.stringify({ ...state, sampler: { ...state.sampler, rng: (state.sampler.rng + 1) >>> 0 } }))
    expectOneLineError(await run(['train', '--resume', dir, '--steps', '6']), /batch-sampler state is not the one seed 0 reaches at step 4/, true)
    writeFileSync(join(dir, 'trainer_state.json'), original)
    expect((await run(['train', '--resume', dir, '--steps', '6'])).code).toBe(0)
  })

  it('a log whose last record is cut short is repaired with a note', async () => {
    const dir = copyRun('torn')
    const log = readFileSync(join(dir, 'log.jsonl'), 'utf8')
    writeFileSync(join(dir, 'log.jsonl'), `${log}{"step":5,"loss":3.1`)
    const r = await run(['train', '--resume', dir, '--steps', '6'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/log.jsonl: its last line was cut short .*dropped/)
    expect(readLog(join(dir, 'log.jsonl')).map((x) => x.step)).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('a damaged line in the middle of the log is dropped by number; every later intact record is kept', async () => {
    const dir = copyRun('garbled')
    const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n')
    expect(lines).toHaveLength(4)
    // line 2 garbage, line 3 with a NaN (not JSON): records 1 and 4 are intact
    lines[1] = 'x%$#garbage'
    lines[2] = lines[2].replace(/"loss":[^,]+/, '"loss":NaN')
    writeFileSync(join(dir, 'log.jsonl'), `${lines.join('\n')}\n`)
    const r = await run(['train', '--resume', dir, '--steps', '6'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/log\.jsonl: lines 2, 3 are not a log record \(damaged on disk or edited\); dropped, every intact record after them kept/)
    expect(r.stderr).not.toMatch(/cut short/)
    expect(readLog(join(dir, 'log.jsonl')).map((x) => x.step)).toEqual([1, 4, 5, 6])
  })
})

describe('fuzz: random flag values and random checkpoint corruption', () => {
  it('random bad flag values: exit != 0, one line, no stack trace', async () => {
    const rand = mulberry32(2026)
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]
    const junk = ['-1', '0', '1e309', 'NaN', 'abc', '', '3.5', '-0', '99999999999999999999', '🙂', '--', '1,2', 'Infinity']
    const flags: [string, string[]][] = [
      [
        'train',
        ['--steps', '--lr', '--batch-size', '--eval-interval', '--warmup', '--seed', '--threads', '--accum', '--clip', '--attention', '--preset', '--set'],
      ],
      ['generate', ['--tokens', '--temperature', '--top-k', '--top-p', '--seed', '--threads']],
      ['info', ['--vocab-size', '--attention', '--set', '--preset']],
      ['compare', ['--seeds', '--variants', '--steps']],
    ]
    for (let i = 0; i < 60; i++) {
      const [cmd, names] = pick(flags)
      const flag = pick(names)
      const value = flag === '--set' ? `${pick(['n_embd', 'dropout', 'bogus', 'n_head'])}=${pick(junk)}` : pick(junk)
      const base =
        cmd === 'train'
          ? [...TRAIN, '--steps', '1', '--out', join(tempDir(), 'f')]
          : cmd === 'generate'
            ? ['generate', '--checkpoint', runDir, '--prompt', 'a']
            : cmd === 'info'
              ? ['info', '--attention', 'mha']
              : ['compare', '--out', join(tempDir(), 'c'), ...TINY]
      const args = [...base.filter((a, j) => a !== flag && base[j - 1] !== flag), flag, value]
      const r = await run(args)
      if (r.code === 0) continue // a junk value can still be valid (e.g. --seed 0); it must then just work
      expectOneLineError(r, /./, true)
    }
  })

  it('a random byte corruption of any checkpoint file is refused, and the previous checkpoint still loads', async () => {
    const rand = mulberry32(7)
    const text = join(tempDir(), 'e.txt')
    writeFileSync(text, 'the cat sees a dog. '.repeat(4))
    // log.jsonl is the run's append-only history outside the checksummed checkpoint (see trainer README).
    const files = readdirSync(runDir).filter((f) => f !== 'log.jsonl')
    expect(files.sort()).toEqual(['COMPLETE', 'config.json', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.json', 'trainer_state.json'])
    for (const file of files) {
      for (let trial = 0; trial < 3; trial++) {
        const dir = copyRun(`fuzz-${file}-${trial}`)
        const bytes = Uint8Array.from(readFileSync(join(dir, file)))
        const kind = trial % 3
        if (kind === 0 && bytes.length) bytes[Math.floor(rand() * bytes.length)] ^= 1 << Math.floor(rand() * 8)
        const corrupted = kind === 1 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : kind === 2 ? Uint8Array.from([...bytes, 0x7b]) : bytes
        writeFileSync(join(dir, file), corrupted)
        for (const args of [
          ['eval', '--checkpoint', dir, '--text', text],
          ['train', '--resume', dir, '--steps', '6'],
        ]) {
          const r = await run(args)
          expectOneLineError(r, /./, true)
        }
      }
    }
    const ok = await loadCheckpoint(runDir)
    expect(readSafetensors(readFileSync(join(runDir, 'model.safetensors'))).tensors.size).toBe(ok.params.size)
  })

  it('a random byte corruption of any exported folder file is refused by generate (the model card excepted: it generates the same text)', async () => {
    const rand = mulberry32(11)
    const model = join(tempDir(), 'fuzz-model')
    expect((await run(['export', '--checkpoint', runDir, '--out', model])).code).toBe(0)
    const args = ['--prompt', 'the ', '--tokens', '8', '--temperature', '0']
    const clean = await run(['generate', '--model', model, ...args])
    expect(clean.code, clean.stderr).toBe(0)
    const files = readdirSync(model, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(model.length + 1))
    expect(files.sort()).toEqual([
      'README.md',
      'SHA256SUMS',
      'config.json',
      'genai_config.json',
      'generation_config.json',
      'onnx/model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ])
    for (const file of files) {
      for (let kind = 0; kind < 3; kind++) {
        const dir = join(tempDir(), `fuzz-folder-${kind}`)
        cpSync(model, dir, { recursive: true })
        const bytes = Uint8Array.from(readFileSync(join(dir, file)))
        if (kind === 0) bytes[Math.floor(rand() * bytes.length)] ^= 1 << Math.floor(rand() * 8)
        const corrupted = kind === 1 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : kind === 2 ? Uint8Array.from([...bytes, 0x7b]) : bytes
        writeFileSync(join(dir, file), corrupted)
        const r = await run(['generate', '--model', dir, ...args])
        if (file === 'README.md') expect(r.stdout, r.stderr).toBe(clean.stdout)
        else expectOneLineError(r, /./)
      }
    }
  })
})

describe("fuzz: compare's cached run summaries", () => {
  it('a damaged summary.json (a digit changed, cut short, a byte appended) is recomputed from the checkpoint, never read into the table', async () => {
    const rand = mulberry32(31)
    const dir = join(tempDir(), 'summarized')
    cpSync(runDir, dir, { recursive: true })
    const collect = async () => {
      const r = await run(['compare', '--collect', dir, '--out', join(tempDir(), 'c')])
      expect(r.code, r.stderr).toBe(0)
      // the loss and accuracy columns (a recomputed summary measures decode speed again)
      return r.stdout
        .split('\n')
        .filter((l) => l.startsWith('| mha'))
        .map((l) => l.split('|').filter((_, i) => i !== 5))
    }
    const clean = await collect()
    expect(clean.length).toBeGreaterThan(0)
    const path = join(dir, 'summary.json')
    const sealed = readFileSync(path, 'utf8')
    expect(JSON.parse(sealed)).toMatchObject({ variant: 'mha', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) })
    for (let round = 0; round < 6; round++) {
      const kind = round % 3
      let damaged = sealed
      if (kind === 0) {
        // the dangerous case: still valid JSON, another loss
        const at = sealed.indexOf('"full_val_loss": ') + '"full_val_loss": '.length + 2 + Math.floor(rand() * 4)
        damaged = sealed.slice(0, at) + String((Number(sealed[at]) + 1 + Math.floor(rand() * 8)) % 10) + sealed.slice(at + 1)
        expect(JSON.parse(damaged).full_val_loss).not.toBe(JSON.parse(sealed).full_val_loss)
      } else if (kind === 1) damaged = sealed.slice(0, Math.floor(rand() * sealed.length))
      else damaged = `${sealed}x`
      writeFileSync(path, damaged)
      expect(await collect(), `round ${round}`).toEqual(clean)
      const again = JSON.parse(readFileSync(path, 'utf8')) // recomputed and sealed again
      expect(again.full_val_loss).toBe(JSON.parse(sealed).full_val_loss)
      expect(again.sha256).toMatch(/^[0-9a-f]{64}$/)
    }
  }, 300_000)
})
