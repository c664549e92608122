/**
 * mergeCheckpoints() with a stop request (MergeRequest.signal, aborted by the CLI on SIGINT or
 * SIGTERM): while hashing the inputs or between two tensors it fails with an InterruptedError,
 * leaving no output, no temporary directory, and an existing output (--force) as it was.
 */
import assert from 'node:assert/strict'
import {readdirSync, readFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {after, it} from 'node:test'
import {exitCodeOf, InterruptedError} from '../../src/core/errors.js'
import type {MergeProgressEvent} from '../../src/core/events.js'
import {mergeCheckpoints} from '../../src/merge/engine.js'
import {BUILTINS, shared} from '../helpers/env.js'
import {baseTensors, noise, perturbed, tempDir, writeCheckpoint} from './checkpoints.js'

const root = tempDir('merge-stop')
after(() => rmSync(root, {recursive: true, force: true}))

it('stops while hashing and between tensors: InterruptedError, nothing written, an existing output kept', async (t) => {
  const models = shared(t, 'fixtures', 'models')
  if (!models) return
  const base = await baseTensors(models)
  const ckpt = (name: string, seed: number) => writeCheckpoint(models, join(root, name), perturbed(base, (n, size) => noise(size, seed + n.length).map((x) => 0.01 * x)))
  const checkpoints = [await ckpt('a', 1), await ckpt('b', 2)]
  const out = join(root, 'merged')
  const merge = (stopWhen: (e: MergeProgressEvent) => boolean, signal = new AbortController()) =>
    mergeCheckpoints({
      method: 'soup',
      checkpoints,
      out,
      force: true,
      registry: BUILTINS,
      signal: signal.signal,
      onEvent: (e) => stopWhen(e) && signal.abort(new InterruptedError('SIGTERM')),
    }).then(() => undefined, (e: unknown) => e)

  for (const phase of ['hash', 'merge'] as const) {
    const error = await merge((e) => e.phase === phase && e.done === 1)
    assert.ok(error instanceof InterruptedError, `${phase}: ${String(error)}`)
    assert.equal(exitCodeOf(error), 143)
    assert.deepEqual(readdirSync(root).sort(), ['a', 'b'], `${phase}: no output, no temporary`)
  }
  assert.equal(await merge(() => false), undefined)
  // merge.json carries the time of its merge: which output is in place.
  const written = readFileSync(join(out, 'merge.json'), 'utf8')
  await new Promise((resolve) => setTimeout(resolve, 5))
  // With --force over an existing output: interrupted after the last tensor, the old output stays.
  const last = await merge((e) => e.phase === 'merge' && e.done === e.total)
  assert.ok(last instanceof InterruptedError)
  assert.deepEqual(readdirSync(root).sort(), ['a', 'b', 'merged'])
  assert.equal(readFileSync(join(out, 'merge.json'), 'utf8'), written)
})
