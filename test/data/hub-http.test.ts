/**
 * The HTTP layer of `data pull` (src/data/hub-http.ts) against scripted fetch functions: where the
 * token goes on redirects, redirect loops, the connect and idle timeouts, which failures are
 * retried and how often, and what failure messages say.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {HubError} from '../../src/data/hub-error.js'
import {describeNetworkError, HubHttp, redactUrl, retryableStatus, transient, type HttpSettings} from '../../src/data/hub-http.js'

const HUB = 'https://hub.test'
const TOKEN = 'hf_secret_token'

type Call = {url: string; auth?: string}

/** A fetch that answers from `route(url)` and records each call's URL and Authorization header. */
function scripted(route: (url: URL, init: RequestInit) => Response | Promise<Response>): {fetch: typeof fetch; calls: Call[]} {
  const calls: Call[] = []
  const fake = async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(String(input))
    calls.push({url: url.href, auth: (init.headers as Record<string, string>).authorization})
    assert.equal(init.redirect, 'manual', 'redirects are followed by hand')
    return route(url, init)
  }
  return {fetch: fake as typeof fetch, calls}
}

const redirect = (location: string, status = 302) => new Response(null, {status, headers: {location}})

function http(fetchImpl: typeof fetch, more: Partial<HttpSettings> = {}): HubHttp {
  return new HubHttp({connectTimeoutMs: 1000, idleTimeoutMs: 1000, retries: 2, retryDelayMs: 1, fetch: fetchImpl, origin: HUB, token: TOKEN, ...more})
}

test('redactUrl keeps scheme, host, port and path; drops credentials, query and fragment', () => {
  assert.equal(redactUrl('https://user:pw@cdn.test:8443/a/b.bin?X-Amz-Signature=abc&token=t#frag'), 'https://cdn.test:8443/a/b.bin')
  assert.equal(redactUrl(new URL('http://127.0.0.1:9/x')), 'http://127.0.0.1:9/x')
})

test('describeNetworkError names the cause and its code instead of "fetch failed" or "terminated"', () => {
  const refused = new TypeError('fetch failed', {cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {code: 'ECONNREFUSED'})})
  assert.equal(describeNetworkError(refused), 'connection refused (ECONNREFUSED)')
  const closed = new TypeError('terminated', {cause: Object.assign(new Error('other side closed'), {code: 'UND_ERR_SOCKET'})})
  assert.equal(describeNetworkError(closed), 'connection closed by the server (UND_ERR_SOCKET: other side closed)')
  const aggregate = new TypeError('fetch failed', {cause: Object.assign(new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:9'), {code: 'ECONNREFUSED'})]), {code: 'ECONNREFUSED'})})
  assert.equal(describeNetworkError(aggregate), 'connection refused (ECONNREFUSED)')
  assert.equal(describeNetworkError(Object.assign(new Error('weird'), {code: 'EWEIRD'})), 'weird (EWEIRD)')
  assert.equal(describeNetworkError(new Error('no code at all')), 'no code at all')
})

test('retryableStatus: 408, 429 and 5xx', () => {
  assert.deepEqual([200, 206, 301, 400, 401, 403, 404, 408, 416, 429, 500, 502, 503].filter(retryableStatus), [408, 429, 500, 502, 503])
})

test('the token goes to the hub origin only; a download follows a CDN redirect without it', async () => {
  const {fetch, calls} = scripted((url) => {
    if (url.origin === HUB && url.pathname === '/r/resolve/main/a.bin') return redirect('https://cdn.test/blob?sig=s3cr3t')
    if (url.origin === 'https://cdn.test' && url.pathname === '/blob') return redirect('/final?sig=2', 307)
    return new Response('bytes')
  })
  const exchange = await http(fetch).open(new URL(`${HUB}/r/resolve/main/a.bin`), {}, 'download of a.bin', false)
  assert.equal(await exchange.response.text(), 'bytes')
  assert.equal(exchange.url.href, 'https://cdn.test/final?sig=2')
  assert.deepEqual(calls, [
    {url: `${HUB}/r/resolve/main/a.bin`, auth: `Bearer ${TOKEN}`},
    {url: 'https://cdn.test/blob?sig=s3cr3t', auth: undefined},
    {url: 'https://cdn.test/final?sig=2', auth: undefined},
  ])
  // same host, other port or scheme: another origin
  const other = scripted((url) => (url.port === '' ? redirect('https://hub.test:444/x') : new Response('ok')))
  await http(other.fetch).open(new URL(`${HUB}/a`), {}, 'x', false)
  assert.equal(other.calls[1]!.auth, undefined)
})

test('listing requests may not be redirected to another origin; loops, long chains and bad Locations fail with what and where', async () => {
  const cross = scripted(() => redirect('https://evil.test/api?cursor=1'))
  await assert.rejects(http(cross.fetch).open(new URL(`${HUB}/api/x`), {}, 'listing o/r', true), /^HubError: listing o\/r: https:\/\/hub\.test\/api\/x redirects to another origin \(https:\/\/evil\.test\); refusing to follow it \(the hub is https:\/\/hub\.test\)$/)
  assert.equal(cross.calls.length, 1, 'the other origin is never contacted')

  const loop = scripted((url) => redirect(url.pathname === '/a' ? '/b' : '/a'))
  await assert.rejects(http(loop.fetch).open(new URL(`${HUB}/a`), {}, 'download of f', false), /^HubError: download of f: redirect loop \(https:\/\/hub\.test\/a again after 2 redirects\)$/)
  assert.equal(loop.calls.length, 2)

  const chain = scripted((url) => redirect(`/n${Number(url.pathname.slice(2) || 0) + 1}`))
  await assert.rejects(http(chain.fetch).open(new URL(`${HUB}/n0`), {}, 'download of f', false), /more than 10 redirects \(last to https:\/\/hub\.test\/n10\)/)
  assert.equal(chain.calls.length, 10)

  const missing = scripted(() => new Response(null, {status: 302}))
  await assert.rejects(http(missing.fetch).open(new URL(`${HUB}/a`), {}, 'download of f', false), /answered HTTP 302 without an http\(s\) Location/)
  const file = scripted(() => redirect('file:///etc/passwd'))
  await assert.rejects(http(file.fetch).open(new URL(`${HUB}/a`), {}, 'download of f', false), /answered HTTP 302 without an http\(s\) Location/)
})

test('connect timeout: no response headers in time is a retryable failure naming the URL', async () => {
  const hang = scripted((_url, init) => new Promise<Response>((_resolve, reject) => init.signal!.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))))
  const client = http(hang.fetch, {connectTimeoutMs: 30, retries: 1})
  const started = Date.now()
  await assert.rejects(
    client.retrying('download of a.bin', () => client.open(new URL(`${HUB}/a.bin?sig=x`), {}, 'download of a.bin', false)),
    /^HubError: download of a\.bin failed: no response within 0\.03 s \(connect timeout\) from https:\/\/hub\.test\/a\.bin \(gave up after 2 attempts\)$/,
  )
  assert.equal(hang.calls.length, 2)
  assert.ok(Date.now() - started < 1000)
})

test('idle timeout: a body that stops sending fails after the idle time, not never', async () => {
  const stall = scripted((_url, init) => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1, 2, 3]))
        init.signal!.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')))
      },
    })
    return new Response(body)
  })
  const exchange = await http(stall.fetch, {idleTimeoutMs: 40}).open(new URL(`${HUB}/s`), {}, 'x', false)
  const got: number[] = []
  const started = Date.now()
  await assert.rejects(
    (async () => {
      for await (const chunk of exchange.chunks()) got.push(...chunk)
    })(),
    (e: Error) => e.message === 'no data for 0.04 s (idle timeout) from https://hub.test/s' && !(e instanceof HubError),
  )
  assert.deepEqual(got, [1, 2, 3])
  assert.ok(Date.now() - started < 1000)
})

test('retrying: retryable failures up to the limit with growing waits, Retry-After honoured, other errors at once, the token masked', async () => {
  const messages: string[] = []
  const client = http(scripted(() => new Response('')).fetch, {retries: 3, retryDelayMs: 5, onRetry: (m) => messages.push(m)})
  let n = 0
  assert.equal(await client.retrying('op', async (attempt) => {
    n++
    if (attempt < 3) throw transient(`flaky ${attempt}`)
    return 'done'
  }), 'done')
  assert.equal(n, 3)
  assert.deepEqual(messages, ['op: flaky 1; retrying in 0.005 s (attempt 2 of 4)', 'op: flaky 2; retrying in 0.01 s (attempt 3 of 4)'])

  messages.length = 0
  await assert.rejects(client.retrying('op', async () => {
    throw transient('down', 20)
  }), /^HubError: op failed: down \(gave up after 4 attempts\)$/)
  assert.deepEqual(messages.map((m) => /retrying in ([\d.]+ s)/.exec(m)![1]), ['0.02 s', '0.02 s', '0.02 s'], 'Retry-After (20 ms) beats the shorter backoff 5, 10 ms; 20 ms equals the third')

  n = 0
  await assert.rejects(client.retrying('op', async () => {
    n++
    throw new HubError('final')
  }), /^HubError: final$/)
  assert.equal(n, 1, 'a HubError is not retried')

  await assert.rejects(client.retrying('op', async () => {
    throw transient(`echo ${TOKEN}`)
  }), (e: Error) => !e.message.includes(TOKEN) && e.message.includes('echo ***'))
  await assert.rejects(client.retrying('op', async () => {
    throw new HubError(`echo ${TOKEN}`, 2)
  }), (e: Error & {exitCode?: number}) => e.message === 'echo ***' && e.exitCode === 2)

  const once = http(scripted(() => new Response('')).fetch, {retries: 0})
  await assert.rejects(once.retrying('op', async () => {
    throw transient('down')
  }), /^HubError: op failed: down$/)
})

test('failure() gives the status, the URL without its query and the server\'s words (from the first 4 KiB), printable and short', async () => {
  const {fetch} = scripted((url) =>
    url.pathname === '/json'
      ? new Response(JSON.stringify({error: 'Repository not found'}), {status: 404, statusText: 'Not Found'})
      : url.pathname === '/big'
        ? new Response('y'.repeat(100_000), {status: 500})
        : new Response(`\u001b[31m${'x'.repeat(500)}\nsecond line`, {status: 502, statusText: 'Bad Gateway'}),
  )
  const client = http(fetch)
  const json = await client.open(new URL(`${HUB}/json?a=1`), {}, 'x', false)
  assert.equal(await json.failure(), 'HTTP 404 Not Found from https://hub.test/json: Repository not found')
  assert.equal(await json.retryableFailure(), undefined)
  const text = await client.open(new URL(`${HUB}/text?sig=1`), {}, 'x', false)
  const failure = await text.retryableFailure()
  assert.match(failure!.message, /^HTTP 502 Bad Gateway from https:\/\/hub\.test\/text: \[31mx{190}x*…$/)
  assert.ok(!failure!.message.includes('\u001b'))
  const big = await client.open(new URL(`${HUB}/big`), {}, 'x', false)
  assert.equal(await big.failure(), `HTTP 500 from https://hub.test/big: ${'y'.repeat(200)}…`, 'the first 4 KiB of a long body give the words')
})
