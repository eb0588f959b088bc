/** A graph that cannot be built: wrong shapes, dtypes, unknown ops. The message names the op and its inputs. */
export class GraphError extends Error {
  override name = 'GraphError'
}

/** A problem running a graph: missing feed, wrong feed shape, unavailable execution provider. */
export class RuntimeError extends Error {
  override name = 'RuntimeError'
}
