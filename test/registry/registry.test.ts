import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import type {Config} from '@oclif/core'
import {builtinRegistry} from '../../src/builtins.js'
import {loadRegistry} from '../../src/registry/load.js'
import {PluginLoadError, Registry, UnknownEntryError} from '../../src/registry/registry.js'
import {exitCodeOf} from '../../src/core/errors.js'
import type {RegistryEntry} from '../../src/registry/types.js'

const loss = (name: string, extra: Partial<RegistryEntry> = {}): RegistryEntry => ({
  kind: 'loss',
  name,
  description: `test loss ${name}`,
  optionsSchema: {type: 'object', additionalProperties: false},
  load: async () => ({name}),
  ...extra,
})

describe('Registry', () => {
  it('records the plugin of each entry and loads implementations lazily', async () => {
    const r = new Registry()
    let loaded = 0
    r.scoped('plugin-a').register(loss('alpha', {load: async () => ++loaded}))
    assert.equal(loaded, 0)
    assert.equal(r.entry('loss', 'alpha').plugin, 'plugin-a')
    assert.equal(await r.load('loss', 'alpha'), 1)
    assert.deepEqual(r.warnings, [])
  })

  it('keeps the first of two entries with the same name and warns naming both plugins', () => {
    const r = new Registry()
    r.scoped('plugin-a').register(loss('dup'))
    r.scoped('plugin-b').register(loss('dup'))
    assert.equal(r.entry('loss', 'dup').plugin, 'plugin-a')
    assert.equal(r.warnings.length, 1)
    assert.match(r.warnings[0], /plugin plugin-b: loss "dup" is already registered by plugin-a/)
  })

  it('rejects entries of the wrong shape with a warning naming the plugin and the field', () => {
    const r = new Registry()
    const bad = [
      {kind: 'spaceship', name: 'x', description: 'd', load: async () => 1},
      {kind: 'loss', name: 'Bad Name', description: 'd', optionsSchema: {}, load: async () => 1},
      {kind: 'loss', name: 'no-schema', description: 'd', load: async () => 1},
      {kind: 'reader', name: 'no-load', description: 'd'},
      null,
    ] as unknown as RegistryEntry[]
    r.scoped('plugin-bad').register(...bad, loss('fine'))
    assert.equal(r.list().length, 1)
    assert.equal(r.warnings.length, 5)
    assert.ok(r.warnings.every((w) => w.startsWith('plugin plugin-bad: ignored entry')))
    assert.match(r.warnings[0], /\/kind: expected one of reader, loss/)
    assert.match(r.warnings[1], /\/name: expected a lower-case name/)
    assert.match(r.warnings[2], /\/optionsSchema: a loss must declare a JSON Schema/)
    assert.match(r.warnings[3], /\/load: expected a function/)
  })

  it('an error thrown by an entry’s load() names the plugin and the entry, keeps its cause, exits 1', async () => {
    const r = new Registry()
    const cause = new Error("Cannot find module 'onnxruntime-node'")
    r.scoped('codiemb-plugin-onnx').register(loss('onnx-loss', {load: async () => Promise.reject(cause)}))
    r.scoped('codiemb-plugin-sync').register({kind: 'reader', name: 'sync-reader', description: 'throws before a promise', load: () => {
      throw new TypeError('x is not a function')
    }})
    const error = await r.load('loss', 'onnx-loss').then(() => undefined, (e: unknown) => e)
    assert.ok(error instanceof PluginLoadError)
    assert.equal(error.message, `plugin codiemb-plugin-onnx: loss "onnx-loss" failed to load: Cannot find module 'onnxruntime-node'`)
    assert.equal(error.cause, cause)
    assert.equal(exitCodeOf(error), 1)
    // Every caller gets it: r.load, and entry.load() on what entry() and list() return.
    await assert.rejects(r.entry('reader', 'sync-reader').load(), /^PluginLoadError: plugin codiemb-plugin-sync: reader "sync-reader" failed to load: x is not a function$/)
    await assert.rejects(r.list('loss')[0]!.load(), PluginLoadError)
  })

  it('names the registered alternatives for an unknown entry', () => {
    const r = new Registry()
    r.scoped('p').register(loss('pearson'), loss('cosent'))
    assert.throws(
      () => r.entry('loss', 'pearsn'),
      (e: unknown) => e instanceof UnknownEntryError && /unknown loss "pearsn"; registered losss?: cosent, pearson/.test(e.message) && e.exitCode === 2,
    )
  })

  it('lists by kind, sorted by name', () => {
    const r = new Registry()
    r.scoped('p').register(loss('b'), loss('a'), {kind: 'reader', name: 'r', description: 'reader', load: async () => 1})
    assert.deepEqual(r.list('loss').map((e) => e.name), ['a', 'b'])
    assert.deepEqual(r.list().map((e) => e.kind), ['reader', 'loss', 'loss'])
  })
})

describe('loadRegistry (the codiemb:register hook)', () => {
  function fakePlugin(dir: string, name: string, body: string) {
    const file = join(dir, `${name}.mjs`)
    writeFileSync(file, body)
    return {name, root: dir, hooks: {'codiemb:register': [{target: `./${name}.mjs`, identifier: 'default'}]}}
  }

  it('calls every plugin hook, attributes entries, and turns a throwing or hanging hook into a warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-reg-'))
    const entry = `{kind: 'sampler', name: 'good-sampler', description: 'a sampler', optionsSchema: {type: 'object'}, load: async () => 42}`
    const plugins = [
      fakePlugin(dir, 'good-plugin', `export default async function ({registry}) { registry.register(${entry}) }`),
      fakePlugin(dir, 'throwing-plugin', `export default async function () { throw new Error('boom in hook') }`),
      fakePlugin(dir, 'hanging-plugin', `export default function () { return new Promise(() => {}) }`),
      {name: 'missing-file-plugin', root: dir, hooks: {'codiemb:register': [{target: './nope', identifier: 'default'}]}},
      {name: 'no-hook-plugin', root: dir, hooks: {}},
    ]
    const config = {getPluginsList: () => plugins} as unknown as Config
    const r = await loadRegistry(config, 300)
    assert.equal(r.entry('sampler', 'good-sampler').plugin, 'good-plugin')
    assert.equal(await r.load('sampler', 'good-sampler'), 42)
    assert.equal(r.warnings.length, 3, r.warnings.join('\n'))
    assert.match(r.warnings[0], /^plugin throwing-plugin: its codiemb:register hook failed: boom in hook/)
    assert.match(r.warnings[1], /^plugin hanging-plugin: .*timed out after 300 ms/)
    assert.match(r.warnings[2], /^plugin missing-file-plugin: .*hook file not found: \.\/nope/)
  })

  it('a hook that calls process.exit does not end the process: its plugin gets a warning, the others their entries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-reg-'))
    const entry = (name: string) => `{kind: 'sampler', name: '${name}', description: 'a sampler', optionsSchema: {type: 'object'}, load: async () => 1}`
    const plugins = [
      fakePlugin(dir, 'exiting-plugin', `export default function ({registry}) { registry.register(${entry('before-exit')}); process.exit(0) }`),
      fakePlugin(dir, 'swallowing-plugin', `export default async function () { try { process.exit(3) } catch {} }`),
      fakePlugin(dir, 'later-plugin', `export default async function ({registry}) { registry.register(${entry('after-exit')}) }`),
    ]
    const exit = process.exit
    const r = await loadRegistry({getPluginsList: () => plugins} as unknown as Config, 300)
    assert.equal(process.exit, exit, 'process.exit is restored')
    assert.deepEqual(r.warnings, [
      'plugin exiting-plugin: its codiemb:register hook failed: it called process.exit(0), which a hook must not do',
      'plugin swallowing-plugin: its codiemb:register hook failed: it called process.exit(3), which a hook must not do',
    ])
    assert.deepEqual(r.list('sampler').map((e) => `${e.name}@${e.plugin}`), ['after-exit@later-plugin', 'before-exit@exiting-plugin'])
  })

  it('registers the built-in backends through the same hook', async () => {
    const r = await builtinRegistry()
    assert.deepEqual(
      r.list('backend').map((e) => [e.name, e.plugin]),
      [
        ['cpu', 'codiemb'],
        ['tensorflow', 'codiemb'],
        ['torch', 'codiemb'],
      ],
    )
    assert.deepEqual(r.warnings, [])
  })
})
