import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {REPO_ROOT} from './env.js'

export interface CliRun {
  status: number | null
  stdout: string
  stderr: string
  /** The parsed stdout when it is one JSON document, else its parsed last line (the --json envelope). */
  json?: any
}

/**
 * Runs node with `nodeArgs` in a child process, colours off, and parses a JSON answer from stdout.
 * The one place tests start a child node, whether through bin/run.js (`runCli`) or a single
 * command class (test/eval/run-command.ts).
 */
export function runNode(nodeArgs: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; input?: string} = {}): CliRun {
  const r = spawnSync(process.execPath, nodeArgs, {
    cwd: options.cwd ?? REPO_ROOT,
    env: {...process.env, NO_COLOR: '1', ...options.env},
    encoding: 'utf8',
    input: options.input,
    maxBuffer: 64 * 1024 * 1024,
  })
  let json: unknown
  const text = r.stdout.trim()
  if (text.startsWith('{')) {
    try {
      json = JSON.parse(text)
    } catch {
      const last = text.split('\n').at(-1)!
      try {
        json = JSON.parse(last)
      } catch {
        /* not JSON */
      }
    }
  }
  return {status: r.status, stdout: r.stdout, stderr: r.stderr, json}
}

/** Runs the real CLI (bin/run.js) in a child process. */
export function runCli(args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; nodeArgs?: string[]; input?: string} = {}): CliRun {
  return runNode([...(options.nodeArgs ?? []), join(REPO_ROOT, 'bin', 'run.js'), ...args], options)
}
