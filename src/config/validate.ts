import type {ErrorObject, ValidateFunction} from 'ajv'
import {createRequire} from 'node:module'
import type {JsonSchema} from '../registry/types.js'

const require = createRequire(import.meta.url)
const cache = new WeakMap<object, ValidateFunction>()

/** An Ajv (draft 2020-12) validator collecting every error, with the failing schema attached. */
export function validatorFor(schema: JsonSchema): ValidateFunction {
  let v = cache.get(schema)
  if (!v) {
    const Ajv2020 = require('ajv/dist/2020').default as typeof import('ajv').default
    const ajv = new Ajv2020({allErrors: true, verbose: true, strict: false, useDefaults: false})
    v = ajv.compile(schema)
    cache.set(schema, v)
  }
  return v
}

/**
 * Turns Ajv errors into one line per problem: "JSON-pointer: expected …, got …". Several errors on
 * the same value (e.g. type and minimum) are folded into one line describing the whole expectation.
 */
export function formatSchemaErrors(errors: ErrorObject[], data: unknown): string[] {
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
      line = `${e.instancePath}/${escapePointer(prop)}: unknown key (allowed here: ${allowed.length ? allowed.join(', ') : 'none'})`
    } else if (e.keyword === 'required') {
      const prop = (e.params as {missingProperty: string}).missingProperty
      line = `${e.instancePath}/${escapePointer(prop)}: required, missing`
    } else {
      const path = e.instancePath || '/'
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

/**
 * Validates a registry entry's options (a loss, sampler or merger) against its optionsSchema;
 * `where` prefixes each problem, e.g. "/train/tasks/0/loss/options". Throws a ConfigError (exit 2).
 */
export async function validateEntryOptions(
  entry: {kind: string; name: string; plugin?: string; optionsSchema?: JsonSchema},
  options: unknown,
  where = '',
): Promise<void> {
  if (!entry.optionsSchema) return
  const validate = validatorFor(entry.optionsSchema)
  if (validate(options ?? {})) return
  const problems = formatSchemaErrors(validate.errors ?? [], options ?? {}).map((p) => `${where}${p.startsWith('/') ? p : '/' + p}`)
  const {CodiembError} = await import('../core/errors.js')
  throw new CodiembError(
    `invalid options for ${entry.kind} "${entry.name}"${entry.plugin ? ` (from ${entry.plugin})` : ''}:\n` + problems.map((p) => `  ${p}`).join('\n'),
    {exitCode: 2, name: 'ConfigError', data: {problems}},
  )
}
