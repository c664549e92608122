import {KINDS, KINDS_WITH_OPTIONS, type Kind, type Registrar, type RegistryEntry} from './types.js'
import {CodiembError, ExecutionError} from '../core/errors.js'

export class UnknownEntryError extends CodiembError {
  override name = 'UnknownEntryError'
  constructor(readonly kind: Kind, readonly entryName: string, readonly available: string[]) {
    super(
      `unknown ${kind} "${entryName}"; registered ${kind}s: ${available.length ? available.join(', ') : '(none)'}` +
        ' — run `codiemb list --kind ' + kind + '` to see them with their plugins',
    )
  }
}

/**
 * An entry's `load()` failed (its module is missing, does not import, or throws): names the plugin
 * and the entry, keeps the original error as `cause`. Exit code 1: the request was fine, the
 * installed plugin is not.
 */
export class PluginLoadError extends ExecutionError {
  constructor(readonly plugin: string, readonly kind: Kind, readonly entryName: string, cause: unknown) {
    super(`plugin ${plugin}: ${kind} "${entryName}" failed to load: ${cause instanceof Error ? cause.message : String(cause)}`, {name: 'PluginLoadError', cause})
  }
}

/**
 * The one registry of readers, losses, samplers, encoders, mergers, benchmarks and backends.
 * Plugins add entries through a scoped registrar (see `scoped`) so that every entry records the
 * plugin it came from. Bad entries never throw: they become warnings naming the plugin, and the
 * CLI keeps working with the rest.
 */
export class Registry {
  private readonly entries = new Map<Kind, Map<string, RegistryEntry>>()
  readonly warnings: string[] = []

  constructor() {
    for (const k of KINDS) this.entries.set(k, new Map())
  }

  /** A registrar that stamps `plugin` on each entry it registers. */
  scoped(plugin: string): Registrar {
    return {register: (...entries: RegistryEntry[]) => this.add(plugin, entries)}
  }

  add(plugin: string, entries: RegistryEntry[]): void {
    for (const entry of entries) {
      const problem = shapeProblem(entry)
      if (problem) {
        const label = entry && typeof entry === 'object' && 'name' in entry ? ` "${String((entry as {name: unknown}).name)}"` : ''
        this.warnings.push(`plugin ${plugin}: ignored entry${label}: ${problem}`)
        continue
      }
      const byName = this.entries.get(entry.kind)!
      const existing = byName.get(entry.name)
      if (existing) {
        this.warnings.push(
          `plugin ${plugin}: ${entry.kind} "${entry.name}" is already registered by ${existing.plugin}; keeping the first`,
        )
        continue
      }
      const load = entry.load.bind(entry)
      byName.set(entry.name, {
        ...entry,
        plugin,
        load: async () => {
          try {
            return await load()
          } catch (error) {
            throw error instanceof PluginLoadError ? error : new PluginLoadError(plugin, entry.kind, entry.name, error)
          }
        },
      })
    }
  }

  has(kind: Kind, name: string): boolean {
    return this.entries.get(kind)!.has(name)
  }

  entry<Impl = unknown>(kind: Kind, name: string): RegistryEntry<Impl> {
    const e = this.entries.get(kind)!.get(name)
    if (!e) throw new UnknownEntryError(kind, name, [...this.entries.get(kind)!.keys()].sort())
    return e as RegistryEntry<Impl>
  }

  /** Loads and returns the implementation of `kind` `name`. */
  async load<Impl = unknown>(kind: Kind, name: string): Promise<Impl> {
    return this.entry<Impl>(kind, name).load()
  }

  list(kind?: Kind): RegistryEntry[] {
    const kinds = kind ? [kind] : KINDS
    return kinds.flatMap((k) => [...this.entries.get(k)!.values()].sort((a, b) => a.name.localeCompare(b.name)))
  }
}

function shapeProblem(entry: unknown): string | undefined {
  if (!entry || typeof entry !== 'object') return `expected an object, got ${entry === null ? 'null' : typeof entry}`
  const e = entry as Record<string, unknown>
  if (typeof e.kind !== 'string' || !(KINDS as readonly string[]).includes(e.kind))
    return `/kind: expected one of ${KINDS.join(', ')}, got ${JSON.stringify(e.kind)}`
  if (typeof e.name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/.test(e.name))
    return `/name: expected a lower-case name (letters, digits, . _ -), got ${JSON.stringify(e.name)}`
  if (typeof e.description !== 'string' || e.description.length === 0)
    return `/description: expected a non-empty string, got ${JSON.stringify(e.description)}`
  if (typeof e.load !== 'function') return `/load: expected a function returning the implementation, got ${typeof e.load}`
  if (KINDS_WITH_OPTIONS.has(e.kind as Kind) && (!e.optionsSchema || typeof e.optionsSchema !== 'object'))
    return `/optionsSchema: a ${e.kind} must declare a JSON Schema of its options`
  if (e.meta !== undefined && (typeof e.meta !== 'object' || e.meta === null)) return `/meta: expected an object`
  return undefined
}
