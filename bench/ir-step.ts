/**
 * What bench/torch.bench.ts and bench/kernel-overhead.bench.ts share: the python with torch for the
 * reference side, the reference as a long-lived process answering one round per request, and the
 * bench's IR training step (random token batches, InfoNCE over CLS embeddings, AdamW), which
 * bench/torch_reference.py mirrors on the PyTorch side. Not a bench itself (no `.bench.` in its name).
 */
import {spawn, spawnSync, type ChildProcessWithoutNullStreams} from 'node:child_process'
import {createInterface} from 'node:readline'
import * as tf from '@tensorflow/tfjs-core'
import type {Encoder, TokenBatch} from '../src/model/encoder.js'
import type * as Ops from '../src/tensor/ops.js'
import type {variableGrads as VariableGrads} from '../src/tensor/backprop.js'

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/** A python that imports torch (CODIEMB_PYTHON, else /usr/bin/python3, else python3); `CODIEMB_PYTHON=none`: none. */
export function python(): string | undefined {
  if (process.env.CODIEMB_PYTHON === 'none') return undefined
  const candidates = [process.env.CODIEMB_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[]
  for (const py of candidates) {
    if (spawnSync(py, ['-c', 'import torch'], {encoding: 'utf8'}).status === 0) return py
  }
  return undefined
}

/**
 * The PyTorch reference as a long-lived process (torch_reference.py --interleave 1) that runs one
 * round per request, so a bench alternates codiemb's rounds with PyTorch's: a change of load on a
 * shared machine then hits both sides alike (both models are in memory at once).
 */
export class InterleavedReference {
  private readonly child: ChildProcessWithoutNullStreams
  private readonly replies: string[] = []
  private waiting: ((line: string | undefined) => void) | undefined
  private stderr = ''
  private closed = false

  constructor(py: string, argv: string[]) {
    this.child = spawn(py, argv, {stdio: ['pipe', 'pipe', 'pipe']})
    createInterface({input: this.child.stdout}).on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting
        this.waiting = undefined
        w(line)
      } else this.replies.push(line)
    })
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.child.on('close', () => {
      this.closed = true
      this.waiting?.(undefined)
    })
  }

  /** The next reply line as JSON (the first one is the reference's "ready"). */
  async next(): Promise<Record<string, any>> {
    const line = this.replies.shift() ?? (this.closed ? undefined : await new Promise<string | undefined>((resolve) => (this.waiting = resolve)))
    if (line === undefined) throw new Error(`PyTorch reference exited: ${this.stderr.trim().split('\n').pop()}`)
    return JSON.parse(line)
  }

  async request(command: string): Promise<Record<string, any>> {
    this.child.stdin.write(`${command}\n`)
    return this.next()
  }

  close(): void {
    this.child.stdin.end()
  }
}

/** `rows` texts of `len` random token ids (an LCG from `seed`, as torch_reference.py draws them), no padding. */
export function batchOf(rows: number, len: number, vocab: number, seed: number): TokenBatch {
  const inputIds = new Int32Array(rows * len)
  let s = seed
  for (let i = 0; i < inputIds.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    inputIds[i] = 1000 + (s % (vocab - 1000))
  }
  return {
    batchSize: rows, seqLen: len, inputIds,
    attentionMask: new Int32Array(rows * len).fill(1), tokenTypeIds: new Int32Array(rows * len),
    offsets: new Int32Array(rows * len * 2), specialTokensMask: new Uint8Array(rows * len),
    lengths: new Array(rows).fill(len), poolMask: new Float32Array(rows * len).fill(1), prefixLengths: new Array(rows).fill(0),
  } as unknown as TokenBatch
}

/** Each text's first-token (CLS) hidden state, L2-normalised: the bench's embedding on both sides. */
export function clsEmbeddings(h: tf.Tensor3D): tf.Tensor2D {
  const c = tf.reshape(tf.slice(h, [0, 0, 0], [h.shape[0], 1, h.shape[2]]), [h.shape[0], h.shape[2]])
  return tf.div(c, tf.norm(c, 'euclidean', -1, true))
}

export interface IrStepShape {
  queries: number
  perQuery: number
  queryLen: number
  passageLen: number
  checkpoint?: boolean
}

/** One timed step: forward + backward, then AdamW (seconds each; on a GPU, launch time unless the caller syncs). */
export interface IrStepTimes {
  fwdBwdS: number
  optimizerS: number
}

/**
 * The bench's IR training step on `enc`: `queries` queries and `perQuery` passages each (the first
 * its positive), InfoNCE at temperature 0.05 over normalised CLS embeddings, AdamW (lr 2e-5, as the
 * reference). `step()` runs one; `dispose()` frees the labels and moments.
 */
export function irTrainStep(enc: Encoder, ops: typeof Ops, variableGrads: typeof VariableGrads, shape: IrStepShape): {step(): IrStepTimes; dispose(): void} {
  const vocab = enc.config.vocab_size as number
  const np = shape.queries * shape.perQuery
  const qb = batchOf(shape.queries, shape.queryLen, vocab, 1)
  const pb = batchOf(np, shape.passageLen, vocab, 2)
  const labels = tf.oneHot(tf.tensor1d(Array.from({length: shape.queries}, (_, i) => i * shape.perQuery), 'int32'), np)
  const vars = [...enc.variables.values()] as tf.Variable[]
  // As the trainer's AdamW (src/train/optimizer.ts): in a tidy, so the zeros the moments start from
  // are not held a second time by the tensor they were made from (that kept 2 x the parameters'
  // bytes alive, 0.7 GB at bert-base size, and blocked the in-place update).
  const m = vars.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false)))
  const v2 = vars.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false)))
  const cls = clsEmbeddings
  let t = 0
  return {
    step: () => {
      t++
      const t0 = performance.now()
      const {value, grads} = variableGrads(() => {
        const q = cls(enc.forward(qb, {training: true, checkpointLayers: shape.checkpoint}).lastHiddenState)
        const p = cls(enc.forward(pb, {training: true, checkpointLayers: shape.checkpoint}).lastHiddenState)
        const logp = tf.logSoftmax(tf.div(tf.matMul(q, p, false, true), 0.05))
        return tf.neg(tf.mean(tf.sum(tf.mul(labels, logp), -1))) as tf.Scalar
      }, vars)
      const t1 = performance.now()
      ops.adamwUpdate(vars, vars.map((x) => grads[x.name]), m, v2, {learningRate: 2e-5, beta1: 0.9, beta2: 0.999, epsilon: 1e-6, weightDecay: 0.01, step: t})
      const t2 = performance.now()
      tf.dispose([value, ...Object.values(grads)])
      return {fwdBwdS: (t1 - t0) / 1000, optimizerS: (t2 - t1) / 1000}
    },
    dispose: () => tf.dispose([labels, ...m, ...v2]),
  }
}
