/**
 * The root README's "Using a trained model elsewhere" section, run as written: its shell block's commands
 * and its transformers.js snippet are read out of README.md (not copied here) and run one by one in a
 * scratch directory laid out like the repository root (links to its packages, apps, examples and
 * node_modules), so their runs/ and models/ land there. The clients must agree: the example script and
 * transformers.js print the same greedy continuation as `moas generate`.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const readme = readFileSync(join(root, 'README.md'), 'utf8')

/** The fenced blocks of `lang` in the README section headed `heading`. */
function blocks(heading: string, lang: string): string[] {
  const start = readme.indexOf(`\n## ${heading}\n`)
  if (start < 0) throw new Error(`README.md has no section '## ${heading}'`)
  const end = readme.indexOf('\n## ', start + 4)
  const section = readme.slice(start, end < 0 ? undefined : end)
  return [...section.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1])
}

const SECTION = 'Using a trained model elsewhere'
let scratch: string
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'moas-readme-'))
  for (const d of ['apps', 'packages', 'examples', 'node_modules']) symlinkSync(join(root, d), join(scratch, d))
  for (const f of ['package.json', 'pnpm-workspace.yaml', '.npmrc']) copyFileSync(join(root, f), join(scratch, f))
})
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe(`README: ${SECTION}`, () => {
  it("every shell command runs as written, and the example script prints moas generate's text", async () => {
    const [sh] = blocks(SECTION, 'sh')
    const commands = sh
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter(Boolean)
    expect(commands.length).toBeGreaterThanOrEqual(4)
    const outputs: string[] = []
    for (const c of commands) {
      const { stdout } = await run('bash', ['-c', c], { cwd: scratch, maxBuffer: 1 << 24, env: { ...process.env, FORCE_COLOR: '0' } })
      outputs.push(stdout)
    }
    const generated = commands.findIndex((c) => c.startsWith('pnpm moas generate'))
    const example = commands.findIndex((c) => c.startsWith('node examples/ort-decode.mjs'))
    expect(generated).toBeGreaterThanOrEqual(0)
    expect(example).toBeGreaterThanOrEqual(0)
    const completion = JSON.parse(outputs[example].trim().split('\n').at(-1)!).completion as string
    expect(completion.length).toBeGreaterThan(0)
    // moas generate prints the prompt and the continuation as text
    expect(outputs[generated]).toContain(completion)
  }, 300_000)

  it("the transformers.js snippet runs as written on the folder and gives the example script's text", async () => {
    const [js] = blocks(SECTION, 'js')
    // the snippet's imports resolve from examples/ (where @huggingface/transformers is installed); its
    // localModelPath '.' is the scratch directory (the working directory)
    const file = join(root, 'examples', `.readme-snippet-${process.pid}.mjs`)
    writeFileSync(file, `${js}\nprocess.stdout.write(JSON.stringify({ generated_text }))\n`)
    try {
      const { stdout } = await run(process.execPath, [file], { cwd: scratch, maxBuffer: 1 << 24 })
      const text = JSON.parse(stdout.trim().split('\n').at(-1)!).generated_text as string
      const [sh] = blocks(SECTION, 'sh')
      const script = sh
        .split('\n')
        .find((l) => l.startsWith('node examples/ort-decode.mjs'))!
        .replace(/\s+#.*$/, '')
      const { stdout: ort } = await run('bash', ['-c', script], { cwd: scratch })
      expect(text).toBe(`the ${JSON.parse(ort.trim()).completion}`)
    } finally {
      unlinkSync(file)
    }
  }, 300_000)
})
