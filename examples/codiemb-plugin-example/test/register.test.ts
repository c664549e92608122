import assert from 'node:assert/strict'
import {it} from 'node:test'
import {Registry, type LossModule, type SamplerModule} from 'codiemb'
import register from '../src/register.js'

it('registers cosine-mse and sequential without warnings, attributed to the plugin', async () => {
  const registry = new Registry()
  await register({registry: registry.scoped('codiemb-plugin-example')})
  assert.deepEqual(registry.warnings, [])
  assert.deepEqual(
    registry.list().map((e) => `${e.kind}:${e.name}:${e.plugin}`),
    ['loss:cosine-mse:codiemb-plugin-example', 'sampler:sequential:codiemb-plugin-example'],
  )
  const loss = (await registry.load<LossModule>('loss', 'cosine-mse')).create({scale: 3})
  assert.equal(loss.task, registry.entry('loss', 'cosine-mse').meta?.task)
  const sampler = (await registry.load<SamplerModule>('sampler', 'sequential')).create([{name: 'd', task: 'sts', size: 5}], {}, 0)
  assert.equal(sampler.batchSize('sts'), 32)
})
