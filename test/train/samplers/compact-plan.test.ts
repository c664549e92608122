/**
 * The compact epoch plans (src/train/samplers/compact.ts) against the array-based samplers they
 * replaced: the reference below is the earlier code (plans as number[][], built whole), kept here
 * only as the oracle. For several datasets, tasks, batch sizes, policies, dropLast, world sizes and
 * seeds, over three epochs: the batches handed out by next(), epochPlan(), the closed-form batch
 * count, the parts' sizes, the data-parallel shards (train/distributed.ts) and a mid-epoch resume
 * must all be exactly the earlier ones.
 */
import assert from 'node:assert/strict'
import {test} from 'node:test'
import {Rng} from '../../../src/core/rng.js'
import {ShardedSampler} from '../../../src/train/distributed.js'
import {globalBatchOptions} from '../../../src/train/global-batch.js'
import {entries} from '../../../src/train/samplers/index.js'
import {batchesPerEpoch, epochBatchesOf} from '../../../src/train/samplers/outline.js'
import type {BatchPart, Sampler, SamplerBatch, SamplerDataset, SamplerModule, TaskKind} from '../../../src/train/samplers/types.js'

// ---- the earlier, array-based plans (reference) ----

function shuffledBatches(size: number, batchSize: number, rng: Rng): number[][] {
  const order = rng.shuffle(Array.from({length: size}, (_, i) => i))
  const out: number[][] = []
  for (let start = 0; start < size; start += batchSize) out.push(order.slice(start, start + batchSize))
  return out
}

interface RefOptions {
  batchSize?: number
  batchSizes?: Partial<Record<TaskKind, number>>
  policy?: 'proportional' | 'round-robin' | 'temperature'
  alpha?: number
  dropLast?: boolean
}

function refDynamic(datasets: SamplerDataset[], o: RefOptions, rng: Rng): SamplerBatch[] {
  const sizes = {ir: 64, sts: 32, ...o.batchSizes}
  const perDataset = datasets.map((d, index) => {
    const size = sizes[d.task]
    let batches = shuffledBatches(d.size, size, rng)
    if (o.dropLast) batches = batches.filter((b) => b.length === size)
    return batches.map((rows): SamplerBatch => ({parts: [{dataset: index, rows}]}))
  })
  const policy = o.policy ?? 'proportional'
  if (policy === 'proportional') return rng.shuffle(perDataset.flat())
  if (policy === 'round-robin') {
    const queues = new Map<TaskKind, SamplerBatch[]>()
    perDataset.forEach((batches, index) => {
      const task = datasets[index].task
      queues.set(task, [...(queues.get(task) ?? []), ...batches])
    })
    const tasks = [...queues.keys()].sort()
    for (const task of tasks) rng.shuffle(queues.get(task)!)
    const out: SamplerBatch[] = []
    for (let round = 0; out.length < perDataset.reduce((a, b) => a + b.length, 0); round++)
      for (const task of tasks) {
        const queue = queues.get(task)!
        if (round < queue.length) out.push(queue[round])
      }
    return out
  }
  const alpha = o.alpha ?? 0.5
  const weights = datasets.map((d) => (d.size > 0 ? Math.pow(d.size, alpha) : 0))
  const cursors = perDataset.map(() => 0)
  const out: SamplerBatch[] = []
  const total = perDataset.reduce((a, b) => a + b.length, 0)
  while (out.length < total) {
    let mass = 0
    for (let d = 0; d < perDataset.length; d++) if (cursors[d] < perDataset[d].length) mass += weights[d]
    let pick = rng.next() * mass
    let chosen = -1
    for (let d = 0; d < perDataset.length; d++) {
      if (cursors[d] >= perDataset[d].length) continue
      chosen = d
      pick -= weights[d]
      if (pick < 0) break
    }
    out.push(perDataset[chosen][cursors[chosen]++])
  }
  return out
}

function refSingle(datasets: SamplerDataset[], o: RefOptions, rng: Rng): SamplerBatch[] {
  const size = o.batchSize ?? 32
  const batches = datasets.flatMap((d, index) =>
    shuffledBatches(d.size, size, rng)
      .filter((rows) => !o.dropLast || rows.length === size)
      .map((rows): SamplerBatch => ({parts: [{dataset: index, rows}]})),
  )
  return rng.shuffle(batches)
}

function refMixed(datasets: SamplerDataset[], o: RefOptions, rng: Rng): SamplerBatch[] {
  const size = o.batchSize ?? 32
  const all: Array<[number, number]> = []
  datasets.forEach((d, dataset) => {
    for (let row = 0; row < d.size; row++) all.push([dataset, row])
  })
  rng.shuffle(all)
  const out: SamplerBatch[] = []
  for (let start = 0; start < all.length; start += size) {
    const slice = all.slice(start, start + size)
    if (o.dropLast && slice.length < size) break
    const parts = new Map<number, BatchPart>()
    for (const [dataset, row] of slice) {
      if (!parts.has(dataset)) parts.set(dataset, {dataset, rows: []})
      parts.get(dataset)!.rows.push(row)
    }
    out.push({parts: [...parts.values()].sort((a, b) => a.dataset - b.dataset)})
  }
  return out
}

const REFERENCE = {dynamic: refDynamic, single: refSingle, mixed: refMixed}

/** The earlier sampler's epochs 0…n−1 (epoch RNG: seed → seed(), then each epoch's seed()). */
function referenceEpochs(name: keyof typeof REFERENCE, datasets: SamplerDataset[], options: RefOptions, seed: number, epochs: number): SamplerBatch[][] {
  const out: SamplerBatch[][] = []
  let epochRng = new Rng(seed).seed()
  for (let e = 0; e < epochs; e++) {
    out.push(REFERENCE[name](datasets, options, Rng.fromState(epochRng)))
    epochRng = Rng.fromState(epochRng).seed()
  }
  return out
}

/** The earlier ShardedSampler's cut of a global batch. */
function referenceShard(batch: SamplerBatch, rank: number, world: number): SamplerBatch {
  return {parts: batch.parts.map((p) => ({dataset: p.dataset, rows: p.rows.slice(Math.floor((rank * p.rows.length) / world), Math.floor(((rank + 1) * p.rows.length) / world))}))}
}

// ---- the configurations ----

async function make(name: string, datasets: SamplerDataset[], options: Record<string, unknown>, seed: number): Promise<Sampler> {
  return ((await entries.find((e) => e.name === name)!.load()) as SamplerModule).create(datasets, options, seed)
}

function drain(sampler: Sampler): SamplerBatch[] {
  const out: SamplerBatch[] = []
  for (let b = sampler.next(); b; b = sampler.next()) out.push(b)
  return out
}

const DATASET_SETS: SamplerDataset[][] = [
  [{name: 'ir', task: 'ir', size: 203}],
  [{name: 'sts', task: 'sts', size: 97}],
  [{name: 'ir-a', task: 'ir', size: 203}, {name: 'ir-b', task: 'ir', size: 57}, {name: 'sts-a', task: 'sts', size: 150}],
  [{name: 'sts-a', task: 'sts', size: 64}, {name: 'ir-a', task: 'ir', size: 130}, {name: 'empty', task: 'ir', size: 0}, {name: 'sts-b', task: 'sts', size: 33}],
]

interface Config {
  name: keyof typeof REFERENCE
  options: RefOptions
}

const CONFIGS: Config[] = [
  ...(['proportional', 'round-robin', 'temperature'] as const).flatMap((policy) => [
    {name: 'dynamic' as const, options: {batchSizes: {ir: 16, sts: 8}, policy}},
    {name: 'dynamic' as const, options: {batchSizes: {ir: 7, sts: 5}, policy, dropLast: true}},
  ]),
  {name: 'dynamic', options: {policy: 'temperature', alpha: 1, batchSizes: {ir: 3, sts: 4}}},
  {name: 'dynamic', options: {}},
  {name: 'single', options: {batchSize: 10}},
  {name: 'single', options: {batchSize: 6, dropLast: true}},
  {name: 'mixed', options: {batchSize: 10}},
  {name: 'mixed', options: {batchSize: 9, dropLast: true}},
]

const EPOCHS = 3

test('every built-in sampler plans exactly the batches of the earlier array-based plans (next, epochPlan, counts, parts)', async () => {
  let compared = 0
  for (const datasets of DATASET_SETS)
    for (const {name, options} of CONFIGS)
      for (const seed of [1, 7, 123456789]) {
        const what = `${name} ${JSON.stringify(options)} seed ${seed} on ${datasets.map((d) => `${d.task}:${d.size}`).join(',')}`
        const expected = referenceEpochs(name, datasets, options, seed, EPOCHS)
        const sampler = await make(name, datasets, options as Record<string, unknown>, seed)
        const viaPlan = await make(name, datasets, options as Record<string, unknown>, seed)
        for (let e = 0; e < EPOCHS; e++) {
          assert.equal(sampler.batchCount!(), expected[e].length, `${what}: closed-form count, epoch ${e}`)
          assert.equal(batchesPerEpoch(sampler), expected[e].length)
          const compact = epochBatchesOf(sampler)
          for (let i = 0; i < compact.length; i++)
            assert.deepEqual(compact.parts(i), expected[e][i].parts.map((p) => ({dataset: p.dataset, size: p.rows.length})), `${what}: parts of batch ${i}`)
          assert.deepEqual(drain(sampler), expected[e], `${what}: epoch ${e} via next()`)
          assert.deepEqual(viaPlan.epochPlan(), expected[e], `${what}: epoch ${e} via epochPlan()`)
          sampler.nextEpoch()
          viaPlan.nextEpoch()
          compared++
        }
      }
  assert.equal(compared, DATASET_SETS.length * CONFIGS.length * 3 * EPOCHS)
})

test('data-parallel: the shards each rank is handed are the earlier ShardedSampler cuts of the earlier global batches, for several world sizes', async () => {
  const datasets = DATASET_SETS[2]
  for (const world of [1, 2, 3, 4])
    for (const policy of ['proportional', 'round-robin', 'temperature'] as const)
      for (const seed of [5, 99]) {
        // Per-process sizes × world size, as setup.ts builds the sampler; dropLast so every part has a row per rank.
        const perDevice = {batchSizes: {ir: 4, sts: 3}, policy, dropLast: true}
        const global = globalBatchOptions(perDevice, world) as RefOptions
        const expected = referenceEpochs('dynamic', datasets, global, seed, 2)
        for (let rank = 0; rank < world; rank++) {
          const sharded = new ShardedSampler(await make('dynamic', datasets, global as Record<string, unknown>, seed), rank, world)
          for (let e = 0; e < 2; e++) {
            assert.equal(batchesPerEpoch(sharded), expected[e].length)
            assert.deepEqual(drain(sharded), expected[e].map((b) => referenceShard(b, rank, world)), `world ${world} rank ${rank} ${policy} seed ${seed} epoch ${e}`)
            sharded.nextEpoch()
          }
        }
      }
})

test('data-parallel: an epoch with a part of fewer rows than ranks is refused before its first batch, from the parts alone', async () => {
  // 203 rows in batches of 8: the last batch has 3 rows, too few for 4 ranks.
  const sharded = new ShardedSampler(await make('dynamic', [{name: 'ir', task: 'ir', size: 203}], {batchSizes: {ir: 8}}, 3), 0, 4, () => 'corpus.arrow')
  assert.throws(() => batchesPerEpoch(sharded), /batch \d+ of epoch 0 has 3 row\(s\) of corpus\.arrow for 4 processes.*dropLast: true/)
  assert.throws(() => sharded.next(), /has 3 row\(s\)/)
  assert.equal(sharded.getState().position, 0, 'nothing handed out')
})

test('resume mid-epoch from a saved state replays the earlier plan exactly; a state of the epoch held keeps its plan', async () => {
  const datasets = DATASET_SETS[3]
  for (const {name, options} of CONFIGS) {
    const expected = referenceEpochs(name, datasets, options, 11, 2).flat()
    const first = await make(name, datasets, options as Record<string, unknown>, 11)
    const got: SamplerBatch[] = []
    for (let i = 0; i < 5; i++) got.push(first.next()!)
    const saved = JSON.parse(JSON.stringify(first.getState()))
    const resumed = await make(name, datasets, options as Record<string, unknown>, 999)
    resumed.setState(saved)
    got.push(...drain(resumed))
    resumed.nextEpoch()
    got.push(...drain(resumed))
    assert.deepEqual(got, expected, `${name} ${JSON.stringify(options)}`)
    // Setting a state of the epoch held (a resume into epoch 0) keeps its plan; another epoch's state does not.
    const fresh = await make(name, datasets, options as Record<string, unknown>, 11)
    const plan = fresh.epochBatches!()
    fresh.setState({...fresh.getState(), position: 3})
    assert.equal(fresh.epochBatches!(), plan)
    fresh.setState(saved) // epoch 0, position 5
    assert.equal(fresh.epochBatches!(), plan)
    resumed.setState(saved)
    resumed.nextEpoch()
    fresh.setState(resumed.getState())
    assert.notEqual(fresh.epochBatches!(), plan)
  }
})

test('a plugin sampler with only epochPlan() is counted and listed from its plan', () => {
  const plan: SamplerBatch[] = [{parts: [{dataset: 0, rows: [2, 0]}]}, {parts: [{dataset: 0, rows: [1]}, {dataset: 1, rows: [0, 3]}]}]
  const plugin: Sampler = {
    name: 'plugin', epochPlan: () => plan, next: () => undefined, nextEpoch() {}, getState: () => ({epoch: 0, position: 0, epochRng: 1}), setState() {}, batchSize: () => 2,
  }
  assert.equal(batchesPerEpoch(plugin), 2)
  const compact = epochBatchesOf(plugin)
  assert.deepEqual(compact.parts(1), [{dataset: 0, size: 1}, {dataset: 1, size: 2}])
  assert.deepEqual(compact.batch(0), plan[0])
})
