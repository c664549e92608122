/**
 * `sequential` — single-dataset batches in file order, one dataset after another, no shuffling.
 *
 * For curriculum-style runs (datasets listed easiest first) and for debugging a recipe, where a
 * reproducible, readable order matters more than mixing. Each dataset is cut into consecutive
 * batches of its task's batch size (`batchSizes: {ir, sts}`, defaults 64 and 32, as the paper);
 * the short last batch is kept unless `dropLast`. Every row is used exactly once per epoch.
 * Relations: the built-in `single` sampler shuffles and interleaves; `dynamic` also balances tasks.
 */
import type {Sampler, SamplerBatch, SamplerDataset, SamplerState, TaskKind} from 'codiemb'

/** Options of `sequential` (validated against its entry's optionsSchema before `create` sees them). */
export interface SequentialOptions {
  batchSizes?: Partial<Record<TaskKind, number>>
  dropLast?: boolean
}

/** The SamplerModule contract: `create(datasets, options, seed)` returns a Sampler. */
export function create(datasets: SamplerDataset[], options: SequentialOptions = {}, seed = 0): Sampler {
  const sizes: Record<TaskKind, number> = {ir: 64, sts: 32, ...options.batchSizes}
  const dropLast = options.dropLast ?? false
  const plan: SamplerBatch[] = []
  datasets.forEach((d, dataset) => {
    const size = sizes[d.task]
    if (!Number.isInteger(size) || size < 1) throw new Error(`sequential: no valid batch size for task "${d.task}" of dataset ${d.name}`)
    for (let start = 0; start < d.size; start += size) {
      const end = Math.min(start + size, d.size)
      if (dropLast && end - start < size) break
      plan.push({parts: [{dataset, rows: Array.from({length: end - start}, (_, i) => start + i)}]})
    }
  })
  // The order never depends on the seed; it is kept as the state's RNG so a resumed run reports it.
  let state: SamplerState = {epoch: 0, position: 0, epochRng: seed}
  return {
    name: 'sequential',
    epochPlan: () => plan.map((b) => ({parts: b.parts.map((p) => ({dataset: p.dataset, rows: [...p.rows]}))})),
    next() {
      if (state.position >= plan.length) return undefined
      return plan[state.position++]
    },
    nextEpoch() {
      state = {epoch: state.epoch + 1, position: 0, epochRng: seed}
    },
    getState: () => ({...state}),
    setState(s: SamplerState) {
      if (!Number.isInteger(s?.position) || s.position < 0 || s.position > plan.length) {
        throw new Error(`sequential: cannot resume at batch ${s?.position}: an epoch has ${plan.length} batches`)
      }
      state = {...s}
    },
    batchSize: (task: TaskKind) => sizes[task],
  }
}
