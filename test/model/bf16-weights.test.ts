/**
 * --precision bf16 weights (src/tensor/storage.ts): on the torch backend a BF16 checkpoint loads as
 * bfloat16 storage (half the bytes of float32) computing the same values as its float32 copy, trains
 * with float32 masters and moments, and saves BF16 again; the cpu backend refuses bf16 (exit 2).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {selectBackend, BackendUnavailableError} from '../../src/tensor/backend.js'
import {CodiembError} from '../../src/core/errors.js'
import {shared, BUILTINS, REPO_ROOT, TEST_BACKEND} from '../helpers/env.js'

test('the cpu backend refuses --precision bf16 with an input error (exit 2) that names the torch backend', async () => {
  const error = await selectBackend(BUILTINS, 'cpu', {precision: 'bf16'}).then(() => undefined, (e: unknown) => e)
  assert.ok(error instanceof BackendUnavailableError, `expected BackendUnavailableError, got ${String(error)}`)
  assert.ok(error instanceof CodiembError)
  assert.equal((error as CodiembError).exitCode, 2)
  assert.match((error as Error).message, /cpu backend computes in float32 only; --precision bf16 needs the torch backend/)
})

test('torch --precision bf16: a BF16 checkpoint stays bf16 in memory, trains with float32 masters and saves BF16', async (t) => {
  if (TEST_BACKEND !== 'torch') return t.skip('torch backend only (run with --backend torch)')
  const tokenizerDir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!tokenizerDir) return
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-bf16-'))
  try {
    const child = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'test', 'helpers', 'bf16-child.js'), JSON.stringify({tokenizerDir, dir})], {encoding: 'utf8'})
    assert.equal(child.status, 0, child.stderr)
    const out = JSON.parse(child.stdout.trim().split('\n').pop()!)
    // Loaded: every weight bfloat16, exactly half the float32 copy's bytes, and the same outputs.
    assert.deepEqual(out.f32Storage.dtypes, ['float32'])
    assert.deepEqual(out.loaded.dtypes, ['bfloat16'])
    assert.equal(out.loaded.bytes * 2, out.f32Storage.bytes)
    assert.equal(out.maxOutDiff, 0, 'kernels must see the same float32 values from bf16 storage')
    // Trained: the loss falls, trainable weights and AdamW moments are float32, no tensor leaks per step.
    assert.ok(out.losses.at(-1) < out.losses[0] - 0.05, `loss did not fall: ${out.losses.join(', ')}`)
    assert.deepEqual(out.trained.dtypes, ['float32'])
    assert.deepEqual(out.moments, ['float32'])
    assert.equal(new Set(out.tensorCounts.slice(1)).size, 1, `tensor count changes across steps: ${out.tensorCounts}`)
    // Saved: BF16 in the header, 2 bytes a value packed back to back, round-to-nearest-even of the masters.
    assert.deepEqual(out.savedDtypes, ['BF16'])
    assert.equal(out.layoutOk, true)
    assert.equal(out.roundingErrors, 0)
    assert.equal(out.configDtype, 'bfloat16')
    assert.equal((8 + out.headerLen) % 8, 0, 'the data buffer starts 8-byte aligned')
    assert.equal(out.fileBytes, 8 + out.headerLen + out.loaded.bytes)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
