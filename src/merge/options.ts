/**
 * Checks a merger's options object against its registry entry's JSON Schema (with the shared
 * validator: every problem as "JSON-pointer: expected …, got …", relative to the options object,
 * since they may come from --options as well as from merge.options), then lets the method apply its
 * defaults and the checks a schema cannot express.
 */
import {validateOptions} from '../config/validate.js'
import type {RegistryEntry} from '../registry/types.js'
import {MergeInputError, type Merger} from './types.js'

export function resolveMergerOptions<O>(entry: RegistryEntry, merger: Merger<O>, raw: unknown, numCheckpoints: number): O {
  const options = raw ?? {}
  if (typeof options !== 'object' || Array.isArray(options))
    throw new MergeInputError(`${entry.name} options: expected a JSON object, got ${JSON.stringify(options)}`)
  // The schema-defaulted copy is not what the method gets: its cross-option checks (e.g. "gamma"
  // only with weighting "power") need to know which options were given.
  validateOptions(entry.optionsSchema, options, {pointer: '', subject: `options for merger "${entry.name}"`, error: (message) => new MergeInputError(message)})
  return merger.resolveOptions(options as Record<string, unknown>, numCheckpoints)
}
