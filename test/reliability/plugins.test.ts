/**
 * Badly behaved plugins against the real CLI (bin/run.js, in a child process): plugins linked into
 * a temporary oclif data directory (CODIEMB_DATA_DIR), as `codiemb plugins link` would. A hook that
 * leaves a timer, hangs, or calls process.exit, and an entry whose load() throws, must neither hang
 * the CLI nor swallow its output, and every failure names its plugin.
 */
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {runCli} from '../helpers/cli.js'

const root = mkdtempSync(join(tmpdir(), 'codiemb-plugins-'))
after(() => rmSync(root, {recursive: true, force: true}))

const sampler = (name: string) => `{kind: 'sampler', name: '${name}', description: 'a test sampler', optionsSchema: {type: 'object'}, load: async () => ({})}`

/** A data directory whose package.json links one plugin per hook body; returns the CLI's environment. */
function dataDir(name: string, hooks: Record<string, string>): NodeJS.ProcessEnv {
  const dir = join(root, name)
  const plugins = Object.entries(hooks).map(([plugin, body]) => {
    const pluginRoot = join(dir, 'plugins', plugin)
    mkdirSync(pluginRoot, {recursive: true})
    writeFileSync(join(pluginRoot, 'package.json'), JSON.stringify({name: plugin, version: '1.0.0', type: 'module', oclif: {hooks: {'codiemb:register': './register.js'}}}))
    writeFileSync(join(pluginRoot, 'register.js'), body)
    return {type: 'link', name: plugin, root: pluginRoot}
  })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({private: true, oclif: {schema: 1, plugins}}))
  return {CODIEMB_DATA_DIR: dir, CODIEMB_CACHE_DIR: join(dir, 'cache'), CODIEMB_CONFIG_DIR: join(dir, 'config')}
}

/** Runs the CLI and measures how long it took; a CLI that does not exit is killed after 30 s (status null). */
function timed(args: string[], env: NodeJS.ProcessEnv) {
  const started = performance.now()
  const r = runCli(args, {env, timeoutMs: 30_000})
  return {...r, seconds: (performance.now() - started) / 1000}
}

describe('plugins that misbehave (the real CLI)', () => {
  it('a hook that leaves a timer running: the command prints its output and exits', () => {
    const env = dataDir('timer', {'timer-plugin': `export default async function ({registry}) { setInterval(() => {}, 1000); registry.register(${sampler('timer-sampler')}) }`})
    const r = timed(['list', '--kind', 'sampler', '--json'], env)
    assert.equal(r.status, 0, r.stderr)
    assert.ok(r.json.result.entries.some((e: {name: string; plugin: string}) => e.name === 'timer-sampler' && e.plugin === 'timer-plugin'), r.stdout)
    assert.ok(r.seconds < 20, `took ${r.seconds.toFixed(1)} s`)
  })

  it('a hook that calls process.exit(0): the output is there, with a warning naming the plugin; the other plugins load', () => {
    const env = dataDir('exit', {
      'exiting-plugin': `export default function () { process.exit(0) }`,
      'fine-plugin': `export default function ({registry}) { registry.register(${sampler('fine-sampler')}) }`,
    })
    const r = timed(['list', '--kind', 'sampler', '--json'], env)
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.json.warnings, ['plugin exiting-plugin: its codiemb:register hook failed: it called process.exit(0), which a hook must not do'])
    assert.ok(r.json.result.entries.some((e: {name: string}) => e.name === 'fine-sampler'))
    const human = timed(['list', '--kind', 'sampler'], env)
    assert.equal(human.status, 0)
    assert.match(human.stdout, /fine-sampler/)
    assert.match(human.stderr, /Warning: plugin exiting-plugin: .*process\.exit\(0\)/)
  })

  it('a hook that never finishes is cut off at the time limit (CODIEMB_HOOK_TIMEOUT_MS) with a warning naming the plugin', () => {
    const env = dataDir('hang', {'hanging-plugin': `export default function () { setInterval(() => {}, 1000); return new Promise(() => {}) }`})
    const r = timed(['list', '--kind', 'sampler', '--json'], {...env, CODIEMB_HOOK_TIMEOUT_MS: '400'})
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.json.warnings, ['plugin hanging-plugin: its codiemb:register hook failed: timed out after 400 ms'])
    assert.ok(r.seconds < 20, `took ${r.seconds.toFixed(1)} s`)
  })

  it('an entry whose load() throws: the command fails with exit 1 and a message naming the plugin and the entry', () => {
    const merger = `{kind: 'merger', name: 'broken-merger', description: 'fails to load', optionsSchema: {type: 'object'}, load: async () => { throw new Error("Cannot find module 'fast-merge-native'") }}`
    const env = dataDir('load', {'broken-plugin': `export default function ({registry}) { registry.register(${merger}) }`})
    const r = timed(['merge', '--method', 'broken-merger', join(root, 'a'), join(root, 'b'), '--out', join(root, 'merged'), '--json'], env)
    assert.equal(r.status, 1, r.stdout + r.stderr)
    assert.equal(r.json.name, 'PluginLoadError')
    assert.equal(r.json.message, `plugin broken-plugin: merger "broken-merger" failed to load: Cannot find module 'fast-merge-native'`)
  })
})
