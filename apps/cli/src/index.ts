#!/usr/bin/env node
/**
 * The `moas` executable: main() with the real process. A stop signal during train/compare stops cleanly.
 *
 * SIGINT (Ctrl-C), SIGTERM (what timeout, docker, SLURM and systemd send) and SIGHUP (a closed terminal)
 * all do the same in train and compare: save a checkpoint after the current update, say so, and exit with
 * the conventional 128 + signal number (130, 143, 129). A second signal, or a signal in any other command,
 * quits at once (checkpoints are written atomically, so the last one stays readable). A closed stdout is
 * handled as SIGPIPE (141) in train and compare, below.
 */
import { constants } from 'node:os'
import { EXIT } from './errors'
import { processIo } from './io'
import { main } from './main'

const controller = new AbortController()
const interruptible = ['train', 'compare'].includes(process.argv[2])
let received: NodeJS.Signals | null = null
const exitCodeOf = (signal: NodeJS.Signals) => 128 + constants.signals[signal]

// A reader that closes stdout early: for `moas generate … | head` a normal end; for train and compare it is
// treated as SIGPIPE would be, but safely: stop after the current step, save, exit 141, and say so on
// stderr (a run must neither go on unobserved nor stop silently). A closed stderr only stops the notes: the
// JSON lines on stdout still report the run.
const io = processIo(controller.signal, (stream) => {
  if (stream === 'stderr') return
  if (!interruptible) process.exit(process.exitCode ?? 0)
  if (controller.signal.aborted) return
  received = 'SIGPIPE'
  controller.abort()
  io.stderr('moas: stdout was closed (the program reading it has exited): stopping after the current step and saving a checkpoint\n')
})

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (!interruptible || controller.signal.aborted) process.exit(exitCodeOf(signal))
    received = signal
    controller.abort()
    io.stderr(`\nmoas: ${signal}: stopping after the current step and saving a checkpoint (send it again to quit at once)\n`)
  })
}

main(process.argv.slice(2), io).then((code) => {
  process.exitCode = code === EXIT.interrupted && received ? exitCodeOf(received) : code
})
