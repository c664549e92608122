/**
 * Chunked scaled-dot-product attention for the backends without codiemb's fused kernels (cpu,
 * tensorflow): softmax(q kᵀ·scale + maskBias) v, computed `blockRows` query rows at a time, whose
 * backward pass keeps no [.., Tq, Tk] tensor. The tape saves q, k, v, the mask, the output and, per
 * query row, lse = m + log Σ_j exp(s_j − m) (m the row max); the backward recomputes each block's
 * probabilities p = exp(s − lse) and forms
 *
 *   dv += p_dᵀ dy,   dp = (dy vᵀ) ∘ keep/(1−rate),   ds = p ∘ (dp − D),   D = rowsum(dy ∘ out),
 *   dq = ds k · scale,   dk += dsᵀ q · scale,   dmask = ds summed over the mask's broadcast axes,
 *
 * with p_d = p ∘ keep/(1−rate) the dropped probabilities (D = rowsum(p ∘ dp) because out = p_d v).
 * Saved memory is O(B·H·T·d) and the largest temporary is one block's [.., blockRows, Tk] scores,
 * instead of the [B, H, T, T] probabilities a plain composite keeps.
 *
 * Dropout is deterministic in the seed: block b draws its keep-mask from tf.randomUniform seeded
 * with a hash of (seed, b), so the backward pass redraws the forward's mask exactly.
 *
 * A mask that is the same for every query (shape [.., 1, Tk], e.g. a [B, 1, 1, T] padding mask) is
 * folded into the score product: q' = [q·scale | 1] and k' = [k | mask] give q' k'ᵀ = q kᵀ·scale +
 * mask in one matmul, and the mask's gradient is the last column of dk' = dsᵀ q' (on tfjs-cpu a
 * broadcasting add costs 5-15x a same-shape one; this needs neither the add nor a [.., Tq, Tk] mask).
 * Per-row statistics are likewise matmuls against ones vectors on cpu (see cpuFastPaths in ops.ts).
 */
import * as tf from '@tensorflow/tfjs-core'
import {reduceTo} from './gradients.js'

export interface ChunkedAttentionConfig {
  scale: number
  dropoutRate: number
  /** Integer seed of the dropout masks (ignored when dropoutRate is 0). */
  seed: number
  /** Query rows per block. */
  blockRows: number
  /** Row statistics as matmuls against ones vectors (tfjs-cpu) instead of broadcasting ops. */
  matmulRowStats: boolean
}

/** A 32-bit hash of (seed, block): the seed of block `block`'s dropout mask. */
export function blockSeed(seed: number, block: number): number {
  let x = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(block + 1, 0x85ebca6b)) >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0
  return (x ^ (x >>> 16)) >>> 0
}

/** 1/(1−rate) where block `block` keeps an element, 0 where it drops it; [rows, cols]. */
export function keepMask(rows: number, cols: number, rate: number, seed: number, block: number): tf.Tensor2D {
  return tf.tidy(() => {
    const u = tf.randomUniform([rows, cols], 0, 1, 'float32', blockSeed(seed, block))
    return tf.mul(tf.cast(tf.greaterEqual(u, rate), 'float32'), 1 / (1 - rate)) as tf.Tensor2D
  })
}

interface Layout {
  lead: number[]
  n: number
  tq: number
  tk: number
  d: number
  dv: number
  /** The mask is the same for every query row (shape [.., 1, Tk]) and rides in the score product. */
  keyMask: boolean
}

function layoutOf(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined): Layout {
  const lead = q.shape.slice(0, -2)
  const keyMask = mask !== undefined && (mask.rank < 2 || mask.shape[mask.rank - 2] === 1)
  return {lead, n: tf.util.sizeFromShape(lead), tq: q.shape[q.rank - 2]!, tk: k.shape[k.rank - 2]!, d: q.shape[q.rank - 1]!, dv: v.shape[v.rank - 1]!, keyMask}
}

/** The score product's operands: q' [N, Tq, d(+1)] and k' [N, Tk, d(+1)] (see the module docstring). */
function operands(q: tf.Tensor, k: tf.Tensor, mask: tf.Tensor | undefined, L: Layout, scale: number): [tf.Tensor3D, tf.Tensor3D] {
  const q3 = tf.reshape(scale === 1 ? q : tf.mul(q, scale), [L.n, L.tq, L.d]) as tf.Tensor3D
  const k3 = tf.reshape(k, [L.n, L.tk, L.d]) as tf.Tensor3D
  if (!L.keyMask) return [q3, k3]
  const column = tf.reshape(tf.broadcastTo(mask!, [...L.lead, 1, L.tk]), [L.n, L.tk, 1])
  return [tf.concat([q3, tf.ones([L.n, L.tq, 1])], 2) as tf.Tensor3D, tf.concat([k3, column], 2) as tf.Tensor3D]
}

/** Per-row helpers over [R, T] matrices. */
function rowOps(cfg: ChunkedAttentionConfig) {
  const spread = (col: tf.Tensor2D, t: number): tf.Tensor => (cfg.matmulRowStats ? tf.matMul(col, tf.ones([1, t]) as tf.Tensor2D) : col)
  return {
    sub: (x: tf.Tensor2D, col: tf.Tensor2D): tf.Tensor2D => tf.sub(x, spread(col, x.shape[1])) as tf.Tensor2D,
    mul: (x: tf.Tensor2D, col: tf.Tensor2D): tf.Tensor2D => tf.mul(x, spread(col, x.shape[1])) as tf.Tensor2D,
    sum: (x: tf.Tensor2D): tf.Tensor2D => (cfg.matmulRowStats ? tf.matMul(x, tf.ones([x.shape[1], 1]) as tf.Tensor2D) : tf.sum(x, 1, true)) as tf.Tensor2D,
  }
}

/** The scores of query rows [r0, r0 + rows) as [N·rows, Tk]. */
function blockScores(qp: tf.Tensor3D, kp: tf.Tensor3D, mask: tf.Tensor | undefined, L: Layout, r0: number, rows: number): tf.Tensor2D {
  let s: tf.Tensor = tf.matMul(tf.slice(qp, [0, r0, 0], [L.n, rows, -1]), kp, false, true)
  if (mask && !L.keyMask) {
    // A mask with a row per query (anything but [.., 1, Tk]): its rows for this block.
    const maskRows = tf.slice(mask, [...new Array(mask.rank - 2).fill(0), r0, 0], [...mask.shape.slice(0, -2), rows, L.tk])
    s = tf.add(tf.reshape(s, [...L.lead, rows, L.tk]), maskRows)
  }
  return tf.reshape(s, [L.n * rows, L.tk]) as tf.Tensor2D
}

function* blocks(L: Layout, blockRows: number): Generator<[number, number, number]> {
  const rows = Math.max(1, Math.min(blockRows, L.tq))
  for (let r0 = 0, b = 0; r0 < L.tq; r0 += rows, b++) yield [b, r0, Math.min(rows, L.tq - r0)]
}

/** Forward pass: the output [.., Tq, dv] and lse [N, Tq, 1]. */
function forward(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, cfg: ChunkedAttentionConfig): [tf.Tensor, tf.Tensor] {
  const L = layoutOf(q, k, v, mask)
  const row = rowOps(cfg)
  const [qp, kp] = operands(q, k, mask, L, cfg.scale)
  const v3 = tf.reshape(v, [L.n, L.tk, L.dv]) as tf.Tensor3D
  const outs: tf.Tensor[] = []
  const lses: tf.Tensor[] = []
  for (const [b, r0, rows] of blocks(L, cfg.blockRows)) {
    // One scope per block: its [N, rows, Tk] temporaries are freed before the next block's.
    const [out, lse] = tf.tidy(() => {
      const s = blockScores(qp, kp, mask, L, r0, rows)
      const m = tf.max(s, 1, true) as tf.Tensor2D
      const e = tf.exp(row.sub(s, m)) as tf.Tensor2D
      const l = row.sum(e)
      let p = row.mul(e, tf.reciprocal(l) as tf.Tensor2D)
      if (cfg.dropoutRate > 0) p = tf.mul(p, keepMask(L.n * rows, L.tk, cfg.dropoutRate, cfg.seed, b))
      return [tf.matMul(tf.reshape(p, [L.n, rows, L.tk]) as tf.Tensor3D, v3), tf.reshape(tf.add(m, tf.log(l)), [L.n, rows, 1])]
    })
    outs.push(out)
    lses.push(lse)
  }
  const join = (ts: tf.Tensor[]) => (ts.length === 1 ? ts[0]! : tf.concat(ts, 1))
  const out = tf.reshape(join(outs), [...L.lead, L.tq, L.dv])
  return [out, join(lses)]
}

/** Backward pass: [dq, dk, dv] and, with a mask, its gradient. */
function backward(dy: tf.Tensor, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, out: tf.Tensor, lse: tf.Tensor, cfg: ChunkedAttentionConfig): tf.Tensor[] {
  const L = layoutOf(q, k, v, mask)
  const row = rowOps(cfg)
  const [qp, kp] = operands(q, k, mask, L, cfg.scale)
  const v3 = tf.reshape(v, [L.n, L.tk, L.dv]) as tf.Tensor3D
  const dy3 = tf.reshape(dy, [L.n, L.tq, L.dv]) as tf.Tensor3D
  const prod = tf.reshape(tf.mul(dy3, tf.reshape(out, [L.n, L.tq, L.dv])), [L.n * L.tq, L.dv]) as tf.Tensor2D
  const D = tf.reshape(row.sum(prod), [L.n, L.tq, 1])
  const rowMask = mask !== undefined && !L.keyMask
  let dkp: tf.Tensor = tf.zerosLike(kp)
  let dv: tf.Tensor = tf.zerosLike(v3)
  const dqps: tf.Tensor[] = []
  const dMaskRows: tf.Tensor[] = []
  for (const [b, r0, rows] of blocks(L, cfg.blockRows)) {
    const [dqp, dkNext, dvNext, dMask] = tf.tidy(() => {
      const R = L.n * rows
      const lseRows = tf.reshape(tf.slice(lse, [0, r0, 0], [L.n, rows, 1]), [R, 1]) as tf.Tensor2D
      const p = tf.exp(row.sub(blockScores(qp, kp, mask, L, r0, rows), lseRows)) as tf.Tensor2D
      const keep = cfg.dropoutRate > 0 ? keepMask(R, L.tk, cfg.dropoutRate, cfg.seed, b) : undefined
      const dyRows = tf.slice(dy3, [0, r0, 0], [L.n, rows, L.dv]) as tf.Tensor3D
      const dropped = tf.reshape(keep ? tf.mul(p, keep) : p, [L.n, rows, L.tk]) as tf.Tensor3D
      const dvNext = tf.add(dv, tf.matMul(dropped, dyRows, true, false))
      let dp = tf.reshape(tf.matMul(dyRows, v3, false, true), [R, L.tk]) as tf.Tensor2D
      if (keep) dp = tf.mul(dp, keep) as tf.Tensor2D
      const ds = tf.mul(p, row.sub(dp, tf.reshape(tf.slice(D, [0, r0, 0], [L.n, rows, 1]), [R, 1]) as tf.Tensor2D))
      const ds3 = tf.reshape(ds, [L.n, rows, L.tk]) as tf.Tensor3D
      const dqp = tf.matMul(ds3, kp)
      const dkNext = tf.add(dkp, tf.matMul(ds3, tf.slice(qp, [0, r0, 0], [L.n, rows, -1]), true, false))
      let dMask: tf.Tensor | undefined
      if (rowMask) dMask = reduceTo(tf.reshape(ds, [...L.lead, rows, L.tk]), [...mask!.shape.slice(0, -2), rows, L.tk])
      return [dqp, dkNext, dvNext, dMask] as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined]
    })
    // The running sums are replaced, not kept: the previous ones are freed as the next appear.
    dkp.dispose()
    dv.dispose()
    dkp = dkNext
    dv = dvNext
    dqps.push(dqp)
    if (dMask) dMaskRows.push(dMask)
  }
  const dqp = dqps.length === 1 ? dqps[0]! : tf.concat(dqps, 1)
  const unaugmented = (t: tf.Tensor) => (L.keyMask ? tf.slice(t, [0, 0, 0], [-1, -1, L.d]) : t)
  const dq = tf.reshape(cfg.scale === 1 ? unaugmented(dqp) : tf.mul(unaugmented(dqp), cfg.scale), q.shape)
  const grads = [dq, tf.reshape(unaugmented(dkp), k.shape), tf.reshape(dv, v.shape)]
  if (mask && L.keyMask) {
    // Last column of dk' = dsᵀ 1: each key's gradient summed over the query rows.
    const column = tf.reshape(tf.slice(dkp, [0, 0, L.d], [-1, -1, 1]), [...L.lead, 1, L.tk])
    grads.push(reduceTo(column, mask.shape))
  } else if (mask) {
    grads.push(dMaskRows.length === 1 ? dMaskRows[0]! : tf.concat(dMaskRows, mask.rank - 2))
  }
  return grads
}

/**
 * softmax(q kᵀ·scale + mask) v with dropout on the probabilities, for q [.., Tq, d], k [.., Tk, d],
 * v [.., Tk, dv] (equal leading dims) and a mask broadcastable to [.., Tq, Tk]; gradients flow to q,
 * k, v and the mask. See the module docstring for what is saved and recomputed.
 */
export function chunkedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, cfg: ChunkedAttentionConfig): tf.Tensor {
  const inputs = mask ? [q, k, v, mask] : [q, k, v]
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc
    const [qi, ki, vi, mi] = args.slice(0, -1) as tf.Tensor[]
    const [out, lse] = forward(qi!, ki!, vi!, mi, cfg)
    save(mi ? [qi!, ki!, vi!, out, lse, mi] : [qi!, ki!, vi!, out, lse])
    return {
      value: out,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sq, sk, sv, sOut, sLse, sMask] = saved
        // tfjs runs a custom gradient outside any scope of its own: without this tidy every layer's
        // backward intermediates would live until the whole backward pass ends.
        return tf.tidy(() => backward(dy as tf.Tensor, sq!, sk!, sv!, sMask, sOut!, sLse!, cfg))
      },
    }
  }) as (...xs: tf.Tensor[]) => tf.Tensor
  return f(...inputs)
}
