import {existsSync} from 'node:fs'
import {resolve} from 'node:path'
import {CodiembError} from '../core/errors.js'
import {configSchema} from './schema.js'
import {formatSchemaErrors, validatorFor} from './validate.js'

export type CodiembConfig = Record<string, unknown>

export interface LoadedConfig {
  /** The merged, validated configuration ($import resolved and removed). */
  config: CodiembConfig
  /** The file that was loaded (undefined when none was found by search). */
  filepath?: string
}

/**
 * Loads the configuration: `file` explicitly when given (JSON, YAML, .js/.mjs/.cjs, .ts), else the
 * standard cosmiconfig search places for "codiemb" (package.json "codiemb", .codiembrc*,
 * codiemb.config.*). `$import` layers the file over base files (objects merge key by key; arrays and
 * scalars are replaced). Then validates against data-schemas/; every
 * problem is reported as "JSON-pointer: expected …, got …" in one CodiembError (exit code 2).
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
  const config = asObject(raw, filepath ?? '(defaults)')
  validateConfig(config, filepath)
  return {config, filepath}
}

/** Validates a whole configuration object; throws a ConfigError listing every problem. */
export function validateConfig(config: unknown, filepath?: string): void {
  const validate = validatorFor(configSchema())
  if (!validate(config)) {
    const problems = formatSchemaErrors(validate.errors ?? [], config)
    throw new CodiembError(
      `invalid configuration${filepath ? ` in ${filepath}` : ''} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  ${p}`).join('\n'),
      {exitCode: 2, name: 'ConfigError', data: {file: filepath, problems}},
    )
  }
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
