/**
 * `data pull` against hostile and broken servers on 127.0.0.1 (test/helpers/fake-hub.ts): every
 * promise of docs/reliability.md § data pull, each with the server behaviour that broke it before.
 *
 * - no file grows past its listed size; an announced oversize body writes nothing;
 * - pagination stays on the hub's origin, the token reaches no other host, loops end at once;
 * - stalled headers and stalled bodies end after the connect / idle timeout, retries are bounded,
 *   transient failures are retried and resume with a Range request;
 * - repository ids and listed paths cannot write outside the output folder or into `.git/`, names
 *   cannot collide (not even with partial downloads), configuration files are not written;
 * - every failure names the file or listing, the URL without its query, and the HTTP status or the
 *   network error's code, and never the token.
 *
 * Timeouts are tenths of a second and retry delays milliseconds, so the file runs in a few seconds.
 */
import {test, before, after} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {ServerResponse} from 'node:http'
import {pullRepo, type PullOptions} from '../../src/data/hub.js'
import {runCommandAsync} from '../helpers/cli.js'
import {serveBytes, startFakeHub, startServer, treeEntries, type FakeFile, type FakeHub, type LocalServer} from '../helpers/fake-hub.js'

const TOKEN = 'hf_reliability_secret_token'
const SIGNATURE = 'X-Amz-Signature=cdn_secret_signature'
/** Each test's limit: a client that hangs on a stalled server fails the test instead of hanging the suite. */
const LIMIT_MS = 20_000

let hub: FakeHub
/** Another origin: it must never be asked for a listing page nor see the token. */
let evil: LocalServer
let dirs: string[] = []

const fast = (out: string, more: PullOptions = {}): PullOptions => ({endpoint: hub.endpoint, token: TOKEN, out, connectTimeoutMs: 150, idleTimeoutMs: 150, retries: 1, retryDelayMs: 5, ...more})
const tmp = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-pull-rel-'))
  dirs.push(dir)
  return dir
}
/** Every file under `dir`, relative, sorted ([] when it does not exist). */
const tree = (dir: string): string[] => (existsSync(dir) ? (readdirSync(dir, {recursive: true}) as string[]).filter((p) => statSync(join(dir, p)).isFile()).sort() : [])
const repo = (name: string, files: FakeFile[]) => hub.repos.set(`datasets:org/${name}`, files)
const file = (path: string, content: string | Buffer = `content of ${path}`): FakeFile => ({path, content: Buffer.from(content)})
const resolveCalls = () => hub.requests.filter((r) => r.url.includes('/resolve/'))

/** Rejects with a HubError of this exit code whose message matches. */
async function fails(promise: Promise<unknown>, message: RegExp, exitCode = 1): Promise<string> {
  try {
    await promise
  } catch (e) {
    const error = e as Error & {exitCode?: number}
    assert.equal(error.name, 'HubError', error.stack)
    assert.match(error.message, message)
    assert.equal(error.exitCode, exitCode, error.message)
    assert.ok(!error.message.includes(TOKEN), 'the token is never in a message')
    return error.message
  }
  assert.fail(`did not fail (expected ${message})`)
}

/** Streams `total` bytes in 64 KiB chunks, honouring backpressure, until done or the client leaves; reports how many were written. */
function flood(res: ServerResponse, total: number, done: (sent: number) => void): void {
  const chunk = Buffer.alloc(64 * 1024, 120)
  let sent = 0
  const pump = (): void => {
    while (sent < total && !res.destroyed) {
      sent += chunk.length
      if (!res.write(chunk)) return void res.once('drain', pump)
    }
    if (!res.destroyed) res.end()
  }
  res.on('close', () => done(sent))
  pump()
}

before(async () => {
  hub = await startFakeHub(TOKEN)
  evil = await startServer((_req, res) => res.writeHead(200, {'content-type': 'application/json'}).end('[]'))
})

after(async () => {
  await hub.close()
  await evil.close()
  for (const dir of dirs) rmSync(dir, {recursive: true, force: true})
  dirs = []
})

test('a file listed at 10 bytes is cut off at 10 bytes: a 50 MB body is stopped early and discarded, an announced one never written', {timeout: LIMIT_MS}, async () => {
  repo('oversize', [file('small.bin', '0123456789')])
  const out = tmp()
  let sent = -1
  hub.intercept = (_req, res, url) => {
    if (!url.pathname.endsWith('/small.bin')) return false
    res.writeHead(200, {'content-type': 'application/octet-stream'})
    flood(res, 50 * 1024 * 1024, (n) => (sent = n))
    return true
  }
  await fails(pullRepo('org/oversize', fast(out)), /^download of small\.bin failed: http:\/\/127\.0\.0\.1:\d+\/datasets\/org\/oversize\/resolve\/main\/small\.bin sent more than the 10 bytes the listing gives; the download was discarded$/)
  assert.deepEqual(tree(out), [], 'neither small.bin nor a partial download remains')
  for (let i = 0; i < 100 && sent < 0; i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(sent >= 0 && sent < 16 * 1024 * 1024, `the client hung up early (the server wrote ${sent} bytes)`)

  hub.intercept = (_req, res, url) => {
    if (!url.pathname.endsWith('/small.bin')) return false
    res.writeHead(200, {'content-length': 50 * 1024 * 1024})
    flood(res, 50 * 1024 * 1024, () => {})
    return true
  }
  await fails(pullRepo('org/oversize', fast(out)), /^download of small\.bin failed: .*small\.bin announces 52428800 bytes \(Content-Length\) where the listing gives 10; nothing was written$/)
  assert.deepEqual(tree(out), [])
  hub.intercept = undefined
})

test('pagination: a next-page link to another origin is refused before any request there, and the token never leaves the hub', {timeout: LIMIT_MS}, async () => {
  repo('cross', [file('a.txt'), file('b.txt'), file('c.txt')])
  const out = tmp()
  hub.intercept = (_req, res, url) => {
    if (!url.pathname.startsWith('/api/')) return false
    res.writeHead(200, {'content-type': 'application/json', link: `<${evil.origin}/api/datasets/org/cross/tree/main?cursor=2>; rel="next"`})
    res.end(JSON.stringify(treeEntries(hub.repos.get('datasets:org/cross')!).slice(0, 2)))
    return true
  }
  await fails(pullRepo('org/cross', fast(out)), /^listing dataset org\/cross@main on http:\/\/127\.0\.0\.1:\d+: the next-page link of page 1 points to another origin \(http:\/\/127\.0\.0\.1:\d+\); refusing to follow it \(the hub is http:\/\/127\.0\.0\.1:\d+\)$/)
  // a listing redirect elsewhere is refused the same way
  hub.intercept = (_req, res, url) => {
    if (!url.pathname.startsWith('/api/')) return false
    res.writeHead(302, {location: `${evil.origin}/api/datasets/org/cross/tree/main`}).end()
    return true
  }
  await fails(pullRepo('org/cross', fast(out)), /^listing dataset org\/cross@main on .*: http:\/\/127\.0\.0\.1:\d+\/api\/datasets\/org\/cross\/tree\/main redirects to another origin \(http:\/\/127\.0\.0\.1:\d+\); refusing to follow it/)
  hub.intercept = undefined
  assert.equal(evil.requests.length, 0, 'the other origin was never contacted')
  assert.deepEqual(tree(out), [])
})

test('pagination loops end at once: a self-link, a cursor that serves the same entries again, endless empty pages', {timeout: LIMIT_MS}, async () => {
  repo('loop', [file('a.txt'), file('b.txt'), file('c.txt')])
  const out = tmp()
  const pages: Record<string, (url: URL) => {body: object[]; link?: string}> = {
    self: (url) => ({body: treeEntries(hub.repos.get('datasets:org/loop')!).slice(0, 2), link: `<${hub.endpoint}${url.pathname}${url.search}>; rel="next"`}),
    same: (url) => ({body: treeEntries(hub.repos.get('datasets:org/loop')!).slice(0, 2), link: `<${hub.endpoint}${url.pathname}?recursive=true&cursor=${Number(url.searchParams.get('cursor') ?? 0) + 1}>; rel="next"`}),
    empty: (url) => ({body: [], link: `<${hub.endpoint}${url.pathname}?recursive=true&cursor=${Number(url.searchParams.get('cursor') ?? 0) + 1}>; rel="next"`}),
  }
  const expected: Record<string, [RegExp, number]> = {
    self: [/^listing dataset org\/loop@main on .*: the next-page link of page 1 leads back to page 1 \(a pagination loop\)$/, 1],
    same: [/^listing dataset org\/loop@main on .* \(page 2\): "data" is listed again \(page 1 had it\): a pagination loop$/, 2],
    empty: [/^listing dataset org\/loop@main on .* \(page 3\): 3 pages in a row without entries, and still a next-page link: a pagination loop$/, 3],
  }
  for (const [kind, page] of Object.entries(pages)) {
    hub.requests.length = 0
    hub.intercept = (_req, res, url) => {
      if (!url.pathname.startsWith('/api/')) return false
      const {body, link} = page(url)
      res.writeHead(200, {'content-type': 'application/json', ...(link ? {link} : {})}).end(JSON.stringify(body))
      return true
    }
    const [message, requests] = expected[kind]!
    await fails(pullRepo('org/loop', fast(out)), message)
    assert.equal(hub.requests.length, requests, `${kind}: ${hub.requests.length} requests`)
  }
  hub.intercept = undefined
  assert.deepEqual(tree(out), [])
})

test('a stalled body ends after the idle timeout, is retried once with a Range request, and keeps its bytes for the next run', {timeout: LIMIT_MS}, async () => {
  const content = Buffer.alloc(1000, 7)
  repo('stall', [{path: 'stall.bin', content}])
  const out = tmp()
  hub.requests.length = 0
  hub.intercept = (req, res, url) => {
    if (!url.pathname.endsWith('/stall.bin')) return false
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0)
    res.writeHead(start ? 206 : 200, {'content-length': content.length - start, ...(start ? {'content-range': `bytes ${start}-999/1000`} : {})})
    res.write(content.subarray(start, start + 100)) // then nothing, for ever
    return true
  }
  const started = Date.now()
  await fails(
    pullRepo('org/stall', fast(out)),
    /^download of stall\.bin failed: no data for 0\.15 s \(idle timeout\) from http:\/\/127\.0\.0\.1:\d+\/datasets\/org\/stall\/resolve\/main\/stall\.bin after 200 of 1000 bytes \(gave up after 2 attempts\); 200 of 1000 bytes are kept in \.stall\.bin\.incomplete: run the command again to resume$/,
  )
  assert.ok(Date.now() - started < 3000, `gave up in ${Date.now() - started} ms`)
  assert.deepEqual(resolveCalls().map((r) => r.range), [undefined, 'bytes=100-'])
  assert.deepEqual(tree(out), ['.stall.bin.incomplete'])
  hub.intercept = undefined
  const r = await pullRepo('org/stall', fast(out))
  assert.equal(r.files[0]!.status, 'resumed')
  assert.deepEqual(readFileSync(join(out, 'stall.bin')), content)
  assert.deepEqual(tree(out), ['stall.bin'])
})

test('stalled headers end after the connect timeout; a closed port says ECONNREFUSED; both after the bounded retries', {timeout: LIMIT_MS}, async () => {
  repo('mute', [file('a.txt')])
  const out = tmp()
  hub.requests.length = 0
  hub.intercept = () => true // never answers
  await fails(pullRepo('org/mute', fast(out, {retries: 2})), /^listing dataset org\/mute@main on http:\/\/127\.0\.0\.1:\d+ failed: no response within 0\.15 s \(connect timeout\) from http:\/\/127\.0\.0\.1:\d+\/api\/datasets\/org\/mute\/tree\/main \(gave up after 3 attempts\)$/)
  assert.equal(hub.requests.length, 3)
  hub.intercept = undefined

  const closed = await startServer(() => {})
  const endpoint = closed.origin
  await closed.close()
  await fails(pullRepo('org/mute', fast(out, {endpoint})), new RegExp(`^listing dataset org/mute@main on ${endpoint} failed: connection refused \\(ECONNREFUSED\\) from ${endpoint}/api/datasets/org/mute/tree/main \\(gave up after 2 attempts\\)$`))
  assert.deepEqual(tree(out), [])
})

test('HTTP 503 and 429 are retried (Retry-After honoured); 403 fails at once with status, URL and the server\'s words', {timeout: LIMIT_MS}, async () => {
  repo('flaky', [file('a.txt'), file('b.txt')])
  const out = tmp()
  const answers = [503, 429, 503]
  hub.requests.length = 0
  hub.intercept = (_req, res, url) => {
    if (!url.pathname.endsWith('/a.txt') || answers.length === 0) return false
    res.writeHead(answers.shift()!, {'retry-after': '0'}).end('busy')
    return true
  }
  const events: string[] = []
  const r = await pullRepo('org/flaky', fast(out, {retries: 3, onEvent: (e) => e.type === 'status' && events.push(e.message)}))
  assert.deepEqual(r.files.map((f) => f.status), ['downloaded', 'downloaded'])
  assert.equal(resolveCalls().filter((q) => q.url.endsWith('/a.txt')).length, 4)
  assert.match(events[0]!, /^download of a\.txt: HTTP 503 Service Unavailable from http:\/\/127\.0\.0\.1:\d+\/datasets\/org\/flaky\/resolve\/main\/a\.txt: busy; retrying in 0\.005 s \(attempt 2 of 4\)$/)
  assert.match(events[1]!, /HTTP 429 Too Many Requests .*retrying in 0\.01 s \(attempt 3 of 4\)$/)

  hub.requests.length = 0
  hub.intercept = (_req, res, url) => {
    if (!url.pathname.endsWith('/b.txt')) return false
    res.writeHead(403, {'content-type': 'application/json'}).end(JSON.stringify({error: 'Access to this file is restricted'}))
    return true
  }
  rmSync(join(out, 'b.txt'))
  await fails(pullRepo('org/flaky', fast(out, {retries: 3})), /^download of b\.txt failed: HTTP 403 Forbidden from http:\/\/127\.0\.0\.1:\d+\/datasets\/org\/flaky\/resolve\/main\/b\.txt: Access to this file is restricted$/)
  assert.equal(resolveCalls().length, 1, 'a 403 is not retried')
  hub.intercept = undefined
})

test('downloads follow a redirect to a CDN without the token; CDN failures name the CDN URL without its signature', {timeout: LIMIT_MS}, async () => {
  const content = Buffer.from('bytes from the cdn')
  let cdnFails = false
  const cdn = await startServer((req, res) => (cdnFails ? res.writeHead(500).end('cdn down') : serveBytes(req, res, content)))
  try {
    repo('cdn', [{path: 'w.bin', content, lfs: true}])
    const out = tmp()
    hub.intercept = (_req, res, url) => {
      if (!url.pathname.endsWith('/w.bin')) return false
      res.writeHead(302, {location: `${cdn.origin}/blobs/abc?${SIGNATURE}&Expires=1`}).end()
      return true
    }
    const r = await pullRepo('org/cdn', fast(out))
    assert.equal(r.files[0]!.status, 'downloaded')
    assert.deepEqual(readFileSync(join(out, 'w.bin')), content)
    assert.deepEqual(cdn.requests.map((q) => [q.url, q.auth]), [[`/blobs/abc?${SIGNATURE}&Expires=1`, undefined]])

    cdnFails = true
    rmSync(join(out, 'w.bin'))
    const message = await fails(pullRepo('org/cdn', fast(out)), new RegExp(`^download of w\\.bin failed: HTTP 500 Internal Server Error from ${cdn.origin}/blobs/abc: cdn down \\(gave up after 2 attempts\\)$`))
    assert.ok(!message.includes('Signature'))
    assert.ok(cdn.requests.every((q) => q.auth === undefined), 'the CDN never saw the token')
  } finally {
    hub.intercept = undefined
    await cdn.close()
  }
})

test('a resumed download the server answers with the wrong range, or with the whole file (even one cut short), starts over and ends correct', {timeout: LIMIT_MS}, async () => {
  const content = Buffer.from('abcdefghijklmnopqrstuvwxyz')
  repo('ranges', [{path: 'r.txt', content}])
  const ranges: Record<string, (string | undefined)[]> = {'wrong-range': ['bytes=6-', undefined], 'whole-file': ['bytes=6-'], 'whole-file-cut': ['bytes=6-', 'bytes=5-']}
  for (const [answer, requested] of Object.entries(ranges)) {
    const out = tmp()
    writeFileSync(join(out, '.r.txt.incomplete'), 'abcXYZ') // a stale partial download
    hub.requests.length = 0
    hub.intercept = (req, res, url) => {
      if (!url.pathname.endsWith('/r.txt') || req.headers.range !== 'bytes=6-') return false
      if (answer === 'wrong-range') res.writeHead(206, {'content-range': `bytes 0-25/26`, 'content-length': 26}).end(content)
      else if (answer === 'whole-file') res.writeHead(200, {'content-length': 26}).end(content)
      else res.writeHead(200, {'content-length': 26}).write(content.subarray(0, 5), () => setTimeout(() => res.destroy(), 10))
      return true
    }
    const r = await pullRepo('org/ranges', fast(out))
    assert.equal(readFileSync(join(out, 'r.txt'), 'utf8'), content.toString(), answer)
    assert.equal(r.files[0]!.status, 'downloaded', `${answer}: the stale bytes were not kept`)
    assert.deepEqual(resolveCalls().map((q) => q.range), requested, answer)
    assert.deepEqual(tree(out), ['r.txt'])
  }
  hub.intercept = undefined
})

test('repository files x and x.incomplete stay two files, across an interrupted run and its resumption', {timeout: LIMIT_MS}, async () => {
  const x = Buffer.from('the bytes of x, which are quite a few more than three')
  const xi = Buffer.from('the bytes of x.incomplete')
  repo('names', [{path: 'x.incomplete', content: xi}, {path: 'x', content: x}])
  const out = tmp()
  hub.intercept = (_req, res, url) => {
    if (!url.pathname.endsWith('/x')) return false
    hub.intercept = undefined
    res.writeHead(200, {'content-length': x.length})
    res.write(x.subarray(0, 3), () => setTimeout(() => res.destroy(), 10))
    return true
  }
  await fails(pullRepo('org/names', fast(out, {retries: 0})), /^download of x failed: connection closed by the server \(UND_ERR_SOCKET: other side closed\) while reading .*\/resolve\/main\/x after 3 of 53 bytes; 3 of 53 bytes are kept in \.x\.incomplete: run the command again to resume$/)
  assert.deepEqual(readFileSync(join(out, 'x.incomplete')), xi)
  const r = await pullRepo('org/names', fast(out))
  assert.deepEqual(r.files.map((f) => [f.path, f.status]), [['x.incomplete', 'present'], ['x', 'resumed']])
  assert.deepEqual(readFileSync(join(out, 'x')), x)
  assert.deepEqual(readFileSync(join(out, 'x.incomplete')), xi)
  assert.deepEqual(tree(out), ['x', 'x.incomplete'])
})

test('repository ids that climb out (a/.., ../x) fail with exit code 2 before any request', {timeout: LIMIT_MS}, async () => {
  const cwd = tmp()
  hub.requests.length = 0
  for (const id of ['a/..', '../x', 'a/.', '..']) await fails(pullRepo(id, {endpoint: hub.endpoint, token: TOKEN, out: undefined}), /^not a hub repository id: /, 2)
  assert.equal(hub.requests.length, 0)
  const cli = await runCommandAsync('data/pull.js', ['a/..', '--json'], {HF_ENDPOINT: hub.endpoint, HF_TOKEN: TOKEN})
  assert.equal(cli.status, 2, cli.stderr)
  assert.match(cli.json.message, /not a hub repository id: "a\/\.\."/)
  assert.deepEqual(tree(cwd), [])
})

test('listings naming .., absolute paths, .git/ or colliding names are refused whole: nothing written, nothing downloaded', {timeout: LIMIT_MS}, async () => {
  const parent = tmp()
  const out = join(parent, 'out')
  const cases: [string, string[], RegExp][] = [
    ['dotdot', ['ok.txt', '../escape.txt', 'a/../../b.txt'], /"\.\.\/escape\.txt": a "\.\." segment; "a\/\.\.\/\.\.\/b\.txt": a "\.\." segment/],
    ['absolute', ['ok.txt', '/tmp/abs.txt'], /"\/tmp\/abs\.txt": an absolute path/],
    ['git', ['ok.txt', '.git/config', 'sub/.git/hooks/post-checkout'], /"\.git\/config": a \.git segment .*"sub\/\.git\/hooks\/post-checkout": a \.git segment/],
    ['case', ['README.md', 'readme.md'], /"README\.md" and "readme\.md" differ only in letter case/],
    ['file-dir', ['a', 'a/b.txt'], /"a" is a file, but "a\/b\.txt" needs a folder of that name/],
  ]
  for (const [name, paths, problem] of cases) {
    repo(name, paths.map((p) => file(p)))
    hub.requests.length = 0
    await fails(pullRepo(`org/${name}`, fast(out)), new RegExp(`^refusing the listing of dataset org/${name}@main, nothing was written: .*${problem.source}.*If the repository is trustworthy, select the files you need with --include\\.$`))
    assert.equal(resolveCalls().length, 0, name)
  }
  assert.deepEqual(tree(parent), [])
  // --include can pick the safe files of such a listing
  const r = await pullRepo('org/git', fast(out, {include: ['ok.txt']}))
  assert.deepEqual(r.files.map((f) => f.path), ['ok.txt'])
  assert.deepEqual(tree(parent), ['out/ok.txt'])
})

test('configuration and hidden files are not written but reported; .gitattributes is', {timeout: LIMIT_MS}, async () => {
  repo('config', ['data.txt', '.gitattributes', '.codiembrc.js', 'codiemb.config.mjs', 'sub/package.json', '.envrc', '.vscode/settings.json', '.config/config.js'].map((p) => file(p)))
  const out = tmp()
  hub.requests.length = 0
  const r = await pullRepo('org/config', fast(out))
  assert.deepEqual(tree(out), ['.gitattributes', 'data.txt'])
  assert.deepEqual(r.skipped.map((s) => s.path), ['.codiembrc.js', 'codiemb.config.mjs', 'sub/package.json', '.envrc', '.vscode/settings.json', '.config/config.js'])
  assert.deepEqual(resolveCalls().map((q) => q.url.split('/main/')[1]).sort(), ['.gitattributes', 'data.txt'])
})

test('malformed listings fail naming the page and the problem', {timeout: LIMIT_MS}, async () => {
  const out = tmp()
  const bodies: [string, RegExp][] = [
    ['<html>oops</html>', /: the response from http:\/\/127\.0\.0\.1:\d+\/api\/datasets\/org\/bad\/tree\/main is not JSON \(/],
    ['{"files": []}', /is not a JSON array of files$/],
    ['[{"type": "file", "path": "a", "size": -1}]', /malformed listing: "a": its size is not a whole number of bytes$/],
    ['[{"type": "file", "path": "a", "size": 1, "lfs": {"oid": "xyz", "size": 1}}]', /malformed listing: "a": its LFS oid is not a sha256$/],
    ['[{"type": "file", "size": 1}]', /malformed listing: a file without a path$/],
  ]
  for (const [body, message] of bodies) {
    hub.intercept = (_req, res, url) => (url.pathname.startsWith('/api/') ? (res.writeHead(200).end(body), true) : false)
    await fails(pullRepo('org/bad', fast(out)), message)
  }
  hub.intercept = undefined
  assert.deepEqual(tree(out), [])
})

test('the CLI: --idle-timeout, CODIEMB_PULL_RETRIES, exit 1 naming file, URL and cause; no token or signature on stdout, stderr or --events', {timeout: LIMIT_MS}, async () => {
  const content = Buffer.alloc(500, 1)
  repo('cli-stall', [{path: 'data/s.bin', content}])
  const out = tmp()
  const events = join(tmp(), 'events.ndjson')
  hub.intercept = (_req, res, url) => {
    if (!url.pathname.endsWith('/s.bin')) return false
    res.writeHead(302, {location: `${hub.endpoint}/signed/s.bin?${SIGNATURE}`}).end()
    return true
  }
  const cdnIntercept = hub.intercept
  hub.intercept = (req, res, url) => {
    if (url.pathname === '/signed/s.bin') {
      const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0)
      res.writeHead(start ? 206 : 200, {'content-length': 500 - start, ...(start ? {'content-range': `bytes ${start}-499/500`} : {})})
      res.write(content.subarray(start, start + 50))
      return true
    }
    return cdnIntercept(req, res, url)
  }
  const started = Date.now()
  const r = await runCommandAsync('data/pull.js', ['org/cli-stall', '--out', out, '--idle-timeout', '0.2', '--events', events, '--json'], {HF_ENDPOINT: hub.endpoint, HF_TOKEN: TOKEN, CODIEMB_PULL_RETRIES: '1'})
  hub.intercept = undefined
  assert.equal(r.status, 1, r.stderr + r.stdout)
  assert.equal(r.json.name, 'HubError')
  assert.match(r.json.message, /^download of data\/s\.bin failed: no data for 0\.2 s \(idle timeout\) from http:\/\/127\.0\.0\.1:\d+\/signed\/s\.bin after 100 of 500 bytes \(gave up after 2 attempts\); 100 of 500 bytes are kept in data\/\.s\.bin\.incomplete: run the command again to resume$/)
  assert.ok(Date.now() - started < 15_000)
  const log = readFileSync(events, 'utf8')
  assert.match(log, /"type":"status","message":"download of data\/s\.bin: no data for 0\.2 s \(idle timeout\)/)
  for (const text of [r.stdout, r.stderr, log]) {
    assert.ok(!text.includes(TOKEN), 'no token')
    assert.ok(!text.includes('cdn_secret_signature'), 'no signed-URL secret')
  }
  const bad = await runCommandAsync('data/pull.js', ['org/cli-stall', '--out', out, '--connect-timeout', '0', '--json'], {HF_ENDPOINT: hub.endpoint})
  assert.equal(bad.status, 2, bad.stdout + bad.stderr)
  assert.match(bad.json.message, /expected a number of seconds > 0, got "0"/)
})
