#!/usr/bin/env node
// Runs the compiled test suites (dist/test/**/*.test.js) with Node's built-in test runner, once per
// available tensor backend (CODIEMB_BACKEND=cpu always; torch when its addon is built).
// Usage: node scripts/run-tests.mjs [--backend NAME] [file filter substrings...]
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'

const root = new URL('..', import.meta.url).pathname
const args = process.argv.slice(2)
let backends
const bi = args.indexOf('--backend')
if (bi !== -1) {
  backends = [args[bi + 1]]
  args.splice(bi, 2)
} else {
  backends = ['cpu']
  if (existsSync(join(root, 'native/build/Release/codiemb_torch.node'))) backends.push('torch')
}

function find(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return find(p)
    return name.endsWith('.test.js') ? [p] : []
  })
}
const files = find(join(root, 'dist/test'))
  .filter((f) => args.length === 0 || args.some((a) => f.includes(a)))
  .map((f) => relative(root, f))
  .sort()
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)')
  process.exit(1)
}

let failed = false
for (const backend of backends) {
  console.log(`\n# backend: ${backend} (${files.length} test files)`)
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: {...process.env, CODIEMB_BACKEND: backend},
  })
  if (r.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
