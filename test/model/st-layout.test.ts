import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readPoolingConfig, readSentenceTransformersConfig, sentenceTransformersFiles} from '../../src/model/st-layout.js'

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-st-layout-'))
  try {
    fn(dir)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

test('pooling configs: v6 pooling_mode strings and v5 booleans, include_prompt default true', () => {
  withDir((dir) => {
    const p = join(dir, 'config.json')
    const cases: [unknown, string][] = [
      [{pooling_mode: 'cls'}, 'cls'],
      [{pooling_mode: 'mean'}, 'mean'],
      [{pooling_mode: 'lasttoken'}, 'last-token'],
      [{pooling_mode: 'weightedmean'}, 'weighted-mean'],
      [{pooling_mode: ['mean']}, 'mean'],
      [{pooling_mode_mean_tokens: true, pooling_mode_cls_token: false}, 'mean'],
      [{pooling_mode_lasttoken: true}, 'last-token'],
      [{pooling_mode_weightedmean_tokens: true}, 'weighted-mean'],
    ]
    for (const [config, want] of cases) {
      writeFileSync(p, JSON.stringify(config))
      assert.deepEqual(readPoolingConfig(p), {pooling: want, includePrompt: true}, JSON.stringify(config))
    }
    writeFileSync(p, JSON.stringify({pooling_mode: 'cls', include_prompt: false}))
    assert.equal(readPoolingConfig(p).includePrompt, false)
    for (const [config, message] of [
      [{pooling_mode: 'max'}, /pooling_mode "max" is not supported/],
      [{pooling_mode: ['cls', 'mean']}, /expected one mode name/],
      [{pooling_mode_cls_token: true, pooling_mode_mean_tokens: true}, /exactly one pooling_mode_\* flag.*found pooling_mode_cls_token, pooling_mode_mean_tokens/],
      [{pooling_mode_max_tokens: true}, /pooling_mode_max_tokens is not supported/],
      [{}, /found none/],
    ] as const) {
      writeFileSync(p, JSON.stringify(config))
      assert.throws(() => readPoolingConfig(p), (e: Error) => e.message.startsWith(p) && message.test(e.message))
    }
  })
})

test('written files read back to the same settings', () => {
  withDir((dir) => {
    const files = sentenceTransformersFiles({
      hiddenSize: 384,
      pooling: 'weighted-mean',
      includePrompt: false,
      normalize: true,
      maxSeqLength: 256,
      prompts: {query: 'query: ', passage: 'passage: '},
      defaultPromptName: 'query',
    })
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(join(dir, rel, '..'), {recursive: true})
      writeFileSync(join(dir, rel), content)
    }
    const st = readSentenceTransformersConfig(dir)
    assert.deepEqual(st, {
      present: true,
      pooling: 'weighted-mean',
      includePrompt: false,
      normalize: true,
      maxSeqLength: 256,
      prompts: {query: 'query: ', passage: 'passage: '},
      defaultPromptName: 'query',
      similarityFnName: 'cosine',
    })
    writeFileSync(join(dir, 'config_sentence_transformers.json'), JSON.stringify({prompts: {q: 'x'}, default_prompt_name: 'nope'}))
    assert.throws(() => readSentenceTransformersConfig(dir), /default_prompt_name "nope" is not one of the prompts/)
    writeFileSync(join(dir, 'config_sentence_transformers.json'), JSON.stringify({prompts: {q: 3}}))
    assert.throws(() => readSentenceTransformersConfig(dir), /prompts: expected an object of name -> prompt text/)
  })
})
