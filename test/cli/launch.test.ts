import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {test} from 'node:test'
import {launchLocalRanks} from '../../src/cli/launch.js'
import {CodiembError, ExecutionError, InterruptedError} from '../../src/core/errors.js'

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'launch-child.js')

test('--nproc-per-node: every rank gets torchrun\'s variables, one free port and its share of threads; rank 0 answers', async () => {
  const {envelope, ranks} = await launchLocalRanks({nproc: 2, argv: ['ok'], json: true, timeoutSeconds: 30, bin})
  assert.deepEqual(ranks.map((r) => r.code), [0, 0])
  const result = envelope!.result as Record<string, unknown>
  assert.equal(result.rank, 0)
  assert.equal(result.worldSize, '2')
  assert.match(String(result.master), /^127\.0\.0\.1:\d+$/)
  assert.ok(Number(result.threads) >= 1)
})

test('a rank that fails makes the launcher exit non-zero naming it, and kills the ranks still waiting', async () => {
  const started = Date.now()
  await assert.rejects(
    launchLocalRanks({nproc: 2, argv: ['fail'], json: false, timeoutSeconds: 30, graceSeconds: 1, bin, notify: () => {}}),
    (e: Error) => e instanceof ExecutionError && /^rank 1 of 2 failed first \(exit code 3\): Error: rank 1 broke on purpose; then rank 0 \(killed by SIGKILL\)/.test(e.message),
  )
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`)
})

test('bad input found by the first rank to fail (exit 2) makes the launcher exit 2, naming the rank', async () => {
  await assert.rejects(
    launchLocalRanks({nproc: 2, argv: ['usage'], json: false, timeoutSeconds: 30, graceSeconds: 5, bin, notify: () => {}}),
    (e: Error) =>
      e instanceof CodiembError && !(e instanceof ExecutionError) && e.exitCode === 2 && /^rank 1 of 2 failed first \(exit code 2\): Error: data\.arrow: no "text" column; then rank 0 \(exit code 1\)/.test(e.message),
  )
})

test('Ctrl-C on the launcher is passed to every rank', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-launch-'))
  try {
    const controller = new AbortController()
    setTimeout(() => controller.abort(new InterruptedError('SIGINT', 'interrupted by SIGINT')), 1500)
    await assert.rejects(launchLocalRanks({nproc: 2, argv: ['signal', dir], json: false, timeoutSeconds: 30, bin, signal: controller.signal, notify: () => {}}), InterruptedError)
    assert.ok(existsSync(join(dir, 'got-0')) && existsSync(join(dir, 'got-1')), 'both ranks got SIGINT')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
