#!/usr/bin/env node
// Fails when the committed oclif.manifest.json differs from what `oclif manifest` generates from the
// current build (run `npm run manifest` and commit the result). Restores the committed file afterwards.
import {execFileSync} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

const root = new URL('..', import.meta.url).pathname
const file = join(root, 'oclif.manifest.json')
const committed = existsSync(file) ? readFileSync(file, 'utf8') : undefined
const normalise = (text) => {
  const m = JSON.parse(text)
  return JSON.stringify({...m, version: undefined}, null, 1)
}
try {
  execFileSync(join(root, 'node_modules/.bin/oclif'), ['manifest'], {cwd: root, stdio: 'pipe'})
  const fresh = readFileSync(file, 'utf8')
  if (committed === undefined || normalise(committed) !== normalise(fresh)) {
    console.error('oclif.manifest.json is stale: run `npm run manifest` and commit it')
    process.exitCode = 1
  } else console.log('oclif.manifest.json is fresh')
} finally {
  if (committed !== undefined) writeFileSync(file, committed)
}
