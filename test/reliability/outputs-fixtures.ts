/**
 * What test/reliability/outputs.test.ts works on: a workspace with a tiny model, training data, texts
 * and a delimited file to prepare; a byte-level snapshot of a folder (to prove "left exactly as it
 * was"); the CLI run as a user runs it; and small file systems (tmpfs) that are full or read-only.
 */
import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {appendFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, join, relative} from 'node:path'
import {Rng} from '../../src/core/rng.js'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'
import {initRandomEncoder} from '../../src/model/encoder.js'
import {runCli, type CliRun} from '../helpers/cli.js'
import {BUILTINS, REPO_ROOT, TEST_BACKEND, useTestBackend} from '../helpers/env.js'

export const TOKENIZER = join(REPO_ROOT, 'quickstart', 'data', 'tokenizer')
const WORDS = ['man', 'woman', 'dog', 'cat', 'street', 'park', 'ball', 'car', 'boy', 'girl', 'water', 'food']

export interface Workspace {
  root: string
  /** A tiny random BERT written by codiemb (model init). */
  base: string
  /** ir.arrow and sts.arrow for training. */
  data: string
  /** A text file to embed. */
  texts: string
  /** A tab-separated STS file to prepare (labels 0..1). */
  pairs: string
}

function sentence(rng: Rng, n = 5): string {
  return Array.from({length: n}, () => WORDS[rng.int(WORDS.length)]).join(' ')
}

/** Builds the workspace under a fresh temporary folder, its texts drawn from `seed`. */
export async function makeWorkspace(seed: number): Promise<Workspace> {
  await useTestBackend()
  const rng = new Rng(seed)
  const root = mkdtempSync(join(tmpdir(), 'codiemb-outputs-e2e-'))
  const base = join(root, 'base')
  const encoder = await initRandomEncoder({arch: 'bert', tokenizerDir: TOKENIZER, layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32, seed, registry: BUILTINS})
  await encoder.save(base, {outputOf: 'model init'})
  encoder.dispose()
  const data = join(root, 'data')
  mkdirSync(data)
  const ir = new ArrowRecordWriter(join(data, 'ir.arrow'), 'ir-example', {metadata: {'codiemb.dataset': 'toy-ir', 'codiemb.task': 'ir'}})
  for (let i = 0; i < 16; i++)
    ir.write({id: `q${i}`, query: sentence(rng), instruction: '', positives: [sentence(rng)], negatives: [sentence(rng)], positive_scores: null, negative_scores: null})
  await ir.finish()
  const sts = new ArrowRecordWriter(join(data, 'sts.arrow'), 'sts-pair', {metadata: {'codiemb.dataset': 'toy-sts', 'codiemb.task': 'sts'}})
  for (let i = 0; i < 16; i++) sts.write({id: `s${i}`, text1: sentence(rng), text2: sentence(rng), score: rng.int(5) / 4, raw_score: 0, instruction: ''})
  await sts.finish()
  const texts = join(root, 'texts.txt')
  writeFileSync(texts, Array.from({length: 12}, () => sentence(rng)).join('\n') + '\n')
  const pairs = join(root, 'pairs.tsv')
  writeFileSync(pairs, Array.from({length: 40}, () => `${sentence(rng)}\t${sentence(rng)}\t${rng.int(3) / 2}`).join('\n') + '\n')
  return {root, base, data, texts, pairs}
}

/** A train config file in `dir` training the workspace's base model into `output` (4 steps, a checkpoint every 2). */
export function trainConfig(ws: Workspace, dir: string, output: string, seed: number): string {
  const file = join(dir, `train-${basename(output)}-${seed}.json`)
  writeFileSync(
    file,
    JSON.stringify({
      train: {
        model: ws.base,
        output,
        dataDir: ws.data,
        data: ['ir.arrow', 'sts.arrow'],
        tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 1, temperature: 0.05}}], maxLength: {query: 12, passage: 12}}, sts: {maxLength: 12}},
        sampler: {name: 'dynamic', options: {batchSizes: {ir: 8, sts: 8}}},
        epochs: 1,
        learningRate: 1e-3,
        seed,
        checkpoint: {everySteps: 2, keepLast: 0},
      },
    }),
  )
  return file
}

/** Commands that take --backend. */
const TENSOR_COMMANDS = new Set(['train', 'eval', 'embed', 'mine', 'quickstart', 'model'])

/**
 * Runs the CLI with --json (and the test backend where the command has --backend) in `cwd`; with
 * `fileLimitBlocks`, under `ulimit -f` (a file grows past it: EFBIG, as on a full disk).
 */
export function cli(args: string[], cwd: string, fileLimitBlocks?: number): CliRun {
  const extra = TENSOR_COMMANDS.has(args[0]!) ? ['--backend', TEST_BACKEND] : []
  if (fileLimitBlocks === undefined) return runCli([...args, ...extra, '--json'], {cwd})
  const quoted = [process.execPath, join(REPO_ROOT, 'bin', 'run.js'), ...args, ...extra, '--json'].map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
  const r = spawnSync('sh', ['-c', `ulimit -f ${fileLimitBlocks} && exec ${quoted.join(' ')}`], {cwd, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  let json
  try {
    json = JSON.parse(r.stdout)
  } catch {
    /* not JSON */
  }
  return {status: r.status, stdout: r.stdout, stderr: r.stderr, json}
}

/** Whether `ulimit -f` can be set here (it can be lowered by anyone where sh has it). */
export function canLimitFileSize(): boolean {
  return spawnSync('sh', ['-c', 'ulimit -f 64'], {encoding: 'utf8'}).status === 0
}

/** Starts the CLI without waiting (for concurrent runs and kills); resolves with its exit status and output. */
export function cliAsync(args: string[], cwd: string): {child: ReturnType<typeof spawn>; done: Promise<{status: number | null; signal: NodeJS.Signals | null; stdout: string}>} {
  const extra = TENSOR_COMMANDS.has(args[0]!) ? ['--backend', TEST_BACKEND] : []
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'run.js'), ...args, ...extra, '--json'], {cwd, env: {...process.env, NO_COLOR: '1'}})
  let stdout = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.resume()
  const done = new Promise<{status: number | null; signal: NodeJS.Signals | null; stdout: string}>((resolve) => child.on('close', (status, signal) => resolve({status, signal, stdout})))
  return {child, done}
}

/**
 * Every entry under `dir` (hidden ones too) with its type and content hash: two equal snapshots
 * mean nothing was added, removed or changed. Undefined when `dir` does not exist.
 */
export function snapshot(dir: string): Record<string, string> | undefined {
  if (!existsSync(dir)) return undefined
  const out: Record<string, string> = {}
  const walk = (p: string) => {
    const stat = lstatSync(p)
    const key = relative(dir, p) || '.'
    if (stat.isSymbolicLink()) out[key] = `link:${readlinkSync(p)}`
    else if (stat.isDirectory()) {
      out[key] = 'dir'
      for (const name of readdirSync(p)) walk(join(p, name))
    } else out[key] = createHash('sha256').update(readFileSync(p)).digest('hex')
  }
  walk(dir)
  return out
}

/** Names directly in `dir` that are codiemb temporaries or locks (what a finished run must not leave). */
export function leftovers(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, {recursive: true, encoding: 'utf8'}).filter((p) => /(^|\/)\.[^/]*\.\d+\.[0-9a-f]{8}\.tmp$|\.codiemb-lock$/.test(p))
}

/** A small tmpfs (root only; CODIEMB_TEST_NO_MOUNT=1 pretends it cannot), or the reason there is none. */
export function mountTmpfs(dir: string, kilobytes: number): {ok: true} | {ok: false; reason: string} {
  mkdirSync(dir, {recursive: true})
  if (process.env.CODIEMB_TEST_NO_MOUNT) return {ok: false, reason: 'CODIEMB_TEST_NO_MOUNT is set'}
  if (process.getuid?.() !== 0) return {ok: false, reason: 'not running as root: cannot mount a small tmpfs'}
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kilobytes}k`, 'tmpfs', dir], {encoding: 'utf8'})
  return r.status === 0 ? {ok: true} : {ok: false, reason: `mount -t tmpfs failed: ${r.stderr.trim() || r.error?.message}`}
}

export function remountReadOnly(dir: string): void {
  const r = spawnSync('mount', ['-o', 'remount,ro', dir], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`remount,ro ${dir}: ${r.stderr}`)
}

/** Unmounts `dir` if it is a mount point, and removes it. */
export function unmount(dir: string): void {
  spawnSync('umount', [dir])
  spawnSync('chmod', ['-R', 'u+w', dir])
  rmSync(dir, {recursive: true, force: true})
}

/** Fills the file system of `dir` until about `leaveKilobytes` remain free (appending to a file named `filler`). */
export function fillUp(dir: string, leaveKilobytes: number): void {
  const df = spawnSync('df', ['-k', '--output=avail', dir], {encoding: 'utf8'})
  const avail = Number(df.stdout.trim().split('\n').at(-1))
  appendFileSync(join(dir, 'filler'), Buffer.alloc(Math.max(0, avail - leaveKilobytes) * 1024))
}
