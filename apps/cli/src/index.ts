#!/usr/bin/env node
/** The `moas` executable: main() with the real process; Ctrl-C during train/compare stops cleanly. */
import { processIo } from './io'
import { main } from './main'

// train and compare save a checkpoint after the current update on the first Ctrl-C (exit code 130); a second
// Ctrl-C, or Ctrl-C in any other command, quits at once (checkpoints are written atomically, so the last
// one stays readable).
const controller = new AbortController()
const interruptible = ['train', 'compare'].includes(process.argv[2])
process.on('SIGINT', () => {
  if (!interruptible || controller.signal.aborted) process.exit(130)
  controller.abort()
  process.stderr.write('\nmoas: stopping after the current step and saving a checkpoint (Ctrl-C again to quit at once)\n')
})

main(process.argv.slice(2), processIo(controller.signal)).then((code) => {
  process.exitCode = code
})
