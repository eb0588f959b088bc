/** Where a command writes, so tests can run main() in-process and read what it printed. */
import { MultiBar, Presets } from 'cli-progress'

export interface Io {
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** Draw progress bars (stderr is a terminal). */
  stderrIsTTY: boolean
  stdoutIsTTY: boolean
  env: Record<string, string | undefined>
  /** Aborted on Ctrl-C (SIGINT): long commands save a checkpoint and exit with code 130. */
  signal?: AbortSignal
}

/**
 * The real process's streams. A stream whose reader went away (EPIPE: `moas train | head`) is written no
 * more, and `onClosed` hears of it once: what that means for the command is the caller's decision.
 */
export function processIo(signal?: AbortSignal, onClosed: (stream: 'stdout' | 'stderr') => void = () => {}): Io {
  const open = { stdout: true, stderr: true }
  for (const name of ['stdout', 'stderr'] as const)
    process[name].on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e
      if (!open[name]) return
      open[name] = false
      onClosed(name)
    })
  return {
    stdout: (t) => void (open.stdout && process.stdout.write(t)),
    stderr: (t) => void (open.stderr && process.stderr.write(t)),
    stderrIsTTY: !!process.stderr.isTTY,
    stdoutIsTTY: !!process.stdout.isTTY,
    env: process.env,
    signal,
  }
}

/**
 * Progress of a training run: a bar with ETA on stderr when it is a terminal, JSON lines on stdout always.
 * When both are the same terminal, lines go through the bar's log() so they do not tear the bar.
 */
export class Progress {
  private readonly multi: MultiBar | null
  private bar: ReturnType<MultiBar['create']> | null = null

  constructor(private readonly io: Io) {
    this.multi = io.stderrIsTTY
      ? new MultiBar(
          {
            stream: process.stderr,
            format: ' {label} [{bar}] {value}/{total} | loss {loss} | val {val} | ETA {eta_formatted}',
            hideCursor: true,
            clearOnComplete: false,
            etaBuffer: 20,
            fps: 5,
          },
          Presets.shades_classic,
        )
      : null
  }

  /** Start (or restart) the bar for a run of `total` steps at `start`. */
  start(label: string, total: number, start: number): void {
    this.lastAt = Date.now()
    if (!this.multi || this.stopped) return
    if (this.bar) this.multi.remove(this.bar) // one bar at a time: the finished run's bar leaves the screen
    this.bar = this.multi.create(total, start, { label, loss: '-', val: '-' })
  }

  update(step: number, payload: { loss?: number; val?: number }): void {
    const p: Record<string, unknown> = {}
    if (payload.loss !== undefined) p.loss = payload.loss.toFixed(4)
    if (payload.val !== undefined) p.val = payload.val.toFixed(4)
    this.bar?.update(step, p)
  }

  private lastAt = Date.now()
  private recentMs: number[] = []

  /** Note a finished update's record (wall time between records, evaluation included). */
  tick(): void {
    const now = Date.now()
    this.recentMs = [...this.recentMs.slice(-4), now - this.lastAt]
    this.lastAt = now
  }

  /**
   * How long until a stop signal takes effect (the current update finishes first): a step can take minutes
   * with a large --accum or --eval-iters, and the user should not have to guess whether it hangs.
   */
  untilStop(): string {
    const running = (Date.now() - this.lastAt) / 1000
    if (!this.recentMs.length) return `the current update has run ${running.toFixed(0)} s; no update has finished yet to time it`
    const typical = Math.max(...this.recentMs) / 1000
    return `the current update has run ${running.toFixed(0)} s and recent ones took up to ${typical.toFixed(typical < 10 ? 1 : 0)} s (evaluations included), so the checkpoint follows in about ${Math.max(0, typical - running).toFixed(0)} s`
  }

  /** A JSON line for scripts (stdout). */
  line(obj: unknown): void {
    const text = `${JSON.stringify(obj)}\n`
    if (this.drawing && this.io.stdoutIsTTY) this.multi!.log(text)
    else this.io.stdout(text)
  }

  /** A human note (stderr). */
  note(text: string): void {
    if (this.drawing) this.multi!.log(`${text}\n`)
    else this.io.stderr(`${text}\n`)
  }

  /** While a bar is on screen, other output must go through its log buffer (flushed on each redraw). */
  private get drawing(): boolean {
    return !!this.multi && !!this.bar && !this.stopped
  }

  private stopped = false

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.multi?.stop() // renders once more, flushing the log buffer
  }
}
