/**
 * A training run that cannot start or continue: a resume whose config differs from the checkpoint's, an
 * output folder that already holds another run, a checkpoint without training state. The message names
 * the problem and the fix.
 */
export class TrainError extends Error {
  override name = 'TrainError'
}

/** The loss (or gradient norm) became NaN or Inf: the run stopped at `step` without saving it. */
export class DivergenceError extends TrainError {
  override name = 'DivergenceError'
  constructor(
    message: string,
    readonly step: number,
    readonly lastCheckpointStep: number,
  ) {
    super(message)
  }
}
