/**
 * The one place codiemb checks values against JSON Schemas: configuration files, their sections,
 * and the options of registry entries (readers, losses, samplers, mergers). Every check uses Ajv
 * with draft 2020-12, collects every problem, fills in the schema's defaults on a copy of the
 * value, and reports problems in one format: "JSON-pointer: expected …, got …", the pointer
 * naming where the value sits in the configuration.
 */
import type {ErrorObject, ValidateFunction} from 'ajv'
import {createRequire} from 'node:module'
import {CodiembError} from '../core/errors.js'
import type {JsonSchema} from '../registry/types.js'

const require = createRequire(import.meta.url)
const cache = new WeakMap<object, ValidateFunction>()

/** Where a value sits and whose it is: what an error message names. */
export interface ValueOrigin {
  /**
   * JSON pointer of the value in the configuration (e.g. "/train/tasks/ir/losses/0/options"),
   * prefixed to every problem; "" when the value stands alone (problems are then relative to it).
   */
  pointer: string
  /** Completes "invalid …" in the first line, e.g. `options for loss "pro"`, `configuration in codiemb.yaml`. */
  subject: string
  /**
   * Builds the error to throw from the message and the problem lines; by default a CodiembError
   * named ConfigError with exit code 2 and the problems as `data.problems`. Callers whose errors
   * have their own class (DataError, MergeInputError, …) pass it here; it must mean exit code 2.
   */
  error?: (message: string, problems: string[]) => Error
}

/**
 * Validates `value` against `schema` and returns a copy with the schema's defaults applied (the
 * caller's object is never changed); throws the origin's error, listing every problem, when it does
 * not conform. Without a schema the value is returned as a copy, unchecked. Defaults follow Ajv's
 * rules: a property's `default` is filled in when its parent object is present, including a
 * parent that was itself filled in from a `default`; defaults inside oneOf/anyOf/not/if are not.
 */
export function validateOptions<T = Record<string, unknown>>(schema: JsonSchema | undefined, value: unknown, origin: ValueOrigin): T {
  const copy = value === undefined ? undefined : (structuredClone(value) as unknown)
  if (!schema) return copy as T
  const validate = validatorFor(schema)
  if (validate(copy)) return copy as T
  // Report values as the caller wrote them, not as partly filled in before a later check failed.
  const problems = formatSchemaErrors(validate.errors ?? [], value, origin.pointer)
  const message = `invalid ${origin.subject} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` + problems.map((p) => `  ${p}`).join('\n')
  throw origin.error ? origin.error(message, problems) : new CodiembError(message, {exitCode: 2, name: 'ConfigError', data: {problems}})
}

/**
 * The problems of `value` against `schema`, one "pointer: expected …, got …" line each (none when it
 * conforms); `value` itself is not changed. For checks that report rather than throw (tests of
 * emitted events, `--json` payloads).
 */
export function schemaProblems(schema: JsonSchema, value: unknown): string[] {
  const validate = validatorFor(schema)
  return validate(structuredClone(value)) ? [] : formatSchemaErrors(validate.errors ?? [], value, '')
}

/**
 * The inverse of applying defaults: a copy of `value` without the properties whose value equals
 * their schema default (compared after the same reduction, so a container left empty by it goes
 * too). It follows the schema the way defaults are applied (properties, items, allOf, local $ref;
 * not oneOf/anyOf/not/if), so `withoutDefaults(defaulted)` is the same whether a default was
 * written out or left to the schema — a canonical form for comparing settings.
 */
export function withoutDefaults<T>(value: T, schema: JsonSchema, root: JsonSchema = schema): T {
  const s = resolveRef(schema, root)
  if (Array.isArray(value)) {
    const items = s.items
    return (items && typeof items === 'object' && !Array.isArray(items) ? value.map((v) => withoutDefaults(v, items as JsonSchema, root)) : value) as T
  }
  if (value === null || typeof value !== 'object') return value
  let out: Record<string, unknown> = {...(value as Record<string, unknown>)}
  for (const part of (s.allOf as JsonSchema[] | undefined) ?? []) out = withoutDefaults(out, part, root)
  const properties = (s.properties ?? {}) as Record<string, JsonSchema>
  for (const [key, sub] of Object.entries(properties)) {
    if (!(key in out)) continue
    const child = resolveRef(sub, root)
    const reduced = withoutDefaults(out[key], child, root)
    if ('default' in child && sameJson(reduced, withoutDefaults(child.default, child, root))) delete out[key]
    else out[key] = reduced
  }
  return out as T
}

function resolveRef(schema: JsonSchema, root: JsonSchema): JsonSchema {
  const ref = schema.$ref
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return schema
  let target: unknown = root
  for (const raw of ref.slice(2).split('/')) target = (target as Record<string, unknown> | undefined)?.[raw.replace(/~1/g, '/').replace(/~0/g, '~')]
  return target && typeof target === 'object' ? {...(target as JsonSchema), ...withoutKey(schema, '$ref')} : schema
}

function withoutKey(o: JsonSchema, key: string): JsonSchema {
  const {[key]: _dropped, ...rest} = o
  return rest
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b))
}

/** Objects with sorted keys, so that equal values print equally. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical)
  if (v === null || typeof v !== 'object') return v
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
}

/** An Ajv (draft 2020-12) validator collecting every error, with the failing schema attached, that fills in defaults. */
function validatorFor(schema: JsonSchema): ValidateFunction {
  let v = cache.get(schema)
  if (!v) {
    const Ajv2020 = require('ajv/dist/2020').default as typeof import('ajv').default
    const ajv = new Ajv2020({allErrors: true, verbose: true, strict: false, useDefaults: true})
    v = ajv.compile(schema)
    cache.set(schema, v)
  }
  return v
}

/**
 * Turns Ajv errors into one line per problem: "JSON-pointer: expected …, got …", each pointer
 * prefixed with `pointer`. Several errors on the same value (e.g. type and minimum) are folded
 * into one line describing the whole expectation.
 */
function formatSchemaErrors(errors: ErrorObject[], data: unknown, pointer: string): string[] {
  const lines: string[] = []
  const seen = new Set<string>()
  // oneOf/anyOf produce one error per branch; keep the summary error only.
  const branchPaths = new Set(errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.instancePath))
  for (const e of errors) {
    if (branchPaths.has(e.instancePath) && e.keyword !== 'oneOf' && e.keyword !== 'anyOf') continue
    let line: string
    if (e.keyword === 'additionalProperties') {
      const prop = (e.params as {additionalProperty: string}).additionalProperty
      const allowed = Object.keys(((e.parentSchema ?? {}) as {properties?: object}).properties ?? {})
      line = `${pointer}${e.instancePath}/${escapePointer(prop)}: unknown key (allowed here: ${allowed.length ? allowed.join(', ') : 'none'})`
    } else if (e.keyword === 'required') {
      const prop = (e.params as {missingProperty: string}).missingProperty
      line = `${pointer}${e.instancePath}/${escapePointer(prop)}: required, missing`
    } else {
      const path = pointer + e.instancePath || '/'
      line = `${path}: expected ${describeSchema(e.parentSchema as Record<string, unknown>, e)}, got ${show(valueAt(data, e.instancePath))}`
    }
    if (!seen.has(line)) {
      seen.add(line)
      lines.push(line)
    }
  }
  return lines
}

function describeSchema(schema: Record<string, unknown> | undefined, e: ErrorObject): string {
  if (!schema) return e.message ?? 'a valid value'
  const parts: string[] = []
  if (schema.enum) return `one of ${(schema.enum as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`
  if (schema.const !== undefined) return JSON.stringify(schema.const)
  if (e.keyword === 'oneOf' || e.keyword === 'anyOf') {
    const branches = (schema[e.keyword] as Record<string, unknown>[]).map((b) => describeSchema(b, {...e, keyword: 'type'}))
    return branches.join(' or ')
  }
  const type = schema.type
  parts.push(Array.isArray(type) ? type.join(' or ') : typeof type === 'string' ? type : 'a value')
  if (schema.minimum !== undefined) parts.push(`>= ${schema.minimum}`)
  if (schema.exclusiveMinimum !== undefined) parts.push(`> ${schema.exclusiveMinimum}`)
  if (schema.maximum !== undefined) parts.push(`<= ${schema.maximum}`)
  if (schema.exclusiveMaximum !== undefined) parts.push(`< ${schema.exclusiveMaximum}`)
  if (schema.minLength !== undefined) parts.push(`of length >= ${schema.minLength}`)
  if (schema.minItems !== undefined) parts.push(`with >= ${schema.minItems} items`)
  if (schema.pattern !== undefined) parts.push(`matching /${schema.pattern}/`)
  return parts.join(' ')
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1')
}

function valueAt(data: unknown, pointer: string): unknown {
  if (!pointer) return data
  let cur: unknown = data
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[key] : undefined
  }
  return cur
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing'
  const s = JSON.stringify(v)
  return s.length > 80 ? s.slice(0, 77) + '...' : s
}
