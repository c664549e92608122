/**
 * Kills at seeded random points: `train`, `prepare` and `merge` run as the real CLI (bin/run.js)
 * in a child process and are stopped with SIGINT, SIGTERM, a second SIGINT, or SIGKILL after a
 * progress event drawn from a seeded generator (plus a drawn delay). After each stop:
 *
 * - every output is absent, or complete and verified (train: the same bytes as an uninterrupted
 *   run; prepare: every file of the manifest has its sha256; merge: the same tensors as a
 *   reference merge);
 * - after SIGINT/SIGTERM the exit code is 130/143, the --json envelope is an InterruptedError, and
 *   no temporary is left; after SIGKILL only temporaries (dot-names) can be left, never a partial
 *   file under a final name;
 * - every checkpoint left behind loads (model, trainer state, optimizer moments), and resuming from
 *   the latest one ends with weights identical, byte for byte, to the uninterrupted run's.
 *
 * CODIEMB_KILL_SEED picks other points (the seed in use is printed as a test diagnostic). Timing
 * decides where exactly a signal lands; the assertions hold wherever it lands.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it, type TestContext} from 'node:test'
import {parse} from 'yaml'
import {parseTempName} from '../../src/core/fs-atomic.js'
import {Rng} from '../../src/core/rng.js'
import {prepare, type DatasetConfig} from '../../src/data/prepare.js'
import {mergeCheckpoints} from '../../src/merge/engine.js'
import {initRandomEncoder, loadEncoder} from '../../src/model/encoder.js'
import {listCheckpoints, readOptimizerState, readTrainerState} from '../../src/train/checkpoint.js'
import type {TrainSection} from '../../src/train/config.js'
import {runTraining} from '../../src/train/run.js'
import {loadConfig} from '../../src/config/load.js'
import {BUILTINS, REPO_ROOT, shared, TEST_BACKEND, useTestBackend} from '../helpers/env.js'
import {baseTensors, noise, perturbed, writeCheckpoint} from '../merge/checkpoints.js'

const SEED = Number(process.env.CODIEMB_KILL_SEED ?? 14_05_10)
const rng = new Rng(SEED)
const root = mkdtempSync(join(tmpdir(), 'codiemb-kills-'))
after(() => rmSync(root, {recursive: true, force: true}))

interface Event {
  type: string
  [key: string]: any
}

interface Stopped {
  code: number | null
  signal: NodeJS.Signals | null
  events: Event[]
  /** The --json envelope (absent after SIGKILL). */
  envelope?: any
  stderr: string
  /** Whether the stop signal was sent (the run may have ended first). */
  sent: boolean
}

interface StopPlan {
  /** The event after which to stop (its index among the events so far is the second argument). */
  after: (event: Event, index: number) => boolean
  signal: 'SIGINT' | 'SIGTERM' | 'SIGKILL'
  delayMs: number
  /** Send SIGINT again as soon as the command says what it does on the first one. */
  again?: boolean
}

/**
 * Runs `codiemb ARGS --json --events FILE` (a file the test polls: `--json --events -` is refused, as
 * standard output must stay one JSON document) and stops it as `plan` says; a run that does not end in
 * 120 s is killed and fails.
 */
function runAndStop(args: string[], plan?: StopPlan): Promise<Stopped> {
  const eventsFile = join(mkdtempSync(join(tmpdir(), 'codiemb-int-events-')), 'events.ndjson')
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'run.js'), ...args, '--json', '--events', eventsFile], {
    cwd: REPO_ROOT,
    env: {...process.env, NO_COLOR: '1', CODIEMB_BACKEND: TEST_BACKEND},
  })
  let stdout = ''
  let eventText = ''
  let stderr = ''
  let seen = 0
  const events: Event[] = []
  let armed = plan !== undefined
  let sent = false
  let again = plan?.again ?? false
  const send = (signal: NodeJS.Signals) => {
    sent = true
    child.kill(signal)
  }
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
  const readEvents = () => {
    if (!existsSync(eventsFile)) return
    eventText = readFileSync(eventsFile, 'utf8')
    const lines = eventText.split('\n')
    for (const line of lines.slice(seen, -1)) {
      seen++
      if (!line.startsWith('{"time"')) continue
      const event = JSON.parse(line) as Event
      events.push(event)
      if (armed && plan!.after(event, events.length - 1)) {
        armed = false
        setTimeout(() => send(plan!.signal), plan!.delayMs)
      }
    }
  }
  const poll = setInterval(readEvents, 10)
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
    if (again && stderr.includes('again to stop at once')) {
      again = false
      send('SIGINT')
    }
  })
  const guard = setTimeout(() => child.kill('SIGKILL'), 120_000)
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      clearInterval(poll)
      readEvents()
      rmSync(join(eventsFile, '..'), {recursive: true, force: true})
      const start = stdout.split('\n').indexOf('{')
      const envelope = start === -1 ? undefined : JSON.parse(stdout.split('\n').slice(start).join('\n'))
      resolve({code, signal, events, envelope, stderr, sent})
    })
  })
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

/** Paths under `dir` (recursively) whose name is a temporary of src/core/fs-atomic.ts's scheme. */
function temporaries(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, {recursive: true, withFileTypes: true}).filter((e) => parseTempName(e.name)).map((e) => join(e.parentPath, e.name))
}

/** The temporaries of output `name` of the run folder: beside it, inside it, and in its checkpoints folder. */
function temporariesOf(name: string): string[] {
  const beside = readdirSync(root).filter((n) => parseTempName(n)?.target === name || parseTempName(n)?.target === `${name}-checkpoints`)
  return [...beside, ...temporaries(join(root, name)), ...temporaries(join(root, `${name}-checkpoints`))]
}

/** A checkpoint directory loads whole: the encoder, the trainer state and the optimizer moments. */
async function assertCheckpointLoads(dir: string): Promise<void> {
  const state = readTrainerState(dir)
  const moments = await readOptimizerState(dir)
  assert.equal(moments.step, state.step, `${dir}: optimizer step`)
  const encoder = await loadEncoder(dir, {registry: BUILTINS})
  encoder.dispose()
}

describe('train killed at seeded points', () => {
  const data = join(root, 'prepared')
  let reference = ''
  const config = (name: string): string => {
    const file = join(root, `${name}.json`)
    const model = {init: {arch: 'bert', tokenizer: join(REPO_ROOT, 'quickstart', 'data', 'tokenizer'), layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 64, seed: 3}}
    const train = {
      model,
      output: join(root, name),
      dataDir: data,
      data: ['faq-train/train.ir-example.arrow', 'faq-sts/train.sts-pair.arrow'],
      tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 0}}], maxLength: {query: 24, passage: 32}}, sts: {maxLength: 24}},
      sampler: {name: 'dynamic', options: {batchSizes: {ir: 2, sts: 4}}},
      epochs: 2,
      learningRate: 1e-3,
      seed: 5,
      checkpoint: {everySteps: 5, keepLast: 2},
    }
    writeFileSync(file, JSON.stringify({train}))
    return file
  }
  const checkpoints = (name: string) => join(root, `${name}-checkpoints`)
  const trainTo = async (name: string, resume?: string) => {
    const r = await runAndStop(['train', '--config', config(name), ...(resume ? ['--resume', resume] : [])])
    assert.equal(r.code, 0, r.stderr)
    return r
  }
  /** After SIGINT/SIGTERM: the exit code, the envelope, the last events, no output and no temporary. */
  const assertInterrupted = (name: string, r: Stopped, signal: 'SIGINT' | 'SIGTERM', atLeast: number) => {
    const exitCode = signal === 'SIGINT' ? 130 : 143
    assert.equal(r.code, exitCode, r.stderr)
    assert.equal(r.envelope.name, 'InterruptedError')
    assert.equal(r.envelope.exitCode, exitCode)
    const {step, totalSteps, checkpoint} = r.envelope.data
    assert.ok(step >= atLeast, `stopped at step ${step}, signalled after ${atLeast}`)
    assert.equal(checkpoint, join(checkpoints(name), `checkpoint-${step}`))
    assert.match(r.envelope.message, new RegExp(`interrupted by ${signal} at step ${step} of ${totalSteps}; resume with --resume `))
    assert.deepEqual(r.events.slice(-2).map((e) => e.type), ['interrupted', 'error'])
    assert.deepEqual(r.events.at(-2), {time: r.events.at(-2)!.time, type: 'interrupted', signal, step, totalSteps, checkpoint})
    assert.equal(existsSync(join(root, name)), false, 'no final model')
    assert.deepEqual(temporariesOf(name), [], 'no temporary left')
    return checkpoint as string
  }

  before(async () => {
    await useTestBackend()
    const faq = join(REPO_ROOT, 'examples', 'faq')
    const section = parse(readFileSync(join(faq, 'prepare.yaml'), 'utf8')).prepare
    await prepare(section, {registry: BUILTINS, dataRoot: faq, out: data})
  })

  it('an uninterrupted run (the library, in this process): the reference', async () => {
    const loaded = await loadConfig(config('reference'))
    await runTraining(loaded.config.train as TrainSection, {registry: BUILTINS})
    reference = sha256(join(root, 'reference', 'model.safetensors'))
  })

  it('SIGINT, then SIGTERM in the resumed run: 130 and 143 with a checkpoint each; the second resume ends bit-exact', async (t) => {
    t.diagnostic(`CODIEMB_KILL_SEED=${SEED}`)
    const first = 2 + rng.int(6)
    const a = await runAndStop(['train', '--config', config('a')], {after: (e) => e.type === 'step' && e.step === first, signal: 'SIGINT', delayMs: rng.int(30)})
    const checkpoint = assertInterrupted('a', a, 'SIGINT', first)
    assert.match(a.stderr, /SIGINT: finishing the current step, then writing a checkpoint; press Ctrl-C again to stop at once/)
    await assertCheckpointLoads(checkpoint)

    const second = a.envelope.data.step + 2 + rng.int(4)
    const b = await runAndStop(['train', '--config', config('a'), '--resume', checkpoint], {after: (e) => e.type === 'step' && e.step === second, signal: 'SIGTERM', delayMs: rng.int(30)})
    const later = assertInterrupted('a', b, 'SIGTERM', second)
    await assertCheckpointLoads(later)

    await trainTo('a', later)
    assert.equal(sha256(join(root, 'a', 'model.safetensors')), reference)
    ;(await loadEncoder(join(root, 'a'), {registry: BUILTINS})).dispose()
    assert.deepEqual(temporariesOf('a'), [])
  })

  it('SIGKILL at a seeded point, then a double Ctrl-C in the resumed run: checkpoints load, the output is absent or complete; resuming ends bit-exact', async (t) => {
    const latestOf = () => listCheckpoints(checkpoints('d')).at(-1)
    const at = 1 + rng.int(6)
    const delayMs = rng.int(150)
    t.diagnostic(`SIGKILL ${delayMs} ms after step ${at}`)
    const killed = await runAndStop(['train', '--config', config('d')], {after: (e) => e.type === 'step' && e.step === at, signal: 'SIGKILL', delayMs})
    assert.equal(killed.signal, 'SIGKILL', killed.stderr)
    assert.equal(existsSync(join(root, 'd')), false, 'no final model')
    for (const c of listCheckpoints(checkpoints('d'))) await assertCheckpointLoads(c.path)

    // Resumed (or started again when no checkpoint was written), then Ctrl-C twice: the second as soon as
    // the first is acknowledged, i.e. while the step finishes or the checkpoint is written.
    const from = latestOf()
    const again = (from?.step ?? 0) + 1 + rng.int(6)
    const r = await runAndStop(['train', '--config', config('d'), ...(from ? ['--resume', from.path] : [])], {after: (e) => e.type === 'step' && e.step === again, signal: 'SIGINT', delayMs: 0, again: true})
    assert.equal(r.code, 130, r.stderr)
    assert.equal(r.envelope.name, 'InterruptedError')
    // Where the second signal lands decides which: the stop at once, or the first one's completed stop.
    assert.match(r.envelope.message, /^(stopped at once by a second SIGINT|interrupted by SIGINT at step \d+ of \d+)/)
    t.diagnostic(`double SIGINT after step ${again}: ${r.envelope.message}`)
    assert.equal(existsSync(join(root, 'd')), false)
    assert.deepEqual(temporariesOf('d'), [], 'no temporary: the dead run’s were removed on resume, this run’s on exit')
    for (const c of listCheckpoints(checkpoints('d'))) await assertCheckpointLoads(c.path)

    await trainTo('d', latestOf()?.path)
    assert.equal(sha256(join(root, 'd', 'model.safetensors')), reference)
    ;(await loadEncoder(join(root, 'd'), {registry: BUILTINS})).dispose()
    assert.deepEqual(temporariesOf('d'), [])
  })
})

describe('prepare killed at seeded points', () => {
  const faq = join(REPO_ROOT, 'examples', 'faq')
  const config = join(root, 'prepare.json')
  let referenceFiles: unknown

  /** The manifest's files, after checking each against its sha256 and size. */
  const verified = (out: string) => {
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))
    for (const f of manifest.files) {
      assert.equal(sha256(join(out, f.path)), f.sha256, f.path)
      assert.equal(readFileSync(join(out, f.path)).length, f.bytes, f.path)
    }
    return manifest.files.map((f: {path: string; rows: number; sha256: string}) => [f.path, f.rows, f.sha256])
  }

  before(async () => {
    // examples/faq, plus 100,000 generated STS pairs so that a signal lands mid-run.
    const pairs = readFileSync(join(faq, 'sts-train.tsv'), 'utf8').trim().split('\n')
    const big = join(root, 'big-sts.tsv')
    const gen = new Rng(7)
    writeFileSync(big, Array.from({length: 100_000}, (_, i) => pairs[gen.int(pairs.length)]!.replace('\t', ` (${i})\t`)).join('\n') + '\n')
    const section = parse(readFileSync(join(faq, 'prepare.yaml'), 'utf8')).prepare
    const sts = section.datasets.find((d: DatasetConfig) => d.name === 'faq-sts')
    section.datasets.push({...sts, name: 'big-sts', splits: {train: big}})
    writeFileSync(config, JSON.stringify({prepare: section}))
    await prepare(section, {registry: BUILTINS, dataRoot: faq, out: join(root, 'prepare-reference')})
    referenceFiles = verified(join(root, 'prepare-reference'))
  })

  it('SIGINT mid-run: exit 130, the output folder left empty, no staging folder', async () => {
    const out = join(root, 'prepare-int')
    const r = await runAndStop(['prepare', '--config', config, '--data-root', faq, '--out', out], {
      after: (e) => e.type === 'dataset-start' && e.dataset === 'big-sts',
      signal: 'SIGINT',
      delayMs: rng.int(300),
    })
    assert.equal(r.code, 130, r.stderr)
    assert.equal(r.envelope.name, 'InterruptedError')
    assert.deepEqual(r.events.at(-1), {time: r.events.at(-1)!.time, type: 'error', name: 'InterruptedError', message: 'interrupted by SIGINT', exitCode: 130})
    assert.equal(existsSync(out), false, 'the folder this run created is removed again')
    assert.deepEqual(readdirSync(root).filter((n) => n.includes('prepare-int')), [], 'no staging folder or lock beside it')
  })

  it('SIGKILL at a seeded point: the manifest is absent or verified, only temporaries besides; a rerun gives the reference files', async (t) => {
    const out = join(root, 'prepare-kill')
    const dataset = rng.int(4)
    const delayMs = rng.int(1500)
    t.diagnostic(`SIGKILL ${delayMs} ms after dataset ${dataset} started`)
    const r = await runAndStop(['prepare', '--config', config, '--data-root', faq, '--out', out], {after: (e) => e.type === 'dataset-start' && e.index === dataset, signal: 'SIGKILL', delayMs})
    if (r.code !== 0) {
      assert.equal(r.signal, 'SIGKILL', r.stderr)
      if (existsSync(join(out, 'manifest.json'))) verified(out)
      // prepare publishes by one swap: before it, the folder is absent (only temporaries beside it) or holds only temporaries
      else if (existsSync(out)) assert.deepEqual(readdirSync(out).filter((n) => !parseTempName(n) && n !== '.codiemb-output.json'), [], 'without a manifest, nothing under a final name')
    }
    const again = await runAndStop(['prepare', '--config', config, '--data-root', faq, '--out', out])
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(verified(out), referenceFiles)
    assert.deepEqual(readdirSync(root).filter((n) => n !== 'prepare-kill' && n.includes('prepare-kill')), [], 'the rerun removed the dead run\'s temporaries and lock')
  })
})

describe('merge killed at seeded points', () => {
  let inputs: string[] = []
  let reference = ''
  const setup = async (t: TestContext): Promise<boolean> => {
    const models = shared(t, 'fixtures', 'models')
    if (!models) return false
    if (inputs.length) return true
    const dir = join(root, 'merge-inputs')
    mkdirSync(dir)
    const base = await baseTensors(models)
    inputs = [await writeCheckpoint(models, join(dir, 'base'), base, false)]
    for (const k of [1, 2, 3]) inputs.push(await writeCheckpoint(models, join(dir, `ckpt-${k}`), perturbed(base, (name, n) => noise(n, k * 31 + name.length).map((x) => 0.01 * k * x))))
    const report = await mergeCheckpoints({method: 'delta', base: inputs[0], checkpoints: inputs.slice(1), out: join(root, 'merge-reference'), registry: BUILTINS})
    assert.equal(report.summary.merged > 0, true)
    reference = sha256(join(root, 'merge-reference', 'model.safetensors'))
    return true
  }
  const args = (out: string) => ['merge', '--method', 'delta', '--base', inputs[0]!, ...inputs.slice(1), '--out', out]

  it('SIGINT while hashing or merging: exit 130 and no output, or a completed merge identical to the reference', async (t) => {
    if (!(await setup(t))) return
    const out = join(root, 'merge-int')
    const phase = rng.int(2) === 0 ? 'hash' : 'merge'
    const r = await runAndStop(args(out), {after: (e) => e.type === 'merge-progress' && e.phase === phase, signal: 'SIGINT', delayMs: rng.int(20)})
    t.diagnostic(`SIGINT during ${phase}: exit ${r.code}`)
    if (r.code === 0) assert.equal(sha256(join(out, 'model.safetensors')), reference)
    else {
      assert.equal(r.code, 130, r.stderr)
      assert.equal(r.envelope.name, 'InterruptedError')
      assert.equal(existsSync(out), false)
    }
    assert.deepEqual(temporariesOf('merge-int'), [])
  })

  it('SIGKILL at a seeded point: the output is absent or identical to the reference; a rerun completes it', async (t) => {
    if (!(await setup(t))) return
    const out = join(root, 'merge-kill')
    const delayMs = rng.int(400)
    t.diagnostic(`SIGKILL ${delayMs} ms after the first hash`)
    const r = await runAndStop(args(out), {after: (e) => e.type === 'merge-progress', signal: 'SIGKILL', delayMs})
    if (r.code !== 0) assert.equal(r.signal, 'SIGKILL', r.stderr)
    if (existsSync(out)) assert.equal(sha256(join(out, 'model.safetensors')), reference)
    else {
      const again = await runAndStop(args(out))
      assert.equal(again.code, 0, again.stderr)
      assert.equal(sha256(join(out, 'model.safetensors')), reference)
    }
  })
})

describe('eval stopped mid-encoding (a command that does not stop cooperatively)', () => {
  it('SIGINT: exit 130 at once, no temporary in the embedding cache, every cache entry complete, no results', async (t) => {
    await useTestBackend()
    const model = join(root, 'eval-model')
    const tokenizerDir = join(REPO_ROOT, 'quickstart', 'data', 'tokenizer')
    const encoder = await initRandomEncoder({arch: 'bert', tokenizerDir, layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 64, seed: 3, registry: BUILTINS})
    await encoder.save(model)
    encoder.dispose()
    // A BEIR-layout task with 5,000 generated documents, prepared with the library.
    const source = join(root, 'eval-source')
    mkdirSync(join(source, 'qrels'), {recursive: true})
    const words = ['book', 'loan', 'card', 'fee', 'renew', 'print', 'desk', 'hours', 'reserve', 'return', 'late', 'lost']
    const gen = new Rng(11)
    const text = (n: number) => Array.from({length: n}, () => words[gen.int(words.length)]).join(' ')
    writeFileSync(join(source, 'corpus.jsonl'), Array.from({length: 5000}, (_, i) => JSON.stringify({_id: `d${i}`, title: '', text: text(12)})).join('\n') + '\n')
    writeFileSync(join(source, 'queries.jsonl'), Array.from({length: 20}, (_, i) => JSON.stringify({_id: `q${i}`, text: text(5)})).join('\n') + '\n')
    writeFileSync(join(source, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\n' + Array.from({length: 20}, (_, i) => `q${i}\td${i}\t1\n`).join(''))
    const data = join(root, 'eval-data')
    await prepare({datasets: [{name: 'big', reader: 'beir', task: 'eval', path: '.', splits: ['test']}]}, {registry: BUILTINS, dataRoot: source, out: data})
    const results = join(root, 'eval-results')
    const config = join(root, 'eval.json')
    writeFileSync(config, JSON.stringify({eval: {dataDir: data, out: results, tasks: [{name: 'Big-Retrieval', type: 'retrieval', dir: 'big'}]}}))

    const delayMs = rng.int(300)
    // After the queries are encoded: the corpus is next.
    const r = await runAndStop(['eval', '--model', model, '--config', config], {
      after: (e) => e.type === 'eval-progress' && e.detail === 'queries',
      signal: 'SIGINT',
      delayMs,
    })
    t.diagnostic(`SIGINT ${delayMs} ms after the queries were encoded: exit ${r.code}`)
    assert.equal(r.code, 130, r.stderr)
    assert.equal(r.envelope.name, 'InterruptedError')
    assert.match(r.stderr, /SIGINT: stopping/)
    const cache = join(results, '.embedding-cache')
    assert.deepEqual(temporaries(results), [], 'the exit removed the half-written cache entry')
    for (const name of readdirSync(cache).filter((n) => n.endsWith('.json'))) {
      const meta = JSON.parse(readFileSync(join(cache, name), 'utf8'))
      assert.equal(readFileSync(join(cache, name.replace(/\.json$/, '.f32'))).length, meta.count * meta.dim * 4, name)
    }
    assert.deepEqual(readdirSync(results), ['.codiemb-output.json', '.embedding-cache'], 'no results written (the folder holds only its marker and the cache)')
  })
})
