/**
 * Validates a merger's options object against its registry entry's JSON Schema (every problem as
 * "JSON-pointer: expected …, got …", the same wording as configuration errors), then lets the
 * method apply its defaults and the checks a schema cannot express.
 */
import {formatSchemaErrors, validatorFor} from '../config/validate.js'
import type {RegistryEntry} from '../registry/types.js'
import {MergeInputError, type Merger} from './types.js'

export function resolveMergerOptions<O>(entry: RegistryEntry, merger: Merger<O>, raw: unknown, numCheckpoints: number): O {
  const options = raw ?? {}
  if (typeof options !== 'object' || Array.isArray(options))
    throw new MergeInputError(`${entry.name} options: expected a JSON object, got ${JSON.stringify(options)}`)
  if (entry.optionsSchema) {
    const validate = validatorFor(entry.optionsSchema)
    if (!validate(options)) {
      const problems = formatSchemaErrors(validate.errors ?? [], options)
      throw new MergeInputError(`invalid options for merger "${entry.name}":\n  ${problems.join('\n  ')}`)
    }
  }
  return merger.resolveOptions(options as Record<string, unknown>, numCheckpoints)
}
