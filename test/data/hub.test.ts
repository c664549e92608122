/**
 * `codiemb data pull` against a local HTTP server on 127.0.0.1 that answers like the Hugging Face hub
 * (paginated tree API, resolve URLs with Range support), for a small dataset repository.
 */
import {test, before, after} from 'node:test'
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pullRepo} from '../../src/data/hub.js'
import {prepare} from '../../src/data/prepare.js'
import {readAllRecords} from '../../src/io/arrow-records.js'
import {REPO_ROOT, BUILTINS} from '../helpers/env.js'

interface RepoFile {
  path: string
  content: Buffer
  lfs?: boolean
  /** Listed size differs from the content (to test the size check). */
  listedSize?: number
  /** Listed sha256 differs from the content (to test the hash check). */
  listedSha?: string
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const TOKEN = 'hf_local_test_token'

let server: Server
let endpoint = ''
const repos = new Map<string, RepoFile[]>()
const requests: {url: string; range?: string; auth?: string}[] = []
/** Paths whose next download is cut off after this many bytes. */
const cutOff = new Map<string, number>()

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://127.0.0.1')
  requests.push({url: url.pathname + url.search, range: req.headers.range, auth: req.headers.authorization})
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    res.writeHead(401, {'content-type': 'application/json'}).end(JSON.stringify({error: 'Invalid credentials in Authorization header'}))
    return
  }
  let m = /^\/api\/datasets\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname)
  if (m) {
    const files = repos.get(m[1])
    if (!files || decodeURIComponent(m[2]) !== 'main') {
      res.writeHead(404, {'content-type': 'application/json'}).end(JSON.stringify({error: 'Repository not found'}))
      return
    }
    assert.equal(url.searchParams.get('recursive'), 'true')
    const entries = files.map((f) => ({
      type: 'file',
      path: f.path,
      oid: sha(f.content).slice(0, 40),
      size: f.lfs ? 134 : (f.listedSize ?? f.content.length),
      ...(f.lfs ? {lfs: {oid: f.listedSha ?? sha(f.content), size: f.listedSize ?? f.content.length, pointerSize: 134}} : {}),
    }))
    const all = [{type: 'directory', path: 'data', oid: '0'.repeat(40), size: 0}, ...entries]
    // Two pages, linked like the hub does.
    const page = Number(url.searchParams.get('cursor') ?? '0')
    const slice = page === 0 ? all.slice(0, 2) : all.slice(2)
    const headers: Record<string, string> = {'content-type': 'application/json'}
    if (page === 0) headers.link = `<${endpoint}${url.pathname}?recursive=true&expand=false&cursor=1>; rel="next"`
    res.writeHead(200, headers).end(JSON.stringify(slice))
    return
  }
  m = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname)
  const file = m && repos.get(m[1])?.find((f) => f.path === decodeURIComponent(m![3]))
  if (!m || !file) {
    res.writeHead(404).end('not found')
    return
  }
  let body = file.content
  let status = 200
  const headers: Record<string, string | number> = {'accept-ranges': 'bytes', 'content-type': 'application/octet-stream'}
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
  if (range) {
    const start = Number(range[1])
    body = file.content.subarray(start)
    status = 206
    headers['content-range'] = `bytes ${start}-${file.content.length - 1}/${file.content.length}`
  }
  headers['content-length'] = body.length
  const cut = cutOff.get(file.path)
  if (cut !== undefined) {
    cutOff.delete(file.path)
    res.writeHead(status, headers)
    res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20))
    return
  }
  res.writeHead(status, headers).end(body)
}

let parquetBytes: Buffer

before(async () => {
  const {parquetWriteFile} = await import('hyparquet-writer')
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-hub-src-'))
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
  repos.set('org/tiny-sts', [
    {path: 'README.md', content: Buffer.from('# tiny STS\n')},
    {path: 'data/test-00000-of-00001.parquet', content: parquetBytes, lfs: true},
  ])
  repos.set('org/bad-size', [{path: 'a.txt', content: Buffer.from('short'), listedSize: 10}])
  repos.set('org/bad-sha', [{path: 'b.bin', content: Buffer.from('real bytes'), lfs: true, listedSha: '0'.repeat(64)}])
  server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(() => {
  server.close()
})

test('pulls every file (paginated listing, token sent), resumes an interrupted download with a Range request, skips present files', async () => {
  const out = mkdtempSync(join(tmpdir(), 'codiemb-pull-'))
  try {
    const big = 'data/test-00000-of-00001.parquet'
    cutOff.set(big, 4000)
    requests.length = 0
    await assert.rejects(pullRepo('org/tiny-sts', {endpoint, token: TOKEN, out}))
    const partial = join(out, big + '.incomplete')
    assert.ok(existsSync(partial), 'the partial download is kept for resuming')
    const have = statSync(partial).size
    assert.ok(have > 0 && have < parquetBytes.length)
    assert.equal(existsSync(join(out, big)), false, 'no file under the final name before it is complete')

    requests.length = 0
    const r = await pullRepo('org/tiny-sts', {endpoint, token: TOKEN, out})
    assert.deepEqual(r.files.map((f) => [f.path, f.status]), [
      ['README.md', 'present'],
      [big, 'resumed'],
    ])
    const rangeRequest = requests.find((q) => q.url.endsWith('.parquet'))!
    assert.equal(rangeRequest.range, `bytes=${have}-`)
    assert.ok(requests.every((q) => q.auth === `Bearer ${TOKEN}`))
    assert.ok(requests.some((q) => q.url.includes('cursor=1')), 'followed the Link header to the second page')
    assert.deepEqual(readFileSync(join(out, big)), parquetBytes)
    assert.equal(r.files[1].sha256, sha(parquetBytes))
    assert.equal(existsSync(partial), false)

    // Third run: everything present, nothing downloaded.
    requests.length = 0
    const again = await pullRepo('org/tiny-sts', {endpoint, token: TOKEN, out})
    assert.ok(again.files.every((f) => f.status === 'present'))
    assert.equal(again.downloadedBytes, 0)
    assert.equal(requests.filter((q) => q.url.includes('/resolve/')).length, 0)

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

test('size and sha256 checks, unknown repository, missing token', async () => {
  const out = mkdtempSync(join(tmpdir(), 'codiemb-pull-'))
  try {
    await assert.rejects(pullRepo('org/bad-size', {endpoint, token: TOKEN, out}), /size check failed for a\.txt: the hub lists 10 bytes, received 5/)
    await assert.rejects(pullRepo('org/bad-sha', {endpoint, token: TOKEN, out}), /sha256 check failed for b\.bin: expected 0{64}, got [0-9a-f]{64}; the download was discarded/)
    assert.equal(existsSync(join(out, 'b.bin')), false)
    assert.equal(existsSync(join(out, 'b.bin.incomplete')), false)
    await assert.rejects(pullRepo('org/nothing', {endpoint, token: TOKEN, out}), (e: Error & {exitCode?: number}) => /no dataset org\/nothing at revision main/.test(e.message) && e.exitCode === 2)
    await assert.rejects(pullRepo('org/tiny-sts', {endpoint, token: 'hf_wrong', out}), /Invalid credentials.*set HF_TOKEN/)
    await assert.rejects(pullRepo('not a repo', {endpoint, out}), /not a hub repository id/)
    const only = await pullRepo('org/tiny-sts', {endpoint, token: TOKEN, out: join(out, 'only'), include: ['data/*.parquet']})
    assert.deepEqual(only.files.map((f) => f.path), ['data/test-00000-of-00001.parquet'])
    assert.equal(existsSync(join(out, 'only', 'README.md')), false)
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

/** Runs a command class from dist in a child process (asynchronously, so this process's server keeps serving). */
function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{code: number | null; stdout: string; stderr: string}> {
  const script = `const m = await import(${JSON.stringify(join(REPO_ROOT, 'dist/src/commands', command))}); await m.default.run(process.argv.slice(1), ${JSON.stringify(REPO_ROOT)})`
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {cwd: REPO_ROOT, env: {...process.env, NO_COLOR: '1', ...env}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

test('codiemb data pull honours HF_ENDPOINT and HF_TOKEN and prints the --json envelope', async () => {
  const out = mkdtempSync(join(tmpdir(), 'codiemb-pull-cli-'))
  try {
    const r = await runCommand('data/pull.js', ['org/tiny-sts', '--out', out, '--json'], {HF_ENDPOINT: endpoint, HF_TOKEN: TOKEN})
    assert.equal(r.code, 0, r.stderr + r.stdout)
    const env = JSON.parse(r.stdout)
    assert.equal(env.status, 0)
    assert.equal(env.result.endpoint, endpoint)
    assert.equal(env.result.files.length, 2)
    assert.equal(env.result.downloadedBytes, parquetBytes.length + 11)
    const bad = await runCommand('data/pull.js', ['org/nothing', '--out', out, '--json'], {HF_ENDPOINT: endpoint, HF_TOKEN: TOKEN})
    assert.equal(bad.code, 2)
    assert.match(JSON.parse(bad.stdout).message, /no dataset org\/nothing/)
    writeFileSync(join(out, 'marker'), '')
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})
