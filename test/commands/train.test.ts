/** `codiemb train` end to end (the command class run in a child process, as the CLI runs it). */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import {REPO_ROOT, shared} from '../helpers/env.js'
import {writeToyTrainingData} from '../helpers/toy-training-data.js'

function trainCli(args: string[]): {code: number | null; stdout: string; stderr: string; json?: any} {
  const script = `const m = await import(${JSON.stringify(join(REPO_ROOT, 'dist/src/commands/train.js'))}); await m.default.run(process.argv.slice(1), ${JSON.stringify(REPO_ROOT)})`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: {...process.env, NO_COLOR: '1', CODIEMB_BACKEND: process.env.CODIEMB_BACKEND ?? 'cpu'},
  })
  let json
  try {
    json = JSON.parse(r.stdout)
  } catch {
    /* not --json */
  }
  return {code: r.status, stdout: r.stdout, stderr: r.stderr, json}
}

/** 30 IR rows (1 positive, 3 negatives; two rows with too few negatives) and 24 STS pairs. */
const writeData = (dir: string) => writeToyTrainingData(dir, {irRows: 30, negativeOffsets: (i) => (i < 2 ? [1] : [1, 2, 3])})

function config(dir: string, extra: Record<string, unknown> = {}): string {
  const vocab = join(REPO_ROOT, '..', 'shared', 'data', 'bert-vocab-zh')
  const file = join(dir, 'train.json')
  writeFileSync(
    file,
    JSON.stringify({
      train: {
        model: {init: {arch: 'bert', tokenizer: vocab, layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32, seed: 3}},
        output: join(dir, 'out'),
        dataDir: dir,
        data: ['ir.arrow', 'sts.arrow'],
        tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 3, temperature: 0.05}}], maxLength: {query: 16, passage: 16}}, sts: {maxLength: 16}},
        sampler: {name: 'dynamic', options: {batchSizes: {ir: 8, sts: 6}}},
        epochs: 2,
        learningRate: 1e-3,
        seed: 5,
        checkpoint: {everyEpoch: true, keepLast: 3},
        validation: {sts: ['sts.arrow']},
        ...extra,
      },
    }),
  )
  return file
}

test('--dry-run --json prints the plan: steps per task and dataset, dropped rows, negatives per query', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-train-cli-'))
  try {
    await writeData(dir)
    const r = trainCli(['--config', config(dir), '--dry-run', '--json'])
    assert.equal(r.code, 0, r.stderr + r.stdout)
    const plan = r.json.result.plan
    assert.deepEqual(
      plan.datasets.map((d: any) => [d.name, d.task, d.rows, d.droppedRows, d.batchSize, d.batchesPerEpoch]),
      [
        ['toy-ir', 'ir', 28, 2, 8, 4],
        ['toy-sts', 'sts', 24, 0, 6, 4],
      ],
    )
    assert.equal(plan.stepsPerEpoch, 8)
    assert.equal(plan.totalSteps, 16)
    assert.deepEqual(plan.stepsPerEpochByTask, {ir: 4, sts: 4})
    assert.deepEqual(plan.negativesPerQuery, {hard: 3, inBatch: 28, total: 31, positivesPerQuery: 1})
    assert.equal(plan.droppedRows, 2)
    assert.deepEqual(plan.losses.sts.map((l: any) => [l.name, l.weight]), [['mid-infonce', 1], ['pro', 0.5], ['pearson', 2], ['rank-kl', 5]])
    assert.equal(existsSync(join(dir, 'out')), false, 'a dry run writes nothing')
    // The memory plan: the backend under test on this machine, per task its batch at maximum length.
    const memory = plan.memory
    assert.equal(memory.backend, process.env.CODIEMB_BACKEND ?? 'cpu')
    assert.ok(memory.deviceBytes > 0, 'the host memory is known')
    assert.equal(memory.parameterBytes, 4 * memory.parameters)
    assert.equal(memory.optimizerBytes, 8 * memory.parameters)
    assert.deepEqual(memory.tasks.map((t: any) => [t.task, t.passes.map((p: any) => [p.name, p.rows, p.seqLen])]), [
      ['ir', [['queries', 8, 16], ['passages', 32, 16]]],
      ['sts', [['texts1', 6, 16], ['texts2', 6, 16]]],
    ])
    const ir = memory.tasks[0]
    assert.equal(ir.variants.length, 4, 'with and without checkpointing, each direct and with GradCache')
    const direct = ir.variants.find((v: any) => !v.checkpointing && !v.chunkSize)
    const checkpointed = ir.variants.find((v: any) => v.checkpointing && !v.chunkSize)
    assert.ok(checkpointed.activationBytes < direct.activationBytes, 'checkpointing keeps less')
    assert.deepEqual(ir.configured, direct)
    assert.ok(ir.configured.fits)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('bad loss options and unknown losses are config errors (exit 2) naming the config path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-train-cli-'))
  try {
    await writeData(dir)
    const bad = trainCli(['--config', config(dir, {tasks: {ir: {losses: [{name: 'ir-infonce', options: {temprature: 0.1}}]}}}), '--dry-run', '--json'])
    assert.equal(bad.code, 2, bad.stderr + bad.stdout)
    assert.match(bad.json.message, /\/train\/tasks\/ir\/losses\/0\/options\/temprature: unknown key \(allowed here: temperature, positives, negatives, crossDeviceNegatives, cache\)/)
    const unknown = trainCli(['--config', config(dir, {tasks: {sts: {losses: ['ir-infonce']}}}), '--dry-run', '--json'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.json.message, /loss "ir-infonce" is for the ir task, not sts/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('a real run trains, validates, checkpoints, saves a sentence-transformers model, and resumes', async (t) => {
  if (!shared(t, 'data', 'bert-vocab-zh')) return
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-train-cli-'))
  try {
    await writeData(dir)
    const file = config(dir)
    const events = join(dir, 'events.ndjson')
    const r = trainCli(['--config', file, '--json', '--events', events])
    assert.equal(r.code, 0, r.stderr + r.stdout)
    const result = r.json.result
    assert.equal(result.summary.steps, 16)
    assert.deepEqual(Object.keys(result.summary.lossFirst).sort(), ['ir', 'sts'])
    assert.deepEqual(result.validation.map((v: any) => v.epoch), [0, 1, 2])
    for (const f of ['model.safetensors', 'config.json', 'modules.json', 'codiemb_training.json']) assert.ok(existsSync(join(dir, 'out', f)), f)
    const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(lines.filter((e) => e.type === 'step').length, 16)
    const step = lines.find((e) => e.type === 'step')
    for (const k of ['step', 'lr', 'loss', 'examplesPerSecond', 'tokensPerSecond', 'etaSeconds']) assert.ok(k in step, k)
    assert.deepEqual(lines.filter((e) => e.type === 'checkpoint').map((e) => e.step), [8, 16])
    // The run's story in order: setup, validation before training, each epoch's steps, checkpoint and validation, saving, done.
    const story = lines.map((e) => (e.type === 'validation' ? `validation ${e.epoch}` : e.type === 'checkpoint' ? `checkpoint ${e.step}` : e.type === 'step' ? `epoch ${e.epoch}` : e.type))
    const epochSteps = (epoch: number) => Array(8).fill(`epoch ${epoch}`)
    assert.deepEqual(story, ['backend', 'plan', 'status', 'validation 0', ...epochSteps(0), 'checkpoint 8', 'validation 1', ...epochSteps(1), 'checkpoint 16', 'validation 2', 'status', 'done'])
    assert.deepEqual(lines.at(-1), {...lines.at(-1), type: 'done', command: 'train', output: join(dir, 'out'), steps: 16})

    const resumed = trainCli(['--config', file, '--json', '--resume', join(dir, 'out-checkpoints', 'checkpoint-8')])
    assert.equal(resumed.code, 0, resumed.stderr + resumed.stdout)
    assert.equal(resumed.json.result.summary.steps, 16)
    assert.equal(resumed.json.result.resumedFrom, join(dir, 'out-checkpoints', 'checkpoint-8'))
    // Same trajectory as the uninterrupted run: the last-window losses agree.
    for (const task of ['ir', 'sts']) assert.ok(Math.abs(resumed.json.result.summary.lossLast[task] - result.summary.lossLast[task]) < 1e-5, task)

    const changed = trainCli(['--config', config(dir, {learningRate: 5e-4}), '--json', '--resume', join(dir, 'out-checkpoints', 'checkpoint-8')])
    assert.equal(changed.code, 2)
    assert.match(changed.json.message, /checkpoint-8\/trainer_state\.json: written under different training settings .*they differ in:\n  learningRate: 0\.001 → 0\.0005/s)

    // A checkpoint written before defaults were filled in carries the hash of the section as written;
    // a config that writes out a default (dropout: true) resumes from it when the settings are the same.
    const spelled = config(dir, {dropout: true, maxSteps: 1})
    const {model: _m, output: _o, maxSteps: _s, checkpoint: _c, validation: _v, ...settings} = JSON.parse(readFileSync(spelled, 'utf8')).train
    const stateFile = join(dir, 'out-checkpoints', 'checkpoint-8', 'trainer_state.json')
    // (Earlier checkpoints record neither the settings behind the fingerprint nor the data.)
    const {settingsDetail: _d, data: _data, ...state} = JSON.parse(readFileSync(stateFile, 'utf8'))
    const earlierState = {...state, settings: createHash('sha256').update(JSON.stringify({...settings, seed: 5})).digest('hex').slice(0, 16)}
    writeFileSync(stateFile, JSON.stringify(earlierState))
    const earlier = trainCli(['--config', spelled, '--json', '--resume', join(dir, 'out-checkpoints', 'checkpoint-8')])
    assert.equal(earlier.code, 0, earlier.stderr + earlier.stdout)
    assert.equal(earlier.json.result.summary.steps, 9)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('--dry-run --device-memory plans for a device that is not here: per-task peaks, a warning when a step does not fit, cache.chunkSize auto resolved', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-train-cli-'))
  try {
    await writeData(dir)
    const auto = config(dir, {tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 3, cache: {chunkSize: 'auto'}}}], maxLength: {query: 16, passage: 16}}, sts: {maxLength: 16}}})
    const big = trainCli(['--config', auto, '--dry-run', '--json', '--backend', 'torch', '--device', 'cuda:0', '--precision', 'bf16', '--device-memory', '141GiB'])
    assert.equal(big.code, 0, big.stderr + big.stdout)
    const memory = big.json.result.plan.memory
    assert.deepEqual([memory.backend, memory.device, memory.precision, memory.kernels, memory.deviceBytes, memory.deviceSource], ['torch', 'cuda:0', 'bf16', 'fused', 141 * 2 ** 30, '--device-memory'])
    // Everything fits 141 GiB: auto takes the whole IR batch part (its 32 passages) as one chunk.
    assert.equal(memory.autoChunkSize, 32)
    assert.equal(memory.tasks[0].configured.chunkSize, 32)
    assert.deepEqual(memory.warnings, [])

    const text = trainCli(['--config', auto, '--dry-run', '--backend', 'torch', '--device', 'cuda:0', '--device-memory', '2MiB'])
    assert.equal(text.code, 0, text.stderr + text.stdout)
    assert.match(text.stdout, /memory: torch on cuda:0, fp32 \(fused kernels.*device 2\.00 MiB \(--device-memory\), 1\.80 MiB usable/)
    assert.match(text.stdout, /ir step \(queries 8 × 16, passages 32 × 16 tokens\): peak .* — does NOT fit/)
    assert.match(text.stdout, /ir-infonce cache\.chunkSize auto → 1/)
    assert.match(text.stderr, /Warning: ir: a step needs about .*, more than the 1\.80 MiB usable of cuda:0/)
    assert.match(text.stderr, /Warning: ir-infonce cache\.chunkSize auto: not even a chunk of 1 text fits/)

    const bad = trainCli(['--config', auto, '--dry-run', '--json', '--device-memory', 'lots'])
    assert.equal(bad.code, 2)
    assert.match(bad.json.message, /--device-memory: expected a size such as 141GiB/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('cache.chunkSize auto: resolved once at start, recorded in checkpoints and reused on resume whatever the device (and with checkpointing switched)', async (t) => {
  if (!shared(t, 'data', 'bert-vocab-zh')) return
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-train-cli-'))
  try {
    await writeData(dir)
    const auto = (extra: Record<string, unknown>) =>
      config(dir, {tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 3, cache: {chunkSize: 'auto'}}}], maxLength: {query: 16, passage: 16}}}, data: ['ir.arrow'], validation: {}, epochs: 1, ...extra})
    const events = join(dir, 'events.ndjson')
    // With activation checkpointing (and a probe, which embeds without a tape); the resume below turns it off.
    const first = trainCli(['--config', auto({maxSteps: 1, gradientCheckpointing: true, probeLoss: {batches: 1}}), '--json', '--events', events, '--device-memory', '64GiB'])
    assert.equal(first.code, 0, first.stderr + first.stdout)
    const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(lines.find((e) => e.type === 'plan').memory.autoChunkSize, 32)
    assert.equal(lines.find((e) => e.type === 'plan').memory.tasks[0].configured.checkpointing, true)
    assert.ok(lines.some((e) => e.type === 'probe' && Number.isFinite(e.loss.ir)))
    assert.ok(lines.some((e) => e.type === 'status' && e.message === 'ir-infonce cache.chunkSize auto → 32'))
    const checkpoint = join(dir, 'out-checkpoints', 'checkpoint-1')
    assert.equal(JSON.parse(readFileSync(join(checkpoint, 'trainer_state.json'), 'utf8')).gradCacheChunkSize, 32)
    // On a device where auto would now pick 1, the resumed run keeps 32 (the chunks decide dropout seeds).
    const resumed = trainCli(['--config', auto({}), '--json', '--resume', checkpoint, '--device-memory', '2MiB'])
    assert.equal(resumed.code, 0, resumed.stderr + resumed.stdout)
    assert.equal(resumed.json.result.plan.memory.autoChunkSize, 1)
    const last = join(dir, 'out-checkpoints', `checkpoint-${resumed.json.result.summary.steps}`)
    assert.equal(JSON.parse(readFileSync(join(last, 'trainer_state.json'), 'utf8')).gradCacheChunkSize, 32)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
