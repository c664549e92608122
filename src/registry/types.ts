/**
 * The registry's vocabulary. Everything pluggable in codiemb — built-in or from a third-party
 * npm plugin — is an entry of one of seven kinds. An entry is cheap metadata plus a `load()`
 * that imports the implementation lazily, so `codiemb list` and `--help` never pull in
 * tfjs, Arrow or native code.
 */
export const KINDS = ['reader', 'loss', 'sampler', 'encoder', 'merger', 'benchmark', 'backend'] as const
export type Kind = (typeof KINDS)[number]

/** A JSON Schema (draft 2020-12 subset understood by Ajv). */
export type JsonSchema = Record<string, unknown>

export interface RegistryEntry<Impl = unknown> {
  kind: Kind
  /** Unique within its kind; lower-case, dash-separated (e.g. `ir-infonce`). */
  name: string
  /** One line, shown by `codiemb list`. */
  description: string
  /** JSON Schema of the options object (required for losses, samplers and mergers). */
  optionsSchema?: JsonSchema
  /**
   * Kind-specific facts shown by `codiemb list --json`, e.g. a merger's `needsBase`/`minCheckpoints`,
   * an encoder's `modelTypes`, a loss's `task`, a benchmark's task list.
   */
  meta?: Record<string, unknown>
  /** Imports the implementation. Called only when the entry is used. */
  load(): Promise<Impl>
  /** Filled in by the registry: the npm name of the plugin that registered the entry. */
  plugin?: string
}

/** What a `codiemb:register` hook receives (as `options.registry`). */
export interface Registrar {
  register(...entries: RegistryEntry[]): void
}

/** Options passed to every `codiemb:register` hook. */
export interface RegisterHookOptions {
  registry: Registrar
}

/** Kinds that must carry an options schema. */
export const KINDS_WITH_OPTIONS: ReadonlySet<Kind> = new Set(['loss', 'sampler', 'merger'])
