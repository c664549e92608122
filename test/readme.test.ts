import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {it} from 'node:test'
import {REPO_ROOT} from './helpers/env.js'

it('README.md lists exactly the built-in components the registry has (node scripts/registry-table.mjs --write)', async () => {
  const {registryTable, withTable} = await import(pathToFileURL(join(REPO_ROOT, 'scripts', 'registry-table.mjs')).href)
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
  assert.equal(readme, withTable(readme, registryTable()), 'README.md registry table is stale: run node scripts/registry-table.mjs --write')
})
