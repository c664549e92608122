/**
 * `codiemb data pull` against a local HTTP server on 127.0.0.1 that answers like the Hugging Face hub
 * (paginated tree API, resolve URLs with Range support; test/helpers/fake-hub.ts): the ordinary
 * paths — listing, downloading, resuming, skipping, checking, the CLI. Hostile servers and listings
 * are test/reliability/data-pull.test.ts.
 */
import {test, before, after} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {nextLink, pullRepo, type PullEvent} from '../../src/data/hub.js'
import type {StatusEvent} from '../../src/core/events.js'
import {prepare} from '../../src/data/prepare.js'
import {readAllRecords} from '../../src/io/arrow-records.js'
import {BUILTINS} from '../helpers/env.js'
import {runCommandAsync} from '../helpers/cli.js'
import {sha256, startFakeHub, type FakeHub} from '../helpers/fake-hub.js'

const TOKEN = 'hf_local_test_token'
const BIG = 'data/test-00000-of-00001.parquet'

let hub: FakeHub
let parquetBytes: Buffer

/** Cuts the next download of `path` off after `bytes` bytes (the connection is destroyed). */
function cutOnce(path: string, bytes: number): void {
  hub.intercept = (req, res, url) => {
    if (!url.pathname.endsWith('/' + path)) return false
    hub.intercept = undefined
    const content = hub.repos.get('datasets:org/tiny-sts')!.find((f) => f.path === path)!.content
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0)
    res.writeHead(start ? 206 : 200, {'content-length': content.length - start, ...(start ? {'content-range': `bytes ${start}-${content.length - 1}/${content.length}`} : {})})
    res.write(content.subarray(start, start + bytes), () => setTimeout(() => res.destroy(), 20))
    return true
  }
}

const tmp = () => mkdtempSync(join(tmpdir(), 'codiemb-pull-'))

before(async () => {
  const {parquetWriteFile} = await import('hyparquet-writer')
  const dir = tmp()
  const f = join(dir, 'test.parquet')
  const n = 3000
  parquetWriteFile({
    filename: f,
    columnData: [
      {name: 'sentence1', data: Array.from({length: n}, (_, i) => `first sentence number ${i}`), type: 'STRING'},
      {name: 'sentence2', data: Array.from({length: n}, (_, i) => `second sentence number ${i * 7}`), type: 'STRING'},
      {name: 'score', data: Array.from({length: n}, (_, i) => (i % 6) as number), type: 'DOUBLE'},
    ],
  })
  parquetBytes = readFileSync(f)
  rmSync(dir, {recursive: true, force: true})
  hub = await startFakeHub(TOKEN)
  hub.repos.set('datasets:org/tiny-sts', [
    {path: 'README.md', content: Buffer.from('# tiny STS\n')},
    {path: BIG, content: parquetBytes, lfs: true},
  ])
  hub.repos.set('datasets:org/bad-size', [{path: 'a.txt', content: Buffer.from('short'), listedSize: 10}])
  hub.repos.set('datasets:org/bad-sha', [{path: 'b.bin', content: Buffer.from('real bytes'), lfs: true, listedSha: '0'.repeat(64)}])
  hub.repos.set('models:org/tiny-model', [
    {path: 'config.json', content: Buffer.from('{"hidden_size": 8}')},
    {path: '.gitattributes', content: Buffer.from('*.safetensors filter=lfs\n')},
    {path: 'empty.txt', content: Buffer.alloc(0)},
    {path: '.codiembrc.js', content: Buffer.from('process.exit(42)')},
  ])
})

after(() => hub.close())

test('pulls every file (paginated listing, token sent), resumes an interrupted run with a Range request, skips present files', async () => {
  const out = tmp()
  try {
    cutOnce(BIG, 4000)
    await assert.rejects(pullRepo('org/tiny-sts', {endpoint: hub.endpoint, token: TOKEN, out, retries: 0}), /download of data\/test-00000-of-00001\.parquet failed: connection closed by the server \(UND_ERR_SOCKET: other side closed\) while reading http:\/\/127\.0\.0\.1:\d+\/datasets\/org\/tiny-sts\/resolve\/main\/data\/test-00000-of-00001\.parquet after 4000 of \d+ bytes; 4000 of \d+ bytes are kept in data\/\.test-00000-of-00001\.parquet\.incomplete: run the command again to resume/)
    const partial = join(out, 'data', '.test-00000-of-00001.parquet.incomplete')
    assert.equal(statSync(partial).size, 4000, 'the partial download is kept for resuming')
    assert.equal(existsSync(join(out, BIG)), false, 'no file under the final name before it is complete')

    hub.requests.length = 0
    const events: (PullEvent | StatusEvent)[] = []
    const r = await pullRepo('org/tiny-sts', {endpoint: hub.endpoint, token: TOKEN, out, onEvent: (e) => events.push(e)})
    assert.deepEqual(r.files.map((f) => [f.path, f.status]), [
      ['README.md', 'present'],
      [BIG, 'resumed'],
    ])
    assert.equal(hub.requests.find((q) => q.url.endsWith('.parquet'))!.range, 'bytes=4000-')
    assert.ok(hub.requests.every((q) => q.auth === `Bearer ${TOKEN}`))
    assert.ok(hub.requests.some((q) => q.url.includes('cursor=2')), 'followed the Link header to the second page')
    assert.deepEqual(readFileSync(join(out, BIG)), parquetBytes)
    assert.equal(r.files[1]!.sha256, sha256(parquetBytes))
    assert.equal(r.downloadedBytes, parquetBytes.length - 4000)
    assert.equal(existsSync(partial), false)
    assert.deepEqual(events.map((e) => e.type), ['listed', 'file-done', 'file-start', 'file-done'])
    assert.deepEqual(events[0], {type: 'listed', files: 2, bytes: parquetBytes.length + 11})
    assert.deepEqual(events[2], {type: 'file-start', path: BIG, size: parquetBytes.length, resumeFrom: 4000})

    // Third run: everything present, nothing downloaded.
    hub.requests.length = 0
    const again = await pullRepo('org/tiny-sts', {endpoint: hub.endpoint, token: TOKEN, out})
    assert.ok(again.files.every((f) => f.status === 'present'))
    assert.equal(again.downloadedBytes, 0)
    assert.equal(hub.requests.filter((q) => q.url.includes('/resolve/')).length, 0)

    // The pulled parquet prepares with the parquet reader.
    const prepared = join(out, 'prepared')
    const res = await prepare(
      {datasets: [{name: 'tiny', reader: 'parquet', task: 'sts', labelRange: {min: 0, max: 5}, splits: {test: 'data'}, fields: {text1: 'sentence1', text2: 'sentence2', score: 'score'}}]},
      {registry: BUILTINS, dataRoot: out, out: prepared},
    )
    assert.equal(res.rows, 3000)
    const rows = await readAllRecords(join(prepared, 'tiny', 'test.sts-pair.arrow'), 'sts-pair')
    assert.equal(rows[5].text2, 'second sentence number 35')
    assert.equal(rows[5].score, 1)
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

test('a download cut off mid-way is retried within the run, resuming with a Range request', async () => {
  const out = tmp()
  try {
    cutOnce(BIG, 5000)
    hub.requests.length = 0
    const events: (PullEvent | StatusEvent)[] = []
    const r = await pullRepo('org/tiny-sts', {endpoint: hub.endpoint, token: TOKEN, out, retryDelayMs: 1, onEvent: (e) => events.push(e)})
    assert.deepEqual(readFileSync(join(out, BIG)), parquetBytes)
    assert.equal(r.files[1]!.status, 'downloaded', 'bytes of this run only: a fresh download')
    assert.deepEqual(hub.requests.filter((q) => q.url.endsWith('.parquet')).map((q) => q.range), [undefined, 'bytes=5000-'])
    const retry = events.find((e): e is StatusEvent => e.type === 'status')
    assert.match(retry!.message, /^download of data\/test-00000-of-00001\.parquet: connection closed by the server \(UND_ERR_SOCKET: other side closed\) while reading http:\/\/127\.0\.0\.1:\d+\/datasets\/org\/tiny-sts\/resolve\/main\/data\/test-00000-of-00001\.parquet after 5000 of \d+ bytes; retrying in 0\.001 s \(attempt 2 of 4\)$/)
    assert.deepEqual(readdirSync(join(out, 'data')), ['test-00000-of-00001.parquet'], 'no partial file left')
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

test('size and sha256 checks, unknown repository, missing token, bad id, --include', async () => {
  const out = tmp()
  const endpoint = hub.endpoint
  try {
    await assert.rejects(pullRepo('org/bad-size', {endpoint, token: TOKEN, out}), /download of a\.txt failed: http:\/\/127\.0\.0\.1:\d+\/datasets\/org\/bad-size\/resolve\/main\/a\.txt announces 5 bytes \(Content-Length\) where the listing gives 10; nothing was written/)
    assert.deepEqual(readdirSync(out), [])
    await assert.rejects(pullRepo('org/bad-sha', {endpoint, token: TOKEN, out}), /sha256 check failed for b\.bin: expected 0{64}, got [0-9a-f]{64}; the download was discarded/)
    assert.deepEqual(readdirSync(out), [], 'neither b.bin nor its partial download remains')
    await assert.rejects(pullRepo('org/nothing', {endpoint, token: TOKEN, out}), (e: Error & {exitCode?: number}) => /^listing dataset org\/nothing@main on http:\/\/127\.0\.0\.1:\d+ failed: HTTP 404 Not Found from .*: Repository not found \(no dataset org\/nothing at revision main\)$/.test(e.message) && e.exitCode === 2)
    await assert.rejects(pullRepo('org/tiny-sts', {endpoint, token: 'hf_wrong', out}), (e: Error & {exitCode?: number}) => /HTTP 401 Unauthorized .*Invalid credentials.*set HF_TOKEN/.test(e.message) && e.exitCode === 1)
    await assert.rejects(pullRepo('not a repo', {endpoint, out}), /not a hub repository id/)
    const only = await pullRepo('org/tiny-sts', {endpoint, token: TOKEN, out: join(out, 'only'), include: ['data/*.parquet']})
    assert.deepEqual(only.files.map((f) => f.path), [BIG])
    assert.equal(existsSync(join(out, 'only', 'README.md')), false)
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

test('a model repository: resolve URLs without datasets/, empty files, .gitattributes written, configuration skipped and reported', async () => {
  const out = tmp()
  try {
    hub.requests.length = 0
    const events: (PullEvent | StatusEvent)[] = []
    const r = await pullRepo('org/tiny-model', {endpoint: hub.endpoint, token: TOKEN, out, repoType: 'model', onEvent: (e) => events.push(e)})
    assert.deepEqual(r.files.map((f) => f.path), ['config.json', '.gitattributes', 'empty.txt'])
    assert.deepEqual(r.skipped, [{path: '.codiembrc.js', reason: 'codiemb would read it as configuration when run in its folder'}])
    assert.deepEqual(readdirSync(out).sort(), ['.gitattributes', 'config.json', 'empty.txt'])
    assert.equal(statSync(join(out, 'empty.txt')).size, 0)
    assert.ok(hub.requests.some((q) => q.url === '/org/tiny-model/resolve/main/config.json'))
    assert.ok(!hub.requests.some((q) => q.url.includes('empty.txt') || q.url.includes('codiembrc')), 'no request for an empty or a skipped file')
    assert.ok(events.some((e) => e.type === 'status' && e.message === 'not writing .codiembrc.js: codiemb would read it as configuration when run in its folder'))
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

test('nextLink reads rel="next" among several links and resolves it against the page', () => {
  const base = new URL('http://hub.test/api/datasets/a/b/tree/main?recursive=true')
  assert.equal(nextLink('<http://hub.test/x?cursor=2>; rel="next"', base)?.href, 'http://hub.test/x?cursor=2')
  assert.equal(nextLink('</first>; rel="first", </p?cursor=3>; rel=next', base)?.href, 'http://hub.test/p?cursor=3')
  assert.equal(nextLink('</last>; rel="last"', base), undefined)
  assert.equal(nextLink(null, base), undefined)
})

test('codiemb data pull honours HF_ENDPOINT and HF_TOKEN, prints the --json envelope, warns about skipped files, exits 2 for an unknown repository', async () => {
  const out = tmp()
  try {
    const env = {HF_ENDPOINT: hub.endpoint, HF_TOKEN: TOKEN}
    const r = await runCommandAsync('data/pull.js', ['org/tiny-sts', '--out', out, '--json'], env)
    assert.equal(r.status, 0, r.stderr + r.stdout)
    assert.equal(r.json.status, 0)
    assert.equal(r.json.result.endpoint, hub.endpoint)
    assert.equal(r.json.result.files.length, 2)
    assert.equal(r.json.result.downloadedBytes, parquetBytes.length + 11)
    const model = await runCommandAsync('data/pull.js', ['org/tiny-model', '--model', '--out', join(out, 'model')], env)
    assert.equal(model.status, 0, model.stderr)
    assert.match(model.stderr, /Warning: not written: \.codiembrc\.js \(codiemb would read it as configuration when run in its folder\)/)
    assert.match(model.stdout, /3 files \(3 downloaded, 0 resumed, 0 already present, 1 skipped\)/)
    const bad = await runCommandAsync('data/pull.js', ['org/nothing', '--out', out, '--json'], env)
    assert.equal(bad.status, 2)
    assert.match(bad.json.message, /no dataset org\/nothing/)
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})
