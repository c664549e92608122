import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readAllRecords, readArrowMeta, ArrowRecordWriter} from '../../src/io/arrow-records.js'
import {loadEncoder} from '../../src/model/encoder.js'
import {runCommandJson} from '../helpers/cli.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'

/** `codiemb <command> ... --json`'s envelope, with the exit status as `exitCode`. */
function runJson(commandFile: string, argv: string[]): any {
  const {envelope, status} = runCommandJson(commandFile, argv)
  return {...envelope, exitCode: status}
}

test('codiemb embed: txt, jsonl and Arrow inputs, prompts, pooling and normalisation', async (t) => {
  const model = shared(t, 'fixtures', 'models', 'st-bert-tiny-cls', 'model')
  if (!model) return
  await useTestBackend()
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-embed-'))
  try {
    const texts = ['A man is playing a guitar.', '一架飞机正在起飞。', 'Hi']
    writeFileSync(join(dir, 'in.txt'), `${texts[0]}\n\n${texts[1]}\r\n${texts[2]}`)
    const r = runJson('embed.js', ['--model', model, '--input', join(dir, 'in.txt'), '--out', join(dir, 'sub', 'out.arrow'), '--prompt', 'query', '--batch-size', '2'])
    assert.equal(r.status, 0, JSON.stringify(r))
    assert.equal(r.result.rows, 3)
    assert.equal(r.result.dim, 64)
    assert.equal(r.result.pooling, 'cls')
    assert.ok(r.result.textsPerSecond > 0 && r.result.tokensPerSecond > 0)
    const rows = await readAllRecords(join(dir, 'sub', 'out.arrow'), 'embeddings')
    assert.deepEqual(rows.map((x) => x.id), ['1', '3', '4'])
    assert.deepEqual(rows.map((x) => x.text), texts)
    const meta = await readArrowMeta(join(dir, 'sub', 'out.arrow'))
    assert.equal(meta.kind, 'embeddings')
    assert.equal(meta.instruction, 'Instruction: find similar text Query: ')
    const enc = await loadEncoder(model, {registry: BUILTINS})
    const want = await enc.encode(texts, {prompt: 'query'})
    rows.forEach((row, i) => assert.ok(row.vector.every((v, k) => Math.abs(v - want[i]![k]!) < 1e-5), `row ${i}`))

    // JSON lines with custom fields; mean pooling without normalisation.
    writeFileSync(join(dir, 'in.jsonl'), texts.map((text, i) => JSON.stringify({doc: `d${i}`, body: text})).join('\n') + '\n')
    const j = runJson('embed.js', ['--model', model, '--input', join(dir, 'in.jsonl'), '--out', join(dir, 'j.arrow'), '--pooling', 'mean', '--no-normalize', '--text-field', 'body', '--id-field', 'doc'])
    assert.equal(j.status, 0, JSON.stringify(j))
    const jr = await readAllRecords(join(dir, 'j.arrow'), 'embeddings')
    assert.deepEqual(jr.map((x) => x.id), ['d0', 'd1', 'd2'])
    const mean = await enc.encode(texts, {pooling: 'mean', normalize: false})
    jr.forEach((row, i) => assert.ok(row.vector.every((v, k) => Math.abs(v - mean[i]![k]!) < 1e-5)))
    assert.ok(Math.abs(Math.hypot(...jr[0]!.vector) - 1) > 1e-3, 'not normalised')

    // A codiemb corpus Arrow file embeds "title text".
    const corpus = new ArrowRecordWriter(join(dir, 'corpus.arrow'), 'corpus', {metadata: {'codiemb.dataset': 'x'}})
    corpus.write({id: 'c1', title: 'Guitar', text: texts[0]!})
    corpus.write({id: 'c2', title: '', text: texts[2]!})
    await corpus.finish()
    const a = runJson('embed.js', ['--model', model, '--input', join(dir, 'corpus.arrow'), '--out', join(dir, 'c.arrow')])
    assert.equal(a.status, 0, JSON.stringify(a))
    const ar = await readAllRecords(join(dir, 'c.arrow'), 'embeddings')
    assert.deepEqual(ar.map((x) => [x.id, x.text]), [['c1', `Guitar ${texts[0]}`], ['c2', texts[2]]])
    enc.dispose()

    // Bad input: clear errors, exit code 2, nothing written.
    writeFileSync(join(dir, 'bad.jsonl'), '{"text": "ok"}\n{"txt": "no"}\n')
    const bad = runJson('embed.js', ['--model', model, '--input', join(dir, 'bad.jsonl'), '--out', join(dir, 'bad.arrow')])
    assert.equal(bad.exitCode, 2)
    assert.match(bad.message, /bad\.jsonl:2: field "text" must be a string, got nothing/)
    const prompt = runJson('embed.js', ['--model', model, '--input', join(dir, 'in.txt'), '--out', join(dir, 'p.arrow'), '--prompt', 'passage'])
    assert.equal(prompt.exitCode, 2)
    assert.match(prompt.message, /prompt "passage" is not defined by the model \(prompts: document, query\)/)
    assert.ok(!existsSync(join(dir, 'bad.arrow')) && !existsSync(join(dir, 'p.arrow')))
    assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temporary files left behind')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('codiemb model init writes a loadable random model; bad shapes exit 2', async (t) => {
  const tok = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!tok) return
  await useTestBackend()
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-init-'))
  try {
    const args = ['--arch', 'bert', '--tokenizer', tok, '--layers', '2', '--hidden', '32', '--heads', '4', '--intermediate', '64', '--max-length', '64']
    const r = runJson('model/init.js', [...args, '--out', join(dir, 'm')])
    assert.equal(r.status, 0, JSON.stringify(r))
    assert.equal(r.result.config.vocab_size, 2757)
    const enc = await loadEncoder(join(dir, 'm'), {registry: BUILTINS})
    assert.equal(enc.fingerprint(), r.result.fingerprint)
    assert.equal(enc.numLayers, 2)
    assert.equal(enc.maxLength, 64)
    assert.equal(r.result.parameters, [...enc.variables.values()].reduce((n, v) => n + v.size, 0))
    enc.dispose()
    const bad = runJson('model/init.js', [...args.slice(0, -6), '--heads', '5', '--intermediate', '64', '--out', join(dir, 'bad')])
    assert.equal(bad.exitCode, 2)
    assert.match(bad.message, /hidden_size 32 is not a multiple of num_attention_heads 5/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
