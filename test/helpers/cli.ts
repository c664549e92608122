import {spawn, spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {REPO_ROOT, TEST_BACKEND} from './env.js'

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
export function runNode(nodeArgs: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number} = {}): CliRun {
  const r = spawnSync(process.execPath, nodeArgs, {
    cwd: options.cwd ?? REPO_ROOT,
    env: {...process.env, NO_COLOR: '1', ...options.env},
    encoding: 'utf8',
    input: options.input,
    maxBuffer: 64 * 1024 * 1024,
    // A child that hangs is killed (status null) instead of hanging the suite.
    ...(options.timeoutMs ? {timeout: options.timeoutMs, killSignal: 'SIGKILL' as const} : {}),
  })
  return {status: r.status, stdout: r.stdout, stderr: r.stderr, json: parseAnswer(r.stdout)}
}

/**
 * runNode without blocking this process: for tests whose child talks to a server that lives in the
 * test process itself (a fake hub on 127.0.0.1), which spawnSync would starve.
 */
export function runNodeAsync(nodeArgs: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string} = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs, {cwd: options.cwd ?? REPO_ROOT, env: {...process.env, NO_COLOR: '1', ...options.env}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (status) => resolve({status, stdout, stderr, json: parseAnswer(stdout)}))
  })
}

/** The JSON answer on stdout: the whole text when it is one document, else its last line; undefined when neither parses. */
function parseAnswer(stdout: string): unknown {
  const text = stdout.trim()
  if (!text.startsWith('{')) return undefined
  for (const candidate of [text, text.split('\n').at(-1)!]) {
    try {
      return JSON.parse(candidate)
    } catch {
      /* not JSON */
    }
  }
  return undefined
}

/**
 * `runCli` without blocking: several CLI runs (each mostly waiting on module loading) can overlap,
 * so suites of many short runs stay fast.
 */
export function runCliAsync(args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string} = {}): Promise<CliRun> {
  return runNodeAsync([join(REPO_ROOT, 'bin', 'run.js'), ...args], options)
}

/** Runs the real CLI (bin/run.js) in a child process. */
export function runCli(args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; nodeArgs?: string[]; input?: string; timeoutMs?: number} = {}): CliRun {
  return runNode([...(options.nodeArgs ?? []), join(REPO_ROOT, 'bin', 'run.js'), ...args], options)
}

/**
 * Runs one compiled command class (dist/src/commands/<commandFile>) with `--json` on the test
 * backend in a child process, errors going through oclif's handle() as bin/run.js does, and
 * returns its JSON envelope and exit status. It loads the class directly, so the test does not
 * depend on the committed oclif manifest.
 */
export function runCommandJson(commandFile: string, argv: string[]): {envelope: any; status: number | null; stderr: string} {
  const r = runNode(commandNodeArgs(commandFile, [...argv, '--json', '--backend', TEST_BACKEND]))
  const text = r.stdout.trim()
  let envelope: any
  try {
    envelope = JSON.parse(text.slice(text.indexOf('{')))
  } catch {
    throw new Error(`no JSON envelope (exit ${r.status}):\n${r.stdout}\n${r.stderr}`)
  }
  return {envelope, status: r.status, stderr: r.stderr}
}

/** Node arguments that run one compiled command class with `argv`, errors going through oclif's handle() as bin/run.js does. */
function commandNodeArgs(commandFile: string, argv: string[]): string[] {
  const url = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'commands', commandFile)).href
  const script = `import {handle} from '@oclif/core'
const {default: C} = await import(${JSON.stringify(url)})
try { await C.run(${JSON.stringify(argv)}, ${JSON.stringify(REPO_ROOT)}) } catch (e) { await handle(e) }`
  return ['--input-type=module', '-e', script]
}

/** Runs one compiled command class with `argv` as given (add --json yourself) without blocking this process (see runNodeAsync). */
export function runCommandAsync(commandFile: string, argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runNodeAsync(commandNodeArgs(commandFile, argv), {env})
}
