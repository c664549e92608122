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
 * scoped to its name; a hook that throws, takes longer than `timeoutMs` or calls process.exit
 * becomes a warning naming the plugin, and the command goes on with the other entries. (A timer
 * or socket a hook leaves open cannot keep the CLI alive: bin/run.js exits when the command is done.)
 *
 * We call the hooks per plugin ourselves instead of `config.runHook` so each entry can be
 * attributed to the plugin that registered it.
 */
export async function loadRegistry(config: Config, timeoutMs = hookTimeoutMs()): Promise<Registry> {
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
        await withoutExit(() => withTimeout(Promise.resolve(fn.call({config}, {registry: registry.scoped(plugin.name)})), timeoutMs))
      } catch (error) {
        registry.warnings.push(`plugin ${plugin.name}: its ${REGISTER_HOOK} hook failed: ${(error as Error).message}`)
      }
    }
  }
  return registry
}

/** The time limit of one hook: CODIEMB_HOOK_TIMEOUT_MS when it is a positive number, else 10 s. */
export function hookTimeoutMs(): number {
  const ms = Number(process.env.CODIEMB_HOOK_TIMEOUT_MS)
  return Number.isFinite(ms) && ms > 0 ? ms : 10_000
}

function resolveHookFile(root: string, target: string): string {
  const base = resolve(root, target)
  for (const candidate of [base, `${base}.js`, `${base}.mjs`, `${base}.cjs`, join(base, 'index.js')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  throw new Error(`hook file not found: ${target} (looked under ${root})`)
}

/**
 * Runs `work` with process.exit replaced by a function that throws instead: a hook that calls
 * process.exit (a plugin's habit from CLI code) would otherwise end the command before it printed
 * anything, with exit code 0. The call is remembered, so a hook that catches the throw is reported too.
 */
async function withoutExit<T>(work: () => Promise<T>): Promise<T> {
  const exit = process.exit
  let called: string | undefined
  process.exit = ((code?: number | string | null) => {
    called = `it called process.exit(${code ?? ''}), which a hook must not do`
    throw new Error(called)
  }) as typeof process.exit
  try {
    const result = await work()
    if (called) throw new Error(called)
    return result
  } finally {
    process.exit = exit
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let id: NodeJS.Timeout
  const t = new Promise<never>((_, reject) => {
    id = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(id))
}
