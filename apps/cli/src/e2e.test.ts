/**
 * The built `moas` executable as users run it (apps/cli/dist/index.js; `pnpm build` first, which
 * `pnpm test` does through turbo): train → eval → generate end to end, Ctrl-C, and kill -9 at arbitrary
 * moments (most of them in the middle of a checkpoint save) followed by an exact resume.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readLog, readRun } from '@moas/trainer/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../dist/index.js', import.meta.url))
const temps: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'moas-e2e-'))
  temps.push(d)
  return d
}
afterAll(() => temps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`pnpm build\` before these tests (pnpm test does)`)
})

interface Done {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function start(args: string[], onStdout?: (all: string, child: ChildProcess) => void): Promise<Done> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MOAS_THREADS: '2' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => {
    stdout += d
    onStdout?.(stdout, child)
  })
  child.stderr.on('data', (d) => {
    stderr += d
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
const TRAIN = ['train', '--attention', 'moas', '--preset', 'smoke', '--set', 'dropout=0.1']

describe('moas (built executable)', () => {
  it('train --preset smoke --steps 5, then eval, then generate', async () => {
    const dir = join(tempDir(), 'run')
    const t = await start([...TRAIN, '--steps', '5', '--out', dir])
    expect(t.code, t.stderr).toBe(0)
    const lines = t.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.slice(0, 5).map((l) => l.step)).toEqual([1, 2, 3, 4, 5])
    expect(lines[4].val_loss).toBeGreaterThan(0) // the final eval
    expect(lines[5]).toMatchObject({ done: true, status: 'finished', step: 5 })
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'log.jsonl']) expect(existsSync(join(dir, f)), f).toBe(true)

    const text = join(tempDir(), 'text.txt')
    writeFileSync(text, 'ab:x7k cd:041 ?ab=x7k\nthe old king finds a fish. ([]){}\n'.repeat(10))
    const e = await start(['eval', '--checkpoint', dir, '--text', text])
    expect(e.code, e.stderr).toBe(0)
    const r = JSON.parse(e.stdout)
    expect(Object.keys(r).sort()).toEqual(['bpc', 'device', 'loss', 'tokens'])
    expect(r.tokens).toBe(Math.floor((550 - 1) / 64) * 64)
    expect(r.bpc).toBeCloseTo(r.loss / Math.LN2, 10)

    const g = await start(['generate', '--checkpoint', dir, '--prompt', 'the ', '--tokens', '30', '--seed', '3'])
    expect(g.code, g.stderr).toBe(0)
    expect(g.stdout.startsWith('the ')).toBe(true)
    expect([...g.stdout.trimEnd()].length).toBeGreaterThanOrEqual(4 + 25) // newlines may be sampled
    const gj = await start(['generate', '--checkpoint', dir, '--prompt', 'the ', '--tokens', '30', '--seed', '3', '--json'])
    const [row, summary] = gj.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(row).toMatchObject({ prompt: 'the ', tokens: 30 })
    expect(`the ${row.completion}\n`).toBe(g.stdout)
    // smoke moas: 2 layers × (4 + 2 + 1) cached heads × head dim 16 × K and V × 4 bytes, for 4 + 29 positions
    expect(summary).toMatchObject({ prompts: 1, prefill_tokens: 4, decode_tokens: 29, kv_cache_bytes: 33 * 2 * 7 * 16 * 2 * 4 })
    expect(summary.prefill_tokens_per_s).toBeGreaterThan(0)
    expect(summary.decode_tokens_per_s).toBeGreaterThan(0)
  })

  it('Ctrl-C saves a checkpoint and exits 130; --resume continues exactly', async () => {
    const dir = join(tempDir(), 'run')
    let sent = false
    const t = await start([...TRAIN, '--steps', '500', '--out', dir], (all, child) => {
      if (!sent && records(all).length >= 3) {
        sent = true
        child.kill('SIGINT')
      }
    })
    expect(t.code, t.stderr).toBe(130)
    expect(t.stderr).toMatch(/interrupted at step (\d+); checkpoint saved/)
    const k = (await readRun(dir)).state.step
    expect(k).toBe(records(t.stdout).length)
    expect(k).toBeLessThan(500)

    const resumed = await start(['train', '--resume', dir, '--steps', String(k + 3)])
    expect(resumed.code, resumed.stderr).toBe(0)
    const ref = await start([...TRAIN, '--steps', String(k + 3), '--out', join(tempDir(), 'ref')])
    expect(readLog(join(dir, 'log.jsonl')).map((r) => r.loss)).toEqual(records(ref.stdout).map((r) => r.loss))
  })

  it('kill -9 in every phase of a checkpoint save leaves a good checkpoint that resumes exactly', async () => {
    const ref = records((await start([...TRAIN, '--steps', '80', '--out', join(tempDir(), 'ref')])).stdout)
    // saveCheckpoint writes DIR.next (files, then COMPLETE), renames DIR -> DIR.prev and DIR.next -> DIR,
    // then removes DIR.prev. We watch the disk and kill the process the moment it is in each phase.
    const phases: [string, (dir: string) => boolean][] = [
      ['writing DIR.next', (d) => existsSync(`${d}.next`) && !existsSync(`${d}.next/COMPLETE`)],
      ['DIR.next complete, not swapped', (d) => existsSync(`${d}.next/COMPLETE`)],
      ['between the renames', (d) => existsSync(`${d}.prev`) && !existsSync(d)],
      ['old DIR.prev not yet removed', (d) => existsSync(`${d}.prev`) && existsSync(d)],
    ]
    for (const [phase, inPhase] of phases) {
      const dir = join(tempDir(), 'run')
      let polling = false
      let hit = false
      const t = await start([...TRAIN, '--steps', '500', '--checkpoint-interval', '1', '--out', dir], (all, child) => {
        if (polling || records(all).length < 2) return
        polling = true
        const poll = () => {
          if (child.exitCode !== null || child.signalCode !== null) return
          if (inPhase(dir)) {
            hit = true
            child.kill('SIGKILL')
          } else setImmediate(poll)
        }
        poll()
      })
      expect(t.signal, phase).toBe('SIGKILL')
      expect(hit, phase).toBe(true)
      const saved = await readRun(dir) // whichever complete checkpoint the kill left
      expect(saved.state.step, phase).toBeGreaterThanOrEqual(1)
      expect(saved.state.step, `${phase}: caught too late for the reference run`).toBeLessThanOrEqual(77)
      const steps = saved.state.step + 3
      const resumed = await start(['train', '--resume', dir, '--steps', String(steps)])
      expect(resumed.code, resumed.stderr).toBe(0)
      expect(
        readLog(join(dir, 'log.jsonl')).map((r) => r.loss),
        phase,
      ).toEqual(ref.slice(0, steps).map((r) => r.loss))
      expect(existsSync(`${dir}.next`) || existsSync(`${dir}.prev`), phase).toBe(false)
    }
  })
})
