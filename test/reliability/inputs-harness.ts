/**
 * What test/reliability/inputs.test.ts drives commands with: a command class run in this process
 * (oclif's Command.run with the package's config, loaded once), its standard output and error
 * captured and its exit code read back, and the small valid inputs of every built-in reader that
 * the fuzz corrupts.
 */
import {mkdirSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {Config} from '@oclif/core'
import {REPO_ROOT} from '../helpers/env.js'

export interface InProcessRun {
  /** The exit code the command set (0 when it set none). */
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as one JSON document, when it is one. */
  json?: any
}

let config: Config | undefined

/**
 * Runs `dist/src/commands/<command>.js` in this process with `argv`, capturing what it writes.
 * An error escaping the command (none should: the base command answers every error) is rethrown.
 */
export async function runInProcess(command: string, argv: string[]): Promise<InProcessRun> {
  config ??= await Config.load(REPO_ROOT)
  const {default: C} = (await import(pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'commands', `${command}.js`)).href)) as {default: {run(argv: string[], config: Config): Promise<unknown>}}
  const out: string[] = []
  const err: string[] = []
  const write = {out: process.stdout.write, err: process.stderr.write}
  const before = process.exitCode
  process.exitCode = undefined
  // Commands write strings; the test runner's own reporting (under node --test, on this process's
  // stdout) is binary and passes through.
  const capture = (into: string[], original: typeof process.stdout.write) =>
    function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      if (typeof chunk === 'string') return (into.push(chunk), true)
      return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
    } as typeof process.stdout.write
  process.stdout.write = capture(out, write.out)
  process.stderr.write = capture(err, write.err)
  let code: number
  try {
    await C.run(argv, config)
  } finally {
    process.stdout.write = write.out
    process.stderr.write = write.err
    code = Number(process.exitCode ?? 0)
    process.exitCode = before
  }
  const stdout = out.join('')
  let json: unknown
  try {
    json = JSON.parse(stdout)
  } catch {
    /* not one JSON document */
  }
  return {code, stdout, stderr: err.join(''), json}
}

/** A stack trace line ("    at f (file.js:1:2)") anywhere in `text`. */
export const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\)|<anonymous>)\s*$/m

/** The bytes of a small valid input of one reader, and the prepare flags that read it. */
export interface ReaderSample {
  reader: string
  /** Relative path -> content. */
  files: Record<string, Uint8Array>
  /** Whether the files are text (the `encoding` option applies). */
  text: boolean
  argv: string[]
}

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'))
const lines = (rows: unknown[]) => utf8(rows.map((r) => JSON.stringify(r)).join('\n') + '\n')

/** One sample per built-in reader; texts mix ASCII and Chinese (你好中文, whose GBK bytes the fuzz knows). */
export async function readerSamples(): Promise<ReaderSample[]> {
  const {parquetWriteBuffer} = await import('hyparquet-writer')
  const {tableFromArrays, tableToIPC} = await import('apache-arrow')
  const sts = ['--task', 'sts', '--label-range', '0:1']
  const mapped = ['--field', 'text1=a', '--field', 'text2=b', '--field', 'score=s']
  const columns = {a: ['你好 world', '中文 text', 'plain'], b: ['中文', 'hello 你好', 'other'], s: [1, 0, 1]}
  return [
    {reader: 'delimited', text: true, files: {'train.tsv': utf8('你好 world\t中文\t1\n中文 text\thello 你好\t0\nplain\tother\t1\n')}, argv: [...sts, '--split', 'train=train.tsv']},
    {
      reader: 'json',
      text: true,
      files: {'train.jsonl': lines([0, 1, 2].map((i) => ({a: columns.a[i], b: columns.b[i], s: columns.s[i]})))},
      argv: [...sts, ...mapped, '--split', 'train=train.jsonl'],
    },
    {
      reader: 'flagembedding-jsonl',
      text: true,
      files: {'train.jsonl': lines([{query: '你好', pos: ['中文 text'], neg: ['plain']}, {query: 'hello', pos: ['你好 world'], neg: []}])},
      argv: ['--task', 'ir', '--split', 'train=train.jsonl'],
    },
    {
      reader: 'codiemb-jsonl',
      text: true,
      files: {'train.jsonl': lines([{task_type: 'ir', query: ['Find', '', '你好'], positives: [['', '', '中文']], negatives: [['', '', 'plain']]}, {task_type: 'ir', query: 'hello', positives: ['world']}])},
      argv: ['--task', 'ir', '--split', 'train=train.jsonl'],
    },
    {
      reader: 'nli',
      text: true,
      files: {'snli/s1.train': utf8('你好 world\n你好 world\nplain\n'), 'snli/s2.train': utf8('中文\nhello\nother\n'), 'snli/labels.train': utf8('entailment\ncontradiction\nneutral\n')},
      argv: ['--task', 'sts', '--label-range', '0,0.5,1', '--path', 'snli', '--split', 'train'],
    },
    {
      reader: 'sts-gold',
      text: true,
      files: {'sts/STS.input.x.txt': utf8('你好 world\t中文\nplain\thello\n"quoted\ttext"\n'), 'sts/STS.gs.x.txt': utf8('4.5\n\n1\n')},
      argv: ['--task', 'sts', '--label-range', '0:5', '--split', 'test=sts/STS.input.x.txt'],
    },
    {
      reader: 'beir',
      text: true,
      files: {
        'b/corpus.jsonl': lines([{_id: 'd1', title: '中文', text: 'text one'}, {_id: 'd2', title: '', text: '你好 world'}]),
        'b/queries.jsonl': lines([{_id: 'q1', text: '你好'}, {_id: 'q2', text: 'world'}]),
        'b/qrels/test.tsv': utf8('query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n'),
      },
      argv: ['--task', 'eval', '--path', 'b', '--split', 'test'],
    },
    {
      reader: 'parquet',
      text: false,
      files: {'train.parquet': new Uint8Array(parquetWriteBuffer({columnData: Object.entries(columns).map(([name, data]) => ({name, data}))}))},
      argv: [...sts, ...mapped, '--split', 'train=train.parquet'],
    },
    {
      reader: 'hf-arrow',
      text: false,
      files: {'train.arrow': tableToIPC(tableFromArrays({a: columns.a, b: columns.b, s: Float64Array.from(columns.s)}), 'stream')},
      argv: [...sts, ...mapped, '--split', 'train=train.arrow'],
    },
  ]
}

/** Writes `files` (relative path -> bytes) under `root`. */
export function writeFiles(root: string, files: Record<string, Uint8Array>): void {
  for (const [name, bytes] of Object.entries(files)) {
    const path = join(root, name)
    mkdirSync(dirname(path), {recursive: true})
    writeFileSync(path, bytes)
  }
}
