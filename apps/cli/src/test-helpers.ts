/** Helpers of this app's tests: main() in-process, the one-line error contract, temp folders, old checkpoints. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect } from 'vitest'
import type { Io } from './io'
import { main } from './main'

/** A fresh temporary folder, removed after the test file. */
export function tempDirs(prefix: string): () => string {
  const temps: string[] = []
  afterAll(() => temps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix))
    temps.push(d)
    return d
  }
}

/** main(args) in-process with captured output. */
export async function run(args: string[], env: Record<string, string | undefined> = {}) {
  let stdout = ''
  let stderr = ''
  const io: Io = {
    stdout: (t) => {
      stdout += t
    },
    stderr: (t) => {
      stderr += t
    },
    stderrIsTTY: false,
    stdoutIsTTY: false,
    env,
  }
  const code = await main(args, io)
  return { code, stdout, stderr }
}

/**
 * Exactly one error line, no stack trace. Errors before any work starts are all of stderr; `afterStart`
 * allows the progress notes of a run that started (the error is then the last line).
 */
export function expectOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp, afterStart = false) {
  expect(r.code, r.stderr).not.toBe(0)
  const lines = r.stderr.split('\n').filter((l) => l.trim() && !l.includes('[W:onnxruntime') && !l.includes('[E:onnxruntime'))
  if (!afterStart) expect(lines, r.stderr).toHaveLength(1)
  expect(
    lines.filter((l) => l.startsWith('moas: error: ')),
    r.stderr,
  ).toHaveLength(1)
  expect(lines.at(-1)).toMatch(/^moas: error: /)
  expect(lines.at(-1)).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /) // no stack frames
}

/** Make a checkpoint look like one from before manifests: no checkpoint_version, an empty COMPLETE. */
export function asVersion1(dir: string): void {
  const { checkpoint_version: _v, ...meta } = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
  writeFileSync(join(dir, 'config.json'), JSON.stringify(meta))
  writeFileSync(join(dir, 'COMPLETE'), '')
}
