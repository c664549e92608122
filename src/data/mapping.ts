/**
 * Field mapping for the generic readers (delimited, json, parquet, hf-arrow): the dataset's
 * `fields` says which source column feeds which record field, e.g. AFQMC's
 * `{text1: sentence1, text2: sentence2, score: label}` or STS-B's `{score: 5, text1: 6, text2: 7}`.
 */
import {DataError, type IrDraft, type StsDraft, type Task} from './types.js'

export type FieldRef = string | number
export type FieldMapping = Record<string, FieldRef>

const TARGETS: Record<'ir' | 'sts', {required: string[]; optional: string[]}> = {
  sts: {required: ['text1', 'text2', 'score'], optional: ['id', 'instruction']},
  ir: {required: ['query', 'positives'], optional: ['id', 'instruction', 'negatives', 'positive_scores', 'negative_scores']},
}

/** Checks a mapping against the task's record fields; returns it with defaults applied. */
export function resolveFields(task: Task, fields: FieldMapping | undefined, reader: string, defaults?: FieldMapping): FieldMapping {
  if (task === 'eval') throw new DataError(`reader ${reader} cannot prepare task "eval" (use the beir reader for retrieval evaluation sets)`)
  const spec = TARGETS[task]
  const mapping = {...(defaults ?? {}), ...(fields ?? {})}
  for (const key of Object.keys(mapping)) {
    if (!spec.required.includes(key) && !spec.optional.includes(key))
      throw new DataError(
        `fields.${key}: not a field of task "${task}"; expected some of ${[...spec.required, ...spec.optional].join(', ')}`,
      )
  }
  const missing = spec.required.filter((k) => mapping[k] === undefined)
  if (missing.length)
    throw new DataError(
      `reader ${reader}, task "${task}": fields must map ${missing.map((m) => `"${m}"`).join(', ')} to source columns (e.g. fields: {${missing.map((m) => `${m}: <column>`).join(', ')}})`,
    )
  return mapping
}

export const MISSING: unique symbol = Symbol('missing')

/**
 * Builds a draft row from a source row through `get` (which returns MISSING for an absent
 * column). Returns a reason when a mapped column is absent.
 */
export function draftFromFields(
  task: 'ir' | 'sts',
  mapping: FieldMapping,
  get: (ref: FieldRef) => unknown,
): {draft: IrDraft | StsDraft; reason?: undefined} | {reason: string; draft?: undefined} {
  const out: Record<string, unknown> = {}
  for (const [target, ref] of Object.entries(mapping)) {
    const v = get(ref)
    if (v === MISSING) {
      if (TARGETS[task].required.includes(target))
        return {reason: `missing field ${typeof ref === 'number' ? `column ${ref}` : JSON.stringify(ref)} (mapped to ${target})`}
      continue
    }
    out[target] = v
  }
  return {draft: out as unknown as IrDraft | StsDraft}
}
