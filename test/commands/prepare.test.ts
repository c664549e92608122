/** `codiemb prepare` end to end (the command class run in a child process, as the CLI runs it). */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {REPO_ROOT, shared} from '../helpers/env.js'

function prepareCli(args: string[]): {code: number | null; stdout: string; stderr: string; json?: any} {
  const script = `const m = await import(${JSON.stringify(join(REPO_ROOT, 'dist/src/commands/prepare.js'))}); await m.default.run(process.argv.slice(1), ${JSON.stringify(REPO_ROOT)})`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {cwd: REPO_ROOT, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  let json
  try {
    json = JSON.parse(r.stdout)
  } catch {
    /* not --json */
  }
  return {code: r.status, stdout: r.stdout, stderr: r.stderr, json}
}

test('one-dataset flag form; bad input exits 2 naming file:line; --skip-invalid reports the rejects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-prepare-cli-'))
  try {
    writeFileSync(join(dir, 'pairs.tsv'), 'a\tb\t1\nc\td\t0\ne\tf\n')
    const flags = ['--reader', 'delimited', '--task', 'sts', '--name', 'pairs', '--split', 'test=pairs.tsv', '--label-range', '0,1', '--option', 'columns=3', '--instruction', 'Same?', '--data-root', dir, '--out', join(dir, 'out')]
    const bad = prepareCli(flags)
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, new RegExp(`Error: ${join(dir, 'pairs.tsv').replace(/[.]/g, '\\.')}:3: wrong column count: expected 3 fields, got 2`))
    const badJson = prepareCli([...flags, '--json'])
    assert.equal(badJson.code, 2)
    assert.equal(badJson.json.status, 2)
    assert.equal(badJson.json.name, 'DataError')

    const ok = prepareCli([...flags, '--skip-invalid', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    const result = ok.json.result
    assert.equal(result.rows, 2)
    assert.equal(result.rejected, 1)
    assert.deepEqual(result.datasets[0].files.map((f: {path: string; rows: number}) => [f.path, f.rows]), [['pairs/test.sts-pair.arrow', 2]])
    assert.deepEqual(result.datasets[0].stats['pairs/test.sts-pair.arrow'].labels, {0: 1, 1: 1})
    assert.match(ok.json.warnings[0], /pairs: 1 invalid rows set aside in pairs\/rejects\.jsonl/)
    assert.equal(readFileSync(join(dir, 'out', 'pairs', 'rejects.jsonl'), 'utf8').trim().split('\n').length, 1)

    const again = prepareCli([...flags, '--skip-invalid'])
    assert.equal(again.code, 2)
    assert.match(again.stderr, /out already holds dataset pairs; pass --overwrite to replace it/)
    const human = prepareCli([...flags, '--skip-invalid', '--overwrite'])
    assert.equal(human.code, 0)
    assert.match(human.stdout, /pairs \(delimited, sts\): 2 rows, 1 rejected/)

    // BEIR evaluation set from flags: split names, files found under --path.
    writeFileSync(join(dir, 'corpus.jsonl'), '{"_id":"d1","title":"","text":"doc"}\n')
    writeFileSync(join(dir, 'queries.jsonl'), '{"_id":"q1","text":"query"}\n')
    mkdirSync(join(dir, 'qrels'))
    writeFileSync(join(dir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td1\t1\n')
    const beir = prepareCli(['--reader', 'beir', '--task', 'eval', '--name', 'tiny', '--path', '.', '--split', 'test', '--data-root', dir, '--out', join(dir, 'out'), '--json'])
    assert.equal(beir.code, 0, beir.stderr)
    assert.deepEqual(beir.json.result.datasets[0].files.map((f: {path: string}) => f.path), ['tiny/corpus.arrow', 'tiny/queries.arrow', 'tiny/test.qrels.arrow'])
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(dir, 'out', 'manifest.json'), 'utf8')).datasets).sort(), ['pairs', 'tiny'])

    const usage = prepareCli(['--reader', 'delimited', '--out', join(dir, 'o2')])
    assert.equal(usage.code, 2)
    const noSection = join(dir, 'c.yaml')
    writeFileSync(noSection, 'seed: 1\n')
    const r = prepareCli(['--config', noSection, '--out', join(dir, 'o3')])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /has no prepare section/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('prepare --config with a shipped recipe and --json statistics', (t) => {
  const dataRoot = shared(t, 'data')
  if (!dataRoot) return
  const out = mkdtempSync(join(tmpdir(), 'codiemb-prepare-cli-'))
  try {
    const r = prepareCli(['--config', join(REPO_ROOT, 'recipes/prepare/qbqtc.yaml'), '--data-root', dataRoot, '--out', out, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const d = r.json.result.datasets[0]
    assert.equal(d.rows, 25000)
    const test = d.stats['qbqtc/test.sts-pair.arrow']
    assert.deepEqual(test.labels, {0: 1209, 1: 3159, 2: 632})
    assert.equal(test.textLength.text.count, 10000)
    assert.ok(test.textLength.text.p50 > 0 && test.textLength.text.p99 >= test.textLength.text.p90)
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

test('the installed CLI runs prepare (bin/run.js, oclif manifest) with --events progress', async () => {
  const {runCli} = await import('../helpers/cli.js')
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-prepare-bin-'))
  try {
    writeFileSync(join(dir, 'p.jsonl'), '{"query":"q","pos":["p"],"neg":["n"]}\n')
    const events = join(dir, 'events.ndjson')
    const r = runCli(['prepare', '--reader', 'flagembedding-jsonl', '--task', 'ir', '--split', 'train=p.jsonl', '--data-root', dir, '--out', join(dir, 'out'), '--events', events, '--json'])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.json.result.rows, 1)
    const types = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l).type)
    assert.deepEqual(types, ['dataset-start', 'dataset-done'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
