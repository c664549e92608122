/**
 * Gradients for tfjs kernels.
 *
 * `@tensorflow/tfjs-core` 4.x registers no kernel gradients when imported on its own (the gradient
 * configs ship only inside the `@tensorflow/tfjs` union bundle), so tf.grad / tf.variableGrads fail
 * with "gradient function not found for Add" in a tfjs-core + backend setup like codiemb's. This
 * module registers gradients, written against the public tfjs-core API, for the kernels that the
 * encoders, losses and trainer use. A kernel that already has a gradient (e.g. when
 * @tensorflow/tfjs-node loaded the union bundle) is left alone.
 *
 * Each gradient is the textbook derivative; broadcasting binary ops sum the incoming gradient over
 * the broadcast axes (`reduceTo`). Comparison, rounding and index ops get zero gradients so that a
 * path through them (e.g. a max mask) does not break backprop.
 */
import * as tf from '@tensorflow/tfjs-core'
import {eagerGrads} from './kernel-calls.js'

type Grads = Record<string, () => tf.Tensor>
type GradFunc = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: Record<string, unknown>) => Grads

interface Config {
  kernelName: string
  inputsToSave?: string[]
  saveAllInputs?: boolean
  outputsToSave?: boolean[]
  gradFunc: GradFunc
}

/** Sums `dy` over the axes along which `shape` was broadcast, giving a tensor of `shape`. */
export function reduceTo(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, dy.shape)
  const summed = axes.length > 0 ? tf.sum(dy, axes) : dy
  return tf.reshape(summed, shape)
}

const f32 = (t: tf.Tensor) => (t.dtype === 'float32' ? t : tf.cast(t, 'float32'))
const one = (dy: tf.Tensor | tf.Tensor[]) => dy as tf.Tensor

function unary(kernelName: string, derivative: (x: tf.Tensor, y: tf.Tensor | undefined) => tf.Tensor, useOutput = false): Config {
  return {
    kernelName,
    inputsToSave: ['x'],
    outputsToSave: useOutput ? [true] : undefined,
    gradFunc: (dy, saved) => ({x: () => tf.mul(one(dy), derivative(saved[0]!, saved[1]))}),
  }
}

/** tfjs requires every gradient to be float32, also for bool/int inputs (indices, conditions). */
const zerosFloat = (t: tf.Tensor) => tf.zeros(t.shape, 'float32')

function zeroGrad(kernelName: string, inputs: string[]): Config {
  return {
    kernelName,
    inputsToSave: inputs,
    gradFunc: (_dy, saved) => Object.fromEntries(inputs.map((name, i) => [name, () => zerosFloat(saved[i]!)])),
  }
}

/** x's shape with the reduced axes set to 1 (the keepDims shape, whether or not keepDims was used). */
function keepDimsShape(xShape: number[], axes: number[]): number[] {
  return xShape.map((n, i) => (axes.includes(i) ? 1 : n))
}

/** Expands a reduced gradient back over the reduced axes of x (keepDims shape, then broadcast). */
function unreduce(dy: tf.Tensor, xShape: number[], axis: number | number[]): {dyKeep: tf.Tensor; axes: number[]} {
  const axes = tf.util.parseAxisParam(axis, xShape)
  return {dyKeep: tf.reshape(dy, keepDimsShape(xShape, axes)), axes}
}

function minMax(kernelName: 'Max' | 'Min', axisAttr: string): Config {
  return {
    kernelName,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, y] = saved as [tf.Tensor, tf.Tensor]
      const {dyKeep, axes} = unreduce(one(dy), x.shape, attrs[axisAttr] as number | number[])
      const yKeep = tf.reshape(y, keepDimsShape(x.shape, axes))
      return {x: () => tf.mul(dyKeep, f32(tf.equal(x, yKeep)))}
    },
  }
}

function matMulGrads(a: tf.Tensor, b: tf.Tensor, dy: tf.Tensor, tA: boolean, tB: boolean): {da: tf.Tensor; db: tf.Tensor} {
  let da: tf.Tensor
  let db: tf.Tensor
  if (!tA && !tB) {
    da = tf.matMul(dy, b, false, true)
    db = tf.matMul(a, dy, true, false)
  } else if (!tA && tB) {
    da = tf.matMul(dy, b, false, false)
    db = tf.matMul(dy, a, true, false)
  } else if (tA && !tB) {
    da = tf.matMul(b, dy, false, true)
    db = tf.matMul(a, dy, false, false)
  } else {
    da = tf.matMul(b, dy, true, true)
    db = tf.matMul(dy, a, true, true)
  }
  return {da: reduceTo(da, a.shape), db: reduceTo(db, b.shape)}
}

const CONFIGS: Config[] = [
  // Binary arithmetic with broadcasting.
  {kernelName: 'Add', inputsToSave: ['a', 'b'], gradFunc: (dy, [a, b]) => ({a: () => reduceTo(one(dy), a!.shape), b: () => reduceTo(one(dy), b!.shape)})},
  {kernelName: 'Sub', inputsToSave: ['a', 'b'], gradFunc: (dy, [a, b]) => ({a: () => reduceTo(one(dy), a!.shape), b: () => tf.neg(reduceTo(one(dy), b!.shape))})},
  {
    kernelName: 'Multiply',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({a: () => reduceTo(tf.mul(one(dy), f32(b!)), a!.shape), b: () => reduceTo(tf.mul(one(dy), f32(a!)), b!.shape)}),
  },
  {
    kernelName: 'RealDiv',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({
      a: () => reduceTo(tf.div(one(dy), f32(b!)), a!.shape),
      b: () => reduceTo(tf.neg(tf.div(tf.mul(one(dy), f32(a!)), tf.square(f32(b!)))), b!.shape),
    }),
  },
  {
    kernelName: 'Maximum',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({
      a: () => reduceTo(tf.mul(one(dy), f32(tf.greaterEqual(a!, b!))), a!.shape),
      b: () => reduceTo(tf.mul(one(dy), f32(tf.less(a!, b!))), b!.shape),
    }),
  },
  {
    kernelName: 'Minimum',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({
      a: () => reduceTo(tf.mul(one(dy), f32(tf.lessEqual(a!, b!))), a!.shape),
      b: () => reduceTo(tf.mul(one(dy), f32(tf.greater(a!, b!))), b!.shape),
    }),
  },
  {
    kernelName: 'SquaredDifference',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => {
      const twoDiff = () => tf.mul(one(dy), tf.mul(2, tf.sub(a!, b!)))
      return {a: () => reduceTo(twoDiff(), a!.shape), b: () => reduceTo(tf.neg(twoDiff()), b!.shape)}
    },
  },
  {
    kernelName: 'Pow',
    inputsToSave: ['a', 'b'],
    outputsToSave: [true],
    gradFunc: (dy, [a, b, y]) => ({
      a: () => reduceTo(tf.mul(one(dy), tf.mul(f32(b!), tf.pow(a!, tf.sub(f32(b!), 1)))), a!.shape),
      b: () => {
        const positive = tf.greater(a!, 0)
        const logA = tf.where(positive, tf.log(tf.where(positive, a!, tf.onesLike(a!))), tf.zerosLike(a!))
        return reduceTo(tf.mul(one(dy), tf.mul(y!, logA)), b!.shape)
      },
    }),
  },
  {
    kernelName: 'AddN',
    saveAllInputs: true,
    gradFunc: (dy, saved) => Object.fromEntries(saved.map((_, i) => [String(i), () => tf.clone(one(dy))])),
  },

  // Unary.
  unary('Neg', (x) => tf.fill(x.shape, -1)),
  unary('Square', (x) => tf.mul(2, x)),
  unary('Sqrt', (_x, y) => tf.div(0.5, y!), true),
  unary('Rsqrt', (_x, y) => tf.mul(-0.5, tf.pow(y!, 3)), true),
  unary('Exp', (_x, y) => y!, true),
  unary('Expm1', (x) => tf.exp(x)),
  unary('Log', (x) => tf.reciprocal(x)),
  unary('Log1p', (x) => tf.reciprocal(tf.add(1, x))),
  unary('Reciprocal', (x) => tf.neg(tf.reciprocal(tf.square(x)))),
  unary('Erf', (x) => tf.mul(2 / Math.sqrt(Math.PI), tf.exp(tf.neg(tf.square(x))))),
  unary('Tanh', (_x, y) => tf.sub(1, tf.square(y!)), true),
  unary('Sigmoid', (_x, y) => tf.mul(y!, tf.sub(1, y!)), true),
  unary('Softplus', (x) => tf.sigmoid(x)),
  unary('Relu', (x) => f32(tf.greater(x, 0))),
  unary('Abs', (x) => f32(tf.sign(x))),
  unary('Sin', (x) => tf.cos(x)),
  unary('Cos', (x) => tf.neg(tf.sin(x))),
  unary('Atan', (x) => tf.reciprocal(tf.add(1, tf.square(x)))),
  {kernelName: 'Identity', gradFunc: (dy) => ({x: () => tf.clone(one(dy))})},
  {
    kernelName: 'Cast',
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({x: () => (x!.dtype === 'float32' ? tf.clone(one(dy)) : zerosFloat(x!))}),
  },
  {
    kernelName: 'ClipByValue',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () =>
        tf.mul(one(dy), f32(tf.logicalAnd(tf.greaterEqual(x!, attrs.clipValueMin as number), tf.lessEqual(x!, attrs.clipValueMax as number)))),
    }),
  },
  {
    kernelName: 'LeakyRelu',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({x: () => tf.mul(one(dy), tf.where(tf.greater(x!, 0), tf.onesLike(x!), tf.fill(x!.shape, attrs.alpha as number)))}),
  },
  {
    kernelName: 'Elu',
    outputsToSave: [true],
    gradFunc: (dy, [y]) => ({x: () => tf.mul(one(dy), tf.where(tf.greater(y!, 0), tf.onesLike(y!), tf.add(y!, 1)))}),
  },

  // Reductions.
  {
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => tf.mul(unreduce(one(dy), x!.shape, attrs.axis as number | number[]).dyKeep, tf.ones(x!.shape)),
    }),
  },
  {
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const {dyKeep, axes} = unreduce(one(dy), x!.shape, attrs.axis as number | number[])
        const count = axes.reduce((n, a) => n * x!.shape[a]!, 1)
        return tf.div(tf.mul(dyKeep, tf.ones(x!.shape)), count)
      },
    }),
  },
  minMax('Max', 'reductionIndices'),
  minMax('Min', 'axis'),
  {
    kernelName: 'Prod',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, [x, y], attrs) => ({
      // d prod / d x_i = prod / x_i (inputs are assumed non-zero).
      x: () => {
        const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x!.shape)
        const keep = keepDimsShape(x!.shape, axes)
        return tf.div(tf.mul(tf.reshape(one(dy), keep), tf.reshape(y!, keep)), x!)
      },
    }),
  },
  {
    kernelName: 'Cumsum',
    gradFunc: (dy, _saved, attrs) => ({
      x: () => tf.cumsum(one(dy), attrs.axis as number, attrs.exclusive as boolean, !(attrs.reverse as boolean)),
    }),
  },

  // Shape and indexing.
  {kernelName: 'Reshape', inputsToSave: ['x'], gradFunc: (dy, [x]) => ({x: () => tf.reshape(one(dy), x!.shape)})},
  {kernelName: 'ExpandDims', inputsToSave: ['input'], gradFunc: (dy, [x]) => ({input: () => tf.reshape(one(dy), x!.shape)})},
  {
    kernelName: 'Transpose',
    gradFunc: (dy, _saved, attrs) => {
      const perm = attrs.perm as number[]
      const inverse = new Array<number>(perm.length)
      perm.forEach((p, i) => (inverse[p] = i))
      return {x: () => tf.transpose(one(dy), inverse)}
    },
  },
  {
    kernelName: 'Slice',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const [begin, size] = tf.slice_util.parseSliceParams(x!, attrs.begin as number[], attrs.size as number[])
        return tf.pad(one(dy), x!.shape.map((n, i) => [begin[i]!, n - begin[i]! - size[i]!] as [number, number]))
      },
    }),
  },
  {
    kernelName: 'PadV2',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => tf.slice(one(dy), (attrs.paddings as [number, number][]).map((p) => p[0]), x!.shape),
    }),
  },
  {
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0]!.shape)[0]!
      const sizes = saved.map((t) => t.shape[axis]!)
      // One split for all inputs (a split per input's gradient computed every piece each time).
      const parts = eagerGrads(() => tf.split(one(dy), sizes, axis))
      return Object.fromEntries(saved.map((_, i) => [String(i), parts(i)]))
    },
  },
  {
    kernelName: 'Pack',
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => Object.fromEntries(saved.map((_, i) => [String(i), () => tf.unstack(one(dy), attrs.axis as number)[i]!])),
  },
  {kernelName: 'Unpack', gradFunc: (dy, _saved, attrs) => ({value: () => tf.stack(dy as tf.Tensor[], attrs.axis as number)})},
  {
    kernelName: 'SplitV',
    gradFunc: (dy, _saved, attrs) => ({x: () => tf.concat(dy as tf.Tensor[], attrs.axis as number)}),
  },
  {
    kernelName: 'Tile',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      // The tiled axis i of length r_i * s_i reshapes to [r_i, s_i]; summing the r_i axes undoes the tiling.
      x: () => {
        const reps = attrs.reps as number[]
        const split = x!.shape.flatMap((s, i) => [reps[i]!, s])
        return tf.reshape(tf.sum(tf.reshape(one(dy), split), reps.map((_, i) => 2 * i)), x!.shape)
      },
    }),
  },
  {
    kernelName: 'GatherV2',
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, [x, indices], attrs) => {
      if ((attrs.batchDims as number) !== 0) throw new Error('gradient of gather with batchDims > 0 is not implemented')
      return {
        x: () => {
          const axis = tf.util.parseAxisParam(attrs.axis as number, x!.shape)[0]!
          if (axis === 0) {
            // Embedding lookups. unsortedSegmentSum costs one masked sum per vocabulary row on the
            // pure-JS backend (minutes per step for a 21k vocabulary); a scatter-add (scatterND sums
            // duplicate indices) gives the same dense gradient in O(tokens × hidden + vocab × hidden).
            const rowShape = x!.shape.slice(1)
            const flatIndices = tf.reshape(tf.cast(indices!, 'int32'), [indices!.size, 1])
            return tf.scatterND(flatIndices, tf.reshape(one(dy), [indices!.size, ...rowShape]), x!.shape)
          }
          const outer = x!.shape.slice(0, axis)
          const inner = x!.shape.slice(axis + 1)
          const values = tf.reshape(one(dy), [...outer, indices!.size, ...inner])
          const toFront = [outer.length, ...outer.map((_, i) => i), ...inner.map((_, i) => outer.length + 1 + i)]
          const summed = tf.unsortedSegmentSum(tf.transpose(values, toFront), tf.reshape(indices!, [-1]) as tf.Tensor1D, x!.shape[axis]!)
          const back = new Array<number>(toFront.length)
          toFront.forEach((p, i) => (back[p] = i))
          return tf.transpose(summed, back)
        },
        indices: () => zerosFloat(indices!),
      }
    },
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => {
      const grads = () => matMulGrads(a!, b!, one(dy), attrs.transposeA as boolean, attrs.transposeB as boolean)
      return {a: () => grads().da, b: () => grads().db}
    },
  },
  {
    kernelName: 'Softmax',
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => ({
      logits: () => {
        const dim = attrs.dim as number
        const dyTimesY = tf.mul(one(dy), y!)
        return tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, dim, true), y!))
      },
    }),
  },
  {
    kernelName: 'Select',
    inputsToSave: ['condition'],
    gradFunc: (dy, [condition]) => ({
      condition: () => zerosFloat(condition!),
      t: () => tf.mul(one(dy), f32(condition!)),
      e: () => tf.mul(one(dy), f32(tf.logicalNot(condition!))),
    }),
  },
  {
    kernelName: 'UnsortedSegmentSum',
    inputsToSave: ['segmentIds'],
    gradFunc: (dy, [segmentIds]) => ({
      x: () => {
        // Each input row receives the gradient of the segment it was summed into (ids < 0 get 0).
        const valid = tf.greaterEqual(segmentIds!, 0)
        const gathered = tf.gather(one(dy), tf.maximum(segmentIds!, 0))
        const mask = tf.reshape(f32(valid), [...valid.shape, ...new Array(gathered.rank - valid.rank).fill(1)])
        return tf.mul(gathered, mask)
      },
      segmentIds: () => zerosFloat(segmentIds!),
    }),
  },

  // No gradient (piecewise constant or integer results).
  ...['Equal', 'NotEqual', 'Greater', 'GreaterEqual', 'Less', 'LessEqual', 'LogicalAnd', 'LogicalOr', 'FloorDiv'].map((k) => zeroGrad(k, ['a', 'b'])),
  ...['LogicalNot', 'Floor', 'Ceil', 'Round', 'Sign', 'ArgMax', 'ArgMin', 'OnesLike', 'ZerosLike', 'IsNan', 'Step'].map((k) => zeroGrad(k, ['x'])),
  zeroGrad('OneHot', ['indices']),
]

let registered = false

/** Registers the gradients above for every kernel that has none yet; idempotent. */
export function registerGradients(): void {
  if (registered) return
  registered = true
  for (const config of CONFIGS) {
    if (tf.getGradient(config.kernelName)) continue
    tf.registerGradient(config as unknown as tf.GradConfig)
  }
}

/** Kernel names this module provides gradients for (for tests and `codiemb doctor`). */
export const GRADIENT_KERNELS: readonly string[] = CONFIGS.map((c) => c.kernelName)

registerGradients()
