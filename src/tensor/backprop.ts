/**
 * `variableGrads` with the memory profile of PyTorch's autograd: a drop-in for tf.variableGrads that
 * frees each tape node's saved activations and its outputs' gradients as soon as backprop has passed
 * that node.
 *
 * Why: tfjs-core's engine.gradients keeps every saved activation AND the gradient of every
 * intermediate tensor alive until the whole backward pass ends (it disposes them all at once), so its
 * peak is roughly activations + gradients of all activations — about twice PyTorch's, which releases
 * both as it goes. On a GPU that is the difference between a batch fitting and an out-of-memory error
 * (a bert-base IR step of 64 queries + 320 passages ran out of 139 GiB with tfjs's order).
 *
 * It follows tfjs's own semantics (the same tape, the same pruning of nodes that do not connect the
 * variables to the loss, the same gradient functions, dtype and shape checks), reaching into the
 * engine's tape API (startTape/endTape/scopedRun/state.activeTape: internal, pinned with
 * @tensorflow/tfjs-core 4.x). Inside another gradient computation (higher-order gradients) it defers
 * to tf.variableGrads, which must keep the tape.
 */
import * as tf from '@tensorflow/tfjs-core'

interface TapeNode {
  id: number
  kernelName: string
  inputs: Record<string, tf.Tensor>
  outputs: tf.Tensor[]
  saved?: tf.Tensor[]
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>
}

interface EngineTape {
  state: {activeTape: TapeNode[] | null; gradientDepth: number}
  startTape(): void
  endTape(): void
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): {value: tf.Tensor; grads: (tf.Tensor | undefined)[]}
}

/** The tape nodes on some path from `xs` to `y`, in tape order, with inputs pruned to those that depend on xs. */
function nodesBetween(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id))
  const nodeFromX = new Set<number>()
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id)
      for (const o of node.outputs) fromX.add(o.id)
    }
  }
  const toY = new Set<number>([y.id])
  const nodeToY = new Set<number>()
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id)
      for (const t of Object.values(node.inputs)) toY.add(t.id)
    }
  }
  return tape
    .filter((n) => nodeFromX.has(n.id) && nodeToY.has(n.id))
    .map((n) => ({...n, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id)))}))
}

/**
 * Accumulated gradients by tensor id. A gradient function may pass a tensor through unchanged (the
 * same object as its dy, or as two inputs' gradients), so tensors are reference-counted by how many
 * ids hold them and disposed when the last one lets go.
 */
class GradientStore {
  private readonly byId = new Map<number, tf.Tensor>()
  private readonly holders = new Map<tf.Tensor, number>()

  get(id: number): tf.Tensor | undefined {
    return this.byId.get(id)
  }

  set(id: number, t: tf.Tensor): void {
    const old = this.byId.get(id)
    this.byId.set(id, t)
    this.holders.set(t, (this.holders.get(t) ?? 0) + 1)
    if (old) this.letGo(old)
  }

  /** Forgets id's gradient, disposing it unless another id still holds the same tensor. */
  drop(id: number): void {
    const t = this.byId.get(id)
    if (!t) return
    this.byId.delete(id)
    this.letGo(t)
  }

  /** Disposes a tensor no id holds (a part already summed into an accumulated gradient). */
  disposeIfUnheld(t: tf.Tensor): void {
    if (!this.holders.has(t)) t.dispose()
  }

  private letGo(t: tf.Tensor): void {
    const n = (this.holders.get(t) ?? 1) - 1
    if (n > 0) this.holders.set(t, n)
    else {
      this.holders.delete(t)
      t.dispose()
    }
  }
}

/**
 * What a gradient keeps (a kernel's saved inputs and outputs, a custom gradient's save()) is kept
 * as a second reference to the same data, as tfjs's Identity kernel makes it, but without running that
 * kernel and recording it on the tape. tfjs's engine.clone runs Identity and records a tape node for
 * each saved tensor, so that a gradient of the gradient can flow through it: a quarter of a training
 * step's kernels (464 of 1,818 in a 6-layer BERT step), the host time that bounds a small model's
 * step on a GPU. Only a gradient of a gradient needs those nodes, so inside one (gradient depth above 1)
 * saving goes through tfjs's clone.
 */
function installDirectSaves(): void {
  const engine = tf.engine() as unknown as EngineTape & {
    clone(x: tf.Tensor): tf.Tensor
    state: {tensorInfo: Map<unknown, {backend: tf.KernelBackend}>}
    makeTensorFromTensorInfo(info: tf.TensorInfo, backend: tf.KernelBackend): tf.Tensor
    __codiembDirectSaves?: boolean
  }
  if (engine.__codiembDirectSaves) return
  engine.__codiembDirectSaves = true
  const clone = engine.clone.bind(engine)
  engine.clone = (x: tf.Tensor): tf.Tensor => {
    const info = engine.state.tensorInfo.get(x.dataId)
    if (engine.state.gradientDepth > 1 || !info) return clone(x)
    info.backend.incRef(x.dataId)
    return engine.makeTensorFromTensorInfo({dataId: x.dataId, shape: x.shape, dtype: x.dtype}, info.backend)
  }
}
installDirectSaves()

/** Whether a gradient computation (tf.grad, variableGrads, gradientsOf) is recording ops now. */
export function recordingGradients(): boolean {
  return (tf.engine() as unknown as EngineTape).state.gradientDepth > 0
}

/**
 * y = f() and the gradients of Σ dy ⊙ y with respect to `xs` (a vector–Jacobian product; dy defaults
 * to ones, so for a scalar y these are ∂y/∂xs), `null` for an x that y does not depend on. The same
 * tape walk as variableGrads, freeing each node's saved tensors and gradients as soon as it is passed.
 * Callable while another backward pass is running (activation checkpointing recomputes a layer inside
 * its gradient function): the tape being walked there is put back afterwards. Inside a recording
 * gradient computation (higher-order gradients) it defers to tfjs's engine.gradients.
 */
export function gradientsOf(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor): {value: tf.Tensor; grads: (tf.Tensor | null)[]} {
  const engine = tf.engine() as unknown as EngineTape
  if (recordingGradients()) {
    const r = engine.gradients(f, xs, dy, true)
    return {value: r.value, grads: r.grads.map((g) => g ?? null)}
  }
  const outerTape = engine.state.activeTape
  try {
    const y = engine.scopedRun(() => engine.startTape(), () => engine.endTape(), () => engine.tidy('forward', f))
    if (!(y instanceof tf.Tensor)) throw new Error(`gradientsOf: f() must return a tensor, got ${typeof y}`)
    if (dy && !tf.util.arraysEqual(dy.shape, y.shape)) {
      y.dispose()
      throw new Error(`gradientsOf: dy has shape [${dy.shape}], f() [${y.shape}]`)
    }
    return {value: y, grads: backpropagate(engine, engine.state.activeTape ?? [], xs, y, dy)}
  } finally {
    // This call's tape (startTape made a fresh one): free what it saved, then put the outer one back.
    const tape = engine.state.activeTape
    if (tape && tape !== outerTape) for (const node of tape) for (const t of node.saved ?? []) t.dispose()
    engine.state.activeTape = outerTape
  }
}

/** Walks the tape backwards from y (gradient dy, else ones) and returns the gradients of xs. */
function backpropagate(engine: EngineTape, tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor, dy: tf.Tensor | undefined): (tf.Tensor | null)[] {
  const nodes = nodesBetween(tape, xs, y)
  const byId = new Map(tape.map((n) => [n.id, n]))
  // Nodes off every path from xs to y (e.g. drawing a dropout mask) are never visited: free what they
  // saved now rather than after the walk.
  const visited = new Set(nodes.map((n) => n.id))
  for (const node of tape) {
    if (visited.has(node.id)) continue
    for (const t of node.saved ?? []) t.dispose()
    node.saved = []
  }
  return engine.tidy('backward', () => {
    const store = new GradientStore()
    store.set(y.id, dy ? tf.clone(dy) : tf.onesLike(y))
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!
      if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`)
      const inputGrads = node.gradient(node.outputs.map((o) => store.get(o.id) ?? null))
      for (const [name, x] of Object.entries(node.inputs)) {
        if (!(name in inputGrads)) {
          throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}. Available gradients found: ${Object.keys(inputGrads)}.`)
        }
        const dx = engine.tidy(() => inputGrads[name]!())
        if (dx.dtype !== 'float32') throw new Error(`Error in gradient for op ${node.kernelName}: the gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`)
        if (!tf.util.arraysEqual(dx.shape, x.shape)) {
          throw new Error(`Error in gradient for op ${node.kernelName}: the gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`)
        }
        const current = store.get(x.id)
        if (!current) store.set(x.id, dx)
        else {
          store.set(x.id, tf.add(current, dx))
          store.disposeIfUnheld(dx)
        }
      }
      // Backprop has passed this node: its outputs' gradients and its saved activations are done.
      for (const o of node.outputs) store.drop(o.id)
      const original = byId.get(node.id)
      for (const t of original?.saved ?? []) t.dispose()
      if (original) original.saved = []
    }
    return xs.map((x) => store.get(x.id) ?? null) as unknown as tf.Tensor[]
  }) as unknown as (tf.Tensor | null)[]
}

/**
 * Value of `f` and its gradients with respect to the trainable variables in `varList` (all trainable
 * variables when omitted), keyed by variable name — the contract of tf.variableGrads.
 */
export function variableGrads(f: () => tf.Scalar, varList?: tf.Variable[]): {value: tf.Scalar; grads: tf.NamedTensorMap} {
  const engine = tf.engine() as unknown as EngineTape
  if (recordingGradients()) return tf.variableGrads(f, varList)
  const xs = (varList ?? Object.values(tf.engine().registeredVariables)).filter((v) => v.trainable)
  if (xs.length === 0) throw new Error('variableGrads: no trainable variables to differentiate with respect to')
  const checked = () => {
    const y = f()
    if (!(y instanceof tf.Tensor) || y.rank !== 0) throw new Error(`variableGrads: f() must return a scalar tensor, got ${y instanceof tf.Tensor ? `rank ${y.rank}` : typeof y}`)
    return y
  }
  const {value, grads} = gradientsOf(checked, xs)
  const named: tf.NamedTensorMap = {}
  xs.forEach((x, i) => {
    const g = grads[i]
    if (g) named[x.name] = g
  })
  if (Object.keys(named).length === 0) {
    throw new Error('variableGrads: the loss does not depend on any of the variables (no gradient reached them)')
  }
  return {value: value as tf.Scalar, grads: named}
}
