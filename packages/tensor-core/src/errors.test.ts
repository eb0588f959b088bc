// Bad graphs and bad feeds fail early with messages that name the problem and the fix.
import { describe, expect, it } from 'vitest'
import { grad } from './autodiff'
import { GraphError, RuntimeError } from './errors'
import { Graph } from './graph'
import * as ops from './ops'
import { hostTensor } from './runtime'
import { testSession } from './testing/provider'

const thrown = (f: () => unknown): Error => {
  try {
    f()
  } catch (e) {
    return e as Error
  }
  throw new Error('expected an error')
}
const rejected = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('expected a rejection')
}

describe('graph errors at build time (GraphError)', () => {
  it('shape mismatch in a broadcast names the op, the inputs and their shapes', () => {
    const g = new Graph('bad')
    const e = thrown(() => ops.add(g.input('a', 'float32', ['batch', 3, 4]), g.input('b', 'float32', [5])))
    expect(e).toBeInstanceOf(GraphError)
    expect(e.message).toBe("Add: cannot broadcast 'a': float32[batch,3,4] with 'b': float32[5] (dimension 2 from the right-aligned end: 4 vs 5)")
  })

  it('shape mismatch in MatMul names the inner dimensions', () => {
    const g = new Graph('bad')
    const e = thrown(() => ops.matmul(g.input('a', 'float32', [2, 3]), g.input('b', 'float32', [4, 5])))
    expect(e).toBeInstanceOf(GraphError)
    expect(e.message).toBe("MatMul: inner dimensions differ: 3 vs 4 (inputs: 'a': float32[2,3], 'b': float32[4,5])")
  })

  it('shape mismatch in linear names in/out features', () => {
    const g = new Graph('bad')
    const e = thrown(() => ops.linear(g.input('x', 'float32', [2, 8]), g.param('w', [4, 6], { init: { kind: 'zeros' } })))
    expect(e.message).toMatch(/^linear: input features 8 do not match weight \[out=4, in=6\]/)
  })

  it('reshape to a different element count', () => {
    const g = new Graph('bad')
    expect(thrown(() => ops.reshape(g.input('x', 'float32', [2, 3]), [4, 2])).message).toBe(
      "Reshape: cannot reshape 6 elements into [4,2] (8 elements) (inputs: 'x': float32[2,3])",
    )
  })

  it('dtype mismatch names both dtypes and the fix', () => {
    const g = new Graph('bad')
    const e = thrown(() => ops.mul(g.input('a', 'float32', [3]), g.input('b', 'float64', [3])))
    expect(e).toBeInstanceOf(GraphError)
    expect(e.message).toBe("Mul: dtype mismatch: float32 vs float64; insert cast() to make them agree (inputs: 'a': float32[3], 'b': float64[3])")
  })

  it('a float op on integers', () => {
    const g = new Graph('bad')
    expect(thrown(() => ops.exp(g.input('i', 'int64', [3]))).message).toBe("Exp: expects floating-point inputs, got int64 (inputs: 'i': int64[3])")
  })

  it('duplicate input names', () => {
    const g = new Graph('bad')
    g.input('x', 'float32', [1])
    expect(thrown(() => g.param('x', [1], { init: { kind: 'zeros' } })).message).toBe(
      "graph 'bad': the name 'x' is already used; names of inputs and parameters must be unique",
    )
  })

  it('gradient of a non-scalar', () => {
    const g = new Graph('bad')
    const w = g.param('w', [3], { init: { kind: 'zeros' } })
    const e = thrown(() => grad(ops.exp(w), [w]))
    expect(e).toBeInstanceOf(GraphError)
    expect(e.message).toBe("grad: the loss must be a scalar (one element), got 'Exp:out': float32[3]; reduce it (e.g. reduceMean) first")
  })

  it('gradient through an op with no rule', () => {
    const g = new Graph('bad')
    const w = g.param('w', [3, 2], { init: { kind: 'zeros' } })
    const [y] = g.addNode('Relu', [w], [{ dtype: 'float32', shape: [3, 2] }])
    const e = thrown(() => grad(ops.reduceSum(y, [0, 1]), [w]))
    expect(e).toBeInstanceOf(GraphError)
    expect(e.message).toBe("grad: no gradient rule for op 'Relu' (node 'Relu'), which lies between the loss and the parameters")
  })

  it('gradient through Gather on an axis other than 0', () => {
    const g = new Graph('bad')
    const w = g.param('w', [3, 4], { init: { kind: 'zeros' } })
    const y = ops.gather(w, g.input('i', 'int64', [2]), 1)
    expect(thrown(() => grad(ops.reduceSum(y, [0, 1]), [w])).message).toBe(
      'grad of Gather: only axis 0 (embedding lookup) is differentiable; use GatherElements for other axes',
    )
  })
})

describe('errors when loading or running (RuntimeError)', () => {
  it('an op ONNX Runtime does not know names the op, the node and the opset', async () => {
    const g = new Graph('bad')
    const x = g.input('x', 'float32', [3])
    const [y] = g.addNode('NoSuchOp', [x], [{ dtype: 'float32', shape: [3] }])
    g.output('y', y)
    const e = await rejected(testSession(g))
    expect(e).toBeInstanceOf(RuntimeError)
    expect(e.message).toMatch(/^ONNX Runtime rejected the model: op 'NoSuchOp' \(node 'NoSuchOp'\) is not an ONNX opset 21 op it knows/)
  })

  it('an op without a kernel for the dtype (Erf in float64) says which node and dtype', async () => {
    const g = new Graph('bad')
    g.output('y', ops.erf(g.input('x', 'float64', [3])))
    const e = await rejected(testSession(g))
    expect(e).toBeInstanceOf(RuntimeError)
    expect(e.message).toMatch(
      /^ONNX Runtime has no kernel for op 'Erf' \(node 'Erf'\) with these input dtypes \(float64\) on '(cpu|wasm)'; cast its inputs to a supported dtype/,
    )
  })

  describe('feeds', () => {
    const session = async () => {
      const g = new Graph('feeds')
      const x = g.input('x', 'float32', ['batch', 3])
      const ids = g.input('ids', 'int64', ['batch'])
      g.output('y', ops.add(ops.reduceSum(x, [1]), ops.cast(ids, 'float32')))
      return testSession(g)
    }
    const x = hostTensor('float32', [2, 3], [1, 2, 3, 4, 5, 6])
    const ids = hostTensor('int64', [2], [1, 2])

    it('runs with good feeds', async () => {
      const out = await (await session()).run({ x, ids })
      expect(Array.from(out.y.data as Float32Array)).toEqual([7, 17])
    })
    it('missing feed', async () => {
      const e = await rejected((await session()).run({ x }))
      expect(e).toBeInstanceOf(RuntimeError)
      expect(e.message).toBe('missing feed: ids; the graph needs 2 inputs')
    })
    it('unknown feed', async () => {
      expect((await rejected((await session()).run({ x, ids, idz: ids }))).message).toBe("unknown feed: idz; the graph's inputs are x, ids")
    })
    it('wrong feed shape (static dim)', async () => {
      const e = await rejected((await session()).run({ x: hostTensor('float32', [2, 4], new Float32Array(8)), ids }))
      expect(e).toBeInstanceOf(RuntimeError)
      expect(e.message).toBe("feed 'x' has shape [2,4], the graph expects [batch,3] (dimension 1 must be 3)")
    })
    it('wrong feed rank', async () => {
      expect((await rejected((await session()).run({ x: hostTensor('float32', [6], new Float32Array(6)), ids }))).message).toBe(
        "feed 'x' has shape [6], the graph expects [batch,3]",
      )
    })
    it('symbolic dims that disagree across feeds', async () => {
      expect((await rejected((await session()).run({ x, ids: hostTensor('int64', [3], [1, 2, 3]) }))).message).toBe(
        "feed 'ids' gives 'batch' = 3, but feed 'x' gave 2; symbolic dims must agree across feeds",
      )
    })
    it('wrong feed dtype', async () => {
      const e = await rejected((await session()).run({ x: hostTensor('float64', [2, 3], new Float64Array(6)), ids }))
      expect(e).toBeInstanceOf(RuntimeError)
      expect(e.message).toBe("feed 'x' has dtype float64, the graph expects float32")
    })
    it('data that does not fill the shape', () => {
      expect(thrown(() => hostTensor('float32', [2, 3], new Float32Array(5))).message).toBe('hostTensor: 5 values do not fill shape [2,3] (6 elements)')
    })
  })
})
