import {existsSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {TestContext} from 'node:test'
import {builtinRegistry} from '../../src/builtins.js'
import {selectBackend} from '../../src/tensor/backend.js'

/** The repository root (tests run from dist/test/...). */
export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('dist')) dir = dirname(dir)
  return dir
})()

/** `../shared` beside the checkout (CODIEMB_SHARED overrides), or undefined when absent. */
export const SHARED_DIR: string | undefined = (() => {
  const dir = process.env.CODIEMB_SHARED ? resolve(process.env.CODIEMB_SHARED) : resolve(REPO_ROOT, '..', 'shared')
  return existsSync(join(dir, 'README.md')) ? dir : undefined
})()

/**
 * Returns the path under ../shared, or marks the test skipped with a clear message when
 * ../shared is absent (a user's fresh clone has none).
 */
export function shared(t: TestContext, ...parts: string[]): string | undefined {
  if (!SHARED_DIR) {
    t.skip(`../shared is absent (set CODIEMB_SHARED to its path): this test needs ${join('shared', ...parts)}`)
    return undefined
  }
  return join(SHARED_DIR, ...parts)
}

/** The backend under test: CODIEMB_BACKEND (set by scripts/run-tests.mjs for each available backend), default cpu. */
export const TEST_BACKEND = process.env.CODIEMB_BACKEND || 'cpu'

let ready: Promise<string> | undefined
/** Activates the backend under test once per process; returns its name. */
export function useTestBackend(): Promise<string> {
  ready ??= builtinRegistry().then((r) => selectBackend(r, TEST_BACKEND).then((s) => s.name))
  return ready
}

/** The built-in registry, built once per test process (library functions take the registry as a parameter). */
export const BUILTINS = await builtinRegistry()
