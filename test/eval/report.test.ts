import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {after, before, describe, it} from 'node:test'
import {runTasks} from '../../src/eval/evaluate.js'
import {buildReport, trainSeries} from '../../src/eval/report.js'
import {writeResults} from '../../src/eval/results.js'
import {CMTEB_TASKS} from '../../src/eval/benchmarks/cmteb.js'
import {shared, useTestBackend} from '../helpers/env.js'
import {HashingEncoder, SHARED_CMTEB_STS, writeSharedSts} from './fixtures.js'
import {runCommand} from './run-command.js'

let dir: string
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'codiemb-report-'))
})
after(() => rmSync(dir, {recursive: true, force: true}))

function findChromium(): string | undefined {
  for (const bin of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('which', [bin], {encoding: 'utf8'})
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim()
  }
  return undefined
}

/** A run directory: train events with two task losses and in-training eval, a merge.json, eval results. */
async function makeRunDir(t: import('node:test').TestContext): Promise<string | undefined> {
  const data = shared(t, 'data')
  if (!data) return undefined
  const run = join(dir, 'run')
  mkdirSync(run, {recursive: true})
  const lines: string[] = []
  for (let step = 1; step <= 60; step++) {
    lines.push(JSON.stringify({type: 'step', step, losses: {ir: 2.5 * Math.exp(-step / 25) + 0.3, sts: 1.2 * Math.exp(-step / 40) + 0.1}, lr: 1e-5}))
    if (step % 20 === 0) lines.push(JSON.stringify({type: 'eval', step, scores: {ATEC: 0.2 + step / 400, LCQMC: 0.5 + step / 600}}))
  }
  writeFileSync(join(run, 'events.ndjson'), lines.join('\n') + '\n')
  writeFileSync(
    join(run, 'merge.json'),
    JSON.stringify({
      format: 'codiemb-merge/1',
      method: 'delta',
      options: {temperature: 1},
      checkpoints: [{path: 'runs/ir'}, {path: 'runs/sts'}],
      summary: {tensors: 3, merged: 3, copied: 0, parameters: 300, mergedParameters: 300, meanWeights: [0.62, 0.38], seconds: 0.4},
      tensors: [
        {name: 'a', shape: [10, 10], dtype: 'F32', action: 'merged', weights: [0.7, 0.3]},
        {name: 'b', shape: [10, 10], dtype: 'F32', action: 'merged', weights: [0.6, 0.4]},
        {name: 'c', shape: [10, 10], dtype: 'F32', action: 'merged', weights: [0.56, 0.44]},
      ],
    }),
  )
  await useTestBackend()
  const prepared = join(dir, 'prepared')
  for (const spec of SHARED_CMTEB_STS.filter((s) => s.task === 'ATEC' || s.task === 'LCQMC')) await writeSharedSts(data, prepared, spec, 100)
  const evs = await runTasks(new HashingEncoder(), CMTEB_TASKS.filter((x) => x.name === 'ATEC' || x.name === 'LCQMC'), {dataDir: prepared})
  writeResults(join(run, 'results'), {name: 'hashing', revision: 'r1'}, evs)
  // a second model with a long hub-style name: grouped bars and a legend whose entries must not overlap
  const evs2 = await runTasks(new HashingEncoder(128, 'v2'), CMTEB_TASKS.filter((x) => x.name === 'ATEC' || x.name === 'LCQMC'), {dataDir: prepared})
  writeResults(join(run, 'results'), {name: 'BAAI/bge-large-zh-v1.5-codiemb-merged-ir-sts-temperature-0.5', revision: 'abcdef123456'}, evs2)
  return run
}

describe('report', () => {
  it('reads loss series from train events', () => {
    const s = trainSeries(['{"type":"step","step":1,"losses":{"ir":2,"sts":1}}', '{"type":"step","step":2,"task":"ir","loss":1.5}', 'not json', '{"type":"eval","step":2,"scores":{"ATEC":{"main_score":0.3}}}'])
    assert.deepEqual(s.losses.map((x) => x.name).sort(), ['ir', 'sts'])
    assert.deepEqual(s.losses.find((x) => x.name === 'ir')!.points, [[1, 2], [2, 1.5]])
    assert.deepEqual(s.evals[0].points, [[2, 0.3]])
    // the shape `codiemb train --events` writes: `loss` keyed by task
    const train = trainSeries(['{"type":"step","step":3,"loss":{"sts":0.7}}', '{"type":"step","step":4,"loss":{"ir":1.25}}'])
    assert.deepEqual(train.losses.map((x) => [x.name, x.points]), [['sts', [[3, 0.7]]], ['ir', [[4, 1.25]]]])
    // `probe` events (train.probeLoss) are series of their own, not points of the per-step curves
    const probed = trainSeries(['{"type":"probe","step":0,"loss":{"ir":3.6,"sts":3.1},"components":{"sts":{"pro":1.2}}}', '{"type":"step","step":1,"loss":{"ir":3.2}}', '{"type":"probe","step":1,"loss":{"ir":3.4,"sts":2.9}}'])
    assert.deepEqual(Object.fromEntries(probed.losses.map((x) => [x.name, x.points])), {'ir (probe)': [[0, 3.6], [1, 3.4]], 'sts (probe)': [[0, 3.1], [1, 2.9]], ir: [[1, 3.2]]})
  })

  it('writes one self-contained HTML file whose charts render in headless Chromium', async (t) => {
    const run = await makeRunDir(t)
    if (!run) return
    const report = buildReport(run)
    assert.equal(report.sections.training, 1)
    assert.equal(report.sections.evaluation, 2) // two models' summary.json
    assert.equal(report.sections.merge, 1)
    assert.ok(report.charts >= 5, `charts: ${report.charts}`)
    // self-contained: nothing fetched from elsewhere
    assert.doesNotMatch(report.html, /(src|href)=["']https?:/)
    assert.doesNotMatch(report.html, /@import|url\(/)

    const out = join(dir, 'report.html')
    const cli = runCommand('report', [run, '--out', out, '--json'])
    assert.equal(cli.status, 0, cli.stderr + cli.stdout)
    assert.equal(cli.json.result.charts, report.charts)
    const html = readFileSync(out, 'utf8')
    assert.match(html, /Training loss per task/)
    assert.match(html, /LCQMC/)
    // per-model tables name their columns: the metric keys, the split, the evaluation time
    assert.doesNotMatch(html, /metric \d/)
    assert.match(html, /<th>task<\/th><th>split<\/th><th>cosine_spearman<\/th><th>cosine_pearson<\/th><th>euclidean_spearman<\/th><th>manhattan_spearman<\/th><th>evaluation time \(s\)<\/th>/)

    const chromium = findChromium()
    if (!chromium) {
      t.skip('chromium is not installed (apt-get install -y chromium): the page was written but not rendered')
      return
    }
    const r = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${join(dir, 'chrome-profile')}`, '--dump-dom', pathToFileURL(out).href], {encoding: 'utf8', timeout: 60000})
    assert.equal(r.status, 0, r.stderr)
    const dom = r.stdout
    // the inline script ran and found every chart laid out with a non-empty box
    const rendered = /data-charts-rendered="(\d+)"/.exec(dom)
    assert.ok(rendered, 'the page script did not run')
    assert.equal(Number(rendered[1]), report.charts)
    assert.equal((dom.match(/<svg class="chart/g) ?? []).length, report.charts)
    assert.ok((dom.match(/<path [^>]*class="series"/g) ?? []).length >= 4) // 2 losses + 2 eval curves (+ merge curves)
    assert.ok((dom.match(/<rect class="bar"/g) ?? []).length >= 4)
    // legends: every entry laid out, no two entries' boxes intersect (long model names included)
    const legendItems = Number(/data-legend-items="(\d+)"/.exec(dom)?.[1])
    assert.ok(legendItems >= 8, `legend items: ${legendItems}`) // 2 models x 2 bar charts + 2 losses + 2 eval curves (+ merge)
    assert.equal(/data-legend-overlaps="(\d+)"/.exec(dom)?.[1], '0')
  })

  it('fails with exit code 2 on a missing directory', () => {
    const r = runCommand('report', [join(dir, 'nope'), '--out', join(dir, 'x.html'), '--json'])
    assert.equal(r.status, 2)
    assert.match(r.json.message, /not a directory/)
  })
})
