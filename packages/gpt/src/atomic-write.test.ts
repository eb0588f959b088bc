import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { writeFileAtomic } from './atomic-write'

const deadPid = () => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout)
const NODE_ENTRY = fileURLToPath(new URL('../dist/node.js', import.meta.url))

describe('temporaries never outlive their writer', () => {
  it('writeFileAtomic replaces the file and removes the temporaries of dead writers, not those of live ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moas-atomic-'))
    const target = join(dir, 'results.json')
    const stale = `${target}.tmp-${deadPid()}`
    const live = `${target}.tmp-${process.ppid}`
    writeFileSync(stale, 'half a file')
    writeFileSync(live, 'being written by a live process')
    writeFileSync(join(dir, 'other.json.tmp-1'), 'not ours')
    writeFileAtomic(target, '{"a": 1}\n')
    expect(readFileSync(target, 'utf8')).toBe('{"a": 1}\n')
    expect(existsSync(stale)).toBe(false)
    expect(existsSync(live)).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(['other.json.tmp-1', 'results.json', `results.json.tmp-${process.ppid}`])
  })

  it('removeOnExit: a process that exits on a stop signal (as the CLI does) removes its half-written temporary; one that finished keeps nothing registered', () => {
    if (!existsSync(NODE_ENTRY)) throw new Error(`${NODE_ENTRY} is missing: run \`pnpm build\` first (pnpm test does)`)
    const dir = mkdtempSync(join(tmpdir(), 'moas-onexit-'))
    const script = (finish: boolean) => `
      import { mkdirSync, writeFileSync } from 'node:fs'
      import { removeOnExit } from ${JSON.stringify(NODE_ENTRY)}
      const tmp = ${JSON.stringify(dir)} + '/.model.exporting-' + process.pid
      mkdirSync(tmp); writeFileSync(tmp + '/part', 'x')
      const forget = removeOnExit(tmp)
      ${finish ? "forget(); mkdirSync(tmp + '-kept')" : ''}
      process.on('SIGTERM', () => process.exit(143))
      process.kill(process.pid, 'SIGTERM')
      setTimeout(() => {}, 10000)`
    const killed = spawnSync(process.execPath, ['--input-type=module', '-e', script(false)])
    expect(killed.status, String(killed.stderr)).toBe(143)
    expect(readdirSync(dir)).toEqual([])
    const finished = spawnSync(process.execPath, ['--input-type=module', '-e', script(true)])
    expect(finished.status, String(finished.stderr)).toBe(143)
    expect(readdirSync(dir)).toHaveLength(2) // forgotten: the folder is the caller's again, left as it was
  })
})
