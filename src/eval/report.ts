/**
 * `codiemb report`: one self-contained HTML page (inline CSS, inline SVG charts, one small inline
 * script; no network, no CDN) summarising what a directory holds:
 * - training: loss curves per task from train events (NDJSON: any event with a numeric `step` and a
 *   numeric `loss`, a `losses` object of named losses, or `task` + `loss`); evaluation scores logged
 *   during training (`scores` / `main_score` with a step) become curves too;
 * - evaluation: every summary.json (codiemb eval) as a table and a bar chart of main scores, plus the
 *   full metric tables from the TaskResult files beside it; several models side by side;
 * - merging: every merge.json (codiemb merge): method, options, mean weight per checkpoint, and the
 *   spread of per-tensor weights.
 */
import {readFileSync} from 'node:fs'
import {basename, dirname, join, relative} from 'node:path'
import {filesBelow} from './files.js'

/** In the head of every report: how `codiemb report` recognises a report.html it may replace (cli/outputs.ts). */
export const REPORT_GENERATOR = '<meta name="generator" content="codiemb">'

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22']

export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]!)
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2)
  return Number(v.toPrecision(4)).toString()
}

function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min]
  const step0 = (max - min) / count
  const mag = 10 ** Math.floor(Math.log10(step0))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0
  const out: number[] = []
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)))
  return out
}

export interface Series {
  name: string
  points: [number, number][]
}

/** A line chart as an inline SVG (class "chart line-chart"). */
export function lineChart(title: string, series: Series[], options: {xLabel?: string; yLabel?: string; width?: number; height?: number} = {}): string {
  const W = options.width ?? 720
  const m = {l: 64, r: 160, t: 32, b: 44}
  // the legend is one line per series on the right: the chart grows so that every line fits
  const H = Math.max(options.height ?? 320, m.t + series.length * LEGEND_LINE + 8)
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  if (!pts.length) return ''
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))]
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))]
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1]
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1]
  const pad = (y1 - y0) * 0.05
  y0 -= pad
  y1 += pad
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r)
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b)
  const parts: string[] = []
  parts.push(`<text x="${W / 2 - m.r / 2}" y="18" text-anchor="middle" class="title">${escapeHtml(title)}</text>`)
  for (const t of niceTicks(y0, y1)) parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(t)}" y2="${sy(t)}" class="grid"/><text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`)
  for (const t of niceTicks(x0, x1, 6)) parts.push(`<text x="${sx(t)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(t)}</text>`)
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" class="axis"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" class="axis"/>`)
  if (options.xLabel) parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle" class="label">${escapeHtml(options.xLabel)}</text>`)
  if (options.yLabel) parts.push(`<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" class="label">${escapeHtml(options.yLabel)}</text>`)
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]
    const sorted = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0])
    if (!sorted.length) return
    const d = sorted.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('')
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6" class="series" data-series="${escapeHtml(s.name)}"><title>${escapeHtml(s.name)}</title></path>`)
    if (sorted.length <= 40) for (const [x, y] of sorted) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"><title>${escapeHtml(s.name)} @ ${fmt(x)}: ${fmt(y)}</title></circle>`)
    parts.push(legendItem(W - m.r + 12, m.t + i * LEGEND_LINE, color, s.name, m.r - 20))
  })
  return `<svg class="chart line-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">${parts.join('')}</svg>`
}

/** Height of one legend line; legends list one entry per line, so entries never overlap. */
const LEGEND_LINE = 18
/** Characters of a legend name that fit in `width` pixels at the 11px font (the full name is in its tooltip). */
const fitName = (name: string, width: number) => {
  const chars = Math.max(4, Math.floor(width / 7.5))
  return name.length > chars ? name.slice(0, chars - 1) + '…' : name
}

/** One legend entry (class "legend-item": the report's browser check reads these boxes): a swatch and the name. */
function legendItem(x: number, y: number, color: string, name: string, width: number): string {
  return `<g class="legend-item"><title>${escapeHtml(name)}</title><rect x="${x}" y="${y}" width="12" height="10" fill="${color}"/><text x="${x + 18}" y="${y + 9}">${escapeHtml(fitName(name, width - 18))}</text></g>`
}

/**
 * A horizontal bar chart (class "chart bar-chart"); several value columns become grouped bars, with a
 * legend above the bars, one line per column (long model names never run into each other).
 */
export function barChart(title: string, labels: string[], columns: {name: string; values: (number | null)[]}[], options: {width?: number; percent?: boolean} = {}): string {
  const W = options.width ?? 720
  const rowH = 16 * Math.max(1, columns.length) + 8
  const legend = columns.length > 1 ? columns.length * LEGEND_LINE + 6 : 0
  const m = {l: 170, r: 70, t: 30 + legend, b: 12}
  const H = m.t + m.b + rowH * labels.length
  const values = columns.flatMap((c) => c.values).filter((v): v is number => v !== null && Number.isFinite(v))
  if (!values.length) return ''
  const lo = Math.min(0, ...values)
  const hi = Math.max(0, ...values) || 1
  const sx = (v: number) => m.l + ((v - lo) / (hi - lo)) * (W - m.l - m.r)
  const parts: string[] = [`<text x="${W / 2}" y="18" text-anchor="middle" class="title">${escapeHtml(title)}</text>`]
  if (columns.length > 1) columns.forEach((c, j) => parts.push(legendItem(m.l, 28 + j * LEGEND_LINE, PALETTE[j % PALETTE.length], c.name, W - m.l - 10)))
  labels.forEach((label, i) => {
    const y = m.t + i * rowH
    parts.push(`<text x="${m.l - 6}" y="${y + rowH / 2 + 4}" text-anchor="end">${escapeHtml(label)}</text>`)
    columns.forEach((c, j) => {
      const v = c.values[i]
      if (v === null || !Number.isFinite(v)) return
      const x = Math.min(sx(0), sx(v))
      const w = Math.abs(sx(v) - sx(0))
      const shown = options.percent ? (v * 100).toFixed(2) : fmt(v)
      parts.push(`<rect class="bar" x="${x.toFixed(1)}" y="${y + 4 + j * 16}" width="${Math.max(w, 0.5).toFixed(1)}" height="13" fill="${PALETTE[j % PALETTE.length]}"><title>${escapeHtml(`${label} (${c.name}): ${shown}`)}</title></rect><text x="${(Math.max(sx(0), sx(v)) + 4).toFixed(1)}" y="${y + 15 + j * 16}">${shown}</text>`)
    })
  })
  parts.push(`<line x1="${sx(0)}" x2="${sx(0)}" y1="${m.t}" y2="${H - m.b}" class="axis"/>`)
  return `<svg class="chart bar-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">${parts.join('')}</svg>`
}

function table(header: string[], rows: (string | number)[][]): string {
  const cell = (v: string | number) => (typeof v === 'number' ? `<td class="num">${fmt(v)}</td>` : `<td>${escapeHtml(v)}</td>`)
  return `<table><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`
}

function readJson(file: string): any {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

/** Loss (and in-training eval) series from NDJSON train events. */
export function trainSeries(lines: string[]): {losses: Series[]; evals: Series[]} {
  const losses = new Map<string, [number, number][]>()
  const evals = new Map<string, [number, number][]>()
  const add = (map: Map<string, [number, number][]>, name: string, x: number, y: unknown) => {
    if (typeof y !== 'number' || !Number.isFinite(y)) return
    const list = map.get(name)
    if (list) list.push([x, y])
    else map.set(name, [[x, y]])
  }
  for (const line of lines) {
    if (!line.trim().startsWith('{')) continue
    let e: Record<string, any>
    try {
      e = JSON.parse(line)
    } catch {
      continue
    }
    const step = typeof e.step === 'number' ? e.step : typeof e.globalStep === 'number' ? e.globalStep : undefined
    if (step === undefined) continue
    const isEval = /eval/i.test(String(e.type ?? ''))
    if (isEval) {
      if (e.scores && typeof e.scores === 'object') {
        for (const [task, v] of Object.entries(e.scores)) add(evals, task, step, typeof v === 'number' ? v : (v as any)?.main_score)
      } else add(evals, String(e.task ?? 'main_score'), step, e.main_score ?? e.score)
      continue
    }
    // `codiemb train --events` writes `loss` as an object keyed by task ({"ir": 2.1}); older or
    // third-party writers use `losses` or a single numeric `loss`.
    const perTask = e.losses && typeof e.losses === 'object' ? e.losses : e.loss && typeof e.loss === 'object' ? e.loss : undefined
    // `probe` events: the objective on fixed batches (train.probeLoss), a series of its own per task.
    if (e.type === 'probe' && perTask) {
      for (const [name, v] of Object.entries(perTask)) if (typeof v === 'number') add(losses, `${name} (probe)`, step, v)
      continue
    }
    if (perTask) {
      for (const [name, v] of Object.entries(perTask)) add(losses, name, step, typeof v === 'number' ? v : (v as any)?.loss ?? (v as any)?.total)
    } else if (typeof e.loss === 'number') add(losses, String(e.task ?? e.name ?? 'loss'), step, e.loss)
  }
  const toSeries = (m: Map<string, [number, number][]>) => [...m.entries()].map(([name, points]) => ({name, points}))
  return {losses: toSeries(losses), evals: toSeries(evals)}
}

export interface ReportResult {
  html: string
  charts: number
  sections: {training: number; evaluation: number; merge: number}
}

/** The metrics each per-model table shows, by task type (MTEB key names as column headers). */
const TABLE_METRICS: Record<string, string[]> = {
  sts: ['cosine_spearman', 'cosine_pearson', 'euclidean_spearman', 'manhattan_spearman'],
  retrieval: ['ndcg_at_10', 'map_at_10', 'recall_at_10', 'recall_at_100', 'mrr_at_10', 'precision_at_1'],
}

/**
 * One model's metric tables (×100), one per task type so every column has one metric: task, the
 * split scored (the benchmark's, as in summary.json), each metric under its own name, and the
 * evaluation time in seconds.
 */
function metricTables(file: string, s: any): string[] {
  const out: string[] = []
  for (const [type, keys] of Object.entries(TABLE_METRICS)) {
    const rows: (string | number)[][] = []
    for (const t of Object.keys(s.tasks).filter((name) => s.tasks[name].type === type)) {
      const r = readJson(join(dirname(file), `${t}.json`))
      const entry = r?.scores?.[s.tasks[t].split]?.[0]
      if (!entry) continue
      rows.push([t, s.tasks[t].split, ...keys.map((k) => (typeof entry[k] === 'number' ? (entry[k] * 100).toFixed(2) : '–')), typeof r.evaluation_time === 'number' ? fmt(r.evaluation_time) : '–'])
    }
    if (!rows.length) continue
    const what = type === 'sts' ? 'STS' : 'retrieval'
    out.push(`<h3>${escapeHtml(`${s.model}@${s.revision}`)} — ${what} metrics (×100)</h3>`, table(['task', 'split', ...keys, 'evaluation time (s)'], rows))
  }
  return out
}

export function buildReport(root: string, options: {title?: string} = {}): ReportResult {
  const files = filesBelow(root, 5, ['node_modules'])
  const sections: string[] = []
  let charts = 0
  const counted = (svg: string) => {
    if (svg) charts++
    return svg
  }
  const rel = (f: string) => relative(root, f) || basename(f)

  // training
  const eventFiles = files.filter((f) => /\.(ndjson|jsonl)$/.test(f) && /event|train|log/i.test(basename(f)))
  let training = 0
  for (const f of eventFiles) {
    const {losses, evals} = trainSeries(readFileSync(f, 'utf8').split('\n'))
    if (!losses.length && !evals.length) continue
    training++
    const body: string[] = [`<h3>${escapeHtml(rel(f))}</h3>`]
    if (losses.length) {
      body.push(counted(lineChart('Training loss per task', losses, {xLabel: 'step', yLabel: 'loss'})))
      body.push(table(['series', 'points', 'first', 'last', 'min'], losses.map((s) => [s.name, s.points.length, s.points[0][1], s.points.at(-1)![1], Math.min(...s.points.map((p) => p[1]))])))
    }
    if (evals.length) body.push(counted(lineChart('Evaluation during training', evals, {xLabel: 'step', yLabel: 'main score'})))
    sections.push(`<section class="training">${body.join('\n')}</section>`)
  }

  // evaluation
  const summaries = files.filter((f) => basename(f) === 'summary.json').map((f) => ({file: f, s: readJson(f)})).filter((x) => x.s?.tasks && x.s?.averages)
  let evaluation = 0
  if (summaries.length) {
    evaluation = summaries.length
    const body: string[] = ['<h2>Evaluation</h2>']
    const taskNames = [...new Set(summaries.flatMap((x) => Object.keys(x.s.tasks)))]
    const models = summaries.map((x) => `${x.s.model}@${x.s.revision}`)
    body.push(
      table(
        ['task', 'type', 'metric', ...models],
        [
          ...taskNames.map((t) => {
            const first = summaries.find((x) => x.s.tasks[t])!.s.tasks[t]
            return [t, first.type, first.main_score_name, ...summaries.map((x) => (x.s.tasks[t] ? (x.s.tasks[t].main_score * 100).toFixed(2) : '–'))]
          }),
          ...([['ir', 'IR'], ['sts', 'STS'], ['overall', 'Overall']] as const).map(([k, label]) => [`${label} average`, '', '', ...summaries.map((x) => (x.s.averages[k] === null ? '–' : (x.s.averages[k] * 100).toFixed(2)))]),
        ],
      ),
    )
    body.push(counted(barChart('Main score per task (×100)', taskNames, summaries.map((x, i) => ({name: models[i], values: taskNames.map((t) => x.s.tasks[t]?.main_score ?? null)})), {percent: true})))
    const avgLabels = ['IR average', 'STS average', 'Overall average']
    body.push(counted(barChart('Averages (×100)', avgLabels, summaries.map((x, i) => ({name: models[i], values: [x.s.averages.ir, x.s.averages.sts, x.s.averages.overall]})), {percent: true})))
    for (const {file, s} of summaries) body.push(...metricTables(file, s))
    sections.push(`<section class="evaluation">${body.join('\n')}</section>`)
  }

  // merging
  const merges = files.filter((f) => basename(f) === 'merge.json').map((f) => ({file: f, m: readJson(f)})).filter((x) => x.m && typeof x.m === 'object')
  for (const {file, m} of merges) {
    const body: string[] = [`<h2>Merge: ${escapeHtml(m.method ?? 'unknown method')}</h2><p class="path">${escapeHtml(rel(file))}</p>`]
    const options = Object.entries(m.options ?? {}).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])
    if (options.length) body.push(table(['option', 'value'], options))
    const checkpoints: string[] = (m.checkpoints ?? []).map((c: any, i: number) => String(c?.path ?? c?.dir ?? `checkpoint ${i + 1}`))
    const mean: number[] | undefined = m.summary?.meanWeights
    if (Array.isArray(mean) && mean.length) {
      const labels = mean.map((_, i) => (checkpoints[i] ? basename(checkpoints[i]) : `checkpoint ${i + 1}`))
      body.push(counted(barChart('Mean weight per checkpoint (over merged parameters)', labels, [{name: 'weight', values: mean}])))
    }
    const merged = (m.tensors ?? []).filter((t: any) => Array.isArray(t?.weights))
    if (merged.length) {
      const k = merged[0].weights.length
      const stats = Array.from({length: k}, (_, i) => {
        const ws = merged.map((t: any) => t.weights[i]).filter((v: unknown) => typeof v === 'number')
        const avg = ws.reduce((a: number, b: number) => a + b, 0) / ws.length
        const sd = Math.sqrt(ws.reduce((a: number, b: number) => a + (b - avg) ** 2, 0) / ws.length)
        return [checkpoints[i] ? basename(checkpoints[i]) : `checkpoint ${i + 1}`, ws.length, Math.min(...ws), avg, sd, Math.max(...ws)]
      })
      body.push(table(['checkpoint', 'tensors', 'min', 'mean', 'std', 'max'], stats))
      // weight of each checkpoint along the tensor order (layer by layer)
      body.push(counted(lineChart('Per-tensor merge weights', Array.from({length: k}, (_, i) => ({name: String(stats[i][0]), points: merged.map((t: any, j: number) => [j, t.weights[i]] as [number, number])})), {xLabel: 'tensor index', yLabel: 'weight'})))
    }
    if (m.summary) body.push(table(['summary', 'value'], Object.entries(m.summary).filter(([, v]) => typeof v !== 'object').map(([k, v]) => [k, v as number])))
    sections.push(`<section class="merge">${body.join('\n')}</section>`)
  }

  const title = options.title ?? `codiemb report — ${basename(root)}`
  const empty = sections.length ? '' : `<p class="empty">Nothing to report under ${escapeHtml(root)}: no train events (*.ndjson), summary.json or merge.json found.</p>`
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">${REPORT_GENERATOR}<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f4f4f4;cursor:pointer}svg.chart{display:block;margin:1rem 0;max-width:100%;height:auto}svg text{font-size:11px;fill:#333}
svg .title{font-size:13px;font-weight:600}svg .grid{stroke:#eee}svg .axis{stroke:#888}svg .label{fill:#555}.path{color:#666;font-size:12px}
</style></head>
<body data-charts-expected="${charts}">
<h1>${escapeHtml(title)}</h1>
<p class="path">Generated ${escapeHtml(new Date().toISOString())} from ${escapeHtml(root)}</p>
${training ? '<h2>Training</h2>' : ''}
${sections.join('\n')}
${empty}
<script>
// Click a table header to sort by that column; count the charts the browser actually rendered.
document.querySelectorAll('table').forEach(function (t) {
  t.querySelectorAll('th').forEach(function (th, i) {
    th.addEventListener('click', function () {
      var rows = Array.prototype.slice.call(t.tBodies[0].rows)
      var key = function (r) { var v = r.cells[i].textContent; var n = parseFloat(v); return isNaN(n) ? v : n }
      rows.sort(function (a, b) { var x = key(a), y = key(b); return x < y ? 1 : x > y ? -1 : 0 })
      rows.forEach(function (r) { t.tBodies[0].appendChild(r) })
    })
  })
})
// Legend entries must not overlap: count intersecting pairs of legend boxes within each chart.
var overlaps = 0, legends = 0
document.querySelectorAll('svg.chart').forEach(function (svg) {
  var boxes = Array.prototype.map.call(svg.querySelectorAll('.legend-item'), function (g) { return g.getBoundingClientRect() })
  legends += boxes.length
  for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
    var a = boxes[i], b = boxes[j]
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps++
  }
})
document.body.setAttribute('data-legend-items', String(legends))
document.body.setAttribute('data-legend-overlaps', String(overlaps))
document.body.setAttribute('data-charts-rendered', String(Array.prototype.filter.call(document.querySelectorAll('svg.chart'), function (s) { return s.getBBox().width > 0 }).length))
</script>
</body></html>
`
  return {html, charts, sections: {training, evaluation, merge: merges.length}}
}
