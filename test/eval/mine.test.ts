import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {ArrowRecordWriter, readAllRecords, readArrowMeta} from '../../src/data/arrow-records.js'
import {mineHardNegatives} from '../../src/eval/mine.js'
import {shared, useTestBackend} from '../helpers/env.js'
import {HashingEncoder} from './fixtures.js'

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
})
