import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {JsonSchema} from '../registry/types.js'

/** The package's data-schemas/ folder (found from this module, whether run from src or dist). */
export function schemasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'data-schemas')) && dirname(dir) !== dir) dir = dirname(dir)
  return join(dir, 'data-schemas')
}

export function readSchema(relativePath: string): JsonSchema {
  return JSON.parse(readFileSync(join(schemasDir(), relativePath), 'utf8')) as JsonSchema
}

/**
 * The whole configuration schema: data-schemas/config.schema.json with one property per section
 * schema found in data-schemas/config/<section>.schema.json. A section without a schema file is
 * not a known section, so it is rejected like any other unknown key.
 */
export function configSchema(): JsonSchema {
  const root = readSchema('config.schema.json') as {properties: Record<string, unknown>}
  const sectionsDir = join(schemasDir(), 'config')
  const properties = {...root.properties}
  if (existsSync(sectionsDir)) {
    for (const file of readdirSync(sectionsDir).sort()) {
      const m = /^([a-z][a-z0-9-]*)\.schema\.json$/.exec(file)
      if (m) properties[m[1]] = readSchema(join('config', file))
    }
  }
  return {...root, properties}
}
