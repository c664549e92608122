/**
 * Multi-process test harness: runs N copies of a child script (compiled, under dist/test/helpers/)
 * as the ranks of one job on this machine, with torchrun's variables and a free port, and collects
 * each rank's exit code, output and last JSON line. Distributed tests run on the torch backend only
 * (the cpu backend has no collectives) and skip, saying why, where the addon lacks c10d.
 */
import {spawn} from 'node:child_process'
import {createServer} from 'node:net'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {TestContext} from 'node:test'
import {TEST_BACKEND} from './env.js'

/** A TCP port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as {port: number}).port
      server.close(() => resolve(port))
    })
  })
}

/** Skips the test (with the reason) unless the torch backend with c10d is under test; true when it may run. */
export async function distributedAvailable(t: TestContext): Promise<boolean> {
  if (TEST_BACKEND !== 'torch') {
    t.skip(`distributed tests run on the torch backend only (this run: ${TEST_BACKEND}; the cpu backend has no collectives)`)
    return false
  }
  const {torchDistributedInfo} = await import('../../src/tensor/torch/distributed.js')
  const info = torchDistributedInfo()
  if (!info.available) {
    t.skip(`the torch addon has no c10d: ${info.reason}`)
    return false
  }
  return true
}

export interface RankResult {
  rank: number
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** The last line of stdout parsed as JSON (undefined when it is not JSON). */
  result?: any
  seconds: number
}

/**
 * Runs `script` (a file name in dist/test/helpers/) as ranks 0..n−1, each with `args` and the
 * environment `env(rank)` on top of torchrun's variables; resolves when every rank has exited (or
 * kills them all after `limitMs`).
 */
export async function runRanks(script: string, n: number, options: {args?: string[]; env?: (rank: number) => Record<string, string>; limitMs?: number} = {}): Promise<RankResult[]> {
  const port = await freePort()
  const path = join(dirname(fileURLToPath(import.meta.url)), script)
  const started = Date.now()
  const children = Array.from({length: n}, (_, rank) => {
    const child = spawn(process.execPath, [path, ...(options.args ?? [])], {
      env: {
        ...process.env,
        CODIEMB_BACKEND: 'torch',
        CODIEMB_TORCH_THREADS: '1',
        RANK: String(rank),
        WORLD_SIZE: String(n),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(n),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        ...(options.env?.(rank) ?? {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    return new Promise<RankResult>((resolve) => {
      child.on('exit', (code, signal) => {
        const last = stdout.trim().split('\n').at(-1) ?? ''
        let result: unknown
        try {
          result = JSON.parse(last)
        } catch {
          result = undefined
        }
        resolve({rank, code, signal, stdout, stderr, result, seconds: (Date.now() - started) / 1000})
      })
      setTimeout(() => child.kill('SIGKILL'), options.limitMs ?? 120_000).unref()
    })
  })
  return Promise.all(children)
}

/** A readable account of the ranks' outcomes for assertion messages. */
export function describeRanks(results: RankResult[]): string {
  return results.map((r) => `rank ${r.rank}: exit ${r.code ?? r.signal} after ${r.seconds.toFixed(1)} s\n${r.stderr.trim().split('\n').slice(-6).join('\n')}`).join('\n')
}
