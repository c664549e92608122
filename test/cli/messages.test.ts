/**
 * src/cli/messages.ts and messages/: how a help file becomes oclif's summary, description and examples
 * (messages/README.md), the mistakes it refuses, and that messages/ holds one file for each command and
 * no file for a command that does not exist.
 */
import assert from 'node:assert/strict'
import {readdirSync, statSync} from 'node:fs'
import {join, relative, sep} from 'node:path'
import {describe, it} from 'node:test'
import {applyHelp, commandHelp, type HelpText, parseHelp} from '../../src/cli/messages.js'
import {REPO_ROOT} from '../helpers/env.js'

describe('parseHelp', () => {
  it('reads the three sections; examples take the text before each command as its description', () => {
    const text = [
      '# summary',
      '',
      'Does a thing.',
      '',
      '# description',
      '',
      'First paragraph.',
      '',
      'Second paragraph with `code`.',
      '',
      '# examples',
      '',
      'The plain run.',
      '',
      '    <%= config.bin %> thing --in a.txt',
      '',
      '    <%= config.bin %> thing --json',
      '',
      'A pattern with backslashes, kept as written.',
      '',
      '    <%= config.bin %> thing --include "^a\\.b\\." ',
      '',
    ].join('\n')
    const help = parseHelp(text)
    assert.deepEqual(help, {
      summary: 'Does a thing.',
      description: 'First paragraph.\n\nSecond paragraph with `code`.',
      examples: [
        {description: 'The plain run.', command: '<%= config.bin %> thing --in a.txt'},
        '<%= config.bin %> thing --json',
        {description: 'A pattern with backslashes, kept as written.', command: '<%= config.bin %> thing --include "^a\\.b\\."'},
      ],
    })
    // oclif's manifest keeps key order: an example reads {description, command}, as the commands wrote them
    assert.deepEqual(Object.keys(help.examples[0]!), ['description', 'command'])
  })

  it('leaves out what a file does not have', () => {
    assert.deepEqual(parseHelp('# summary\n\nOnly this.\n'), {summary: 'Only this.', description: undefined, examples: []})
    assert.deepEqual(parseHelp('# examples\n\n    <%= config.bin %> x\n\n# summary\nLast.'), {summary: 'Last.', description: undefined, examples: ['<%= config.bin %> x']})
  })

  it('refuses unknown or repeated sections, text before the first one, and a description without a command', () => {
    assert.throws(() => parseHelp('# summary\nA.\n# usage\nB.', 'x.md'), /x\.md: unknown section "# usage"/)
    assert.throws(() => parseHelp('# summary\nA.\n# summary\nB.', 'x.md'), /x\.md: two "# summary" sections/)
    assert.throws(() => parseHelp('Stray.\n# summary\nA.', 'x.md'), /x\.md: text before the first section: Stray\./)
    assert.throws(() => parseHelp('# examples\n\nDescribes nothing.\n', 'x.md'), /x\.md: the examples section ends with text that describes no command/)
  })
})

describe('applyHelp', () => {
  it('sets the fields the file has on the command class and leaves the others as they were', () => {
    const list: HelpText = {description: 'inherited', examples: []}
    applyHelp(list, 'list')
    assert.equal(list.summary, commandHelp('list').summary)
    assert.equal(list.description, commandHelp('list').description)
    const doctor: HelpText = {examples: []}
    applyHelp(doctor, 'doctor')
    assert.deepEqual(Object.keys(doctor).sort(), ['examples', 'summary'], 'doctor.md has no description')
    assert.deepEqual(doctor.examples, ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'])
  })
})

describe('messages/', () => {
  const commandsDir = join(REPO_ROOT, 'src', 'commands')
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : name.endsWith('.ts') ? [join(dir, name)] : []))
  const ids = walk(commandsDir).map((file) => relative(commandsDir, file).replace(/\.ts$/, '').split(sep).join(':'))

  it('gives every command a summary and examples', () => {
    assert.ok(ids.length > 10, `commands found: ${ids.join(', ')}`)
    for (const id of ids) {
      const help = commandHelp(id)
      assert.ok(help.summary, `${id}: no summary`)
      assert.ok(help.examples.length > 0, `${id}: no examples`)
    }
    assert.ok(commandHelp('root').examples.length > 0, 'root.md: no examples')
  })

  it('holds no file for a command that does not exist', () => {
    const expected = new Set([...ids.map((id) => `${id.replaceAll(':', '-')}.md`), 'root.md', 'README.md'])
    const stray = readdirSync(join(REPO_ROOT, 'messages')).filter((name) => !expected.has(name))
    assert.deepEqual(stray, [], 'files in messages/ that no command reads')
  })
})
