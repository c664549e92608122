/**
 * Validates a merger's options object against its registry entry's JSON Schema and turns every
 * problem into one line (JSON pointer, what was expected, what was given), then lets the method
 * apply its defaults and cross-field checks.
 */
import AjvModule, {type ErrorObject} from 'ajv'
import type {RegistryEntry} from '../registry/types.js'
import {MergeInputError, type Merger} from './types.js'

// ajv is CommonJS: under NodeNext its default export arrives as the module object.
const Ajv = AjvModule.default

export function resolveMergerOptions<O>(
  entry: RegistryEntry,
  merger: Merger<O>,
  raw: unknown,
  numCheckpoints: number,
): O {
  const options = raw ?? {}
  if (typeof options !== 'object' || Array.isArray(options))
    throw new MergeInputError(`${entry.name} options: expected a JSON object, got ${JSON.stringify(options)}`)
  const ajv = new Ajv({allErrors: true, strict: false})
  const validate = ajv.compile(entry.optionsSchema ?? {type: 'object'})
  if (!validate(options)) {
    const problems = (validate.errors ?? []).map((e: ErrorObject) => {
      const where = e.instancePath || '/'
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as {additionalProperty: string}).additionalProperty
        const known = Object.keys((entry.optionsSchema?.properties as object | undefined) ?? {})
        return `${where === '/' ? '' : where}/${extra}: unknown option (${entry.name} accepts: ${known.join(', ') || 'none'})`
      }
      const got = valueAt(options, e.instancePath)
      return `${where}: expected ${e.message ?? 'a valid value'}, got ${JSON.stringify(got)}`
    })
    throw new MergeInputError(`invalid ${entry.name} options:\n  ${problems.join('\n  ')}`)
  }
  return merger.resolveOptions(options as Record<string, unknown>, numCheckpoints)
}

function valueAt(root: unknown, pointer: string): unknown {
  let v: unknown = root
  for (const part of pointer.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return v
}
