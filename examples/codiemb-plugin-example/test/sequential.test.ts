import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {SamplerDataset} from 'codiemb'
import {create} from '../src/sequential.js'

describe('sequential', () => {
  const datasets: SamplerDataset[] = [
    {name: 'ir-a', task: 'ir', size: 10},
    {name: 'sts-b', task: 'sts', size: 7},
  ]

  it('makes single-dataset batches of the task batch size, in order, using every row once', () => {
    const sampler = create(datasets, {batchSizes: {ir: 4, sts: 3}})
    const plan = sampler.epochPlan()
    assert.deepEqual(
      plan.map((b) => [b.parts.length, b.parts[0]!.dataset, b.parts[0]!.rows.length]),
      [[1, 0, 4], [1, 0, 4], [1, 0, 2], [1, 1, 3], [1, 1, 3], [1, 1, 1]],
    )
    const seen = datasets.map((d) => new Array<number>(d.size).fill(0))
    for (const b of plan) for (const r of b.parts[0]!.rows) seen[b.parts[0]!.dataset]![r]!++
    assert.ok(seen.every((rows) => rows.every((n) => n === 1)))
    assert.equal(sampler.batchSize('sts'), 3)
  })

  it('resumes from a saved position and drops short batches when asked', () => {
    const a = create(datasets, {batchSizes: {ir: 4, sts: 3}})
    a.next()
    a.next()
    const b = create(datasets, {batchSizes: {ir: 4, sts: 3}})
    b.setState(a.getState())
    assert.deepEqual(b.next(), a.next())
    assert.throws(() => b.setState({epoch: 0, position: 99, epochRng: 0}), /cannot resume at batch 99/)
    assert.equal(create(datasets, {batchSizes: {ir: 4, sts: 3}, dropLast: true}).epochPlan().length, 4)
  })
})
