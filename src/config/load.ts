import {existsSync} from 'node:fs'
import {resolve} from 'node:path'
import {CodiembError} from '../core/errors.js'
import {configSchema} from './schema.js'
import {validateOptions} from './validate.js'

export type CodiembConfig = Record<string, unknown>

export interface LoadedConfig {
  /** The merged, validated configuration ($import resolved and removed), with the schemas' defaults filled in. */
  config: CodiembConfig
  /**
   * The same configuration as written (no defaults filled in): what `config print` shows, and what
   * training-settings fingerprints of checkpoints written before defaults were filled in hashed.
   */
  asWritten: CodiembConfig
  /** The file that was loaded (undefined when none was found by search). */
  filepath?: string
}

/**
 * Loads the configuration: `file` explicitly when given (JSON, YAML, .js/.mjs/.cjs, .ts), else the
 * standard cosmiconfig search places for "codiemb" (package.json "codiemb", .codiembrc*,
 * codiemb.config.*). `$import` layers the file over base files (objects merge key by key; arrays and
 * scalars are replaced). Then validates against data-schemas/ and fills in the schemas' defaults
 * (the one place a configuration's defaults are applied); every problem is reported as
 * "JSON-pointer: expected …, got …" in one CodiembError (exit code 2).
 */
export async function loadConfig(file?: string, cwd: string = process.cwd()): Promise<LoadedConfig> {
  const {cosmiconfig} = await import('cosmiconfig')
  // cosmiconfig resolves `$import` itself (recursively, with cycle detection); arrays are replaced, not concatenated.
  const explorer = cosmiconfig('codiemb', {cache: false, mergeImportArrays: false})
  let filepath: string | undefined
  let raw: unknown = {}
  if (file) {
    filepath = resolve(cwd, file)
    if (!existsSync(filepath)) throw new CodiembError(`config file not found: ${filepath}`, {exitCode: 2, name: 'ConfigError'})
    raw = await loadFile(explorer, filepath)
  } else {
    const found = await explorer.search(cwd)
    if (found && !found.isEmpty) {
      filepath = found.filepath
      raw = found.config
    }
  }
  const asWritten = asObject(raw, filepath ?? '(defaults)')
  const config = validateConfig(asWritten, filepath)
  return {config, asWritten, filepath}
}

/**
 * Validates a whole configuration object and returns a copy with the schemas' defaults filled in
 * (`config` itself is not changed); throws a ConfigError listing every problem.
 */
export function validateConfig(config: unknown, filepath?: string): CodiembConfig {
  return validateOptions<CodiembConfig>(configSchema(), config, {
    pointer: '',
    subject: `configuration${filepath ? ` in ${filepath}` : ''}`,
    error: (message, problems) => new CodiembError(message, {exitCode: 2, name: 'ConfigError', data: {file: filepath, problems}}),
  })
}

type Explorer = {load(path: string): Promise<{config: unknown; isEmpty?: boolean} | null>}

async function loadFile(explorer: Explorer, filepath: string): Promise<unknown> {
  try {
    const result = await explorer.load(filepath)
    return result?.config ?? {}
  } catch (error) {
    const message = (error as Error).message
    const hint = /typescript/i.test(message) && filepath.endsWith('.ts') ? ' (TypeScript configs need the "typescript" package installed)' : ''
    throw new CodiembError(`cannot read config ${filepath}: ${message}${hint}`, {exitCode: 2, name: 'ConfigError', cause: error})
  }
}

function asObject(raw: unknown, where: string): CodiembConfig {
  if (raw === null || raw === undefined) return {}
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CodiembError(`${where}: expected the configuration to be an object, got ${Array.isArray(raw) ? 'array' : typeof raw}`, {
      exitCode: 2,
      name: 'ConfigError',
    })
  }
  return structuredClone(raw) as CodiembConfig
}

/** Objects merge key by key (the overlay wins); arrays and scalars are replaced. */
export function deepMerge(base: CodiembConfig, overlay: CodiembConfig): CodiembConfig {
  const out: CodiembConfig = {...base}
  for (const [key, value] of Object.entries(overlay)) {
    const prev = out[key]
    out[key] = isPlainObject(prev) && isPlainObject(value) ? deepMerge(prev, value) : value
  }
  return out
}

function isPlainObject(v: unknown): v is CodiembConfig {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
