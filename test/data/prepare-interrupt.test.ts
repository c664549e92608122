/**
 * prepare() with a stop request (PrepareOptions.signal, aborted by the CLI on SIGINT/SIGTERM): it
 * stops within a row, fails with an InterruptedError, and leaves the output directory exactly as it
 * was, its staging folder removed.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import {parse} from 'yaml'
import {exitCodeOf, InterruptedError} from '../../src/core/errors.js'
import {liveTempPaths} from '../../src/core/fs-atomic.js'
import {prepare, type PrepareConfig, type PrepareEvent} from '../../src/data/prepare.js'
import {BUILTINS, REPO_ROOT} from '../helpers/env.js'

const FAQ = join(REPO_ROOT, 'examples', 'faq')
const config = (): PrepareConfig => parse(readFileSync(join(FAQ, 'prepare.yaml'), 'utf8')).prepare

/** Every file under `dir` (relative) with its content. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const entry of readdirSync(dir, {recursive: true, withFileTypes: true}))
    if (entry.isFile()) out[join(entry.parentPath, entry.name).slice(dir.length + 1)] = readFileSync(join(entry.parentPath, entry.name), 'base64')
  return out
}

test('an abort in the middle of a run: InterruptedError, the previous output untouched, no staging folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-prepare-stop-'))
  try {
    const out = join(dir, 'prepared')
    // A previous, complete output of the first dataset alone.
    await prepare({datasets: config().datasets.slice(0, 1)}, {registry: BUILTINS, dataRoot: FAQ, out})
    const before = snapshot(out)

    const controller = new AbortController()
    const events: PrepareEvent[] = []
    const onEvent = (e: PrepareEvent) => {
      events.push(e)
      // The first dataset is written (to staging), the second has started: stop there.
      if (e.type === 'dataset-start' && e.index === 1) controller.abort(new InterruptedError('SIGINT'))
    }
    const temps = new Set(liveTempPaths())
    const error = await prepare(config(), {registry: BUILTINS, dataRoot: FAQ, out, onEvent, signal: controller.signal, overwrite: true}).then(() => undefined, (e: unknown) => e)
    assert.ok(error instanceof InterruptedError, String(error))
    assert.equal(exitCodeOf(error), 130)
    assert.deepEqual(events.map((e) => e.type), ['dataset-start', 'dataset-done', 'dataset-start'])
    assert.deepEqual(snapshot(out), before, 'the output is as it was')
    assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('.') && n !== '.codiemb-output.json'), [], 'no staging folder (only codiemb\'s output marker)')
    assert.deepEqual(liveTempPaths().filter((p) => !temps.has(p)), [], 'no temporary left to the exit sweep')

    // The same configuration, not interrupted, then writes everything.
    const done = await prepare(config(), {registry: BUILTINS, dataRoot: FAQ, out, signal: new AbortController().signal, overwrite: true})
    assert.deepEqual(done.datasets.map((d) => d.name), ['faq-train', 'faq', 'faq-sts'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
