import assert from 'node:assert/strict'
import {test} from 'node:test'
import {Ajv} from 'ajv'
import {entries} from '../../../src/train/samplers/index.js'
import type {Sampler, SamplerBatch, SamplerDataset, SamplerModule} from '../../../src/train/samplers/types.js'
import {Rng} from '../../../src/core/rng.js'

const DATASETS: SamplerDataset[] = [
  {name: 'ir-a', task: 'ir', size: 203},
  {name: 'ir-b', task: 'ir', size: 57},
  {name: 'sts-a', task: 'sts', size: 150},
]

async function make(name: string, options: Record<string, unknown>, seed = 7, datasets = DATASETS): Promise<Sampler> {
  const entry = entries.find((e) => e.name === name)!
  const ajv = new Ajv({strict: false})
  assert.ok(ajv.validate(entry.optionsSchema!, options), `${name} options valid: ${ajv.errorsText()}`)
  return ((await entry.load()) as SamplerModule).create(datasets, options, seed)
}

function drain(sampler: Sampler): SamplerBatch[] {
  const out: SamplerBatch[] = []
  for (let b = sampler.next(); b; b = sampler.next()) out.push(b)
  return out
}

/** Asserts every row of every dataset appears exactly once in the epoch. */
function assertEveryRowOnce(batches: SamplerBatch[], datasets = DATASETS): void {
  const seen = datasets.map((d) => new Uint8Array(d.size))
  for (const b of batches) for (const part of b.parts) for (const row of part.rows) seen[part.dataset][row]++
  datasets.forEach((d, i) => assert.ok(seen[i].every((c) => c === 1), `${d.name}: every row exactly once`))
}

for (const policy of ['proportional', 'round-robin', 'temperature']) {
  test(`dynamic/${policy}: single-dataset batches, per-task sizes, every row once per epoch`, async () => {
    const sampler = await make('dynamic', {batchSizes: {ir: 16, sts: 8}, policy})
    for (let epoch = 0; epoch < 2; epoch++) {
      const batches = drain(sampler)
      assert.equal(batches.length, Math.ceil(203 / 16) + Math.ceil(57 / 16) + Math.ceil(150 / 8))
      for (const b of batches) {
        assert.equal(b.parts.length, 1, 'one dataset per batch')
        const task = DATASETS[b.parts[0].dataset].task
        assert.ok(b.parts[0].rows.length <= (task === 'ir' ? 16 : 8))
      }
      // Only the last batch of each dataset may be short.
      const short = batches.filter((b) => b.parts[0].rows.length < (DATASETS[b.parts[0].dataset].task === 'ir' ? 16 : 8))
      assert.deepEqual(short.map((b) => b.parts[0].dataset).sort(), [0, 1, 2])
      assertEveryRowOnce(batches)
      sampler.nextEpoch()
    }
  })
}

test('dynamic: same seed gives the same plan; another seed or the next epoch a different one', async () => {
  const a = await make('dynamic', {batchSizes: {ir: 16, sts: 8}}, 1)
  const b = await make('dynamic', {batchSizes: {ir: 16, sts: 8}}, 1)
  const c = await make('dynamic', {batchSizes: {ir: 16, sts: 8}}, 2)
  const planA = JSON.stringify(a.epochPlan())
  assert.equal(planA, JSON.stringify(b.epochPlan()))
  assert.notEqual(planA, JSON.stringify(c.epochPlan()))
  a.nextEpoch()
  assert.notEqual(planA, JSON.stringify(a.epochPlan()))
})

test('dynamic: restoring the state mid-epoch replays the remaining batches exactly, across epochs', async () => {
  const reference = await make('dynamic', {batchSizes: {ir: 16, sts: 8}, policy: 'temperature'}, 3)
  const full: SamplerBatch[] = []
  for (let epoch = 0; epoch < 3; epoch++) {
    full.push(...drain(reference))
    reference.nextEpoch()
  }
  const first = await make('dynamic', {batchSizes: {ir: 16, sts: 8}, policy: 'temperature'}, 3)
  const got: SamplerBatch[] = [...drain(first)]
  first.nextEpoch()
  for (let i = 0; i < 5; i++) got.push(first.next()!)
  const saved = JSON.parse(JSON.stringify(first.getState()))
  const resumed = await make('dynamic', {batchSizes: {ir: 16, sts: 8}, policy: 'temperature'}, 999)
  resumed.setState(saved)
  got.push(...drain(resumed))
  resumed.nextEpoch()
  got.push(...drain(resumed))
  assert.equal(JSON.stringify(got), JSON.stringify(full))
})

test('dynamic/round-robin alternates tasks while both have batches', async () => {
  const batches = (await make('dynamic', {batchSizes: {ir: 16, sts: 8}, policy: 'round-robin'})).epochPlan()
  const tasks = batches.map((b) => DATASETS[b.parts[0].dataset].task)
  const irBatches = tasks.filter((t) => t === 'ir').length
  const stsBatches = tasks.length - irBatches
  const alternating = 2 * Math.min(irBatches, stsBatches)
  for (let i = 1; i < alternating; i++) assert.notEqual(tasks[i], tasks[i - 1], `step ${i} alternates`)
})

test('dynamic/temperature: alpha 0 spreads datasets evenly early on, alpha 1 favours the big one', async () => {
  const datasets: SamplerDataset[] = [
    {name: 'big', task: 'ir', size: 6400},
    {name: 'small', task: 'ir', size: 640},
  ]
  const share = async (alpha: number) => {
    const plan = (await make('dynamic', {batchSizes: {ir: 8}, policy: 'temperature', alpha}, 5, datasets)).epochPlan()
    const head = plan.slice(0, 80)
    return head.filter((b) => b.parts[0].dataset === 1).length / head.length
  }
  const uniform = await share(0)
  const proportional = await share(1)
  assert.ok(uniform > 0.35 && uniform < 0.65, `alpha 0 small-dataset share ${uniform}`)
  assert.ok(proportional < 0.2, `alpha 1 small-dataset share ${proportional}`)
})

test('single: one batch size for all tasks; mixed: batches span datasets; both use every row once', async () => {
  const single = (await make('single', {batchSize: 10})).epochPlan()
  for (const b of single) {
    assert.equal(b.parts.length, 1)
    assert.ok(b.parts[0].rows.length <= 10)
  }
  assertEveryRowOnce(single)
  const mixed = (await make('mixed', {batchSize: 10})).epochPlan()
  assert.ok(mixed.some((b) => b.parts.length > 1), 'some batch mixes datasets')
  for (const b of mixed) assert.equal(b.parts.reduce((a, p) => a + p.rows.length, 0), b === mixed.at(-1) ? 410 % 10 || 10 : 10)
  assertEveryRowOnce(mixed)
})

test('dropLast drops only short batches', async () => {
  const plan = (await make('dynamic', {batchSizes: {ir: 16, sts: 8}, dropLast: true})).epochPlan()
  assert.equal(plan.length, Math.floor(203 / 16) + Math.floor(57 / 16) + Math.floor(150 / 8))
  assert.ok(plan.every((b) => b.parts[0].rows.length === (DATASETS[b.parts[0].dataset].task === 'ir' ? 16 : 8)))
})

test('Rng: state round-trips and shuffles are permutations', () => {
  const rng = new Rng(42)
  rng.next()
  const copy = Rng.fromState(rng.getState())
  assert.deepEqual([rng.next(), rng.next()], [copy.next(), copy.next()])
  const perm = new Rng(1).shuffle(Array.from({length: 100}, (_, i) => i))
  assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({length: 100}, (_, i) => i))
  assert.notDeepEqual(perm, Array.from({length: 100}, (_, i) => i))
})
