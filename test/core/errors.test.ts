/**
 * Every error class src/ exports extends CodiembError (src/core/errors.ts), and exitCodeOf gives the
 * documented code: 2 for errors the user fixes in the request, 1 for failures while running it.
 * Error classes are found by scanning src/**\/*.ts for `export class X extends`, so a new one that
 * forgets the base, or is missing from the table below, fails here.
 */
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'
import {pathToFileURL} from 'node:url'
import {CodiembError, ExecutionError, EXIT_FAILURE, EXIT_USER_ERROR, exitCodeOf, InterruptedError, interruptionOf, stopIfAborted} from '../../src/core/errors.js'
import {REPO_ROOT} from '../helpers/env.js'

type ErrorClass = new (...args: never[]) => Error

/** Each exported error class: how to make one, and the exit code it documents. */
const DOCUMENTED: Record<string, {exitCode: number; make?: (C: ErrorClass) => Error}> = {
  CodiembError: {exitCode: EXIT_USER_ERROR},
  ExecutionError: {exitCode: EXIT_FAILURE},
  PromptTemplateError: {exitCode: EXIT_USER_ERROR},
  UnknownEntryError: {exitCode: EXIT_USER_ERROR, make: (C) => new (C as unknown as new (k: string, n: string, a: string[]) => Error)('loss', 'nope', ['infonce'])},
  BackendUnavailableError: {exitCode: EXIT_USER_ERROR},
  RecordFileError: {exitCode: EXIT_USER_ERROR},
  SafetensorsError: {exitCode: EXIT_USER_ERROR, make: (C) => new (C as unknown as new (f: string, m: string) => Error)('model.safetensors', 'truncated')},
  DataError: {exitCode: EXIT_USER_ERROR},
  HubError: {exitCode: EXIT_FAILURE},
  MergeInputError: {exitCode: EXIT_USER_ERROR},
  ModelConfigError: {exitCode: EXIT_USER_ERROR},
  EncoderLoadError: {exitCode: EXIT_USER_ERROR},
  EmbedInputError: {exitCode: EXIT_USER_ERROR},
  TokenizerError: {exitCode: EXIT_USER_ERROR},
  LoraError: {exitCode: EXIT_USER_ERROR},
  TokenizeTextError: {exitCode: EXIT_FAILURE, make: (C) => new (C as unknown as new (m: string, i: number, t: unknown) => Error)('text 0 is null', 0, null)},
  TaskSelectionError: {exitCode: EXIT_USER_ERROR},
  TaskDataError: {exitCode: EXIT_USER_ERROR},
  TrainingDataError: {exitCode: EXIT_USER_ERROR},
  TrainConfigError: {exitCode: EXIT_USER_ERROR},
  InterruptedError: {exitCode: 130, make: (C) => new (C as unknown as new (s: string) => Error)('SIGINT')},
  PluginLoadError: {
    exitCode: EXIT_FAILURE,
    make: (C) => new (C as unknown as new (p: string, k: string, n: string, c: unknown) => Error)('codiemb-plugin-x', 'loss', 'my-loss', new Error('Cannot find module')),
  },
  CheckpointError: {exitCode: EXIT_USER_ERROR},
  NonFiniteError: {exitCode: EXIT_FAILURE},
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return sourceFiles(p)
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : []
  })
}

/** `export class X extends Y` declarations whose chain (by name) reaches an Error class: file (src-relative) and name. */
function declaredErrorClasses(): {file: string; name: string}[] {
  const src = join(REPO_ROOT, 'src')
  const declared: {file: string; name: string; parent: string}[] = []
  for (const file of sourceFiles(src)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/^export (?:abstract )?class (\w+)(?:<[^>{]*>)? extends ([\w.]+)/gm)) {
      declared.push({file: relative(src, file), name: m[1]!, parent: m[2]!})
    }
  }
  const names = new Set(declared.map((d) => d.name))
  const isError = (parent: string, seen = new Set<string>()): boolean => {
    if (/Error$/.test(parent)) return true
    if (!names.has(parent) || seen.has(parent)) return false
    seen.add(parent)
    return declared.filter((d) => d.name === parent).some((d) => isError(d.parent, seen))
  }
  return declared.filter((d) => isError(d.parent) || /Error$/.test(d.name))
}

async function loadClass(file: string, name: string): Promise<ErrorClass> {
  const url = pathToFileURL(join(REPO_ROOT, 'dist', 'src', file.replace(/\.ts$/, '.js'))).href
  const C = (await import(url))[name] as ErrorClass | undefined
  assert.ok(typeof C === 'function', `src/${file} does not export ${name} at run time`)
  return C
}

describe('error classes', () => {
  it('every error class exported by src/ extends CodiembError and keeps its name', async () => {
    const found = declaredErrorClasses()
    assert.ok(found.length >= 17, `expected the error classes of src/, found ${found.map((f) => f.name).join(', ')}`)
    for (const {file, name} of found) {
      const C = await loadClass(file, name)
      assert.ok(C === CodiembError || C.prototype instanceof CodiembError, `src/${file}: ${name} does not extend CodiembError`)
      const documented = DOCUMENTED[name]
      assert.ok(documented, `src/${file}: ${name} is not in this test's table of documented exit codes`)
      const error = documented.make ? documented.make(C) : new (C as unknown as new (m: string) => Error)('something is wrong')
      assert.equal(error.name, name, `src/${file}: ${name}'s name`)
      assert.ok(error instanceof Error && error.message.length > 0)
    }
    assert.deepEqual(found.map((f) => f.name).sort(), Object.keys(DOCUMENTED).sort(), 'the table lists exactly the exported error classes')
  })

  it('exitCodeOf gives each class its documented exit code', async () => {
    for (const {file, name} of declaredErrorClasses()) {
      const C = await loadClass(file, name)
      const documented = DOCUMENTED[name]!
      const error = documented.make ? documented.make(C) : new (C as unknown as new (m: string) => Error)('something is wrong')
      assert.equal(exitCodeOf(error), documented.exitCode, `${name}`)
      assert.equal(error instanceof ExecutionError, documented.exitCode === EXIT_FAILURE && name !== 'HubError', `${name}: exit code 1 classes are ExecutionErrors (HubError chooses per failure)`)
    }
  })

  it('HubError: 1 for hub and network failures, 2 for a wrong request', async () => {
    const {HubError} = await import('../../src/data/hub.js')
    assert.equal(exitCodeOf(new HubError('download of a.bin failed: HTTP 503')), EXIT_FAILURE)
    assert.equal(exitCodeOf(new HubError('not a hub repository id: "x y"', EXIT_USER_ERROR)), EXIT_USER_ERROR)
  })

  it('CodiembError takes an explicit exit code, a name, data and a cause', () => {
    const cause = new Error('root')
    const e = new CodiembError('bad config', {name: 'ConfigError', data: {problems: ['x']}, cause})
    assert.equal(e.name, 'ConfigError')
    assert.equal(exitCodeOf(e), EXIT_USER_ERROR)
    assert.deepEqual(e.data, {problems: ['x']})
    assert.equal(e.cause, cause)
    assert.equal(exitCodeOf(new CodiembError('pull failed', {exitCode: EXIT_FAILURE})), EXIT_FAILURE)
    assert.equal(exitCodeOf(new ExecutionError('internal', {name: 'X'})), EXIT_FAILURE)
  })

  it('InterruptedError: 130 for SIGINT, 143 for SIGTERM; an aborted AbortSignal stands for its reason, else for SIGINT', () => {
    assert.equal(exitCodeOf(new InterruptedError('SIGINT')), 130)
    assert.equal(exitCodeOf(new InterruptedError('SIGTERM')), 143)
    assert.equal(new InterruptedError('SIGTERM').message, 'interrupted by SIGTERM')
    const cli = new AbortController()
    const reason = new InterruptedError('SIGTERM')
    cli.abort(reason)
    assert.equal(interruptionOf(cli.signal), reason)
    const library = new AbortController()
    library.abort()
    assert.equal(interruptionOf(library.signal).signal, 'SIGINT')
    assert.equal((interruptionOf(library.signal).cause as Error).name, 'AbortError')
    stopIfAborted(undefined)
    stopIfAborted(new AbortController().signal)
    assert.throws(() => stopIfAborted(cli.signal), (e: unknown) => e === reason)
  })

  it('errors outside the hierarchy are internal failures; oclif usage errors keep their exit code', () => {
    assert.equal(exitCodeOf(new Error('bug')), EXIT_FAILURE)
    assert.equal(exitCodeOf(new TypeError('bug')), EXIT_FAILURE)
    assert.equal(exitCodeOf('a string'), EXIT_FAILURE)
    assert.equal(exitCodeOf(undefined), EXIT_FAILURE)
    assert.equal(exitCodeOf({message: 'Unexpected argument', oclif: {exit: 2}}), 2)
  })
})
