/**
 * `--nproc-per-node N`: runs the same command as N local processes (ranks) of one data-parallel job,
 * like `torchrun --standalone --nproc-per-node N`: torchrun's variables (RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT: a free port), the CPU threads
 * shared out (CODIEMB_TORCH_THREADS = cores / N unless set), and each rank's device from its local
 * rank (cuda → cuda:LOCAL_RANK, in the command).
 *
 * Rank 0 talks to the terminal (its progress, its --json document); the other ranks run quietly
 * (--json, output discarded, the tail of their standard error kept for the report).
 * Failure: when a rank ends with an error, the others fail on their next collective (a dead peer is
 * noticed at once, a hung one after CODIEMB_DIST_TIMEOUT); every rank still running `grace` after
 * the first failure is killed, so the job never hangs. The launcher then exits non-zero naming the
 * first rank that failed and why (exit 2 when that rank exited 2: bad input, which the others'
 * failures follow from; else 1). Ctrl-C / SIGTERM on the launcher is passed to every rank (each
 * finishes its step, rank 0 writes a checkpoint); ranks left running when the launcher exits are killed.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {createServer} from 'node:net'
import {availableParallelism} from 'node:os'
import {CodiembError, EXIT_USER_ERROR, ExecutionError, InterruptedError, type StopSignal} from '../core/errors.js'

export interface LaunchOptions {
  nproc: number
  /** The command line to run in each rank, without --nproc-per-node (e.g. ['train', '-c', 'x.json']). */
  argv: string[]
  /** Whether rank 0's standard output is the --json document (then it is captured and returned). */
  json: boolean
  /** Seconds each rank waits for the others (CODIEMB_DIST_TIMEOUT); the launcher's grace is derived from it. */
  timeoutSeconds: number
  /** Seconds the ranks still running get after the first failure before they are killed (default timeoutSeconds + 30). */
  graceSeconds?: number
  /** Aborted on Ctrl-C / SIGTERM: the signal is passed to every rank. */
  signal?: AbortSignal
  /** The CLI entry point (default: this process's). */
  bin?: string
  /** Where the ranks' failures are told as they happen (default: standard error). */
  notify?: (message: string) => void
}

export interface LaunchResult {
  /** Rank 0's --json document (under json). */
  envelope?: {status: number; result?: unknown; message?: string; exitCode?: number}
  ranks: {rank: number; code: number | null; signal: NodeJS.Signals | null}[]
}

export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

function tail(text: string, lines = 4): string {
  return text.trim().split('\n').filter((l) => l.trim()).slice(-lines).join('\n')
}

export async function launchLocalRanks(o: LaunchOptions): Promise<LaunchResult> {
  const port = await freeLocalPort()
  const bin = o.bin ?? process.argv[1]!
  const threads = process.env.CODIEMB_TORCH_THREADS || String(Math.max(1, Math.floor(availableParallelism() / o.nproc)))
  const notify = o.notify ?? ((m: string) => process.stderr.write(`${m}\n`))
  const children: ChildProcess[] = []
  const stderrOf: string[] = []
  let stdout0 = ''
  const killAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal)
  }
  const onExit = () => killAll('SIGKILL')
  process.on('exit', onExit)
  const forward = () => {
    const reason = o.signal?.reason
    const signal: StopSignal = reason instanceof InterruptedError ? reason.signal : 'SIGINT'
    notify(`${signal}: passing it to every rank (each finishes its step; rank 0 writes a checkpoint)`)
    killAll(signal)
  }
  o.signal?.addEventListener('abort', forward, {once: true})
  try {
    const exits = Array.from({length: o.nproc}, (_, rank) => {
      const quiet = rank !== 0
      const args = [bin, ...o.argv, ...(quiet && !o.argv.includes('--json') ? ['--json'] : [])]
      const child = spawn(process.execPath, args, {
        env: {
          ...process.env,
          RANK: String(rank),
          WORLD_SIZE: String(o.nproc),
          LOCAL_RANK: String(rank),
          LOCAL_WORLD_SIZE: String(o.nproc),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(port),
          CODIEMB_DIST_TIMEOUT: String(o.timeoutSeconds),
          CODIEMB_TORCH_THREADS: threads,
        },
        // Rank 0 owns the terminal (its stderr: progress and errors); the others' stderr is kept.
        stdio: ['ignore', quiet ? 'ignore' : o.json ? 'pipe' : 'inherit', quiet ? 'pipe' : 'inherit'],
      })
      children.push(child)
      stderrOf[rank] = ''
      child.stderr?.on('data', (d) => (stderrOf[rank] = (stderrOf[rank]! + d).slice(-8000)))
      child.stdout?.on('data', (d) => (stdout0 += d))
      return new Promise<{rank: number; code: number | null; signal: NodeJS.Signals | null; at: number}>((resolve) =>
        child.on('exit', (code, signal) => resolve({rank, code, signal, at: Date.now()})),
      )
    })
    // The first failure starts the grace period; ranks still running after it are killed.
    const graceMs = (o.graceSeconds ?? o.timeoutSeconds + 30) * 1000
    let killer: NodeJS.Timeout | undefined
    for (const exit of exits)
      void exit.then(({rank, code, signal}) => {
        if ((code !== 0 || signal) && !killer && !o.signal?.aborted) {
          notify(`rank ${rank} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; the other ranks stop at their next collective (or are killed in ${graceMs / 1000} s)`)
          killer = setTimeout(() => killAll('SIGKILL'), graceMs)
          killer.unref()
        }
      })
    const ended = await Promise.all(exits)
    if (killer) clearTimeout(killer)
    let envelope: LaunchResult['envelope']
    if (o.json) {
      try {
        envelope = JSON.parse(stdout0)
      } catch {
        envelope = undefined
      }
    }
    const failed = ended.filter((e) => e.code !== 0 || e.signal).sort((a, b) => a.at - b.at)
    if (failed.length === 0) return {envelope, ranks: ended.map(({rank, code, signal}) => ({rank, code, signal}))}
    if (o.signal?.aborted) {
      const reason = o.signal.reason
      throw reason instanceof InterruptedError ? reason : new InterruptedError('SIGINT', 'interrupted')
    }
    const first = failed[0]!
    const how = (e: (typeof ended)[number]) => (e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`)
    const why = first.rank === 0 && o.json ? (envelope?.message ?? tail(stderrOf[0]!)) : tail(stderrOf[first.rank]!)
    const message =
      `rank ${first.rank} of ${o.nproc} failed first (${how(first)})${why ? `: ${why}` : ''}` +
      (failed.length > 1 ? `; then ${failed.slice(1).map((e) => `rank ${e.rank} (${how(e)})`).join(', ')}` : '')
    const data = {ranks: ended.map(({rank, code, signal}) => ({rank, code, signal}))}
    // Bad input found by the first rank to fail (exit 2) stays exit 2: the others' failures follow from it.
    if (first.code === EXIT_USER_ERROR) throw new CodiembError(message, {exitCode: EXIT_USER_ERROR, data})
    throw new ExecutionError(message, {data})
  } finally {
    o.signal?.removeEventListener('abort', forward)
    process.removeListener('exit', onExit)
    killAll('SIGKILL')
  }
}

