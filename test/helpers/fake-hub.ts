/**
 * A local stand-in for the Hugging Face hub on 127.0.0.1, for `data pull` tests: the tree API
 * (recursive listing, paginated by `Link: <…>; rel="next"` with a `cursor` parameter, like the hub)
 * and resolve URLs with Range support, for dataset and model repositories, requiring a bearer token.
 *
 * Hostile behaviours are per test: `hub.intercept` answers (or declines) any request before the
 * normal handler, and `hub.requests` records every request (path, Range, Authorization) so a test
 * can check what the client sent where. `startServer` starts a second, bare server: another origin
 * (a CDN, or a host that must never see the token).
 */
import {createHash} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo, Socket} from 'node:net'

export interface FakeFile {
  path: string
  content: Buffer
  lfs?: boolean
  /** Listed size differs from the content (to test the size checks). */
  listedSize?: number
  /** Listed sha256 differs from the content (to test the hash check). */
  listedSha?: string
}

export interface SeenRequest {
  url: string
  range?: string
  auth?: string
}

/** Answers a request itself and returns true, or returns false to let the hub answer normally. */
export type Intercept = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean

export interface LocalServer {
  /** `http://127.0.0.1:PORT` */
  origin: string
  requests: SeenRequest[]
  /** Stops the server, dropping open connections (stalled responses included). */
  close(): Promise<void>
}

export interface FakeHub extends LocalServer {
  endpoint: string
  repos: Map<string, FakeFile[]>
  intercept?: Intercept
  /** Listing entries per page (the real hub uses 1000; small here so pagination is exercised). */
  pageSize: number
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Starts an HTTP server on 127.0.0.1 with `handle`, recording requests. */
export async function startServer(handle: (req: IncomingMessage, res: ServerResponse, url: URL) => void): Promise<LocalServer> {
  const requests: SeenRequest[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://127.0.0.1')
    requests.push({url: url.pathname + url.search, range: req.headers.range, auth: req.headers.authorization})
    handle(req, res, url)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

/** Starts a fake hub that accepts only `token`. */
export async function startFakeHub(token: string): Promise<FakeHub> {
  const hub = {repos: new Map<string, FakeFile[]>(), pageSize: 2} as FakeHub
  const local = await startServer((req, res, url) => {
    if (hub.intercept?.(req, res, url)) return
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, {'content-type': 'application/json'}).end(JSON.stringify({error: 'Invalid credentials in Authorization header'}))
      return
    }
    if (!listing(hub, url, res)) resolveFile(hub, req, url, res)
  })
  return Object.assign(hub, local, {endpoint: local.origin})
}

/** The listing entries of a repository, as the hub's tree API gives them (a folder entry first). */
export function treeEntries(files: FakeFile[]): object[] {
  const entries = files.map((f) => ({
    type: 'file',
    path: f.path,
    oid: sha256(f.content).slice(0, 40),
    size: f.lfs ? 134 : (f.listedSize ?? f.content.length),
    ...(f.lfs ? {lfs: {oid: f.listedSha ?? sha256(f.content), size: f.listedSize ?? f.content.length, pointerSize: 134}} : {}),
  }))
  return [{type: 'directory', path: 'data', oid: '0'.repeat(40), size: 0}, ...entries]
}

function listing(hub: FakeHub, url: URL, res: ServerResponse): boolean {
  const m = /^\/api\/(datasets|models)\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname)
  if (!m) return false
  const files = hub.repos.get(`${m[1]}:${m[2]}`)
  if (!files || decodeURIComponent(m[3]!) !== 'main' || url.searchParams.get('recursive') !== 'true') {
    res.writeHead(404, {'content-type': 'application/json'}).end(JSON.stringify({error: 'Repository not found'}))
    return true
  }
  const all = treeEntries(files)
  const cursor = Number(url.searchParams.get('cursor') ?? '0')
  const headers: Record<string, string> = {'content-type': 'application/json'}
  if (cursor + hub.pageSize < all.length) headers.link = `<${hub.endpoint}${url.pathname}?recursive=true&expand=false&cursor=${cursor + hub.pageSize}>; rel="next"`
  res.writeHead(200, headers).end(JSON.stringify(all.slice(cursor, cursor + hub.pageSize)))
  return true
}

/** Serves a resolve URL, whole (200) or from a `bytes=N-` Range (206). */
function resolveFile(hub: FakeHub, req: IncomingMessage, url: URL, res: ServerResponse): void {
  const m = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname)
  const file = m && hub.repos.get(`${m[1] ? 'datasets' : 'models'}:${m[2]}`)?.find((f) => f.path === decodeURIComponent(m[4]!))
  if (!file) {
    res.writeHead(404).end('not found')
    return
  }
  serveBytes(req, res, file.content)
}

/** Answers with `content`, honouring a `bytes=N-` Range request. */
export function serveBytes(req: IncomingMessage, res: ServerResponse, content: Buffer): void {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
  const start = range ? Number(range[1]) : 0
  const headers: Record<string, string | number> = {'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', 'content-length': content.length - start}
  if (range) headers['content-range'] = `bytes ${start}-${content.length - 1}/${content.length}`
  res.writeHead(range ? 206 : 200, headers).end(content.subarray(start))
}
