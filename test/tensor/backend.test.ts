import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {Registry} from '../../src/registry/registry.js'
import {builtinRegistry} from '../../src/builtins.js'
import {BackendUnavailableError, selectBackend} from '../../src/tensor/backend.js'

function fakeBackend(name: string, available: boolean, calls: string[]) {
  return {
    kind: 'backend' as const,
    name,
    description: `fake ${name}`,
    load: async () => ({
      probe: async () => ({name, available, reason: available ? `${name} ready` : `${name} missing`}),
      init: async () => {
        calls.push(name)
        await import('@tensorflow/tfjs-backend-cpu')
        return 'cpu'
      },
    }),
  }
}

describe('tensor backend selection', () => {
  it('auto prefers tensorflow, then torch, then cpu, and says why', async () => {
    const calls: string[] = []
    const r = new Registry()
    r.scoped('test').register(fakeBackend('cpu', true, calls), fakeBackend('torch', true, calls), fakeBackend('tensorflow', false, calls))
    const s = await selectBackend(r, 'auto')
    assert.equal(s.name, 'torch')
    assert.deepEqual(calls, ['torch'])
    assert.match(s.reason, /auto: chose torch \(torch ready\); skipped tensorflow: tensorflow missing/)
  })

  it('auto falls back to cpu on a machine with neither tfjs-node nor the torch addon', async () => {
    const r = await builtinRegistry()
    const s = await selectBackend(r, 'auto')
    const tfAvailable = s.probes.find((p) => p.name === 'tensorflow')!.available
    const torchAvailable = s.probes.find((p) => p.name === 'torch')!.available
    if (!tfAvailable && !torchAvailable) assert.equal(s.name, 'cpu')
    assert.equal(tf.getBackend(), s.name)
    assert.equal(tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0], 5)
  })

  it('a named backend that is unavailable is an error carrying the reason; an unknown name lists the known ones', async () => {
    const calls: string[] = []
    const r = new Registry()
    r.scoped('test').register(fakeBackend('cpu', true, calls), fakeBackend('torch', false, calls))
    await assert.rejects(selectBackend(r, 'torch'), (e: unknown) => e instanceof BackendUnavailableError && /torch is not available: torch missing/.test(e.message))
    await assert.rejects(selectBackend(r, 'quantum'), /unknown tensor backend "quantum"; known: auto, cpu, torch/)
    assert.deepEqual(calls, [])
  })

  it('CODIEMB_BACKEND is the default request', async () => {
    const calls: string[] = []
    const r = new Registry()
    r.scoped('test').register(fakeBackend('cpu', true, calls), fakeBackend('torch', true, calls))
    const before = process.env.CODIEMB_BACKEND
    process.env.CODIEMB_BACKEND = 'cpu'
    try {
      assert.equal((await selectBackend(r)).name, 'cpu')
    } finally {
      if (before === undefined) delete process.env.CODIEMB_BACKEND
      else process.env.CODIEMB_BACKEND = before
    }
  })
})
