/**
 * Every example in every codiemb command's help runs as written (issue 9).
 *
 * The examples are read from the built commands through oclif (`Config.load` + `config.commands`), so the test
 * sees exactly what `codiemb COMMAND --help` prints. `<%= config.bin %>` becomes `node bin/run.js` and each
 * example runs in /bin/sh with its working directory at the root of a fresh clone: a temporary folder whose
 * entries are symbolic links to the repository's tracked top-level entries plus dist/ and node_modules/ (nothing
 * is copied), with `../shared` beside it linked to the real ../shared when present. What an example writes
 * (prepared/, models/, runs/, ...) therefore lands in the temporary folder, never in the checkout.
 *
 * Examples run as one walk-through, in PIPELINE order: an example may use what an earlier command's example
 * wrote (its help says so), as a user reading the help top to bottom would. Examples that read ../shared
 * (named on the command line or inside the config file they pass) are skipped with a message when it is
 * absent, and so is everything that uses their outputs (SHARED_OUTPUTS). `data pull` needs the Hugging Face
 * hub: its examples run against a local stand-in of the hub's API on 127.0.0.1 via HF_ENDPOINT.
 */
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync} from 'node:fs'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Config} from '@oclif/core'
import {REPO_ROOT, SHARED_DIR} from '../helpers/env.js'

/**
 * The order examples run in: producers before consumers. A codiemb command missing here fails the test,
 * so a new command cannot ship examples nobody runs.
 */
const PIPELINE = ['list', 'doctor', 'config:print', 'prepare', 'model:init', 'embed', 'mine', 'train', 'model:fold', 'merge', 'eval', 'report', 'data:pull', 'quickstart']

/** Outputs of examples that need ../shared: an example naming one of these is skipped with them. */
const SHARED_OUTPUTS: RegExp[] = [/runs\/tiny-zh\b/, /models\/tiny-zh\b/, /prepared\/(stsb|stsbenchmark|stsb-zh|atec|bq|lcqmc|pawsx|afqmc|qbqtc|scifact|snli-triplets)\b/]

/**
 * Examples that run for minutes by design, with where a reduced form of them runs. Only the quickstart:
 * it trains two checkpoints and evaluates four models on the whole bundled corpus (a few minutes on
 * 2 cores; even 2 steps per checkpoint cost a minute of CPU, which test/quickstart/quickstart.test.ts already spends).
 */
const LONG_BY_DESIGN: {id: string; reason: string}[] = [
  {id: 'quickstart', reason: 'runs the whole pipeline for minutes by design; test/quickstart/quickstart.test.ts runs it with --steps 2 --eval-limit 40'},
]

/** Top-level folders the examples write; in the fresh clone they must be real folders, never links into the checkout. */
const OUTPUT_DIRS = ['prepared', 'models', 'runs', 'results', 'embeddings', 'data', 'quickstart-run', 'quickstart-smoke']

/** Longest any one example may take (the whole file must stay well under 3 minutes on 2 cores). */
const EXAMPLE_TIMEOUT_MS = 120_000

interface Example {
  id: string
  command: string
  description?: string
}

async function loadExamples(): Promise<{examples: Example[]; commands: string[]}> {
  const config = await Config.load({root: REPO_ROOT})
  const own = config.commands.filter((c) => c.pluginName === 'codiemb' && !c.hidden)
  const examples: Example[] = []
  for (const c of own)
    // The command class itself, not the manifest's copy (the manifest may lag the source until regenerated).
    for (const e of (await c.load()).examples ?? []) {
      const {command, description} = typeof e === 'string' ? {command: e, description: undefined} : e
      examples.push({id: c.id, command, description})
    }
  return {examples, commands: own.map((c) => c.id)}
}

/** The shell command the example stands for: `<%= config.bin %>` is `node bin/run.js` at the clone's root. */
function render(command: string): string {
  return command.replaceAll('<%= config.bin %>', 'node bin/run.js')
}

/**
 * A fresh clone's root, built from links: tracked top-level entries (git ls-files; every entry but .git when
 * git is unavailable) plus the build output and installed packages.
 */
function freshClone(base: string): string {
  const root = join(base, 'codiemb')
  mkdirSync(root)
  const listed = spawnSync('git', ['ls-files', '-z'], {cwd: REPO_ROOT, encoding: 'utf8'})
  const top =
    listed.status === 0 && listed.stdout
      ? new Set(listed.stdout.split('\0').filter(Boolean).map((p) => p.split('/')[0]))
      : new Set(readdirSync(REPO_ROOT).filter((name) => name !== '.git' && !OUTPUT_DIRS.includes(name)))
  for (const name of ['dist', 'node_modules']) top.add(name)
  for (const name of top) if (existsSync(join(REPO_ROOT, name))) symlinkSync(join(REPO_ROOT, name), join(root, name))
  for (const name of OUTPUT_DIRS) assert.ok(!existsSync(join(root, name)), `${name} is tracked: examples would write into the checkout`)
  if (SHARED_DIR) symlinkSync(SHARED_DIR, join(base, 'shared'))
  return root
}

/** Commands that read a configuration but never open the files it names. */
const CONFIG_ONLY = new Set(['config:print'])

/** Does the example read ../shared, on its command line or inside a file it names (a recipe)? */
function readsShared(id: string, command: string, cwd: string): boolean {
  if (command.includes('../shared')) return true
  if (SHARED_OUTPUTS.some((re) => re.test(command))) return true
  if (CONFIG_ONLY.has(id)) return false
  for (const token of command.split(/\s+/)) {
    const path = resolve(cwd, token.replace(/^['"]|['"]$/g, ''))
    if (/\.(ya?ml|json|[cm]?js|ts)$/.test(token) && path.startsWith(cwd) && existsSync(path) && statSync(path).isFile()) {
      if (readFileSync(path, 'utf8').includes('../shared')) return true
    }
  }
  return false
}

function run(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{status: number | null; signal: string | null; stdout: string; stderr: string; ms: number}> {
  const started = Date.now()
  return new Promise((done, fail) => {
    const child = spawn('/bin/sh', ['-c', command], {cwd, env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
    const timer = setTimeout(() => child.kill('SIGKILL'), EXAMPLE_TIMEOUT_MS)
    child.on('error', fail)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      done({status, signal, stdout, stderr, ms: Date.now() - started})
    })
  })
}

// ---- a stand-in for the Hugging Face hub (the API `data pull` uses), for any repository id ----

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const hubRequests: string[] = []

/** A small dataset/model repository: a card, a tracked-by-LFS data file and a config. */
function repoFiles(repo: string): {path: string; content: Buffer; lfs: boolean}[] {
  return [
    {path: 'README.md', content: Buffer.from(`# ${repo}\n`), lfs: false},
    {path: 'data/test-00000-of-00001.parquet', content: Buffer.from(`parquet bytes of ${repo}\n`.repeat(50)), lfs: true},
    {path: 'config.json', content: Buffer.from('{}\n'), lfs: false},
  ]
}

function hub(req: IncomingMessage, res: ServerResponse, endpoint: string): void {
  const url = new URL(req.url!, endpoint)
  hubRequests.push(url.pathname)
  const tree = /^\/api\/(datasets|models)\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname)
  if (tree) {
    const entries = repoFiles(decodeURIComponent(tree[2])).map((f) => ({
      type: 'file',
      path: f.path,
      oid: sha256(f.content).slice(0, 40),
      size: f.lfs ? 134 : f.content.length,
      ...(f.lfs ? {lfs: {oid: sha256(f.content), size: f.content.length, pointerSize: 134}} : {}),
    }))
    res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify(entries))
    return
  }
  const file = /^\/(?:datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname)
  const found = file && repoFiles(decodeURIComponent(file[1])).find((f) => f.path === decodeURIComponent(file[3]))
  if (!found) {
    res.writeHead(404).end('not found')
    return
  }
  res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': found.content.length}).end(found.content)
}

describe('help examples', () => {
  let base = ''
  let clone = ''
  let server: Server | undefined
  let endpoint = ''

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'codiemb-examples-'))
    clone = freshClone(base)
    server = createServer((req, res) => hub(req, res, endpoint))
    await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok))
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => {
    server?.close()
    if (base) rmSync(base, {recursive: true, force: true})
  })

  it('every codiemb command has examples, each a real task (no --help padding), in the walk-through order', async () => {
    const {examples, commands} = await loadExamples()
    for (const id of commands) {
      assert.ok(PIPELINE.includes(id), `command ${id} is not in PIPELINE: add it where its inputs exist`)
      assert.ok(examples.some((e) => e.id === id), `command ${id} has no examples`)
    }
    for (const e of examples) {
      assert.match(e.command, /^(\w+=\S+ )*<%= config\.bin %> /, `${e.id}: example must start with <%= config.bin %>: ${e.command}`)
      assert.doesNotMatch(e.command, /\s--help\b|\s-h\b/, `${e.id}: an example must do something, not print help: ${e.command}`)
      assert.doesNotMatch(render(e.command), /<%/, `${e.id}: unrendered template in ${e.command}`)
      // Examples are for one command: its own id must follow the bin (topics separated by spaces).
      assert.ok(render(e.command).includes(`node bin/run.js ${e.id.replaceAll(':', ' ')}`), `${e.id}: example runs another command: ${e.command}`)
    }
  })

  it('each example exits 0 from a fresh clone’s root', async (t) => {
    const {examples} = await loadExamples()
    // CODIEMB_EXAMPLES=prepare,embed runs only those commands' examples (while editing them).
    const only = process.env.CODIEMB_EXAMPLES?.split(',')
    const ordered = [...examples].filter((e) => !only || only.includes(e.id)).sort((a, b) => PIPELINE.indexOf(a.id) - PIPELINE.indexOf(b.id))
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NO_COLOR: '1',
      CI: '1',
      HF_ENDPOINT: endpoint,
      HF_TOKEN: '',
      // oclif's data/config/cache folders (linked plugins, caches) stay inside the temporary folder.
      XDG_DATA_HOME: join(base, 'xdg-data'),
      XDG_CONFIG_HOME: join(base, 'xdg-config'),
      XDG_CACHE_HOME: join(base, 'xdg-cache'),
    }
    for (const example of ordered) {
      const command = render(example.command)
      await t.test(`${example.id}: ${example.command.replace('<%= config.bin %>', 'codiemb')}`, async (st) => {
        const long = LONG_BY_DESIGN.find((l) => l.id === example.id)
        if (long) {
          st.skip(long.reason)
          return
        }
        if (!SHARED_DIR && readsShared(example.id, command, clone)) {
          st.skip('../shared is absent (set CODIEMB_SHARED to its path): this example reads ../shared or what an example on it wrote')
          return
        }
        const seen = hubRequests.length
        const r = await run(command, clone, env)
        assert.equal(r.signal, null, `${command}: killed after ${EXAMPLE_TIMEOUT_MS / 1000} s\n${r.stderr.slice(-2000)}`)
        assert.equal(r.status, 0, `${command}: exit ${r.status}\n--- stdout\n${r.stdout.slice(-2000)}\n--- stderr\n${r.stderr.slice(-4000)}`)
        if (/\s--json\b/.test(command)) {
          const text = r.stdout.trim()
          const envelope = JSON.parse(text.slice(text.search(/^\{/m)))
          assert.equal(envelope.status, 0, `${command}: --json envelope status ${envelope.status}`)
        }
        if (example.id === 'data:pull') assert.ok(hubRequests.length > seen, `${command}: never reached the hub stand-in at HF_ENDPOINT`)
        st.diagnostic(`${(r.ms / 1000).toFixed(1)} s`)
      })
    }
  })
})
