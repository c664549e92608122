/**
 * `codiemb data pull`: downloads every file of a Hugging Face hub repository (a dataset by default)
 * at a revision into a local folder, so `prepare` (parquet / hf-arrow / beir readers) and `eval` can
 * read it offline.
 *
 * - Listing uses `@huggingface/hub`'s listFiles (the hub's tree API, paginated).
 * - `HF_ENDPOINT` selects the hub (mirrors, a local test server); `HF_TOKEN` authenticates.
 * - Resumable: a file is downloaded to `<file>.incomplete`; a later run asks for the remaining bytes
 *   with an HTTP Range request (starting over if the server ignores it). Files already present with
 *   the listed size are skipped.
 * - Verified: every file must end with exactly the size the hub lists, and LFS files (whose oid is
 *   their sha256) must hash to it; otherwise the download fails and the bad bytes are removed.
 */
import {createHash} from 'node:crypto'
import {closeSync, createReadStream, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync, ftruncateSync, fsyncSync} from 'node:fs'
import {dirname, join, resolve, sep} from 'node:path'
import {CodiembError, EXIT_FAILURE, EXIT_USER_ERROR} from '../core/errors.js'
import type {PullEvent} from '../core/events.js'

export interface PullOptions {
  revision?: string
  /** Destination folder (default `data/<repo id>`). */
  out?: string
  repoType?: 'dataset' | 'model'
  /** Hub base URL (default HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string
  /** Access token (default HF_TOKEN). */
  token?: string
  /** Only files whose path matches one of these globs (`*` within a path segment, `**` across). */
  include?: string[]
  fetch?: typeof fetch
  /** Progress: the file list, then each file's start and end. */
  onEvent?: (event: PullEvent) => void
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
  bytes: number
  downloadedBytes: number
}

/**
 * A `data pull` failure. Exit code 1 (EXIT_FAILURE) by default: the hub or the network failed
 * (listing, HTTP errors, size or sha256 mismatches, a listing naming paths outside the target), and
 * the same command may succeed later. Exit code 2 (EXIT_USER_ERROR) when the request itself is wrong:
 * a malformed repository id, or no such repository at that revision.
 */
export class HubError extends CodiembError {
  override name = 'HubError'
  constructor(message: string, exitCode: typeof EXIT_FAILURE | typeof EXIT_USER_ERROR = EXIT_FAILURE) {
    super(message, {exitCode})
  }
}

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

/** Downloads `repoId` at `revision` into `out`. */
export async function pullRepo(repoId: string, options: PullOptions = {}): Promise<PullResult> {
  if (!/^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(repoId)) throw new HubError(`not a hub repository id: ${JSON.stringify(repoId)} (expected OWNER/NAME, e.g. C-MTEB/T2Retrieval)`, EXIT_USER_ERROR)
  const revision = options.revision ?? 'main'
  const repoType = options.repoType ?? 'dataset'
  const endpoint = (options.endpoint ?? defaultEndpoint()).replace(/\/+$/, '')
  const token = options.token ?? process.env.HF_TOKEN ?? undefined
  const out = resolve(options.out ?? join('data', repoId))
  const doFetch = options.fetch ?? fetch
  const include = options.include?.map(globToRegExp)
  const auth: Record<string, string> = token ? {Authorization: `Bearer ${token}`} : {}

  const {listFiles} = await import('@huggingface/hub')
  const entries: {path: string; size: number; sha256?: string}[] = []
  try {
    for await (const entry of listFiles({
      repo: {type: repoType, name: repoId},
      revision: encodeURIComponent(revision),
      recursive: true,
      hubUrl: endpoint,
      fetch: (input, init) => doFetch(input, {...init, headers: {...(init?.headers as Record<string, string>), ...auth}}),
    })) {
      if (entry.type !== 'file') continue
      if (include && !include.some((re) => re.test(entry.path))) continue
      entries.push({path: entry.path, size: entry.lfs?.size ?? entry.size, sha256: entry.lfs?.oid})
    }
  } catch (error) {
    const status = (error as {statusCode?: number}).statusCode
    const hint = status === 401 || status === 403 ? ' (private or gated: set HF_TOKEN)' : status === 404 ? ` (no ${repoType} ${repoId} at revision ${revision})` : ''
    throw new HubError(`cannot list ${repoType} ${repoId}@${revision} on ${endpoint}: ${(error as Error).message}${hint}`, status === 404 ? EXIT_USER_ERROR : EXIT_FAILURE)
  }
  const total = entries.reduce((s, e) => s + e.size, 0)
  options.onEvent?.({type: 'listed', files: entries.length, bytes: total})

  const files: PulledFile[] = []
  let downloadedBytes = 0
  for (const entry of entries) {
    const dest = resolve(out, entry.path)
    if (!dest.startsWith(out + sep)) throw new HubError(`refusing to write outside ${out}: ${entry.path}`)
    mkdirSync(dirname(dest), {recursive: true})
    if (existsSync(dest) && statSync(dest).size === entry.size) {
      files.push({path: entry.path, size: entry.size, sha256: entry.sha256, status: 'present'})
      options.onEvent?.({type: 'file-done', path: entry.path, size: entry.size, status: 'present'})
      continue
    }
    const partial = `${dest}.incomplete`
    let have = existsSync(partial) ? statSync(partial).size : 0
    if (have > entry.size) {
      rmSync(partial)
      have = 0
    }
    options.onEvent?.({type: 'file-start', path: entry.path, size: entry.size, resumeFrom: have})
    const url = `${endpoint}/${repoType === 'dataset' ? 'datasets/' : ''}${repoId}/resolve/${encodeURIComponent(revision)}/${encodePath(entry.path)}`
    const headers: Record<string, string> = {...auth}
    if (have > 0 && have < entry.size) headers.Range = `bytes=${have}-`
    let status: PulledFile['status'] = have > 0 ? 'resumed' : 'downloaded'
    if (have < entry.size || entry.size === 0) {
      const res = await doFetch(url, {headers})
      if (res.status === 416 && have === entry.size) {
        // nothing left to fetch
      } else if (!res.ok) {
        throw new HubError(`download of ${entry.path} failed: HTTP ${res.status} ${res.statusText} (${url})`)
      }
      const fd = openSync(partial, have > 0 ? 'r+' : 'w')
      try {
        let offset = have
        if (res.status !== 206) {
          // The server sent the whole file: start over.
          ftruncateSync(fd, 0)
          offset = 0
          status = 'downloaded'
        }
        if (res.body) {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            let written = 0
            while (written < chunk.byteLength) written += writeSync(fd, chunk, written, chunk.byteLength - written, offset + written)
            offset += chunk.byteLength
            downloadedBytes += chunk.byteLength
          }
        }
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
    }
    const size = statSync(partial).size
    if (size !== entry.size) {
      if (size > entry.size) rmSync(partial)
      throw new HubError(`size check failed for ${entry.path}: the hub lists ${entry.size} bytes, received ${size}${size < entry.size ? ' (run the command again to resume)' : ''}`)
    }
    if (entry.sha256) {
      const got = await sha256OfFile(partial)
      if (got !== entry.sha256) {
        rmSync(partial)
        throw new HubError(`sha256 check failed for ${entry.path}: expected ${entry.sha256}, got ${got}; the download was discarded`)
      }
    }
    renameSync(partial, dest)
    files.push({path: entry.path, size: entry.size, sha256: entry.sha256, status})
    options.onEvent?.({type: 'file-done', path: entry.path, size: entry.size, status})
  }
  return {repo: repoId, repoType, revision, endpoint, out, files, bytes: total, downloadedBytes}
}
