/**
 * cli/outputs.ts: how commands claim outputs (CommandOutputs), recognise the single files codiemb
 * wrote, and turn write errors into messages naming their outputs.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {CommandOutputs, isCodiembArrowFile, isCodiembReport, OUTPUTS} from '../../src/cli/outputs.js'
import {exitCodeOf} from '../../src/core/errors.js'
import {outputLockPath} from '../../src/core/outputs.js'
import {buildReport} from '../../src/eval/report.js'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'codiemb-cli-outputs-'))
}

test('single files codiemb wrote are recognised by their own metadata, others are not', async () => {
  const dir = tmp()
  try {
    const arrow = join(dir, 'e.arrow')
    const w = new ArrowRecordWriter(arrow, 'sts-pair')
    w.write({id: '1', text1: 'a', text2: 'b', score: 1, raw_score: 1, instruction: ''})
    await w.finish()
    assert.equal(await isCodiembArrowFile(arrow), true)
    writeFileSync(join(dir, 'x.arrow'), 'ARROW1 but not really')
    assert.equal(await isCodiembArrowFile(join(dir, 'x.arrow')), false)
    assert.equal(await isCodiembArrowFile(join(dir, 'missing.arrow')), false)
    writeFileSync(join(dir, 'report.html'), buildReport(dir).html)
    assert.equal(await isCodiembReport(join(dir, 'report.html')), true)
    writeFileSync(join(dir, 'old.html'), '<!doctype html>\n<html lang="en"><head><title>t</title></head>\n<body data-charts-expected="3">\n')
    assert.equal(await isCodiembReport(join(dir, 'old.html')), true, 'a report of an earlier codiemb (no generator tag)')
    writeFileSync(join(dir, 'page.html'), '<!doctype html><html><body><p>my page</p></body></html>')
    assert.equal(await isCodiembReport(join(dir, 'page.html')), false)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('a command run releases its claims and locks at the end; after a failure the folders it made and left empty go', async () => {
  const dir = tmp()
  try {
    const warnings: string[] = []
    const outputs = new CommandOutputs('eval', (w) => warnings.push(w))
    writeFileSync(join(dir, `.results.999999999.0000000a.tmp`), '')
    await outputs.claim(join(dir, 'results'), OUTPUTS.results, {flag: '--out', lock: false})
    outputs.lock(join(dir, 'results', 'model-a', 'rev1'))
    assert.ok(existsSync(outputLockPath(join(dir, 'results', 'model-a', 'rev1'))))
    assert.match(warnings.join('\n'), /removed 1 temporary file\(s\) left by interrupted runs: .*\.results\.999999999\.0000000a\.tmp/)
    assert.deepEqual(outputs.paths, [join(dir, 'results'), join(dir, 'results', 'model-a', 'rev1')])
    outputs.release(false)
    assert.deepEqual(readdirSync(dir), [], 'nothing of the failed run is left')
    const ok = new CommandOutputs('eval', () => {})
    await ok.claim(join(dir, 'results'), OUTPUTS.results, {lock: false})
    ok.lock(join(dir, 'results', 'model-a', 'rev1'))
    mkdirSync(join(dir, 'results', 'model-a', 'rev1'))
    ok.release(true)
    assert.deepEqual(readdirSync(join(dir, 'results')).sort(), ['.codiemb-output.json', 'model-a'])
    assert.deepEqual(readdirSync(join(dir, 'results', 'model-a')), ['rev1'], 'the lock is gone, the results stay')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('explain: a write error about a claimed output names it with its exit code; anything else passes through', async () => {
  const dir = tmp()
  try {
    const outputs = new CommandOutputs('embed', () => {})
    const plain = new Error('no outputs claimed yet')
    assert.equal(outputs.explain(plain), plain)
    await outputs.claim(join(dir, 'e.arrow'), OUTPUTS.embeddings)
    const full = outputs.explain(Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC'})) as Error
    assert.equal(exitCodeOf(full), 1)
    assert.match(full.message, new RegExp(`^codiemb embed: no space left to write ${join(dir, 'e.arrow')}`))
    const unreadable = Object.assign(new Error('EACCES: permission denied'), {code: 'EACCES', path: '/elsewhere/input.txt'})
    assert.equal(outputs.explain(unreadable), unreadable)
    outputs.release(true)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
