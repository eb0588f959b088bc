#!/usr/bin/env node
/**
 * The `moas` executable: main() with the real process. A stop signal during train/compare stops cleanly.
 *
 * SIGINT (Ctrl-C), SIGTERM (what timeout, docker, SLURM and systemd send) and SIGHUP (a closed terminal)
 * all do the same in train and compare: save a checkpoint after the current update, say so, and exit with
 * the conventional 128 + signal number (130, 143, 129). A second signal, or a signal in any other command,
 * quits at once (checkpoints are written atomically, so the last one stays readable).
 */
import { constants } from 'node:os'
import { EXIT } from './errors'
import { processIo } from './io'
import { main } from './main'

const controller = new AbortController()
const interruptible = ['train', 'compare'].includes(process.argv[2])
let received: NodeJS.Signals | null = null
const exitCodeOf = (signal: NodeJS.Signals) => 128 + constants.signals[signal]

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (!interruptible || controller.signal.aborted) process.exit(exitCodeOf(signal))
    received = signal
    controller.abort()
    process.stderr.write(`\nmoas: ${signal}: stopping after the current step and saving a checkpoint (send it again to quit at once)\n`)
  })
}

// `moas generate … | head`: the reader closing stdout early is a normal end, not a crash.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw e
})

main(process.argv.slice(2), processIo(controller.signal)).then((code) => {
  process.exitCode = code === EXIT.interrupted && received ? exitCodeOf(received) : code
})
