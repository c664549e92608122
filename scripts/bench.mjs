#!/usr/bin/env node
// Runs every compiled benchmark (dist/bench/**/*.bench.js) in its own process, one after another,
// so each measures its own peak memory. Usage: npm run bench [-- name-filter ...]
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'

const root = new URL('..', import.meta.url).pathname
const filters = process.argv.slice(2)
function find(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? find(p) : name.endsWith('.bench.js') ? [p] : []
  })
}
// Filters match the path under dist/bench, not the checkout's own path (a checkout named wt-train would match "train").
const benchDir = join(root, 'dist/bench')
const files = find(benchDir).filter((f) => filters.length === 0 || filters.some((x) => relative(benchDir, f).includes(x))).sort()
if (files.length === 0) {
  console.error('no benchmarks found under dist/bench')
  process.exit(1)
}
let failed = 0
for (const f of files) {
  console.log(`\n## ${relative(join(root, 'dist'), f)}`)
  const r = spawnSync(process.execPath, ['--expose-gc', f], {cwd: root, stdio: 'inherit'})
  if (r.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
