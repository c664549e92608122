import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {runCli} from '../helpers/cli.js'

function tmp(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'codiemb-cli-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text)
  return d
}

describe('codiemb CLI conventions', () => {
  it('--help loads no tensor, Arrow or native module', () => {
    const d = tmp({
      'deny.mjs': `export async function resolve(spec, ctx, next) {
  if (/@tensorflow|apache-arrow|tokenizers|\\.node$/.test(spec)) throw new Error('heavy import during --help: ' + spec)
  return next(spec, ctx)
}`,
      'hook.mjs': `import {register} from 'node:module'; import {pathToFileURL} from 'node:url'; register(pathToFileURL(${JSON.stringify(
        '',
      )} + process.env.DENY_HOOK).href)`,
    })
    const r = runCli(['--help'], {nodeArgs: ['--import', join(d, 'hook.mjs')], env: {DENY_HOOK: join(d, 'deny.mjs')}})
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /USAGE/)
    for (const cmd of ['list', 'doctor']) assert.match(r.stdout, new RegExp(`\\n  ${cmd} `))
    // the deny hook really is active: a command that loads tfjs must fail under it
    const heavy = runCli(['doctor', '--json'], {nodeArgs: ['--import', join(d, 'hook.mjs')], env: {DENY_HOOK: join(d, 'deny.mjs')}})
    assert.match(heavy.stdout + heavy.stderr, /heavy import during --help/)
  })

  it('list --json prints one envelope with every built-in entry and its plugin', () => {
    const r = runCli(['list', '--json'])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.json.status, 0)
    assert.ok(Array.isArray(r.json.warnings))
    const backends = r.json.result.entries.filter((e: {kind: string}) => e.kind === 'backend')
    assert.deepEqual(backends.map((e: {name: string; plugin: string}) => `${e.name}@${e.plugin}`), ['cpu@codiemb', 'tensorflow@codiemb', 'torch@codiemb'])
  })

  it('list --kind rejects an unknown kind as a usage error (exit 2) with a JSON error envelope', () => {
    const r = runCli(['list', '--kind', 'spaceship', '--json'])
    assert.equal(r.status, 2)
    assert.equal(r.json.status, 2)
    assert.equal(r.json.exitCode, 2)
    assert.match(r.json.message, /spaceship/)
    assert.ok(typeof r.json.name === 'string')
  })

  it('doctor --json reports all three backends with a reason each', () => {
    const r = runCli(['doctor', '--json'])
    assert.equal(r.status, 0, r.stderr)
    const byName = Object.fromEntries(r.json.result.backends.map((b: {name: string}) => [b.name, b]))
    assert.deepEqual(Object.keys(byName).sort(), ['cpu', 'tensorflow', 'torch'])
    assert.equal(byName.cpu.available, true)
    for (const b of Object.values(byName) as {reason: string}[]) assert.ok(b.reason.length > 10)
    if (!byName.tensorflow.available) assert.match(byName.tensorflow.reason, /tfjs-node-gpu not installed|failed to initialise/)
    if (!byName.torch.available) assert.match(byName.torch.reason, /libtorch|addon/)
    assert.equal(r.json.result.node.ok, true)
  })

  it('an invalid config prints every problem with its path and exits 2', () => {
    const d = tmp({'bad.yaml': 'seed: -1\nbackend:\n  precision: fp8\nextra: true\n'})
    const human = runCli(['config', 'print', '--config', join(d, 'bad.yaml')])
    assert.equal(human.status, 2)
    assert.match(human.stderr, /invalid configuration in .*bad\.yaml \(3 problems\)/)
    assert.match(human.stderr, /\/seed: expected integer >= 0, got -1/)
    assert.match(human.stderr, /\/backend\/precision: expected one of "fp32", "tf32", "bf16", got "fp8"/)
    assert.match(human.stderr, /\/extra: unknown key/)
    const json = runCli(['config', 'print', '--config', join(d, 'bad.yaml'), '--json'])
    assert.equal(json.status, 2)
    assert.equal(json.json.name, 'ConfigError')
    assert.equal(json.json.data.problems.length, 3)
  })

  it('config print resolves $import and prints the merged configuration', () => {
    const d = tmp({'base.yaml': 'seed: 5\nbackend:\n  name: cpu\n', 'run.yaml': '$import: base.yaml\nbackend:\n  precision: tf32\n'})
    const r = runCli(['config', 'print', '--config', join(d, 'run.yaml'), '--json'])
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.json.result.config, {seed: 5, backend: {name: 'cpu', precision: 'tf32'}})
    const human = runCli(['config', 'print', '--config', join(d, 'run.yaml')])
    assert.match(human.stdout, /precision: tf32/)
  })

  it('honours NO_COLOR even where colour is forced', () => {
    const coloured = runCli(['doctor'], {env: {FORCE_COLOR: '1', NO_COLOR: ''}})
    assert.match(coloured.stdout, /\u001b\[/)
    const plain = runCli(['doctor'], {env: {FORCE_COLOR: '1', NO_COLOR: '1'}})
    assert.equal(plain.status, 0, plain.stderr)
    assert.doesNotMatch(plain.stdout, /\u001b\[/)
  })

  it('--events creates a missing folder, and an unwritable path is a usage error naming it', () => {
    const d = tmp({afile: ''})
    const bad = runCli(['quickstart', '--events', join(d, 'afile', 'x.ndjson'), '--json'])
    assert.equal(bad.status, 2)
    assert.match(bad.json.message, /--events .*afile\/x\.ndjson: cannot write there/)
    const ok = runCli(['embed', '--model', join(d, 'no-model'), '--input', join(d, 'afile'), '--out', join(d, 'e.arrow'), '--events', join(d, 'runs', 'a', 'ev.ndjson')])
    assert.equal(ok.status, 2)
    assert.ok(existsSync(join(d, 'runs', 'a', 'ev.ndjson')), 'the events folder was created')
  })

  it('the root help has examples, and each one (but the minutes-long quickstart) runs as written', async () => {
    const help = runCli(['--help'])
    assert.match(help.stdout, /\nEXAMPLES\n/)
    const {ROOT_EXAMPLES} = await import('../../src/cli/help.js')
    const d = tmp({})
    for (const entry of ROOT_EXAMPLES) {
      const example = (typeof entry === 'string' ? entry : entry.command).replace(/^<%= config\.bin %> /, '')
      assert.ok(help.stdout.includes(`$ codiemb ${example}`), example)
      if (example.startsWith('quickstart')) continue // test/quickstart runs it with fewer steps
      const args = example.split(' ').map((a) => (a === 'prepared' ? join(d, 'prepared') : a))
      const r = runCli(args)
      assert.equal(r.status, 0, `codiemb ${example}: ${r.stderr}`)
    }
  })

  it('an unknown command exits 2', () => {
    const r = runCli(['no-such-command'])
    assert.equal(r.status, 2)
    assert.match(r.stderr, /not found/)
  })

  it('the committed oclif.manifest.json lists every command', () => {
    const manifest = JSON.parse(readFileSync(join(process.cwd(), 'oclif.manifest.json'), 'utf8'))
    for (const id of ['list', 'doctor', 'config:print']) assert.ok(manifest.commands[id], `manifest lacks ${id}`)
  })
})
