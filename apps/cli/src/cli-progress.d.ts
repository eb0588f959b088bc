// Minimal types for the part of cli-progress 3 we use (the package ships no types; @types/cli-progress is not installed).
declare module 'cli-progress' {
  interface Options {
    format?: string
    stream?: NodeJS.WritableStream
    hideCursor?: boolean
    clearOnComplete?: boolean
    stopOnComplete?: boolean
    etaBuffer?: number
    fps?: number
    barsize?: number
  }
  export class MultiBar {
    constructor(options: Options, preset?: unknown)
    create(total: number, start: number, payload?: Record<string, unknown>): SingleBar
    log(text: string): void
    remove(bar: SingleBar): boolean
    stop(): void
  }
  export class SingleBar {
    constructor(options: Options, preset?: unknown)
    start(total: number, start: number, payload?: Record<string, unknown>): void
    update(value: number, payload?: Record<string, unknown>): void
    setTotal(total: number): void
    stop(): void
  }
  export const Presets: { shades_classic: unknown; shades_grey: unknown; legacy: unknown; rect: unknown }
}
