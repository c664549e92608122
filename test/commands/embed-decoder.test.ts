import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readAllRecords} from '../../src/io/arrow-records.js'
import {loadEncoder} from '../../src/model/encoder.js'
import {applyPrompt, literalPrompt} from '../../src/core/prompts.js'
import {runCommandJson} from '../helpers/cli.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {DECODER_FIXTURES, loadableFixture, readExpected, textFor} from '../helpers/decoder-fixtures.js'

const SETUP = {
  'qwen3-tiny': {pooling: 'last-token', side: 'left', baseClass: 'Qwen3Model', instruction: 'Instruct: Given a web search query, retrieve relevant passages\nQuery:', special: '<|endoftext|>'},
  'minicpm-tiny': {pooling: 'weighted-mean', side: 'right', baseClass: 'MiniCPMModel', instruction: 'Instruction: Given a web search query, retrieve relevant passages Query: ', special: '<s>'},
} as const

for (const name of DECODER_FIXTURES) {
  test(`codiemb embed: ${name} saved in the sentence-transformers layout gives the fixture embeddings`, async (t) => {
    const fixture = shared(t, 'fixtures', 'models', name)
    if (!fixture) return
    await useTestBackend()
    const setup = SETUP[name]
    const expected = readExpected(fixture)
    const work = mkdtempSync(join(tmpdir(), 'codiemb-embed-dec-'))
    try {
      // Load the fixture with a tokenizer, set the model's pooling, save: the saved folder is what embed reads.
      const source = loadableFixture(fixture, setup.side)
      const enc = await loadEncoder(source, {registry: BUILTINS, trainable: false})
      enc.pooling = setup.pooling
      enc.normalize = true
      const saved = join(work, 'saved')
      await enc.save(saved)
      enc.dispose()
      rmSync(source, {recursive: true}) // the tokenizer files must come from memory, not from the load folder
      const config = JSON.parse(readFileSync(join(saved, 'config.json'), 'utf8'))
      assert.deepEqual(config.architectures, [setup.baseClass])
      const pooling = JSON.parse(readFileSync(join(saved, '1_Pooling', 'config.json'), 'utf8'))
      assert.equal(pooling[setup.pooling === 'last-token' ? 'pooling_mode_lasttoken' : 'pooling_mode_weightedmean_tokens'], true)
      assert.ok(existsSync(join(saved, 'modules.json')) && existsSync(join(saved, 'tokenizer.json')))
      assert.equal(JSON.parse(readFileSync(join(saved, 'tokenizer_config.json'), 'utf8')).padding_side, setup.side)

      const texts = expected.sequences.map((ids) => textFor(expected, ids))
      // JSON lines: one fixture sequence is the special token alone, i.e. the empty text (a .txt input skips empty lines).
      writeFileSync(join(work, 'in.jsonl'), texts.map((text, i) => JSON.stringify({id: `s${i}`, text})).join('\n') + '\n')
      const {envelope, status} = runCommandJson('embed.js', ['--model', saved, '--input', join(work, 'in.jsonl'), '--out', join(work, 'out.arrow'), '--batch-size', '3'])
      assert.equal(status, 0, JSON.stringify(envelope))
      assert.equal(envelope.result.pooling, setup.pooling)
      const rows = await readAllRecords(join(work, 'out.arrow'), 'embeddings')
      assert.deepEqual(rows.map((r) => r.id), texts.map((_, i) => `s${i}`))
      const diff = Math.max(...rows.flatMap((row, b) => [...row.vector].map((v, i) => Math.abs(v - expected.embeddings[b]![i]!))))
      assert.ok(diff <= 1e-5, `embed output differs from the fixture by ${diff}`)

      // Special tokens come from the tokenizer alone: an instructed query holds exactly one.
      const reloaded = await loadEncoder(saved, {registry: BUILTINS, trainable: false})
      try {
        const input = applyPrompt(literalPrompt(setup.instruction), texts[0]!)
        const batch = await reloaded.tokenize([input.input], {prefixes: [input.prefix]})
        const specialId = reloaded.tokenizer.tokenToId(setup.special)!
        const ids = [...batch.inputIds]
        assert.equal(ids.filter((id) => id === specialId).length, 1, `exactly one ${setup.special} in ${JSON.stringify(ids)}`)
        assert.equal(setup.special === '<s>' ? ids[0] : ids[ids.length - 1], specialId)
      } finally {
        reloaded.dispose()
      }
    } finally {
      rmSync(work, {recursive: true, force: true})
    }
  })
}
