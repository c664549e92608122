/**
 * CLI start-up time: `codiemb --help` must stay light (no tfjs, Arrow or native imports), so it is
 * measured here over repeated runs, with `codiemb list` (which loads the registry) for contrast.
 */
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(fileURLToPath(import.meta.url), '..', '..', '..')
const bin = join(root, 'bin', 'run.js')

function time(args: string[], runs: number): {median: number; min: number} {
  const ms: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint()
    const r = spawnSync(process.execPath, [bin, ...args], {cwd: root, encoding: 'utf8'})
    if (r.status !== 0) throw new Error(`codiemb ${args.join(' ')} failed: ${r.stderr}`)
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  ms.sort((a, b) => a - b)
  return {median: ms[Math.floor(ms.length / 2)], min: ms[0]}
}

const runs = Number(process.env.BENCH_RUNS ?? 7)
time(['--help'], 1) // warm the file cache
for (const args of [['--help'], ['list', '--json'], ['doctor', '--json']]) {
  const t = time(args, runs)
  console.log(`codiemb ${args.join(' ').padEnd(14)} start-up: median ${t.median.toFixed(0)} ms, min ${t.min.toFixed(0)} ms (${runs} runs)`)
}
