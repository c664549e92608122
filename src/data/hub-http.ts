/**
 * The HTTP side of `data pull`: one GET with its redirects, timeouts and retries, and failures that
 * say what happened. Built on `fetch`, with redirects followed by hand (`redirect: 'manual'`) so
 * that codiemb, not the HTTP library, decides where the token goes.
 *
 * - The token goes only to the hub's own origin (HF_ENDPOINT's scheme, host and port). A file
 *   download that redirects elsewhere (the real hub sends resolve URLs to signed CDN URLs) is
 *   followed without it; listing requests may not leave the hub's origin at all.
 * - Redirect chains are bounded (10 hops) and may not revisit a URL.
 * - Connect timeout: from sending a request to having the response headers (connecting, TLS, the
 *   server's answer). Idle timeout: the longest wait for the next piece of a response body. A
 *   stalled server therefore fails in bounded time instead of hanging the pull.
 * - Retries: network errors, timeouts, HTTP 408, 429 and 5xx, and bodies cut short are tried again
 *   (`retries` times, waiting retryDelay, 2×, 4× … capped at 30 s, or the server's Retry-After up to
 *   60 s); other failures are final at once. Each failure names the URL without its query (signed
 *   CDN URLs carry credentials there) and the HTTP status or the network error's code.
 */
import {HubError} from './hub-error.js'

export interface HttpSettings {
  /** Milliseconds from sending a request to its response headers (default 30 s). */
  connectTimeoutMs: number
  /** Milliseconds to wait for the next piece of a response body (default 60 s). */
  idleTimeoutMs: number
  /** Further attempts after a failure that another attempt may cure (default 3). */
  retries: number
  /** The first wait before a retry; each further one doubles it (default 1 s). */
  retryDelayMs: number
  fetch: typeof fetch
  /** The hub's origin: the only one that gets the token, and the only one a listing may reach. */
  origin: string
  token?: string
  /** Told before each retry, e.g. to report it as a status event. */
  onRetry?: (message: string) => void
}

export const DEFAULT_TIMEOUTS = {connectTimeoutMs: 30_000, idleTimeoutMs: 60_000, retries: 3, retryDelayMs: 1000}

const MAX_REDIRECTS = 10
const MAX_BACKOFF_MS = 30_000
const MAX_RETRY_AFTER_MS = 60_000

/**
 * A failure another attempt may cure. Only `retrying` catches it, and it turns the last one into a
 * HubError, so it never reaches a caller of pullRepo.
 */
class Transient extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message)
  }
}

/** A failure that `HubHttp.retrying` tries again (see the module docstring for which ones). */
export function transient(message: string, retryAfterMs?: number): Error {
  return new Transient(message, retryAfterMs)
}

/** `error` with `detail` appended to its message when it is a retryable failure; any other error as it is. */
export function addDetail(error: unknown, detail: string): unknown {
  return error instanceof Transient ? new Transient(`${error.message}${detail}`, error.retryAfterMs) : error
}

/** A URL as failures show it: scheme, host, port and path, without credentials, query or fragment. */
export function redactUrl(url: string | URL): string {
  const u = new URL(url)
  return `${u.protocol}//${u.host}${u.pathname}`
}

/** Plain words for the network errors users meet, by Node's and undici's error codes. */
const CODE_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed while sending',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no response headers in time',
  UND_ERR_BODY_TIMEOUT: 'the body stalled',
}

/**
 * What a network error was, from its cause chain rather than fetch's own "fetch failed" or
 * "terminated": e.g. `connection refused (ECONNREFUSED)`, `connection closed by the server
 * (UND_ERR_SOCKET: other side closed)`.
 */
export function describeNetworkError(error: unknown): string {
  type Link = {code?: unknown; message?: unknown; cause?: unknown; errors?: unknown[]}
  let withCode: Link | undefined
  let last: Link | undefined
  for (let e = error as Link | undefined, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    last = e
    if (typeof e.code === 'string') withCode = e
    e = (e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined)) as Link | undefined
  }
  const pick = withCode ?? last
  const message = typeof pick?.message === 'string' ? pick.message : String(error)
  const code = pick?.code as string | undefined
  if (!code) return message
  const words = CODE_WORDS[code]
  if (!words) return `${message} (${code})`
  return `${words} (${code}${message && !message.includes(code) ? `: ${message}` : ''})`
}

/** Retry-After in milliseconds (seconds or an HTTP date), or undefined. */
function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined
  const seconds = Number(value)
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now()
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined
}

/** Whether an HTTP status is worth another attempt. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/** Text safe to put in a message: printable characters only, at most `max` of them. */
function printable(text: string, max = 200): string {
  const clean = text.replace(/[^\x20-\x7e\u00a0-\uffff]+/g, ' ').trim()
  return clean.length > max ? `${clean.slice(0, max)}…` : clean
}

/** One response, its final URL after redirects, and its body read under the idle timeout. */
export class Exchange {
  private timer?: ReturnType<typeof setTimeout>
  constructor(
    readonly response: Response,
    /** The URL that answered (after redirects). */
    readonly url: URL,
    private readonly controller: AbortController,
    private readonly idleTimeoutMs: number,
  ) {}

  /** The body's chunks. A stall longer than the idle timeout or a broken connection throws a retryable failure. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    const body = this.response.body
    if (!body) return
    const reader = body.getReader()
    let idle = false
    try {
      for (;;) {
        this.timer = setTimeout(() => {
          idle = true
          this.controller.abort()
        }, this.idleTimeoutMs)
        let next: ReadableStreamReadResult<Uint8Array>
        try {
          next = await reader.read()
        } catch (error) {
          if (idle) throw transient(`no data for ${seconds(this.idleTimeoutMs)} (idle timeout) from ${redactUrl(this.url)}`)
          throw transient(`${describeNetworkError(error)} while reading ${redactUrl(this.url)}`)
        } finally {
          clearTimeout(this.timer)
        }
        if (next.done) return
        yield next.value
      }
    } finally {
      reader.releaseLock()
    }
  }

  /** The whole body, failing (not retryable) beyond `maxBytes`. */
  async bytes(maxBytes: number, what: string): Promise<Buffer> {
    const parts: Uint8Array[] = []
    let total = 0
    for await (const chunk of this.chunks()) {
      total += chunk.byteLength
      if (total > maxBytes) {
        this.close()
        throw new HubError(`${what}: the response from ${redactUrl(this.url)} is larger than ${maxBytes} bytes`)
      }
      parts.push(chunk)
    }
    return Buffer.concat(parts)
  }

  /**
   * What went wrong, for a response that is not 2xx: status, URL, and the server's own words (a
   * JSON `error` field or the first line of text, from at most 4 KiB of the body).
   */
  async failure(): Promise<string> {
    let detail = ''
    try {
      const parts: Uint8Array[] = []
      let total = 0
      for await (const chunk of this.chunks()) {
        parts.push(chunk)
        total += chunk.byteLength
        if (total >= 4096) break
      }
      this.close()
      const text = Buffer.concat(parts).subarray(0, 4096).toString('utf8')
      try {
        const json = JSON.parse(text) as {error?: unknown; message?: unknown}
        detail = String(json.error ?? json.message ?? '')
      } catch {
        detail = text.split('\n')[0] ?? ''
      }
    } catch {
      this.close()
    }
    detail = printable(detail)
    const {status, statusText} = this.response
    return `HTTP ${status}${statusText ? ` ${printable(statusText, 60)}` : ''} from ${redactUrl(this.url)}${detail ? `: ${detail}` : ''}`
  }

  /** A retryable failure for a retryable status (with the server's Retry-After), else undefined. */
  async retryableFailure(): Promise<Error | undefined> {
    if (!retryableStatus(this.response.status)) return undefined
    return transient(await this.failure(), retryAfterMs(this.response.headers.get('retry-after')))
  }

  /** Drops the connection (the rest of the body is not wanted). */
  close(): void {
    clearTimeout(this.timer)
    this.controller.abort()
  }
}

function seconds(ms: number): string {
  return `${+(ms / 1000).toFixed(3)} s`
}

export class HubHttp {
  constructor(readonly settings: HttpSettings) {}

  /**
   * Sends a GET and follows its redirects, returning the first response that is not a redirect
   * (any status: the caller decides). `sameOrigin`: every hop must stay on the hub's origin (the
   * listing). The token is sent on hops to the hub's origin only. Network errors and the connect
   * timeout throw a retryable failure; redirect trouble throws a HubError.
   */
  async open(url: URL, headers: Record<string, string>, what: string, sameOrigin: boolean): Promise<Exchange> {
    const {settings} = this
    const seen = new Set<string>()
    let current = url
    for (let hop = 0; ; hop++) {
      seen.add(current.href)
      const hopHeaders = {...headers}
      if (settings.token && current.origin === settings.origin) hopHeaders.authorization = `Bearer ${settings.token}`
      const controller = new AbortController()
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        controller.abort()
      }, settings.connectTimeoutMs)
      let response: Response
      try {
        response = await settings.fetch(current, {headers: hopHeaders, redirect: 'manual', signal: controller.signal})
      } catch (error) {
        if (timedOut) throw transient(`no response within ${seconds(settings.connectTimeoutMs)} (connect timeout) from ${redactUrl(current)}`)
        throw transient(`${describeNetworkError(error)} from ${redactUrl(current)}`)
      } finally {
        clearTimeout(timer)
      }
      const exchange = new Exchange(response, current, controller, settings.idleTimeoutMs)
      if (![301, 302, 303, 307, 308].includes(response.status)) return exchange
      exchange.close()
      const location = response.headers.get('location')
      let next: URL
      try {
        next = new URL(location ?? '', current)
      } catch {
        throw new HubError(`${what}: ${redactUrl(current)} answered HTTP ${response.status} with an unusable Location`)
      }
      if (location === null || (next.protocol !== 'https:' && next.protocol !== 'http:'))
        throw new HubError(`${what}: ${redactUrl(current)} answered HTTP ${response.status} without an http(s) Location`)
      if (sameOrigin && next.origin !== settings.origin)
        throw new HubError(`${what}: ${redactUrl(current)} redirects to another origin (${next.origin}); refusing to follow it (the hub is ${settings.origin})`)
      if (seen.has(next.href)) throw new HubError(`${what}: redirect loop (${redactUrl(next)} again after ${hop + 1} redirects)`)
      if (hop + 1 >= MAX_REDIRECTS) throw new HubError(`${what}: more than ${MAX_REDIRECTS} redirects (last to ${redactUrl(next)})`)
      current = next
    }
  }

  /**
   * Runs `attempt` until it succeeds, a failure is final, or the retries are spent. The last
   * retryable failure becomes a HubError (exit code 1): "<what> failed: <reason> (gave up after N
   * attempts)". The token, should a message ever contain it, is masked.
   */
  async retrying<T>(what: string, attempt: (n: number) => Promise<T>): Promise<T> {
    const {retries, retryDelayMs, token, onRetry} = this.settings
    for (let n = 1; ; n++) {
      try {
        return await attempt(n)
      } catch (error) {
        if (!(error instanceof Transient)) throw error instanceof HubError && token ? mask(error, token) : error
        if (n > retries) {
          const message = `${what} failed: ${error.message}${n > 1 ? ` (gave up after ${n} attempts)` : ''}`
          throw new HubError(token ? message.replaceAll(token, '***') : message)
        }
        const backoff = Math.min(retryDelayMs * 2 ** (n - 1), MAX_BACKOFF_MS)
        const wait = Math.max(backoff, Math.min(error.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS))
        onRetry?.(`${what}: ${error.message}; retrying in ${seconds(wait)} (attempt ${n + 1} of ${retries + 1})`)
        await new Promise((resolve) => setTimeout(resolve, wait))
      }
    }
  }
}

function mask(error: HubError, token: string): HubError {
  return error.message.includes(token) ? new HubError(error.message.replaceAll(token, '***'), error.exitCode as 1 | 2) : error
}
