import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {schemaProblems} from '../../src/config/validate.js'
import {REPO_ROOT} from './env.js'

/** data-schemas/events.schema.json, parsed. */
export const EVENTS_SCHEMA = JSON.parse(readFileSync(join(REPO_ROOT, 'data-schemas', 'events.schema.json'), 'utf8'))

/** Whether `event` is one member of the events schema. */
export const validateEvent = (event: unknown): boolean => schemaProblems(EVENTS_SCHEMA, event).length === 0

/** The schema member an event claims to be (by its `type`, and `command` for done events), or undefined. */
function memberOf(event: unknown): string | undefined {
  const {type, command} = (event ?? {}) as {type?: unknown; command?: unknown}
  const name = type === 'done' ? `done-${String(command)}` : String(type)
  return (EVENTS_SCHEMA.oneOf as {$ref: string}[]).some((m) => m.$ref === `#/$defs/${name}`) ? name : undefined
}

/** Fails unless `event` is one member of the events schema, naming what is wrong with it. */
export function assertEvent(event: unknown, where = ''): void {
  if (validateEvent(event)) return
  const member = memberOf(event)
  if (!member) assert.fail(`${where}${JSON.stringify(event)}: no event of the schema has this type${(event as {type?: unknown})?.type === 'done' ? ' and command' : ''}`)
  // the one member it claims to be says what is wrong (oneOf's errors list every member)
  const problems = schemaProblems({$schema: EVENTS_SCHEMA.$schema, $defs: EVENTS_SCHEMA.$defs, $ref: `#/$defs/${member}`}, event)
  assert.fail(`${where}${JSON.stringify(event)} is not a valid ${member} event:\n  ${problems.join('\n  ')}`)
}

/** The events of an `--events` NDJSON file, each checked against the schema. */
export function readEvents(file: string): {type: string; [key: string]: unknown}[] {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim())
  return lines.map((line, i) => {
    const event = JSON.parse(line)
    assertEvent(event, `${file}:${i + 1}: `)
    return event
  })
}
