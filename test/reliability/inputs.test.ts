/**
 * Hostile-user tests of inputs, evaluation data and exit codes, end to end through the commands
 * (issue 14 items 3, 7, 11). Every random choice comes from a seeded Rng, so a failure repeats.
 *
 * - reader fuzz: every built-in reader's small valid input, corrupted (bytes flipped, truncated,
 *   invalid UTF-8 inserted, random bytes, emptied, re-encoded as GBK or UTF-16, a BOM, a duplicated
 *   line, a wrong `encoding` option), through `codiemb prepare --json` with and without
 *   --skip-invalid: the exit code is 0 or 2, never 1; no stack trace; standard output is one JSON
 *   envelope; a failed run leaves the previous output as it was; every reject carries `raw`.
 * - text encodings: GBK input is refused at its line unless `encoding: gbk` is given, then read
 *   exactly (every text reader, and `embed --encoding`).
 * - evaluation never substitutes data: a damaged or missing split is reported (with the reader's
 *   error when damaged), the other splits are scored, and no split's data stands in for another's.
 * - exit codes and output: an unknown command answers --json with an envelope; --json with
 *   --events - is refused with a pure JSON stdout; an output that cannot be written is exit 2
 *   naming the place; 0-row datasets and contradicting qrels grades are warned about (an empty
 *   embed input is refused).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Rng} from '../../src/core/rng.js'
import {readAllRecords} from '../../src/io/arrow-records.js'
import {BUILTINS, REPO_ROOT, useTestBackend} from '../helpers/env.js'
import {runCli} from '../helpers/cli.js'
import {readerSamples, runInProcess, STACK_LINE, writeFiles, type InProcessRun, type ReaderSample} from './inputs-harness.js'

let work: string
before(() => {
  work = mkdtempSync(join(tmpdir(), 'codiemb-inputs-'))
  chmodSync(work, 0o755) // readable by the unprivileged user of the read-only-output test
})
after(() => rmSync(work, {recursive: true, force: true}))

/** Names of JavaScript's own errors: an envelope carrying one is an internal failure, not a report. */
const RAW_ERRORS = ['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'AssertionError']

/** Exit 0 or 2, no stack trace, one JSON envelope on stdout whose status is the exit code. */
function assertAnswered(r: InProcessRun, label: string): void {
  const all = `${r.stdout}\n${r.stderr}`
  assert.ok(r.code === 0 || r.code === 2, `${label}: exit ${r.code}\n${all}`)
  assert.doesNotMatch(all, STACK_LINE, `${label}: stack trace in the output`)
  assert.ok(r.json && typeof r.json === 'object', `${label}: standard output is not one JSON document:\n${r.stdout}`)
  assert.equal(r.json.status, r.code, label)
  if (r.code === 2) {
    assert.ok(typeof r.json.message === 'string' && r.json.message.length > 0, label)
    assert.ok(!RAW_ERRORS.includes(r.json.name), `${label}: ${r.json.name}: ${r.json.message}`)
  }
}

// ------------------------------------------------------------------------------------------------
// reader fuzz

/** GBK bytes of the Chinese characters the samples use. */
const GBK: Record<string, number[]> = {你: [0xc4, 0xe3], 好: [0xba, 0xc3], 中: [0xd6, 0xd0], 文: [0xce, 0xc4]}

/** `bytes` with the UTF-8 of 你好中文 replaced by their GBK bytes (a file in the wrong encoding). */
function toGbk(bytes: Uint8Array): Uint8Array {
  let b = Buffer.from(bytes)
  for (const [ch, gbk] of Object.entries(GBK)) {
    const from = Buffer.from(ch, 'utf8')
    const parts: Buffer[] = []
    let at = 0
    for (let i = b.indexOf(from); i !== -1; i = b.indexOf(from, at)) {
      parts.push(b.subarray(at, i), Buffer.from(gbk))
      at = i + from.length
    }
    parts.push(b.subarray(at))
    b = Buffer.concat(parts)
  }
  return new Uint8Array(b)
}

const INVALID_UTF8 = [[0xff], [0xc3, 0x28], [0xe4, 0xbb], [0x80], [0xed, 0xa0, 0x80]]
const LABELS = ['gbk', 'big5', 'utf-16le', 'windows-1252', 'shift_jis', 'no-such-encoding']

/** The corruptions: each returns the new bytes, and reader options to add. */
const CORRUPTIONS: {name: string; apply: (b: Uint8Array, rng: Rng) => {bytes: Uint8Array; option?: string}}[] = [
  {
    name: 'flip',
    apply: (b, rng) => {
      const c = Uint8Array.from(b)
      for (let n = 1 + rng.int(4); n > 0 && c.length; n--) c[rng.int(c.length)] = rng.int(256)
      return {bytes: c}
    },
  },
  {name: 'truncate', apply: (b, rng) => ({bytes: b.subarray(0, rng.int(b.length))})},
  {
    name: 'insert-invalid-utf8',
    apply: (b, rng) => {
      const at = rng.int(b.length + 1)
      return {bytes: Uint8Array.from([...b.subarray(0, at), ...INVALID_UTF8[rng.int(INVALID_UTF8.length)], ...b.subarray(at)])}
    },
  },
  {name: 'random-bytes', apply: (_b, rng) => ({bytes: Uint8Array.from({length: 1 + rng.int(300)}, () => rng.int(256))})},
  {name: 'empty', apply: () => ({bytes: new Uint8Array(0)})},
  {name: 'gbk', apply: (b) => ({bytes: toGbk(b)})},
  {name: 'utf-16le', apply: (b) => ({bytes: new Uint8Array(Buffer.from(Buffer.from(b).toString('utf8'), 'utf16le'))})},
  {name: 'bom', apply: (b) => ({bytes: Uint8Array.from([0xef, 0xbb, 0xbf, ...b])})},
  {
    name: 'duplicate-line',
    apply: (b, rng) => {
      const text = Buffer.from(b).toString('latin1').split('\n')
      const i = rng.int(text.length)
      text.splice(i, 0, text[i].replace(/\t1$/, '\t0'))
      return {bytes: new Uint8Array(Buffer.from(text.join('\n'), 'latin1'))}
    },
  },
  {name: 'wrong-encoding-option', apply: (b, rng) => ({bytes: rng.int(2) ? toGbk(b) : b, option: `encoding=${LABELS[rng.int(LABELS.length)]}`})},
]

const CASES_PER_READER = 20

describe('reader fuzz: prepare with every built-in reader on seeded corruptions of valid inputs', () => {
  it(`ends with exit 0 or 2 and a JSON envelope, never 1 or a stack trace (${CASES_PER_READER} corruptions x 2 runs per reader)`, async () => {
    const samples = await readerSamples()
    // a reader added without a sample here fails the test
    assert.deepEqual(samples.map((s) => s.reader).sort(), BUILTINS.list('reader').map((e) => e.name).sort())
    const rng = new Rng(20_140_003)
    let runs = 0
    const outcomes: Record<string, number> = {}
    for (const sample of samples) {
      const root = join(work, 'fuzz', sample.reader)
      const out = join(root, 'out')
      writeFiles(root, sample.files)
      const base = ['--reader', sample.reader, '--name', 'fuzz', '--data-root', root, '--out', out, '--json', ...sample.argv]
      const good = await runInProcess('prepare', base)
      assertAnswered(good, `${sample.reader} baseline`)
      assert.equal(good.code, 0, `${sample.reader} baseline: ${good.stdout}`)
      let manifest = readFileSync(join(out, 'manifest.json'), 'utf8')
      for (let c = 0; c < CASES_PER_READER; c++) {
        const corruption = CORRUPTIONS[c % CORRUPTIONS.length]
        const names = Object.keys(sample.files)
        const target = names[rng.int(names.length)]
        const {bytes, option} = corruption.apply(sample.files[target], rng)
        writeFiles(root, {...sample.files, [target]: bytes})
        for (const skip of [false, true]) {
          const label = `${sample.reader} #${c} ${corruption.name} of ${target}${option ? ` (${option})` : ''}${skip ? ' --skip-invalid' : ''}`
          const r = await runInProcess('prepare', [...base, '--overwrite', ...(option ? ['--option', option] : []), ...(skip ? ['--skip-invalid'] : [])])
          runs++
          assertAnswered(r, label)
          outcomes[`exit ${r.code}`] = (outcomes[`exit ${r.code}`] ?? 0) + 1
          assert.deepEqual(readdirSync(out).filter((n) => n.endsWith('.tmp')), [], `${label}: a staging folder was left behind`)
          if (r.code === 2) {
            // nothing already written is lost
            assert.equal(readFileSync(join(out, 'manifest.json'), 'utf8'), manifest, `${label}: the previous output changed`)
            continue
          }
          manifest = readFileSync(join(out, 'manifest.json'), 'utf8')
          const dataset = r.json.result.datasets[0]
          if (dataset.files.some((f: {rows: number}) => f.rows === 0)) assert.ok(r.json.warnings.some((w: string) => / 0 rows/.test(w)), `${label}: no warning about 0 rows`)
          if (skip && dataset.rejected) {
            const rejects = readFileSync(join(out, 'fuzz', 'rejects.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
            assert.equal(rejects.length, dataset.rejected, label)
            for (const x of rejects) {
              assert.equal(typeof x.raw, 'string', `${label}: reject without raw: ${JSON.stringify(x)}`)
              assert.ok(typeof x.file === 'string' && x.line >= 1 && x.reason, `${label}: ${JSON.stringify(x)}`)
            }
          }
        }
      }
    }
    assert.equal(runs, samples.length * CASES_PER_READER * 2)
    assert.ok(outcomes['exit 0'] && outcomes['exit 2'], `both outcomes occur: ${JSON.stringify(outcomes)}`)
  })
})

// ------------------------------------------------------------------------------------------------
// text encodings

/** The 1-based line of the first byte >= 0x80 in `bytes`. */
function firstNonAsciiLine(bytes: Uint8Array): number {
  const i = bytes.findIndex((b) => b >= 0x80)
  return 1 + bytes.subarray(0, i).filter((b) => b === 0x0a).length
}

describe('text encodings', () => {
  it('every text reader refuses GBK input at its first non-UTF-8 line, and reads it exactly with encoding: gbk', async () => {
    const samples = (await readerSamples()).filter((s) => s.text)
    assert.equal(samples.length, 7)
    for (const sample of samples) {
      const root = join(work, 'gbk', sample.reader)
      const gbk = Object.fromEntries(Object.entries(sample.files).map(([name, b]) => [name, toGbk(b)]))
      writeFiles(root, gbk)
      const base = ['--reader', sample.reader, '--name', 'g', '--data-root', root, '--out', join(root, 'out'), '--json', ...sample.argv]
      const refused = await runInProcess('prepare', base)
      assertAnswered(refused, `${sample.reader} without encoding`)
      assert.equal(refused.code, 2, sample.reader)
      const m = /^(.+):(\d+): not valid utf-8 text: .* give it as the reader option encoding/.exec(refused.json.message)
      assert.ok(m, `${sample.reader}: ${refused.json.message}`)
      const file = Object.keys(gbk).find((name) => join(root, name) === m[1])
      assert.ok(file, `${sample.reader}: the message names ${m[1]}`)
      assert.equal(Number(m[2]), firstNonAsciiLine(gbk[file]), `${sample.reader}: ${refused.json.message}`)

      const read = await runInProcess('prepare', [...base, '--overwrite', '--option', 'encoding=gbk'])
      assertAnswered(read, `${sample.reader} with encoding=gbk`)
      assert.equal(read.code, 0, read.stdout)
      const texts = new Set<string>()
      for (const f of read.json.result.datasets[0].files as {path: string; kind: string}[]) {
        for (const row of await readAllRecords(join(root, 'out', f.path), f.kind as never))
          for (const v of Object.values(row).flat()) if (typeof v === 'string') texts.add(v)
      }
      assert.ok([...texts].some((t) => t.includes('你好')) && [...texts].some((t) => t.includes('中文')), `${sample.reader}: ${[...texts].join(' | ')}`)

      const unknown = await runInProcess('prepare', [...base, '--overwrite', '--option', 'encoding=klingon'])
      assert.equal(unknown.code, 2)
      assert.match(unknown.json.message, /dataset g: options\.encoding: unknown text encoding "klingon"/)
    }
  })
})

// ------------------------------------------------------------------------------------------------
// evaluation

describe('evaluation never substitutes data', () => {
  let model: string
  let data: string
  const config = () => join(work, 'eval.json')

  before(async () => {
    await useTestBackend()
    const {initRandomEncoder} = await import('../../src/model/encoder.js')
    model = join(work, 'model')
    const encoder = await initRandomEncoder({arch: 'bert', seed: 3, layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 64, pooling: 'mean', tokenizerDir: join(REPO_ROOT, 'quickstart', 'data', 'tokenizer'), registry: BUILTINS})
    await encoder.save(model)
    encoder.dispose()
    data = join(work, 'evaldata')
    // the raw files sit beside the prepared folder: codiemb never writes into a folder it did not create
    const raw = join(work, 'evalraw')
    writeFiles(raw, {
      'pairs.tsv': Buffer.from('a cat sits\ta cat sat\t1\nthe sun\tthe moon\t0\nred car\tblue car\t1\ndogs run\tdogs walk\t1\n'),
      'b/corpus.jsonl': Buffer.from(['d1', 'd2', 'd3'].map((id, i) => JSON.stringify({_id: id, title: '', text: `document ${['cats', 'cars', 'suns'][i]}`})).join('\n') + '\n'),
      'b/queries.jsonl': Buffer.from(JSON.stringify({_id: 'q1', text: 'cats'}) + '\n' + JSON.stringify({_id: 'q2', text: 'cars'}) + '\n'),
      'b/qrels/test.tsv': Buffer.from('query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq2\td2\t2\n'),
      'b/qrels/dev.tsv': Buffer.from('query-id\tcorpus-id\tscore\nq1\td1\t1\n'),
    })
    const pairs = await runInProcess('prepare', ['--reader', 'delimited', '--task', 'sts', '--label-range', '0:1', '--name', 'pairs', '--data-root', raw, '--out', data, '--split', 'test=pairs.tsv', '--split', 'validation=pairs.tsv', '--json'])
    assert.equal(pairs.code, 0, pairs.stdout)
    const retr = await runInProcess('prepare', ['--reader', 'beir', '--task', 'eval', '--name', 'retr', '--data-root', raw, '--path', 'b', '--out', data, '--split', 'test', '--split', 'dev', '--json'])
    assert.equal(retr.code, 0, retr.stdout)
    // duplicate qrels with contradicting grades: a warning, not silence
    assert.ok(retr.json.warnings.some((w: string) => /dataset retr, split test: 1 qrels row gives a \(query, document\) pair another grade .*q2.*d2/.test(w)), JSON.stringify(retr.json.warnings))
    writeFileSync(
      config(),
      JSON.stringify({eval: {dataDir: data, batchSize: 8, tasks: [{name: 'Pairs', type: 'sts', split: 'test', dir: 'pairs'}, {name: 'Retr', type: 'retrieval', split: 'test', dir: 'retr'}]}}),
    )
  })

  const evalRun = (out: string, ...args: string[]) => runInProcess('eval', ['--model', model, '--config', config(), '--out', join(work, out), '--backend', 'cpu', '--no-cache', '--json', ...args])

  it('scores what is there: both tasks, the contradicting qrels grade warned about', async () => {
    const r = await evalRun('res-ok', '--tasks', 'Pairs,Retr')
    assertAnswered(r, 'eval')
    assert.equal(r.code, 0, r.stdout)
    assert.deepEqual(Object.keys(r.json.result.tasks).sort(), ['Pairs', 'Retr'])
    assert.ok(r.json.warnings.some((w: string) => /task Retr, split "test": 1 qrels row gives .* another grade/.test(w)), JSON.stringify(r.json.warnings))
  })

  it('a damaged test split is reported with the reader\'s error; validation is scored as validation, never as test', async () => {
    const file = join(data, 'pairs', 'test.sts-pair.arrow')
    const good = readFileSync(file)
    try {
      writeFileSync(file, good.subarray(0, Math.floor(good.length / 2)))
      const only = await evalRun('res-damaged', '--tasks', 'Pairs')
      assertAnswered(only, 'damaged test')
      assert.equal(only.code, 2)
      const [u] = only.json.data.unscored
      assert.deepEqual([u.task, u.split], ['Pairs', 'test'])
      assert.match(u.reason, /the data is there but cannot be read/)
      assert.ok(u.reason.includes(file) && /(not an|not a readable|truncated) Arrow IPC file/.test(u.reason), u.reason)
      assert.doesNotMatch(u.reason, /not found|fetch it with/, 'a damaged file is not reported as missing')
      assert.ok(!existsSync(join(work, 'res-damaged')), 'nothing scored, nothing written')

      const both = await evalRun('res-both', '--tasks', 'Pairs', '--split', 'test,validation')
      assert.equal(both.code, 2)
      const tr = JSON.parse(readFileSync(join(both.json.data.dir, 'Pairs.json'), 'utf8'))
      assert.deepEqual(Object.keys(tr.scores), ['validation'])
      assert.ok(tr.codiemb.sources.every((s: string) => s.endsWith('validation.sts-pair.arrow')))
      assert.match(tr.codiemb.unscored_splits.test, /cannot be read/)
      const summary = JSON.parse(readFileSync(join(both.json.data.dir, 'summary.json'), 'utf8'))
      assert.deepEqual(summary.tasks, {}, 'the task\'s first split (test) was not scored: no other split stands in for it')
      assert.deepEqual(summary.unscored.map((x: {split: string}) => x.split), ['test'])
    } finally {
      writeFileSync(file, good)
    }
  })

  it('a missing split is reported with the splits that are there; the present one is scored', async () => {
    const file = join(data, 'pairs', 'test.sts-pair.arrow')
    const good = readFileSync(file)
    unlinkSync(file)
    try {
      const r = await evalRun('res-missing', '--tasks', 'Pairs', '--split', 'validation,test')
      assertAnswered(r, 'missing test')
      assert.equal(r.code, 2)
      assert.match(r.json.message, /1 of 2 task splits could not be scored/)
      const [u] = r.json.data.unscored
      assert.match(u.reason, /no STS pairs found for split "test"[\s\S]*for split validation, which is never scored in place of "test"/)
      const tr = JSON.parse(readFileSync(join(r.json.data.dir, 'Pairs.json'), 'utf8'))
      assert.deepEqual(Object.keys(tr.scores), ['validation'])
      const summary = JSON.parse(readFileSync(join(r.json.data.dir, 'summary.json'), 'utf8'))
      assert.equal(summary.tasks.Pairs.split, 'validation')
    } finally {
      writeFileSync(file, good)
    }
  })

  it('damaged qrels of the test split are not replaced by the dev qrels', async () => {
    const file = join(data, 'retr', 'test.qrels.arrow')
    const good = readFileSync(file)
    try {
      writeFileSync(file, Buffer.from('not arrow at all'))
      const r = await evalRun('res-qrels', '--tasks', 'Retr,Pairs')
      assertAnswered(r, 'damaged qrels')
      assert.equal(r.code, 2)
      assert.deepEqual(r.json.data.unscored.map((u: {task: string; split: string}) => `${u.task}/${u.split}`), ['Retr/test'])
      assert.match(r.json.data.unscored[0].reason, /test\.qrels\.arrow.*(not an|not a readable|truncated) Arrow IPC file/)
      // the other task was scored and written
      assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(r.json.data.dir, 'summary.json'), 'utf8')).tasks), ['Pairs'])
    } finally {
      writeFileSync(file, good)
    }
  })

  it('Hugging Face layouts: a damaged test parquet and a test.jsonl with invalid UTF-8 are reported as such', async () => {
    const {parquetWriteBuffer} = await import('hyparquet-writer')
    const valid = Buffer.from(parquetWriteBuffer({columnData: [{name: 'sentence1', data: ['a', 'b']}, {name: 'sentence2', data: ['a', 'c']}, {name: 'score', data: [1, 0]}]}))
    const hf = join(work, 'hf')
    writeFiles(hf, {
      'C-MTEB/ATEC/data/test-00000-of-00001.parquet': Uint8Array.from(valid.subarray(0, valid.length - 9)),
      'C-MTEB/ATEC/data/validation-00000-of-00001.parquet': valid,
      'jl/test.jsonl': Buffer.concat([Buffer.from('{"sentence1":"a","sentence2":"b","score":1}\n{"sentence1":"'), Buffer.from([0xd6, 0xd0]), Buffer.from('","sentence2":"b","score":0}\n')]),
      'jl/validation.jsonl': Buffer.from('{"sentence1":"a","sentence2":"b","score":1}\n{"sentence1":"c","sentence2":"d","score":0}\n'),
    })
    writeFileSync(join(work, 'eval-hf.json'), JSON.stringify({eval: {tasks: [{name: 'Jl', type: 'sts', split: 'test', dir: 'jl'}]}}))
    const r = await runInProcess('eval', ['--model', model, '--config', join(work, 'eval-hf.json'), '--data-dir', hf, '--tasks', 'ATEC,Jl', '--out', join(work, 'res-hf'), '--backend', 'cpu', '--no-cache', '--json'])
    assertAnswered(r, 'hf layouts')
    assert.equal(r.code, 2)
    const reasons = Object.fromEntries(r.json.data.unscored.map((u: {task: string; reason: string}) => [u.task, u.reason]))
    assert.match(reasons.ATEC, /test-00000-of-00001\.parquet: cannot read parquet/)
    assert.doesNotMatch(reasons.ATEC, /not found|fetch it with/)
    assert.match(reasons.Jl, /jl\/test\.jsonl:2: not valid utf-8 text/)
    // ATEC's MTEB metadata lists validation too: it is scored as validation, never in place of test,
    // and ATEC stays out of the summary (its benchmark scores test); Jl has nothing else to score
    const dir = r.json.data.dir as string
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(dir, 'ATEC.json'), 'utf8')).scores), ['validation'])
    assert.ok(!existsSync(join(dir, 'Jl.json')))
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')).tasks, {}, 'no validation split scored in place of test')
  })
})

// ------------------------------------------------------------------------------------------------
// exit codes and output

describe('exit codes and standard output', () => {
  it('an unknown command answers --json with an envelope (exit 2)', () => {
    for (const args of [['nosuch', '--json'], ['data', 'nosuch', '--json']]) {
      const r = runCli(args)
      assert.equal(r.status, 2)
      const envelope = JSON.parse(r.stdout)
      assert.equal(envelope.status, 2)
      assert.match(envelope.message, /command .*nosuch not found/)
    }
    const plain = runCli(['nosuch'])
    assert.equal(plain.status, 2)
    assert.equal(plain.stdout, '')
  })

  it('--json with --events - is refused and standard output stays one JSON document', async () => {
    const r = await runInProcess('prepare', ['--reader', 'delimited', '--task', 'sts', '--split', 'x=y.tsv', '--out', join(work, 'never'), '--json', '--events', '-'])
    assertAnswered(r, '--json --events -')
    assert.equal(r.code, 2)
    assert.equal(r.json.name, 'UsageError')
    assert.match(r.json.message, /--events - and --json both write to standard output/)
    assert.ok(!existsSync(join(work, 'never')))
  })

  it('an output that cannot be written is exit 2 naming the place: under a file, in a read-only directory', async (t) => {
    const root = join(work, 'outputs')
    writeFiles(root, {'in.tsv': Buffer.from('a\tb\t1\n'), 't.txt': Buffer.from('hello\n')})
    const prep = (out: string) => ['prepare', '--reader', 'delimited', '--task', 'sts', '--label-range', '0:1', '--split', `train=${join(root, 'in.tsv')}`, '--out', out, '--json']
    const underFile = await runInProcess('prepare', prep(join(root, 'in.tsv', 'out')).slice(1))
    assertAnswered(underFile, 'out under a file')
    assert.equal(underFile.code, 2)
    assert.equal(underFile.json.name, 'FileSystemError')
    assert.match(underFile.json.message, /in\.tsv\/out: a part of the path is a file, not a directory \(ENOTDIR\)/)

    const ro = join(root, 'ro')
    mkdirSync(ro)
    chmodSync(root, 0o755)
    chmodSync(ro, 0o555)
    // root ignores permissions: run the CLI as an unprivileged user then, when setpriv is there
    const asUser = process.getuid?.() === 0
    if (asUser && spawnSync('setpriv', ['--version']).status !== 0) return t.skip('running as root without setpriv: no read-only directory to test')
    const cli = (args: string[]) => {
      const cmd = asUser ? 'setpriv' : process.execPath
      const pre = asUser ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] : []
      const r = spawnSync(cmd, [...pre, join(REPO_ROOT, 'bin', 'run.js'), ...args], {cwd: REPO_ROOT, encoding: 'utf8', env: {...process.env, HOME: root, NO_COLOR: '1'}})
      return {status: r.status, json: JSON.parse(r.stdout), stderr: r.stderr}
    }
    chmodSync(model(), 0o755)
    for (const args of [prep(join(ro, 'prepared')), ['embed', '--model', model(), '--input', join(root, 't.txt'), '--out', join(ro, 'e.arrow'), '--backend', 'cpu', '--json']]) {
      const r = cli(args)
      assert.equal(r.status, 2, `${args[0]}: ${JSON.stringify(r.json)} ${r.stderr}`)
      assert.equal(r.json.name, 'OutputError')
      assert.match(r.json.message, new RegExp(`^codiemb ${args[0]}: cannot write ${ro}/\\S+: permission denied \\(EACCES`))
    }
  })

  it('0-row inputs are warned about (prepare) or refused (embed); delimited rejects carry their source line as raw', async () => {
    const root = join(work, 'warnings')
    writeFiles(root, {'empty.tsv': new Uint8Array(0), 'bad.tsv': Buffer.from('a\tb\t1\nc\td\tNaN\n'), 'empty.txt': new Uint8Array(0)})
    const empty = await runInProcess('prepare', ['--reader', 'delimited', '--task', 'sts', '--label-range', '0:1', '--name', 'e', '--split', `test=${join(root, 'empty.tsv')}`, '--out', join(root, 'out'), '--json'])
    assert.equal(empty.code, 0, empty.stdout)
    assert.deepEqual(empty.json.warnings, ['dataset e: e/test.sts-pair.arrow has 0 rows (the input holds no row for it)'])
    const bad = await runInProcess('prepare', ['--reader', 'delimited', '--task', 'sts', '--label-range', '0:1', '--name', 'b', '--split', `test=${join(root, 'bad.tsv')}`, '--out', join(root, 'out'), '--skip-invalid', '--json'])
    assert.equal(bad.code, 0, bad.stdout)
    const [reject] = readFileSync(join(root, 'out', 'b', 'rejects.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    assert.deepEqual([reject.line, reject.raw], [2, 'c\td\tNaN'])
    // embed goes further: an input without text is an error, and nothing is written
    const embed = await runInProcess('embed', ['--model', model(), '--input', join(root, 'empty.txt'), '--out', join(root, 'e.arrow'), '--backend', 'cpu', '--json'])
    assertAnswered(embed, 'embed of an empty file')
    assert.equal(embed.code, 2)
    assert.match(embed.json.message, /empty\.txt: no texts to embed/)
    assert.ok(!existsSync(join(root, 'e.arrow')))
  })

  it('embed reads GBK text with --encoding gbk and refuses it at its line without', async () => {
    const root = join(work, 'embed-gbk')
    writeFiles(root, {'t.txt': Uint8Array.from([0x61, 0x0a, ...GBK['你'], ...GBK['好'], 0x0a])})
    const refused = await runInProcess('embed', ['--model', model(), '--input', join(root, 't.txt'), '--out', join(root, 'e.arrow'), '--backend', 'cpu', '--json'])
    assertAnswered(refused, 'embed without --encoding')
    assert.equal(refused.code, 2)
    assert.match(refused.json.message, /t\.txt:2: not valid utf-8 text/)
    const read = await runInProcess('embed', ['--model', model(), '--input', join(root, 't.txt'), '--out', join(root, 'e.arrow'), '--backend', 'cpu', '--encoding', 'gbk', '--json'])
    assert.equal(read.code, 0, read.stdout)
    const rows = await readAllRecords(join(root, 'e.arrow'), 'embeddings')
    assert.deepEqual(rows.map((r) => r.text), ['a', '你好'])
  })
})

/** The model the evaluation tests wrote (they run first in this file). */
function model(): string {
  const dir = join(work, 'model')
  assert.ok(existsSync(join(dir, 'config.json')), 'the evaluation tests write the model first')
  return dir
}
