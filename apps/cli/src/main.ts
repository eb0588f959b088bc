/**
 * The `moas` command. main() takes argv and an Io so tests run it in-process; it never throws and never
 * exits the process: it returns the exit code (0 ok, 1 error, 2 usage error, 130 interrupted).
 */
import { type Provider, RuntimeError, threadsFromEnv } from '@moas/tensor-core'
import { Command, CommanderError } from 'commander'
import { analyzeCommand } from './commands/analyze'
import { compareCommand } from './commands/compare'
import { evalCommand } from './commands/eval'
import { exportCommand } from './commands/export'
import { generateCommand } from './commands/generate'
import { infoCommand } from './commands/info'
import { trainCommand } from './commands/train'
import { PROBED_PROVIDERS, probeProvider } from './device-probe'
import { EXIT, reportError, UsageError } from './errors'
import { type Io, processIo } from './io'

export const VERSION = '0.1.0'

export function buildProgram(io: Io, done: (code: number) => void): Command {
  const program = new Command('moas')
    .description(
      'train, evaluate, compare, generate with and export transformers with mixture-of-attention-schemes (MoAS) and grouped-query-expert (GQE) attention',
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} }) // errors: one line, printed by main
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
  // Subcommands created with .command() inherit exitOverride and the output settings.
  trainCommand(program, io, done)
  evalCommand(program, io, done)
  compareCommand(program, io, done)
  generateCommand(program, io, done)
  exportCommand(program, io, done)
  analyzeCommand(program, io, done)
  infoCommand(program, io, done)
  for (const c of program.commands) c.allowExcessArguments(false)
  // A provider whose native library prints to stderr when it fails is tried in a child process first.
  program.hook('preAction', (_program, command) => {
    const device = command.opts().device as Provider | undefined
    if (device && PROBED_PROVIDERS.includes(device)) {
      const reason = probeProvider(device)
      if (reason) throw new RuntimeError(reason)
    }
  })
  return program
}

/**
 * The most bytes of arguments moas accepts. onnxruntime-node segfaults in InferenceSession.create when a
 * process's arguments pass about 28,900 bytes (reproduction: tools/upstream/ort-long-argv); this leaves room
 * for the paths of node and the script. Long inputs go in files instead.
 */
export const ARGUMENT_BYTES_LIMIT = 24_000

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  let code: number = EXIT.ok
  try {
    try {
      threadsFromEnv(io.env) // one reading of MOAS_THREADS for every command, before any work
    } catch (e) {
      throw new UsageError((e as Error).message)
    }
    const bytes = argv.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0)
    if (bytes > ARGUMENT_BYTES_LIMIT)
      throw new UsageError(
        `the arguments take ${bytes.toLocaleString('en-US')} bytes, more than moas accepts (${ARGUMENT_BYTES_LIMIT.toLocaleString('en-US')}: ONNX Runtime's Node binding crashes past about 28,900); put a long prompt in a file (generate --prompt-file FILE) and a long list of runs in one (compare --collect-list FILE)`,
      )
    await buildProgram(io, (c) => (code = c)).parseAsync([...argv], { from: 'user' })
    return code
  } catch (e) {
    // --help, --version, or help shown because no command was given: commander already printed it.
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help'))
      return e.exitCode
    const { line, code: exit } = reportError(e)
    io.stderr(`moas: error: ${line}\n`)
    return exit
  }
}
