import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it, type TestContext} from 'node:test'
import {REPO_ROOT, shared} from '../helpers/env.js'
import {baseTensors, noise, perturbed, readTensors, tempDir, writeCheckpoint} from '../merge/checkpoints.js'

const root = tempDir('merge-cli')
after(() => rmSync(root, {recursive: true, force: true}))

/**
 * Runs `codiemb merge ARGS` in a child process through the command class itself (oclif's
 * Command.run), so the test does not depend on oclif.manifest.json listing the command yet.
 */
function merge(args: string[]): {status: number | null; json: any; stdout: string; stderr: string} {
  const script = `const {default: Merge} = await import(${JSON.stringify(join(REPO_ROOT, 'dist/src/commands/merge.js'))}); await Merge.run(process.argv.slice(1), ${JSON.stringify(REPO_ROOT)})`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {cwd: root, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  let json: unknown
  try {
    json = JSON.parse(r.stdout)
  } catch {
    /* not JSON */
  }
  return {status: r.status, json, stdout: r.stdout, stderr: r.stderr}
}

let fixtures: Promise<{base: string; a: string; b: string}> | undefined
function setup(t: TestContext) {
  const models = shared(t, 'fixtures', 'models')
  if (!models) return undefined
  fixtures ??= (async () => {
    const base = await baseTensors(models)
    return {
      base: await writeCheckpoint(models, join(root, 'base'), base, false),
      a: await writeCheckpoint(models, join(root, 'a'), perturbed(base, (name, n) => noise(n, name.length).map((x) => 0.01 * x))),
      b: await writeCheckpoint(models, join(root, 'b'), perturbed(base, (name, n) => noise(n, 7 * name.length).map((x) => 0.03 * x))),
    }
  })()
  return fixtures
}

describe('codiemb merge (command)', () => {
  it('merges with --json: the envelope result is merge.json; options, filters and positional checkpoints parse', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const out = join(root, 'out-delta')
    const r = merge(['--base', fx.base, '--include', '^encoder\\.', fx.a, fx.b, '--options', '{"gamma":2}', '--out', out, '--json'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.equal(r.json.status, 0)
    const report = r.json.result
    assert.deepEqual(report, JSON.parse(readFileSync(join(out, 'merge.json'), 'utf8')))
    assert.equal(report.method, 'delta')
    assert.equal(report.options.gamma, 2)
    assert.deepEqual(report.checkpoints.map((c: {path: string}) => c.path), [fx.a, fx.b])
    assert.deepEqual(report.selection.include, ['^encoder\\.'])
    assert.equal(report.summary.merged, 32)
    assert.ok(existsSync(join(out, 'modules.json')))
    assert.ok(report.summary.meanWeights[1] > report.summary.meanWeights[0], 'checkpoint b moved 3× more')
  })

  it('reads the merge section of a config file; flags override it', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const config = join(root, 'merge.yaml')
    writeFileSync(config, `merge:\n  method: task-arithmetic\n  base: ${fx.base}\n  checkpoints: [${fx.a}]\n  out: ${join(root, 'out-config')}\n  options: {lambda: 0}\n`)
    const r = merge(['--config', config, '--json'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.method, 'task-arithmetic')
    const got = await readTensors(join(root, 'out-config'))
    const base = await readTensors(fx.base)
    assert.deepEqual(Array.from(got.get('encoder.layer.0.output.dense.bias')!.data as Float32Array), Array.from(base.get('encoder.layer.0.output.dense.bias')!.data as Float32Array))
    const over = merge(['--config', config, '--method', 'soup', '--options', '{}', '--out', join(root, 'out-config-soup'), '--json'])
    assert.equal(over.status, 0, over.stdout + over.stderr)
    assert.equal(over.json.result.method, 'soup')
  })

  it('usage errors exit 2: unknown method lists the registered ones; bad --options; bad config section; no checkpoints', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const unknown = merge(['--method', 'average', fx.a, '--out', join(root, 'x'), '--json'])
    assert.equal(unknown.status, 2)
    assert.match(unknown.json.message, /unknown merger "average"; registered mergers: dare, delta, soup, task-arithmetic, ties/)
    const badJson = merge(['--base', fx.base, fx.a, '--out', join(root, 'x'), '--options', '{gamma:2}', '--json'])
    assert.equal(badJson.status, 2)
    assert.match(badJson.json.message, /--options: not valid JSON/)
    const badOption = merge(['--base', fx.base, fx.a, '--out', join(root, 'x'), '--options', '{"gamma":"2"}', '--json'])
    assert.equal(badOption.status, 2)
    assert.match(badOption.json.message, /\/gamma: expected number >= 0, got "2"/)
    const config = join(root, 'bad.json')
    writeFileSync(config, JSON.stringify({merge: {method: 'soup', checkpoint: [fx.a]}}))
    const badConfig = merge(['--config', config, '--json'])
    assert.equal(badConfig.status, 2)
    assert.match(badConfig.json.message, /\/merge\/checkpoint: unknown key/)
    const none = merge(['--method', 'soup', '--out', join(root, 'x'), '--json'])
    assert.equal(none.status, 2)
    assert.match(none.json.message, /no checkpoints to merge/)
    const ref = merge(['--method', 'soup', fx.a, '--copy-from', 'first', '--out', join(root, 'x'), '--json'])
    assert.equal(ref.status, 2)
    assert.match(ref.json.message, /--copy-from: expected "base" or a checkpoint number/)
    assert.equal(existsSync(join(root, 'x')), false)
  })
})
