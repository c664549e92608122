/** The one JSON Schema validator (src/config/validate.ts): who may build one, defaults, and the error format. */
import assert from 'node:assert/strict'
import {readFileSync, readdirSync, statSync} from 'node:fs'
import {join, relative, sep} from 'node:path'
import {describe, it} from 'node:test'
import {CodiembError} from '../../src/core/errors.js'
import {validateOptions, withoutDefaults} from '../../src/config/validate.js'
import {REPO_ROOT} from '../helpers/env.js'

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return /\.(ts|mts|cts|js|mjs|cjs)$/.test(name) ? [path] : []
  })
}

function thrown(f: () => unknown): Error {
  try {
    f()
  } catch (error) {
    return error as Error
  }
  assert.fail('expected an error')
}

const lossOptions = {
  type: 'object',
  additionalProperties: false,
  properties: {
    temperature: {type: 'number', exclusiveMinimum: 0, default: 0.05},
    cache: {type: 'object', default: {}, properties: {chunkSize: {type: 'integer', minimum: 1, default: 16}}},
  },
}

describe('one options validator', () => {
  it('src/config/validate.ts is the only module of src/ that imports Ajv', () => {
    const importsAjv = /(from\s*|import\s*\(\s*|require\s*\(\s*)['"]ajv(\/[^'"]*)?['"]/
    const users = sourceFiles(join(REPO_ROOT, 'src'))
      .filter((file) => importsAjv.test(readFileSync(file, 'utf8')))
      .map((file) => relative(REPO_ROOT, file).split(sep).join('/'))
    assert.deepEqual(users, ['src/config/validate.ts'])
  })

  it('returns a copy with the defaults filled in, nested ones too, and leaves the input as it was', () => {
    const input = {temperature: 0.1}
    const out = validateOptions(lossOptions, input, {pointer: '/train/tasks/ir/losses/0/options', subject: 'options for loss "pro"'})
    assert.deepEqual(out, {temperature: 0.1, cache: {chunkSize: 16}})
    assert.deepEqual(input, {temperature: 0.1})
    const nested = {cache: {}}
    assert.deepEqual(validateOptions(lossOptions, nested, {pointer: '', subject: 'x'}), {cache: {chunkSize: 16}, temperature: 0.05})
    assert.deepEqual(nested, {cache: {}})
    // Each call gets its own default objects.
    const first = validateOptions<{cache: {chunkSize: number}}>(lossOptions, {}, {pointer: '', subject: 'x'})
    first.cache.chunkSize = 99
    assert.deepEqual(validateOptions(lossOptions, {}, {pointer: '', subject: 'x'}), {temperature: 0.05, cache: {chunkSize: 16}})
  })

  it('without a schema, returns a copy unchecked', () => {
    const input = {anything: [1]}
    const out = validateOptions(undefined, input, {pointer: '', subject: 'x'})
    assert.deepEqual(out, input)
    assert.notEqual(out, input)
  })

  it('reports every problem as "pointer: expected …, got …", the pointer naming where the value sits', () => {
    const e = thrown(() =>
      validateOptions(lossOptions, {temperature: 'x', tau: 1, cache: {chunkSize: 0}}, {pointer: '/train/tasks/ir/losses/0/options', subject: 'options for loss "pro"'}),
    )
    assert.ok(e instanceof CodiembError)
    assert.equal(e.exitCode, 2)
    assert.equal(e.name, 'ConfigError')
    const problems = [
      '/train/tasks/ir/losses/0/options/tau: unknown key (allowed here: temperature, cache)',
      '/train/tasks/ir/losses/0/options/temperature: expected number > 0, got "x"',
      '/train/tasks/ir/losses/0/options/cache/chunkSize: expected integer >= 1, got 0',
    ]
    assert.deepEqual([...(e.data as {problems: string[]}).problems].sort(), [...problems].sort())
    assert.equal(e.message.split('\n')[0], 'invalid options for loss "pro" (3 problems):')
    for (const p of problems) assert.ok(e.message.includes(`\n  ${p}`), p)
  })

  it('names the value itself when it is wrong as a whole, and without a pointer reports relative to it', () => {
    const whole = thrown(() => validateOptions(lossOptions, 5, {pointer: '/train/sampler/options', subject: 'options for sampler "dynamic"'}))
    assert.match(whole.message, /^invalid options for sampler "dynamic" \(1 problem\):\n {2}\/train\/sampler\/options: expected object, got 5$/)
    const bare = thrown(() => validateOptions(lossOptions, {temperature: 0}, {pointer: '', subject: 'options for merger "delta"'}))
    assert.match(bare.message, /\n {2}\/temperature: expected number > 0, got 0$/)
    const root = thrown(() => validateOptions(lossOptions, [], {pointer: '', subject: 'configuration'}))
    assert.match(root.message, /\n {2}\/: expected object, got \[\]$/)
  })

  it('folds type and minimum on the same value into one line; missing keys are "required, missing"', () => {
    const schema = {
      type: 'object',
      properties: {
        train: {
          type: 'object',
          properties: {samplers: {type: 'array', items: {type: 'object', required: ['name'], properties: {name: {type: 'string'}, batchSize: {type: 'integer', minimum: 1}}}}},
        },
      },
    }
    const e = thrown(() => validateOptions(schema, {train: {samplers: [{batchSize: '64'}, {name: 'x', batchSize: 0}]}}, {pointer: '', subject: 'configuration'}))
    assert.deepEqual((e as CodiembError).data, {
      problems: [
        '/train/samplers/0/name: required, missing',
        '/train/samplers/0/batchSize: expected integer >= 1, got "64"',
        '/train/samplers/1/batchSize: expected integer >= 1, got 0',
      ],
    })
  })

  it("throws the caller's own error class when given one", () => {
    class MergeProblem extends Error {
      readonly exitCode = 2
    }
    const e = thrown(() => validateOptions(lossOptions, {temperature: -1}, {pointer: '', subject: 'options for merger "x"', error: (message) => new MergeProblem(message)}))
    assert.ok(e instanceof MergeProblem)
    assert.match(e.message, /\/temperature: expected number > 0, got -1/)
  })
})

describe('withoutDefaults', () => {
  it('drops what the defaults filled in, whether written out or not, and keeps the order of the rest', () => {
    const schema = {
      type: 'object',
      properties: {
        b: {type: 'integer', default: 1},
        a: {type: 'object', default: {}, properties: {x: {type: 'integer', default: 2}, y: {type: 'integer'}}},
        ref: {$ref: '#/$defs/r'},
        list: {type: 'array', items: {oneOf: [{type: 'string'}, {type: 'object', properties: {w: {default: 1}}}]}},
      },
      $defs: {r: {type: 'object', default: {}, properties: {z: {default: 'z'}}}},
    }
    const written = {a: {y: 3, x: 2}, b: 1, list: [{w: 1}, 's'], ref: {z: 'z'}}
    const omitted = {list: [{w: 1}, 's'], a: {y: 3}}
    const filled = (v: unknown) => validateOptions(schema, v, {pointer: '', subject: 'x'})
    // Defaults inside oneOf are neither filled in nor dropped.
    assert.deepEqual(withoutDefaults(filled(written), schema), {a: {y: 3}, list: [{w: 1}, 's']})
    assert.deepEqual(Object.keys(withoutDefaults(filled(written), schema)), ['a', 'list'])
    assert.deepEqual(withoutDefaults(filled(omitted), schema), omitted)
    assert.deepEqual(Object.keys(withoutDefaults(filled(omitted), schema)), ['list', 'a'])
    assert.deepEqual(withoutDefaults(filled({}), schema), {})
  })
})
