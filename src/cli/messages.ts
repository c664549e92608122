import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {Command} from '@oclif/core'

/**
 * The help text of one command, read from messages/<id>.md (messages/README.md describes the format):
 * oclif's static `summary`, `description` and `examples` fields, so a command class has this shape too.
 */
export interface HelpText {
  summary?: string
  description?: string
  /** In file order; `[]` when the file has no examples section. */
  examples: Command.Example[]
}

const SECTIONS = ['summary', 'description', 'examples'] as const
type Section = (typeof SECTIONS)[number]

/** A command line in the examples section: indented four spaces, as a Markdown code block. */
const COMMAND_INDENT = '    '

let folder: string | undefined

/** The package's messages/ folder: above this module, whether it runs from src/cli or dist/src/cli. */
function messagesDir(): string {
  if (folder) return folder
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir))
    if (existsSync(join(dir, 'messages', 'root.md'))) return (folder = join(dir, 'messages'))
  throw new Error(`no messages/ folder above ${fileURLToPath(import.meta.url)}`)
}

/**
 * The help text of command `id` (oclif's id, `config:print`; the file is messages/config-print.md), or
 * of the root help with `root`. Read synchronously, at class definition, so that oclif's manifest and
 * `--help` see the text as static fields; a missing file or a malformed one throws, naming the file.
 */
export function commandHelp(id: string): HelpText {
  const file = join(messagesDir(), `${id.replaceAll(':', '-')}.md`)
  return parseHelp(readFileSync(file, 'utf8'), file)
}

/**
 * Gives command class `command` its help text from messages/<id>.md: summary, description and examples,
 * those the file has. Called in the class's static block, `static {applyHelp(this, 'config:print')}`.
 */
export function applyHelp(command: HelpText, id: string): void {
  const {summary, description, examples} = commandHelp(id)
  if (summary !== undefined) command.summary = summary
  if (description !== undefined) command.description = description
  command.examples = examples
}

/**
 * Parses a help file: `# summary`, `# description` and `# examples` sections, each optional. Summary and
 * description are their text as written, trimmed (oclif wraps long lines itself). In examples, a line
 * indented four spaces is a command; the text since the previous command, if any, describes it.
 */
export function parseHelp(text: string, file = 'help text'): HelpText {
  const sections = new Map<Section, string[]>()
  let current: string[] | undefined
  for (const line of text.split(/\r?\n/)) {
    const heading = /^# (.*)$/.exec(line)
    if (heading) {
      const name = heading[1].trim() as Section
      if (!SECTIONS.includes(name)) throw new Error(`${file}: unknown section "# ${name}" (sections: ${SECTIONS.join(', ')})`)
      if (sections.has(name)) throw new Error(`${file}: two "# ${name}" sections`)
      sections.set(name, (current = []))
    } else if (current) current.push(line)
    else if (line.trim()) throw new Error(`${file}: text before the first section: ${line}`)
  }
  const body = (name: Section) => sections.get(name)?.join('\n').trim() || undefined
  return {summary: body('summary'), description: body('description'), examples: parseExamples(sections.get('examples') ?? [], file)}
}

function parseExamples(lines: string[], file: string): Command.Example[] {
  const examples: Command.Example[] = []
  let text: string[] = []
  for (const line of lines) {
    if (!line.startsWith(COMMAND_INDENT)) {
      text.push(line)
      continue
    }
    const description = text.join('\n').trim()
    const command = line.slice(COMMAND_INDENT.length).trim()
    examples.push(description ? {description, command} : command)
    text = []
  }
  if (text.join('').trim()) throw new Error(`${file}: the examples section ends with text that describes no command`)
  return examples
}
