/**
 * llama, mistral and qwen2 (src/model/encoders/, the decoder family's code path; no ../shared fixture)
 * against an independent float64 PyTorch reference written from transformers' public definitions
 * (test/model/decoder_reference.py): tiny random models whose every weight is non-trivial (norm
 * weights ≠ 1, qwen2's q/k/v biases ≠ 0), grouped-query heads, right and left padding. Every hidden
 * state at non-padded positions must agree within 1e-4 (as the fixtures require).
 *
 * Sliding windows: mistral's `sliding_window` caps the maximum length (attention inside the window is
 * plain causal attention, so the window never binds on an accepted input); qwen2's applies only with
 * `use_sliding_window` — its case sets a window of 4 without it and runs 12 tokens, which the
 * reference computes without a window too. Needs a python3 with torch and numpy (CODIEMB_PYTHON,
 * /usr/bin/python3, python3); skipped naming what to install otherwise.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {architectureFor, loadEncoder} from '../../src/model/encoder.js'
import {buildBatch} from '../../src/model/tokenizer/tokenizer.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'
import {useTestBackend, BUILTINS, REPO_ROOT} from '../helpers/env.js'

function python(t: TestContext): string | undefined {
  for (const py of [process.env.CODIEMB_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    if (spawnSync(py, ['-c', 'import torch, numpy'], {encoding: 'utf8'}).status === 0) return py
  }
  t.skip('no python3 with torch and numpy for the independent reference (apt-get install python3-torch, or set CODIEMB_PYTHON)')
  return undefined
}

const BASE = {hidden_size: 48, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 80, num_hidden_layers: 2, vocab_size: 64, max_position_embeddings: 64, pad_token_id: 0, hidden_act: 'silu', tie_word_embeddings: false}
const CASES = [
  {model_type: 'llama', architectures: ['LlamaModel'], rms_norm_eps: 1e-5, rope_theta: 10000},
  {model_type: 'mistral', architectures: ['MistralModel'], rms_norm_eps: 1e-5, rope_theta: 1000000, sliding_window: 16},
  {model_type: 'qwen2', architectures: ['Qwen2Model'], rms_norm_eps: 1e-6, rope_theta: 1000000, sliding_window: 4, use_sliding_window: false},
]

/** Seeded values in [-scale, scale) (an LCG), offset by `center`. */
function values(n: number, seed: number, scale: number, center = 0): Float32Array {
  let s = (seed * 2654435761) | 0
  return Float32Array.from({length: n}, () => {
    s = (Math.imul(s, 1664525) + 1013904223) | 0
    return center + ((s >>> 8) / 16777216 - 0.5) * 2 * scale
  })
}

const ROWS = [
  [5, 9, 33, 17, 2, 44, 61, 8, 13, 21, 34, 55],
  [7, 8, 40, 41, 42, 3, 30],
  [11, 12, 63],
]

for (const c of CASES) {
  test(`${c.model_type}: hidden states match an independent PyTorch reference (right and left padding)`, async (t) => {
    const py = python(t)
    if (!py) return
    await useTestBackend()
    const dir = mkdtempSync(join(tmpdir(), `codiemb-ref-${c.model_type}-`))
    try {
      const config = {...BASE, ...c}
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
      const vocab = Object.fromEntries(Array.from({length: BASE.vocab_size}, (_, i) => [`t${i}`, i]))
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: {type: 'WhitespaceSplit'}, post_processor: null, decoder: null, model: {type: 'WordLevel', vocab, unk_token: 't0'}}))
      const arch = await architectureFor(c.model_type, BUILTINS)
      const shapes = arch.parameterShapes(config as never)
      if (c.model_type === 'qwen2') assert.ok(shapes.some(([n]) => n === 'layers.0.self_attn.q_proj.bias'), 'qwen2 has q/k/v biases')
      else assert.ok(!shapes.some(([n]) => n.endsWith('.bias')), `${c.model_type} has no biases`)
      assert.ok(!shapes.some(([n]) => n.includes('q_norm')), 'no q/k norms')
      await writeSafetensors(
        join(dir, 'model.safetensors'),
        shapes.map(([name, shape], i) => {
          const n = shape.reduce((a, b) => a * b, 1)
          const data = name.endsWith('norm.weight') ? values(n, i + 1, 0.2, 1) : name.endsWith('.bias') ? values(n, i + 1, 0.1) : values(n, i + 1, name.startsWith('embed') ? 1 : 0.25)
          return {name, shape, data}
        }),
        {format: 'pt'},
      )
      const enc = await loadEncoder(dir, {registry: BUILTINS, trainable: false})
      try {
        assert.equal(enc.maxLength, c.model_type === 'mistral' ? 16 : 64, 'mistral: capped at its sliding window; qwen2 without use_sliding_window: not capped')
        for (const side of ['right', 'left'] as const) {
          const batch = buildBatch(ROWS.map((ids) => ({ids, typeIds: ids.map(() => 0), offsets: ids.map(() => [0, 0]), special: ids.map(() => 0)})), 0, undefined, side)
          const T = batch.seqLen
          const ids = Array.from({length: ROWS.length}, (_, b) => [...batch.inputIds.slice(b * T, (b + 1) * T)])
          const mask = Array.from({length: ROWS.length}, (_, b) => [...batch.attentionMask.slice(b * T, (b + 1) * T)])
          writeFileSync(join(dir, 'inputs.json'), JSON.stringify({input_ids: ids, attention_mask: mask}))
          const child: ReturnType<typeof spawnSync> = spawnSync(py, [join(REPO_ROOT, 'test', 'model', 'decoder_reference.py'), dir, join(dir, 'inputs.json'), join(dir, 'out.json')], {encoding: 'utf8'})
          assert.equal(child.status, 0, String(child.stderr))
          const want = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')).hidden_states as (number[] | null)[][][]
          const got = tf.tidy(() => enc.forward(batch).hiddenStates.map((h) => h.arraySync()))
          assert.equal(got.length, want.length)
          let worst = 0
          let compared = 0
          let largest = 0
          want.forEach((layer, l) =>
            layer.forEach((row, b) =>
              row.forEach((vec, p) => {
                if (vec === null) return
                vec.forEach((x, i) => ((worst = Math.max(worst, Math.abs(x - got[l]![b]![p]![i]!))), (largest = Math.max(largest, Math.abs(x)))))
                compared++
              }),
            ),
          )
          assert.equal(compared, want.length * ROWS.flat().length, "every real token of every hidden state compared")
          assert.ok(worst <= 1e-4, `${side} padding: hidden states differ by ${worst}`)
          t.diagnostic(`${side} padding: max abs difference ${worst.toExponential(2)} over ${compared} positions (largest value ${largest.toFixed(2)})`)
        }
      } finally {
        enc.dispose()
      }
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
}
