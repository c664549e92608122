/**
 * Property checks every training loss should pass, built-in or from a plugin. They need no data
 * files and no fixture values: each check builds its own small batch of unit-vector embeddings in
 * the layout the trainer hands a loss (src/train/losses/types.ts) and asserts a property that any
 * sensible IR or STS loss has:
 *
 * - the value is a finite scalar, on a random batch and on a degenerate one (every text embedded
 *   alike, as a collapsed or freshly initialised model does);
 * - the gradients with respect to the embeddings are finite on both;
 * - a correct ordering costs less than an incorrect one. STS: pair similarities ordered like the
 *   gold labels versus in reverse order. IR: each query's positives nearest to it versus its hard
 *   negatives nearest (with no hard negatives: another query's positive nearest);
 * - `compute` keeps no tensors of its own and leaves the batch's tensors alive.
 *
 * The checks are plain functions that throw node:assert's AssertionError, so they fit any test
 * runner. A tensor backend must be active (`selectBackend(await builtinRegistry(), 'cpu')` from
 * 'codiemb'); the checks register codiemb's kernel gradients themselves.
 *
 *     import {lossProperties} from 'codiemb/testing'
 *     for (const property of lossProperties(create({}))) it(property.name, () => property.check())
 */
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs-core'
import {Rng} from '../core/rng.js'
import type {Registry} from '../registry/registry.js'
import type {RegistryEntry} from '../registry/types.js'
import {registerGradients} from '../tensor/gradients.js'
import type {IrEmbeddings, IrLoss, LossModule, StsEmbeddings, StsLoss, TrainingLoss} from '../train/losses/types.js'

export interface LossPropertyOptions {
  /** Width of the random batches' embeddings (default 16; the ordering batches use what they need). */
  dim?: number
  /** Seed of the random batches (default 1). */
  seed?: number
  /** Queries in an IR batch (default 4, at least 2). */
  queries?: number
  /** Pairs in an STS batch (default 8, at least 3). */
  pairs?: number
}

/** One property of one loss. */
export interface LossProperty {
  /** What holds, as a sentence (usable as a test name). */
  name: string
  /** Throws an AssertionError naming the loss and the values when the property does not hold. */
  check(): void
}

/** A loss entry of a registry with the loss its module builds from `options`. */
export interface RegisteredLoss {
  entry: RegistryEntry<LossModule>
  loss: TrainingLoss
}

/** The embedding tensors of a batch by field name (what gradients are taken with respect to). */
type EmbeddingTensors = Record<string, tf.Tensor2D>

/** A batch for `loss` and the tensors it owns (disposed by the check that built it). */
interface BuiltBatch {
  embeddings: EmbeddingTensors
  /** Rebuilds the batch around other tensors of the same fields (e.g. variables). */
  with(embeddings: EmbeddingTensors): IrEmbeddings | StsEmbeddings
}

/**
 * The properties of `loss`, in a fixed order: finite scalar, finite gradients, ordering, tensor
 * hygiene. Each check builds and disposes its own tensors.
 */
export function lossProperties(loss: TrainingLoss, options: LossPropertyOptions = {}): LossProperty[] {
  const settings = resolveOptions(options)
  if (loss.task === 'ir' && !(Number.isInteger(loss.positives) && loss.positives >= 1 && Number.isInteger(loss.negatives) && loss.negatives >= 0))
    throw new RangeError(`${loss.name}: an IR loss declares positives ≥ 1 and negatives ≥ 0 per query, got ${loss.positives} and ${loss.negatives}`)
  const random = () => randomBatch(loss, settings)
  const degenerate = () => degenerateBatch(loss, settings)
  return [
    {name: 'is a finite scalar on a random batch', check: () => withBatch(random(), (b) => assertFiniteScalar(loss, b, 'a random batch'))},
    {
      name: 'is a finite scalar when every text is embedded alike',
      check: () => withBatch(degenerate(), (b) => assertFiniteScalar(loss, b, 'a batch of identical embeddings')),
    },
    {name: 'has finite gradients on a random batch', check: () => withBatch(random(), (b) => assertFiniteGradients(loss, b, 'a random batch'))},
    {
      name: 'has finite gradients when every text is embedded alike',
      check: () => withBatch(degenerate(), (b) => assertFiniteGradients(loss, b, 'a batch of identical embeddings')),
    },
    loss.task === 'ir'
      ? {
          name:
            loss.negatives > 0
              ? 'costs less with the positives nearest the query than with the hard negatives nearest'
              : 'costs less with the positives nearest the query than with another query’s positive nearest',
          check: () => assertOrdering(loss, (correct) => irRankingBatch(loss, correct, settings)),
        }
      : {
          name: 'costs less with similarities ordered like the labels than in reverse order',
          check: () => assertOrdering(loss, (correct) => stsRankingBatch(loss, correct, settings)),
        },
    {name: 'keeps no tensors and leaves the batch intact', check: () => withBatch(random(), (b) => assertTensorHygiene(loss, b))},
  ]
}

/** Runs every property of `loss`; throws at the first that does not hold. */
export function assertLossProperties(loss: TrainingLoss, options: LossPropertyOptions = {}): void {
  for (const property of lossProperties(loss, options)) property.check()
}

/**
 * Every loss registered in `registry` (optionally only those of one plugin), each built by its
 * module's `create(options)` — default options unless given per loss name.
 */
export async function registeredLosses(
  registry: Registry,
  select: {plugin?: string; options?: Record<string, Record<string, unknown>>} = {},
): Promise<RegisteredLoss[]> {
  const out: RegisteredLoss[] = []
  for (const entry of registry.list('loss') as RegistryEntry<LossModule>[]) {
    if (select.plugin !== undefined && entry.plugin !== select.plugin) continue
    const module = await entry.load()
    out.push({entry, loss: module.create(select.options?.[entry.name] ?? {})})
  }
  return out
}

type Settings = Required<LossPropertyOptions>

function resolveOptions(options: LossPropertyOptions): Settings {
  const settings = {dim: options.dim ?? 16, seed: options.seed ?? 1, queries: options.queries ?? 4, pairs: options.pairs ?? 8}
  if (!(Number.isInteger(settings.dim) && settings.dim >= 2)) throw new RangeError(`lossProperties: dim must be an integer ≥ 2, got ${settings.dim}`)
  if (!(Number.isInteger(settings.queries) && settings.queries >= 2)) throw new RangeError(`lossProperties: queries must be an integer ≥ 2, got ${settings.queries}`)
  if (!(Number.isInteger(settings.pairs) && settings.pairs >= 3)) throw new RangeError(`lossProperties: pairs must be an integer ≥ 3, got ${settings.pairs}`)
  return settings
}

function withBatch(batch: BuiltBatch, run: (batch: BuiltBatch) => void): void {
  try {
    run(batch)
  } finally {
    tf.dispose(Object.values(batch.embeddings))
  }
}

function assertFiniteScalar(loss: TrainingLoss, batch: BuiltBatch, what: string): void {
  const value = compute(loss, batch.with(batch.embeddings))
  try {
    assert.equal(value.rank, 0, `${loss.name}: on ${what} compute() returned a tensor of shape [${value.shape}], expected a scalar`)
    const v = value.dataSync()[0]
    assert.ok(Number.isFinite(v), `${loss.name}: on ${what} the loss is ${v}`)
  } finally {
    value.dispose()
  }
}

function assertFiniteGradients(loss: TrainingLoss, batch: BuiltBatch, what: string): void {
  registerGradients()
  const fields = Object.keys(batch.embeddings)
  const variables = fields.map((field) => tf.variable(batch.embeddings[field]!, true))
  try {
    const byField = Object.fromEntries(fields.map((field, i) => [field, variables[i]!])) as EmbeddingTensors
    let result: {value: tf.Scalar; grads: tf.NamedTensorMap}
    try {
      result = tf.variableGrads(() => compute(loss, batch.with(byField)), variables)
    } catch (error) {
      assert.fail(`${loss.name}: on ${what} no gradient reaches the embeddings (${fields.join(', ')}): ${(error as Error).message}`)
    }
    try {
      for (const [i, field] of fields.entries()) {
        const grad = result.grads[variables[i]!.name]
        if (!grad) continue // a field this loss does not use (e.g. final-layer rows for mid-infonce)
        const values = grad.dataSync()
        const bad = values.findIndex((x) => !Number.isFinite(x))
        assert.equal(bad, -1, `${loss.name}: on ${what} ∂loss/∂${field} has a non-finite entry (${values[bad]} at flat index ${bad})`)
      }
    } finally {
      tf.dispose([result.value, ...Object.values(result.grads)])
    }
  } finally {
    tf.dispose(variables)
  }
}

function assertOrdering(loss: TrainingLoss, build: (correct: boolean) => BuiltBatch): void {
  const value = (correct: boolean): number => {
    let v = NaN
    withBatch(build(correct), (b) => {
      const t = compute(loss, b.with(b.embeddings))
      v = t.dataSync()[0]!
      t.dispose()
    })
    return v
  }
  const correct = value(true)
  const incorrect = value(false)
  assert.ok(
    correct < incorrect,
    `${loss.name}: the correctly ordered batch costs ${correct}, not less than the incorrectly ordered one (${incorrect})`,
  )
}

function assertTensorHygiene(loss: TrainingLoss, batch: BuiltBatch): void {
  const before = tf.memory().numTensors
  compute(loss, batch.with(batch.embeddings)).dispose()
  const after = tf.memory().numTensors
  assert.equal(after, before, `${loss.name}: compute() left ${after - before} tensor(s) behind (wrap it in tf.tidy)`)
  for (const [field, t] of Object.entries(batch.embeddings)) assert.ok(!t.isDisposed, `${loss.name}: compute() disposed the batch's ${field}`)
}

function compute(loss: TrainingLoss, batch: IrEmbeddings | StsEmbeddings): tf.Scalar {
  return loss.task === 'ir' ? loss.compute(batch as IrEmbeddings) : loss.compute(batch as StsEmbeddings)
}

// ── Batches ─────────────────────────────────────────────────────────────────────────────────────

/** Rows of unit vectors, row-major, as a [rows, dim] tensor. */
function unitRows(rows: number[][]): tf.Tensor2D {
  const dim = rows[0]!.length
  const flat = new Float32Array(rows.length * dim)
  rows.forEach((row, r) => {
    const norm = Math.hypot(...row)
    row.forEach((x, c) => (flat[r * dim + c] = x / norm))
  })
  return tf.tensor2d(flat, [rows.length, dim])
}

function gaussianRows(rng: Rng, count: number, dim: number): number[][] {
  // Box–Muller; 1 − next() keeps the logarithm's argument in (0, 1].
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next())
  return Array.from({length: count}, () => Array.from({length: dim}, normal))
}

/** `c·e_axis + √(1−c²)·e_spare` in `dim` dimensions: cosine c with e_axis, 0 with every other axis but the spare one. */
function atCosine(dim: number, axis: number, c: number, spare: number): number[] {
  const row = new Array<number>(dim).fill(0)
  row[axis] = c
  row[spare] = Math.sqrt(1 - c * c)
  return row
}

function irBatch(loss: IrLoss, queries: tf.Tensor2D, passages: tf.Tensor2D): BuiltBatch {
  return {
    embeddings: {queries, passages},
    with: (e) => ({queries: e.queries!, passages: e.passages!, positives: loss.positives, negatives: loss.negatives}),
  }
}

/** STS batch; the middle-layer rows are present only for a loss that asks for them, as the trainer does. */
function stsBatch(loss: StsLoss, labels: number[], rows: {left: number[][]; right: number[][]}, middle: {left: number[][]; right: number[][]}): BuiltBatch {
  const embeddings: EmbeddingTensors = {left: unitRows(rows.left), right: unitRows(rows.right)}
  if (loss.needsMiddleLayer) Object.assign(embeddings, {leftMiddle: unitRows(middle.left), rightMiddle: unitRows(middle.right)})
  return {
    embeddings,
    with: (e) => ({left: e.left!, right: e.right!, ...(e.leftMiddle ? {leftMiddle: e.leftMiddle, rightMiddle: e.rightMiddle} : {}), labels}),
  }
}

function randomBatch(loss: TrainingLoss, s: Settings): BuiltBatch {
  const rng = new Rng(s.seed)
  if (loss.task === 'ir') {
    const passages = s.queries * (loss.positives + loss.negatives)
    return irBatch(loss, unitRows(gaussianRows(rng, s.queries, s.dim)), unitRows(gaussianRows(rng, passages, s.dim)))
  }
  // Labels in [0, 1] with both ends present: not constant, and some pairs reach a threshold of 1.
  const labels = Array.from({length: s.pairs}, (_, i) => (i === 0 ? 1 : i === 1 ? 0 : Math.round(rng.next() * 100) / 100))
  const pairRows = () => ({left: gaussianRows(rng, s.pairs, s.dim), right: gaussianRows(rng, s.pairs, s.dim)})
  return stsBatch(loss, labels, pairRows(), pairRows())
}

function degenerateBatch(loss: TrainingLoss, s: Settings): BuiltBatch {
  const same = (count: number) => Array.from({length: count}, () => atCosine(s.dim, 0, 1, 1))
  if (loss.task === 'ir') return irBatch(loss, unitRows(same(s.queries)), unitRows(same(s.queries * (loss.positives + loss.negatives))))
  const labels = Array.from({length: s.pairs}, (_, i) => i / (s.pairs - 1))
  const rows = {left: same(s.pairs), right: same(s.pairs)}
  return stsBatch(loss, labels, rows, rows)
}

/** Cosine of the nearer and the farther passages in the ranking batches. */
const NEAR = 0.9
const FAR = 0.1

/**
 * Query i is axis i. Correct: its positives at cosine NEAR, its hard negatives at FAR. Incorrect:
 * the other way round; with no hard negatives, its positives lean instead towards query i+1, so
 * they are another query's nearest in-batch candidate. Every other query–passage cosine is 0.
 */
function irRankingBatch(loss: IrLoss, correct: boolean, s: Settings): BuiltBatch {
  const B = s.queries
  const dim = B + 1
  const spare = B
  const queries = Array.from({length: B}, (_, i) => atCosine(dim, i, 1, spare))
  const passages: number[][] = []
  for (let i = 0; i < B; i++) {
    for (let p = 0; p < loss.positives; p++) {
      if (correct) passages.push(atCosine(dim, i, NEAR, spare))
      else if (loss.negatives > 0) passages.push(atCosine(dim, i, FAR, spare))
      else {
        const row = new Array<number>(dim).fill(0)
        row[i] = FAR
        row[(i + 1) % B] = NEAR
        row[spare] = Math.sqrt(1 - FAR * FAR - NEAR * NEAR)
        passages.push(row)
      }
    }
    for (let n = 0; n < loss.negatives; n++) passages.push(atCosine(dim, i, correct ? FAR : NEAR, spare))
  }
  return irBatch(loss, unitRows(queries), unitRows(passages))
}

/**
 * Pair i has label i/(n−1); its left text is axis i and its right text sits at a cosine that rises
 * with the label (correct) or falls with it (incorrect), from −0.3 to 0.9. Left and right texts of
 * different pairs are orthogonal. The middle layer, when asked for, is ordered the same way.
 */
function stsRankingBatch(loss: StsLoss, correct: boolean, s: Settings): BuiltBatch {
  const n = s.pairs
  const dim = n + 1
  const labels = Array.from({length: n}, (_, i) => i / (n - 1))
  const cosine = (label: number) => -0.3 + 1.2 * (correct ? label : 1 - label)
  const rows = {
    left: labels.map((_, i) => atCosine(dim, i, 1, n)),
    right: labels.map((label, i) => atCosine(dim, i, cosine(label), n)),
  }
  return stsBatch(loss, labels, rows, rows)
}
