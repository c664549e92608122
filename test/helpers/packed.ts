/**
 * codiemb as a user installs it: `npm pack` of this checkout, unpacked into `node_modules/codiemb`
 * of a fresh temporary project, for tests that use the package only through its published entry
 * points (test/package.test.ts).
 *
 * How it is installed, and why not with `npm install <tarball>`: on a CI machine that has just run
 * `npm ci`, npm's cache holds the dependencies' tarballs but not their registry metadata
 * (packuments), which `npm install` needs to resolve the tarball's semver ranges. `--offline` then
 * fails (ENOTCACHED) and `--prefer-offline` fetches a packument for every package of the tree and
 * copies some 270 MB: slow, and at the mercy of the network. Instead the tarball is unpacked as npm
 * would place it, and each package it declares in `dependencies` (plus the few tools a test
 * names) is linked from this checkout's node_modules, where `npm ci` put exactly the locked
 * versions. Node resolves a linked package to its real path, so a dependency's own dependencies
 * resolve inside the checkout as they would in a real install, while codiemb itself sees only what
 * it declares: an import of an undeclared package fails here as it would for a user (and the
 * package test also checks every bare import of the packed files against `dependencies`).
 * Offline, no npm cache involved, about 2 s (npm pack is most of it).
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import type {CliRun} from './cli.js'
import {REPO_ROOT} from './env.js'

export interface PackedInstall {
  /** The temporary project: node_modules/codiemb and the linked packages. */
  root: string
  /** node_modules/codiemb: the unpacked tarball. */
  packageDir: string
  /** Paths inside the tarball (relative to the package root), as `npm pack --json` lists them. */
  files: string[]
  /** The packed package.json. */
  manifest: {dependencies?: Record<string, string>; [key: string]: unknown}
  /** Runs node in the temporary project (or `cwd`), with a clean test environment. */
  node(args: string[], options?: {cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number}): CliRun
  /** Removes the temporary project. */
  remove(): void
}

/**
 * Packs this checkout (its dist/ must be built), unpacks the tarball into a new temporary project
 * and links codiemb's dependencies and `tools` (e.g. typescript, @types/node) from the checkout's
 * node_modules. The caller must call `remove()`.
 */
export function installPacked(tools: string[] = []): PackedInstall {
  if (!existsSync(join(REPO_ROOT, 'dist', 'src', 'index.js'))) throw new Error('dist/src/index.js is missing: build first (npm run build)')
  const root = mkdtempSync(join(tmpdir(), 'codiemb-packed-'))
  try {
    const pack = npm(['pack', '--json', '--ignore-scripts', '--pack-destination', root])
    const [packed] = JSON.parse(pack.stdout) as {filename: string; files: {path: string}[]}[]
    const unpacked = join(root, 'unpacked')
    mkdirSync(unpacked)
    run('tar', ['-xzf', join(root, packed!.filename), '-C', unpacked])
    const packageDir = join(root, 'node_modules', 'codiemb')
    mkdirSync(dirname(packageDir), {recursive: true})
    renameSync(join(unpacked, 'package'), packageDir)
    rmSync(unpacked, {recursive: true})
    rmSync(join(root, packed!.filename))
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as PackedInstall['manifest']
    for (const name of new Set([...Object.keys(manifest.dependencies ?? {}), ...tools])) linkFromCheckout(root, name)
    writeFileSync(join(root, 'package.json'), JSON.stringify({name: 'codiemb-packed-test', private: true, type: 'module'}, null, 2))
    return {
      root,
      packageDir,
      files: packed!.files.map((f) => f.path),
      manifest,
      node: (args, options = {}) => runNode(args, options.cwd ?? root, options.env, options.timeoutMs),
      remove: () => rmSync(root, {recursive: true, force: true}),
    }
  } catch (error) {
    rmSync(root, {recursive: true, force: true})
    throw error
  }
}

/** node_modules/<name> of the temporary project → the checkout's copy (a junction on Windows: no privileges needed). */
function linkFromCheckout(root: string, name: string): void {
  const source = join(REPO_ROOT, 'node_modules', name)
  if (!existsSync(source)) throw new Error(`${name} is not installed in ${join(REPO_ROOT, 'node_modules')} (run npm ci)`)
  const target = join(root, 'node_modules', name)
  mkdirSync(dirname(target), {recursive: true})
  symlinkSync(realpathSync(source), target, 'junction')
}

/**
 * The environment of a child that runs its own tests: without NODE_TEST_CONTEXT, which node:test
 * sets in the processes it starts and which would make a nested `node --test` report to us instead
 * of printing its results and exiting with their status.
 */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', ...extra}
  delete env.NODE_TEST_CONTEXT
  return env
}

function runNode(args: string[], cwd: string, env?: NodeJS.ProcessEnv, timeoutMs = 120_000): CliRun {
  const r = spawnSync(process.execPath, args, {cwd, env: childEnv(env), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024})
  // One JSON document (a --json envelope), or JSON on the last line after other output.
  let json: unknown
  for (const candidate of [r.stdout.trim(), r.stdout.trim().split('\n').at(-1) ?? '']) {
    try {
      json = JSON.parse(candidate)
      break
    } catch {
      /* not JSON */
    }
  }
  return {status: r.status, stdout: r.stdout, stderr: r.stderr + (r.error ? `\n${r.error.message}` : ''), json}
}

/** npm, the same one that runs `npm test` when there is one (npm_execpath), else the one on PATH. */
function npm(args: string[]): {stdout: string} {
  // No log file, no update check: the test leaves nothing behind in ~/.npm.
  const quiet = ['--logs-max=0', '--no-update-notifier', '--no-audit', '--no-fund']
  const execPath = process.env.npm_execpath
  return execPath && /npm-cli\.c?js$/.test(execPath)
    ? run(process.execPath, [execPath, ...args, ...quiet])
    : run(process.platform === 'win32' ? 'npm.cmd' : 'npm', [...args, ...quiet], process.platform === 'win32')
}

function run(command: string, args: string[], shell = false): {stdout: string} {
  const r = spawnSync(command, args, {cwd: REPO_ROOT, env: childEnv(), encoding: 'utf8', shell, timeout: 120_000, maxBuffer: 64 * 1024 * 1024})
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}\n${r.stderr}`)
  return {stdout: r.stdout}
}
