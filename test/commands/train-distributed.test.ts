/** `codiemb train --nproc-per-node 2` end to end on the torch backend (the real CLI, two local ranks). */
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'
import {REPO_ROOT, shared} from '../helpers/env.js'
import {runCliAsync} from '../helpers/cli.js'
import {distributedAvailable} from '../helpers/dist.js'

const WORDS = ['猫', '狗', '鸟', '鱼', '马', '牛', '羊', '猪', '鸡', '鸭', '虎', '龙']

async function writeData(dir: string): Promise<void> {
  const ir = new ArrowRecordWriter(join(dir, 'ir.arrow'), 'ir-example', {metadata: {'codiemb.dataset': 'toy-ir', 'codiemb.task': 'ir'}})
  for (let i = 0; i < 32; i++) {
    const w = WORDS[i % WORDS.length]
    ir.write({id: `q${i}`, query: `哪只${w}在跑`, instruction: '检索', positives: [`一只${w}在跑步`], negatives: [`一只${WORDS[(i + 1) % WORDS.length]}在睡觉`], positive_scores: null, negative_scores: null})
  }
  await ir.finish()
  const sts = new ArrowRecordWriter(join(dir, 'sts.arrow'), 'sts-pair', {metadata: {'codiemb.dataset': 'toy-sts', 'codiemb.task': 'sts'}})
  for (let i = 0; i < 24; i++) {
    const a = WORDS[i % WORDS.length]
    const b = WORDS[(i * 5) % WORDS.length]
    sts.write({id: `s${i}`, text1: `${a}在吃东西`, text2: `${b}在吃东西`, score: a === b ? 1 : (i % 4) / 4, raw_score: 0, instruction: '判断相似度'})
  }
  await sts.finish()
}

test('codiemb train --nproc-per-node 2 trains with cross-device negatives, rank 0 checkpoints and saves; a resume with another world size is refused, one with the same gives the uninterrupted model', async (t) => {
  if (!(await distributedAvailable(t))) return
  const vocab = shared(t, 'data', 'bert-vocab-zh')
  if (!vocab) return
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-train-dist-'))
  try {
    await writeData(dir)
    const configFile = (name: string, extra: Record<string, unknown> = {}) => {
      const file = join(dir, `${name}.json`)
      writeFileSync(file, JSON.stringify({
        train: {
          model: {init: {arch: 'bert', tokenizer: vocab, layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32, seed: 3}},
          output: join(dir, name), dataDir: dir, data: ['ir.arrow', 'sts.arrow'],
          tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 1, temperature: 0.05, crossDeviceNegatives: true}}], maxLength: {query: 16, passage: 16}}, sts: {maxLength: 16}},
          // Per-process batch sizes: the global batches are 8 IR queries and 6 STS pairs.
          sampler: {name: 'dynamic', options: {batchSizes: {ir: 4, sts: 3}}},
          epochs: 1, learningRate: 1e-3, seed: 5, checkpoint: {everyEpoch: true, keepLast: 2},
          ...extra,
        },
      }))
      return file
    }
    const file = configFile('out')
    const events = join(dir, 'events.ndjson')
    const r = await runCliAsync(['train', '--config', file, '--backend', 'torch', '--nproc-per-node', '2', '--json', '--events', events], {cwd: REPO_ROOT})
    assert.equal(r.status, 0, r.stderr + r.stdout)
    const result = (r.json as any).result
    // 32 IR rows / 8 + 24 STS pairs / 6 = 8 global batches.
    assert.equal(result.summary.steps, 8)
    assert.equal(result.summary.examples, 32 + 24, 'rank 0 reports the examples of both ranks')
    assert.ok(existsSync(join(dir, 'out', 'model.safetensors')))
    const state = JSON.parse(readFileSync(join(dir, 'out-checkpoints', 'checkpoint-8', 'trainer_state.json'), 'utf8'))
    assert.equal(state.worldSize, 2)
    const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(lines.filter((e) => e.type === 'step').length, 8, 'one event stream (rank 0)')

    const single = await runCliAsync(['train', '--config', file, '--backend', 'torch', '--json', '--resume', join(dir, 'out-checkpoints', 'checkpoint-8')], {cwd: REPO_ROOT})
    assert.equal(single.status, 2, single.stderr + single.stdout)
    assert.match((single.json as any).message, /checkpoint was trained by 2 process\(es\), this run has 1/)

    // Stopped after 4 steps and resumed by 2 ranks: the same model as the uninterrupted run, to the bit.
    const part = await runCliAsync(['train', '--config', configFile('part', {maxSteps: 4}), '--backend', 'torch', '--nproc-per-node', '2', '--json'], {cwd: REPO_ROOT})
    assert.equal(part.status, 0, part.stderr + part.stdout)
    const rest = await runCliAsync(['train', '--config', configFile('part'), '--backend', 'torch', '--nproc-per-node', '2', '--json', '--resume', join(dir, 'part-checkpoints', 'checkpoint-4')], {cwd: REPO_ROOT})
    assert.equal(rest.status, 0, rest.stderr + rest.stdout)
    assert.deepEqual((rest.json as any).result.summary.lossLast, result.summary.lossLast)
    assert.ok(readFileSync(join(dir, 'part', 'model.safetensors')).equals(readFileSync(join(dir, 'out', 'model.safetensors'))), 'resumed model differs from the uninterrupted one')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
