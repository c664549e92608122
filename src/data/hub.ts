/**
 * `codiemb data pull`: downloads every file of a Hugging Face hub repository (a dataset by default)
 * at a revision into a local folder, so `prepare` (parquet / hf-arrow / beir readers) and `eval` can
 * read it offline.
 *
 * - Listing: the hub's tree API (`/api/{datasets,models}/ID/tree/REV?recursive=true`), paginated by
 *   `Link: <…>; rel="next"` headers. Next-page links are followed on the hub's own origin only (the
 *   token must not travel elsewhere) and never to a page already seen; a page that lists a path
 *   again, or 3 empty pages in a row, is a loop too; at most 10,000 pages of at most 32 MiB each.
 * - Paths: checked before anything is written (src/data/hub-paths.ts): unsafe or colliding paths
 *   fail the pull, configuration and hidden files are skipped and reported.
 * - `HF_ENDPOINT` selects the hub (mirrors, a local test server); `HF_TOKEN` authenticates, and is
 *   sent to that hub's origin only; a download redirected to a CDN is followed without it.
 * - Resumable: a file is downloaded to `dir/.name.incomplete`; a later attempt or run asks for the
 *   remaining bytes with an HTTP Range request (starting over if the server ignores it or answers
 *   with another range). Files already present with the listed size are skipped.
 * - Bounded: no file grows past the size the listing gives (a longer body is cut off and discarded);
 *   connect and idle timeouts and bounded retries (src/data/hub-http.ts) end a stalled transfer.
 * - Verified: every file must end with exactly the listed size, and LFS files (whose oid is their
 *   sha256) must hash to it; only then is it renamed to its final name, so nothing half-written ever
 *   stands under a repository file's name.
 */
import {createHash} from 'node:crypto'
import {closeSync, createReadStream, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync} from 'node:fs'
import {dirname, join, relative, resolve, sep} from 'node:path'
import {EXIT_USER_ERROR} from '../core/errors.js'
import type {PullEvent, StatusEvent} from '../core/events.js'
import {HubError} from './hub-error.js'
import {addDetail, DEFAULT_TIMEOUTS, HubHttp, redactUrl, transient} from './hub-http.js'
import {checkRepoId, checkRevision, partialPath, planFiles, type ListedFile, type SkippedFile} from './hub-paths.js'

export {HubError} from './hub-error.js'
export type {SkippedFile} from './hub-paths.js'

export interface PullOptions {
  revision?: string
  /** Destination folder (default `data/<repo id>`). */
  out?: string
  repoType?: 'dataset' | 'model'
  /** Hub base URL (default HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string
  /** Access token (default HF_TOKEN), sent to the hub's origin only. */
  token?: string
  /** Only files whose path matches one of these globs (`*` within a path segment, `**` across). */
  include?: string[]
  /** Milliseconds from sending a request to its response headers (default 30,000). */
  connectTimeoutMs?: number
  /** Milliseconds to wait for the next piece of a response body (default 60,000). */
  idleTimeoutMs?: number
  /** Further attempts per request after a network error, timeout, HTTP 408/429/5xx or cut-off body (default 3). */
  retries?: number
  /** The first wait before a retry, doubling for each further one (default 1,000 ms). */
  retryDelayMs?: number
  fetch?: typeof fetch
  /** Progress: the file list, then each file's start and end; status lines for retries and skipped files. */
  onEvent?: (event: PullEvent | StatusEvent) => void
}

export type {PullEvent} from '../core/events.js'

export interface PulledFile {
  path: string
  size: number
  sha256?: string
  status: 'downloaded' | 'resumed' | 'present'
}

export interface PullResult {
  repo: string
  repoType: 'dataset' | 'model'
  revision: string
  endpoint: string
  out: string
  files: PulledFile[]
  /** Listed files that were not written (configuration and hidden files), and why. */
  skipped: SkippedFile[]
  bytes: number
  downloadedBytes: number
}

const MAX_PAGES = 10_000
const MAX_PAGE_BYTES = 32 * 1024 * 1024
/** Empty pages in a row (each with a next-page link) after which the pagination counts as a loop. */
const MAX_EMPTY_PAGES = 3

export function defaultEndpoint(): string {
  return (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '')
}

function globToRegExp(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*'
      i++
      if (glob[i + 1] === '/') i++
    } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/')
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** A non-negative whole number option, or a HubError (exit code 2) naming it. */
function count(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < 0) throw new HubError(`${name} must be a number >= 0, got ${value}`, EXIT_USER_ERROR)
  return value
}

/** The endpoint as a URL (exit code 2 when it is not an http(s) URL without credentials). */
function parseEndpoint(endpoint: string): URL {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new HubError(`HF_ENDPOINT / endpoint is not a URL: ${JSON.stringify(endpoint)}`, EXIT_USER_ERROR)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new HubError(`HF_ENDPOINT / endpoint must be an http(s) URL, got ${url.protocol}`, EXIT_USER_ERROR)
  if (url.username || url.password) throw new HubError('HF_ENDPOINT / endpoint must not contain credentials: set HF_TOKEN instead', EXIT_USER_ERROR)
  return url
}

/** The next-page URL of a `Link` header, resolved against the page's URL. */
export function nextLink(header: string | null, base: URL): URL | undefined {
  if (!header) return undefined
  for (const m of header.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(m[2]!)?.[1]
    if (rel?.split(/\s+/).includes('next')) {
      try {
        return new URL(m[1]!, base)
      } catch {
        return undefined
      }
    }
  }
  return undefined
}

/** A listing item as a file, undefined for folders and other types, or a description of what is malformed. */
function listedFile(item: unknown): ListedFile | undefined | string {
  if (typeof item !== 'object' || item === null) return 'an entry that is not an object'
  const {type, path, size, lfs} = item as {type?: unknown; path?: unknown; size?: unknown; lfs?: {oid?: unknown; size?: unknown} | null}
  if (type !== 'file') return undefined
  if (typeof path !== 'string') return 'a file without a path'
  const where = JSON.stringify(path)
  if (lfs !== undefined && lfs !== null) {
    if (typeof lfs.oid !== 'string' || !/^[0-9a-f]{64}$/.test(lfs.oid)) return `${where}: its LFS oid is not a sha256`
    if (!Number.isSafeInteger(lfs.size) || (lfs.size as number) < 0) return `${where}: its LFS size is not a whole number of bytes`
    return {path, size: lfs.size as number, sha256: lfs.oid}
  }
  if (!Number.isSafeInteger(size) || (size as number) < 0) return `${where}: its size is not a whole number of bytes`
  return {path, size: size as number}
}

interface Context {
  http: HubHttp
  repoId: string
  repoType: 'dataset' | 'model'
  revision: string
  endpoint: string
  out: string
  onEvent?: PullOptions['onEvent']
  downloadedBytes: number
}

/** Every file of the repository at the revision, page by page, on the hub's origin only. */
async function listRepo(ctx: Context): Promise<ListedFile[]> {
  const what = `listing ${ctx.repoType} ${ctx.repoId}@${ctx.revision} on ${ctx.endpoint}`
  const files: ListedFile[] = []
  const seen = new Map<string, number>()
  /** Each listed path (files and folders) and the page that listed it. */
  const paths = new Map<string, number>()
  let stale = 0
  let url: URL | undefined = new URL(`${ctx.endpoint}/api/${ctx.repoType}s/${ctx.repoId}/tree/${encodeURIComponent(ctx.revision)}?recursive=true&expand=false`)
  for (let page = 1; url; page++) {
    const pageUrl: URL = url
    if (seen.has(pageUrl.href)) throw new HubError(`${what}: the next-page link of page ${page - 1} leads back to page ${seen.get(pageUrl.href)} (a pagination loop)`)
    if (page > MAX_PAGES) throw new HubError(`${what}: more than ${MAX_PAGES} pages; giving up`)
    if (pageUrl.origin !== ctx.http.settings.origin)
      throw new HubError(`${what}: the next-page link of page ${page - 1} points to another origin (${pageUrl.origin}); refusing to follow it (the hub is ${ctx.http.settings.origin})`)
    seen.set(pageUrl.href, page)
    const pageWhat = page === 1 ? what : `${what} (page ${page})`
    const {items, next} = await ctx.http.retrying(pageWhat, async () => {
      const exchange = await ctx.http.open(pageUrl, {accept: 'application/json'}, pageWhat, true)
      const {status} = exchange.response
      if (status < 200 || status > 299) {
        const retry = await exchange.retryableFailure()
        if (retry) throw retry
        const failure = await exchange.failure()
        if (status === 404) throw new HubError(`${pageWhat} failed: ${failure} (no ${ctx.repoType} ${ctx.repoId} at revision ${ctx.revision})`, EXIT_USER_ERROR)
        const hint = status === 401 || status === 403 ? ' (private or gated: set HF_TOKEN)' : ''
        throw new HubError(`${pageWhat} failed: ${failure}${hint}`)
      }
      const body = await exchange.bytes(MAX_PAGE_BYTES, pageWhat)
      let items: unknown
      try {
        items = JSON.parse(body.toString('utf8'))
      } catch (error) {
        throw new HubError(`${pageWhat}: the response from ${redactUrl(exchange.url)} is not JSON (${(error as Error).message})`)
      }
      if (!Array.isArray(items)) throw new HubError(`${pageWhat}: the response from ${redactUrl(exchange.url)} is not a JSON array of files`)
      return {items, next: nextLink(exchange.response.headers.get('link'), exchange.url)}
    })
    for (const item of items) {
      const file = listedFile(item)
      if (typeof file === 'string') throw new HubError(`${pageWhat}: malformed listing: ${file}`)
      const path = (item as {path?: unknown}).path
      if (typeof path === 'string') {
        if (paths.has(path)) throw new HubError(`${pageWhat}: ${JSON.stringify(path)} is listed again (page ${paths.get(path)} had it): a pagination loop`)
        paths.set(path, page)
      }
      if (file) files.push(file)
    }
    stale = items.length === 0 ? stale + 1 : 0
    if (stale >= MAX_EMPTY_PAGES && next) throw new HubError(`${pageWhat}: ${stale} pages in a row without entries, and still a next-page link: a pagination loop`)
    url = next
  }
  return files
}

/** The size of a regular file, or undefined (anything else at that path is removed when `clear`). */
function fileSize(path: string, clear = false): number | undefined {
  try {
    const stat = lstatSync(path)
    if (stat.isFile()) return stat.size
    if (clear) rmSync(path, {recursive: true, force: true})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  return undefined
}

/** Content-Range `bytes START-END/TOTAL` (TOTAL may be `*`). */
function contentRange(value: string | null): {start: number; total?: number} | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '')
  return m ? {start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3])} : undefined
}

/**
 * One attempt at bringing `partial` to `entry.size` bytes: resumes from what is there (HTTP Range),
 * never writes past the listed size, and throws a retryable failure when the transfer is cut short.
 * Sets `state.restarted` when it discards or truncates the bytes it found.
 */
async function downloadAttempt(ctx: Context, entry: ListedFile, url: URL, partial: string, what: string, state: {restarted: boolean}): Promise<void> {
  let have = fileSize(partial, true) ?? 0
  if (have > entry.size) {
    rmSync(partial)
    have = 0
  }
  if (have === entry.size) return
  const headers: Record<string, string> = {'accept-encoding': 'identity'}
  if (have > 0) headers.range = `bytes=${have}-`
  const exchange = await ctx.http.open(url, headers, what, false)
  const {response} = exchange
  const source = redactUrl(exchange.url)
  let offset = 0
  state.restarted ||= have > 0 && response.status !== 206
  if (response.status === 206) {
    const range = contentRange(response.headers.get('content-range'))
    if (!range || range.start !== have || (range.total !== undefined && range.total !== entry.size)) {
      exchange.close()
      rmSync(partial, {force: true})
      state.restarted = true
      throw transient(`${source} answered a request for bytes ${have}- with ${JSON.stringify(response.headers.get('content-range'))} (listed size ${entry.size}); the partial download was discarded`)
    }
    offset = have
  } else if (response.status === 416 && have > 0) {
    exchange.close()
    rmSync(partial, {force: true})
    state.restarted = true
    throw transient(`${source} cannot serve bytes ${have}- (HTTP 416); the partial download was discarded`)
  } else if (response.status < 200 || response.status > 299) {
    const retry = await exchange.retryableFailure()
    if (retry) throw retry
    throw new HubError(`${what} failed: ${await exchange.failure()}`)
  }
  const announced = response.headers.get('content-length')
  if (announced !== null && Number(announced) !== entry.size - offset) {
    exchange.close()
    throw new HubError(`${what} failed: ${source} announces ${announced} bytes (Content-Length) where the listing gives ${entry.size}${offset ? ` (${entry.size - offset} from byte ${offset})` : ''}; nothing was written`)
  }
  let fd: number | undefined
  try {
    fd = openSync(partial, offset > 0 ? 'r+' : 'w')
    for await (const chunk of exchange.chunks()) {
      if (offset + chunk.byteLength > entry.size) {
        exchange.close()
        closeSync(fd)
        fd = undefined
        rmSync(partial, {force: true})
        throw new HubError(`${what} failed: ${source} sent more than the ${entry.size} bytes the listing gives; the download was discarded`)
      }
      let written = 0
      while (written < chunk.byteLength) written += writeSync(fd, chunk, written, chunk.byteLength - written, offset + written)
      offset += chunk.byteLength
      ctx.downloadedBytes += chunk.byteLength
    }
    fsyncSync(fd)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (typeof code === 'string' && (error as NodeJS.ErrnoException).syscall) {
      exchange.close()
      throw new HubError(`${what} failed: cannot write ${partial} (${code})`)
    }
    throw addDetail(error, ` after ${offset} of ${entry.size} bytes`)
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
  if (offset < entry.size) throw transient(`the response from ${source} ended after ${offset} of ${entry.size} bytes`)
}

/** Fetches, checks and places one file; returns how it got there. */
async function pullFile(ctx: Context, entry: ListedFile): Promise<PulledFile['status']> {
  const dest = resolve(ctx.out, ...entry.path.split('/'))
  if (!dest.startsWith(ctx.out + sep)) throw new HubError(`refusing to write outside ${ctx.out}: ${entry.path}`)
  const what = `download of ${entry.path}`
  try {
    mkdirSync(dirname(dest), {recursive: true})
  } catch (error) {
    throw new HubError(`${what}: cannot create the folder ${dirname(dest)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
  if (fileSize(dest) === entry.size) return 'present'
  const partial = partialPath(dest)
  const resumeFrom = fileSize(partial) ?? 0
  ctx.onEvent?.({type: 'file-start', path: entry.path, size: entry.size, resumeFrom: resumeFrom <= entry.size ? resumeFrom : 0})
  const url = new URL(`${ctx.endpoint}/${ctx.repoType === 'dataset' ? 'datasets/' : ''}${ctx.repoId}/resolve/${encodeURIComponent(ctx.revision)}/${encodePath(entry.path)}`)
  const state = {restarted: resumeFrom > entry.size}
  if (entry.size === 0) writeFileSync(partial, '')
  else {
    try {
      await ctx.http.retrying(what, () => downloadAttempt(ctx, entry, url, partial, what, state))
    } catch (error) {
      const have = fileSize(partial) ?? 0
      if (!(error instanceof HubError) || have === 0) throw error
      throw new HubError(`${error.message}; ${have} of ${entry.size} bytes are kept in ${relative(ctx.out, partial)}: run the command again to resume`, error.exitCode as 1 | 2)
    }
  }
  if (entry.sha256) {
    const got = await sha256OfFile(partial)
    if (got !== entry.sha256) {
      rmSync(partial)
      throw new HubError(`sha256 check failed for ${entry.path}: expected ${entry.sha256}, got ${got}; the download was discarded`)
    }
  }
  try {
    renameSync(partial, dest)
  } catch (error) {
    throw new HubError(`${what}: cannot move ${relative(ctx.out, partial)} to ${entry.path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
  return resumeFrom > 0 && !state.restarted ? 'resumed' : 'downloaded'
}

/** Downloads `repoId` at `revision` into `out`. */
export async function pullRepo(repoId: string, options: PullOptions = {}): Promise<PullResult> {
  checkRepoId(repoId)
  const revision = options.revision ?? 'main'
  checkRevision(revision)
  const repoType = options.repoType ?? 'dataset'
  const endpointUrl = parseEndpoint((options.endpoint ?? defaultEndpoint()).replace(/\/+$/, ''))
  const endpoint = endpointUrl.href.replace(/\/+$/, '')
  const token = (options.token ?? process.env.HF_TOKEN ?? '').trim() || undefined
  if (token && !/^[\x21-\x7e]+$/.test(token)) throw new HubError('HF_TOKEN / token contains spaces or characters outside printable ASCII; check how it was set', EXIT_USER_ERROR)
  const out = resolve(options.out ?? join('data', repoId))
  const include = options.include?.map(globToRegExp)
  const http = new HubHttp({
    connectTimeoutMs: count(options.connectTimeoutMs, DEFAULT_TIMEOUTS.connectTimeoutMs, 'connect timeout'),
    idleTimeoutMs: count(options.idleTimeoutMs, DEFAULT_TIMEOUTS.idleTimeoutMs, 'idle timeout'),
    retries: Math.floor(count(options.retries, DEFAULT_TIMEOUTS.retries, 'retries')),
    retryDelayMs: count(options.retryDelayMs, DEFAULT_TIMEOUTS.retryDelayMs, 'retry delay'),
    fetch: options.fetch ?? fetch,
    origin: endpointUrl.origin,
    token,
    onRetry: (message) => options.onEvent?.({type: 'status', message}),
  })
  const ctx: Context = {http, repoId, repoType, revision, endpoint, out, onEvent: options.onEvent, downloadedBytes: 0}

  const listed = (await listRepo(ctx)).filter((entry) => !include || include.some((re) => re.test(entry.path)))
  const {write, skipped} = planFiles(listed, `${repoType} ${repoId}@${revision}`)
  const total = write.reduce((s, e) => s + e.size, 0)
  options.onEvent?.({type: 'listed', files: write.length, bytes: total})
  for (const skip of skipped) options.onEvent?.({type: 'status', message: `not writing ${skip.path}: ${skip.reason}`})

  const files: PulledFile[] = []
  for (const entry of write) {
    const status = await pullFile(ctx, entry)
    files.push({path: entry.path, size: entry.size, sha256: entry.sha256, status})
    options.onEvent?.({type: 'file-done', path: entry.path, size: entry.size, status})
  }
  return {repo: repoId, repoType, revision, endpoint, out, files, skipped, bytes: total, downloadedBytes: ctx.downloadedBytes}
}
