import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {ArrowRecordWriter, readAllRecords, readArrowMeta} from '../../src/io/arrow-records.js'
import {mineHardNegatives} from '../../src/eval/mine.js'
import {shared, useTestBackend} from '../helpers/env.js'
import {HashingEncoder} from './fixtures.js'
import {runCommand} from './run-command.js'

describe('hard-negative mining', () => {
  it('adds top-k negatives after skipping the best hits, never a known positive, with scores', async (t) => {
    const file = shared(t, 'data', 'stsb-zh-hardneg', 'bge_finetune_data.jsonl')
    if (!file) return
    await useTestBackend()
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-mine-'))
    try {
      const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(0, 120).map((l) => JSON.parse(l) as {query: string; pos: string[]; neg: string[]})
      // corpus: every positive and given negative of these examples (so positives are findable and must be excluded)
      const texts = [...new Set(rows.flatMap((r) => [...r.pos, ...r.neg]))]
      const corpus = new ArrowRecordWriter(join(dir, 'corpus.arrow'), 'corpus')
      texts.forEach((text, i) => corpus.write({id: `c${i}`, title: '', text}))
      await corpus.finish()
      const input = new ArrowRecordWriter(join(dir, 'ir.arrow'), 'ir-example', {metadata: {'codiemb.dataset': 'stsb-zh-hardneg', 'codiemb.task': 'ir'}})
      rows.forEach((r, i) => input.write({id: `q${i}`, query: r.query, instruction: '为这个句子检索相似句子', positives: r.pos, negatives: [], positive_scores: null, negative_scores: null}))
      await input.finish()

      const encoder = new HashingEncoder()
      const result = await mineHardNegatives(encoder, {input: join(dir, 'ir.arrow'), corpus: join(dir, 'corpus.arrow'), out: join(dir, 'mined.arrow'), topK: 5, skipTop: 2})
      assert.equal(result.examples, 120)
      const mined = await readAllRecords(join(dir, 'mined.arrow'), 'ir-example')
      assert.equal(mined.length, 120)
      for (const [i, e] of mined.entries()) {
        assert.equal(e.negatives.length, 5, `example ${i}`)
        assert.equal(e.negative_scores!.length, 5)
        for (const n of e.negatives) assert.ok(!rows[i].pos.includes(n), `example ${i}: positive mined as negative`)
        for (let j = 1; j < 5; j++) assert.ok(e.negative_scores![j - 1] >= e.negative_scores![j] - 1e-6)
        assert.equal(e.positive_scores!.length, rows[i].pos.length)
      }
      // the query prompt carried the example's instruction
      assert.ok(encoder.seenPrefixes.includes('Instruction: 为这个句子检索相似句子 Query: '))
      const meta = await readArrowMeta(join(dir, 'mined.arrow'))
      assert.equal(meta.dataset, 'stsb-zh-hardneg')
      assert.equal(JSON.parse(meta.metadata['codiemb.mined']).skipTop, 2)

      // skip-top really skips: with skipTop 0 the first mined negative scores at least as high
      const noSkip = await mineHardNegatives(encoder, {input: join(dir, 'ir.arrow'), corpus: join(dir, 'corpus.arrow'), out: join(dir, 'mined0.arrow'), topK: 5})
      const mined0 = await readAllRecords(join(dir, 'mined0.arrow'), 'ir-example')
      assert.equal(noSkip.minedNegatives, 600)
      assert.ok(mined0.every((e, i) => e.negative_scores![0] >= mined[i].negative_scores![0] - 1e-6))
      assert.ok(mined0.some((e, i) => e.negatives[2] === mined[i].negatives[0]))

      // a ratio filter drops candidates scoring too close to the positive
      const strict = await mineHardNegatives(encoder, {input: join(dir, 'ir.arrow'), corpus: join(dir, 'corpus.arrow'), out: join(dir, 'mined-r.arrow'), topK: 5, maxScoreRatio: 0.5})
      assert.ok(strict.droppedByRatio > 0)
      const minedR = await readAllRecords(join(dir, 'mined-r.arrow'), 'ir-example')
      for (const e of minedR) for (const s of e.negative_scores!) assert.ok(s <= 0.5 * Math.min(...e.positive_scores!) + 1e-6)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('runs as `codiemb mine` with the bert-tiny fixture model and rejects bad input with exit code 2', async (t) => {
    const file = shared(t, 'data', 'stsb-zh-hardneg', 'bge_finetune_data.jsonl')
    const model = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!file || !model) return
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-minecli-'))
    try {
      const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(0, 12).map((l) => JSON.parse(l) as {query: string; pos: string[]; neg: string[]})
      const corpus = new ArrowRecordWriter(join(dir, 'corpus.arrow'), 'corpus')
      ;[...new Set(rows.flatMap((r) => [...r.pos, ...r.neg]))].forEach((text, i) => corpus.write({id: `c${i}`, title: '', text}))
      await corpus.finish()
      const input = new ArrowRecordWriter(join(dir, 'ir.arrow'), 'ir-example')
      rows.forEach((r, i) => input.write({id: `q${i}`, query: r.query, instruction: '', positives: r.pos, negatives: [], positive_scores: null, negative_scores: null}))
      await input.finish()
      const out = join(dir, 'mined.arrow')
      const r = runCommand('mine', ['--model', model, '--input', join(dir, 'ir.arrow'), '--corpus', join(dir, 'corpus.arrow'), '--out', out, '--top-k', '3', '--skip-top', '1', '--max-length', '48', '--backend', 'cpu', '--json'])
      assert.equal(r.status, 0, r.stderr + r.stdout)
      assert.equal(r.json.result.examples, 12)
      assert.equal(r.json.result.minedNegatives, 36)
      const mined = await readAllRecords(out, 'ir-example')
      assert.ok(mined.every((e, i) => e.negatives.length === 3 && e.negatives.every((n) => !rows[i].pos.includes(n))))
      const bad = runCommand('mine', ['--model', model, '--input', join(dir, 'nope.arrow'), '--corpus', join(dir, 'corpus.arrow'), '--out', out, '--top-k', '3', '--json'])
      assert.equal(bad.status, 2)
      assert.match(bad.json.message, /--input: .*nope\.arrow does not exist/)
      const wrongKind = runCommand('mine', ['--model', model, '--input', join(dir, 'corpus.arrow'), '--corpus', join(dir, 'corpus.arrow'), '--out', join(dir, 'x.arrow'), '--top-k', '3', '--backend', 'cpu', '--json'])
      assert.equal(wrongKind.status, 2, wrongKind.stdout)
      assert.match(wrongKind.json.message, /expected a codiemb "ir-example" record file/)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
