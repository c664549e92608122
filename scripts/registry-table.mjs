#!/usr/bin/env node
// Prints (or, with --write, refreshes in README.md) the table of built-in components, generated from the
// registry itself (`codiemb list --json`), between the markers <!-- registry-table:start/end -->.
import {execFileSync} from 'node:child_process'
import {readFileSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

const root = new URL('..', import.meta.url).pathname
export function registryTable() {
  const out = execFileSync(process.execPath, [join(root, 'bin/run.js'), 'list', '--json'], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  const entries = JSON.parse(out).result.entries.filter((e) => e.plugin === 'codiemb')
  const kinds = ['loss', 'sampler', 'merger', 'benchmark', 'reader', 'encoder', 'backend']
  const lines = ['| kind | name | what it is |', '|---|---|---|']
  for (const kind of kinds) {
    for (const e of entries.filter((x) => x.kind === kind)) lines.push(`| ${kind} | \`${e.name}\` | ${e.description.replace(/\|/g, '\\|')} |`)
  }
  return lines.join('\n')
}

const START = '<!-- registry-table:start -->'
const END = '<!-- registry-table:end -->'
export function withTable(readme, table) {
  const a = readme.indexOf(START)
  const b = readme.indexOf(END)
  if (a === -1 || b === -1) throw new Error(`README.md lacks the ${START} … ${END} markers`)
  return `${readme.slice(0, a + START.length)}\n${table}\n${readme.slice(b)}`
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const table = registryTable()
  if (process.argv.includes('--write')) {
    const file = join(root, 'README.md')
    writeFileSync(file + '.tmp', withTable(readFileSync(file, 'utf8'), table))
    renameSync(file + '.tmp', file)
    console.log('README.md registry table refreshed')
  } else console.log(table)
}
