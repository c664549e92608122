import {existsSync, statSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {pathToFileURL} from 'node:url'
import type {Config} from '@oclif/core'
import {Registry} from './registry.js'
import type {RegisterHookOptions} from './types.js'

export const REGISTER_HOOK = 'codiemb:register'

/**
 * Builds the registry from every installed oclif plugin that declares a `codiemb:register` hook
 * (codiemb's own built-ins included — they use the same hook). Each plugin gets a registrar
 * scoped to its name; a hook that throws or times out becomes a warning.
 *
 * We call the hooks per plugin ourselves instead of `config.runHook` so each entry can be
 * attributed to the plugin that registered it.
 */
export async function loadRegistry(config: Config, timeoutMs = 10_000): Promise<Registry> {
  const registry = new Registry()
  for (const plugin of config.getPluginsList()) {
    const hooks = plugin.hooks?.[REGISTER_HOOK] ?? []
    for (const hook of hooks) {
      const target = typeof hook === 'string' ? hook : hook.target
      const identifier = typeof hook === 'string' ? 'default' : (hook.identifier ?? 'default')
      try {
        const file = resolveHookFile(plugin.root, target)
        const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>
        const fn = (mod[identifier] ?? mod.default) as ((opts: RegisterHookOptions) => unknown) | undefined
        if (typeof fn !== 'function') throw new Error(`${file} exports no hook function "${identifier}"`)
        await withTimeout(Promise.resolve(fn.call({config}, {registry: registry.scoped(plugin.name)})), timeoutMs)
      } catch (error) {
        registry.warnings.push(`plugin ${plugin.name}: its ${REGISTER_HOOK} hook failed: ${(error as Error).message}`)
      }
    }
  }
  return registry
}

function resolveHookFile(root: string, target: string): string {
  const base = resolve(root, target)
  for (const candidate of [base, `${base}.js`, `${base}.mjs`, `${base}.cjs`, join(base, 'index.js')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  throw new Error(`hook file not found: ${target} (looked under ${root})`)
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let id: NodeJS.Timeout
  const t = new Promise<never>((_, reject) => {
    id = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(id))
}
