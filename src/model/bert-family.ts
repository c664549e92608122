/**
 * BERT-family encoders (BERT, BGE, Chinese BERT, RoBERTa, XLM-RoBERTa / multilingual-E5) as in
 * transformers' modeling_bert.py / modeling_xlm_roberta.py, post-LayerNorm:
 *
 *   h0 = Dropout(LN(word[ids] + position[pos] + token_type[types]))
 *   per layer:  a = LN(h + Dropout(Dense(MultiHeadSelfAttention(h, padding mask))))
 *               h = LN(a + Dropout(Dense2(act(Dense1(a)))))
 *
 * Attention: softmax(Q K^T / sqrt(d_head) + bias) V with bias = -1e9 on padding keys; attention
 * probabilities get dropout in training. Position ids are 0..T-1 for BERT; RoBERTa-style models number
 * non-padding tokens from padding_idx + 1 and give padding tokens padding_idx. Only absolute position
 * embeddings are supported (the configs of the targeted checkpoints all use them).
 */
import * as tf from '@tensorflow/tfjs-core'
import type {ActivationMemory, ActivationShape, EncoderArchitecture, ForwardInputs, ForwardOptions, HfConfig, RandomInitOptions} from './architecture.js'
import {ACTIVATIONS, attention, cpuFastPaths, dropout, layerNorm, linear, packedAttention, residualAdd} from '../tensor/ops.js'
import {checkpoint} from '../tensor/checkpoint.js'
import {layerAdapterNames, withAdapter} from './lora-forward.js'

export interface BertFamilyOptions {
  modelTypes: string[]
  baseClass: string
  weightPrefixes: string[]
  /** RoBERTa/XLM-R numbering: positions start at padding_idx + 1. */
  paddingOffsetPositions: boolean
  /** Extra config.json fields written by randomConfig. */
  configDefaults: Partial<HfConfig>
}

/** A layer's linear modules, which LoRA adapters may target (applied unmerged with LoRA dropout). */
const BERT_LINEAR_MODULES = ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense', 'intermediate.dense', 'output.dense'] as const

/** The weights of encoder layer l (after `encoder.layer.<l>.`), in the order the layer function takes them. */
const LAYER_WEIGHTS = [
  'attention.self.query.weight', 'attention.self.query.bias',
  'attention.self.key.weight', 'attention.self.key.bias',
  'attention.self.value.weight', 'attention.self.value.bias',
  'attention.output.dense.weight', 'attention.output.dense.bias',
  'attention.output.LayerNorm.weight', 'attention.output.LayerNorm.bias',
  'intermediate.dense.weight', 'intermediate.dense.bias',
  'output.dense.weight', 'output.dense.bias',
  'output.LayerNorm.weight', 'output.LayerNorm.bias',
]

/**
 * The query, key and value projections of x [N, H] as one product with the stacked [3H, H] weights
 * and [3H] bias, split into three [N, H]: one GEMM instead of three forward, and in backward one for
 * the input's gradient (no sum of three) and one for the weights' — about 1.5x faster for these
 * products on CPU at the MiniLM bench's size. The stacking copies only weights (3H², small beside
 * N·H activations) and its gradient slices them back; values and gradients equal the three separate
 * products (test/model/bert-family.test.ts).
 */
export function qkvProjection(x: tf.Tensor2D, wq: tf.Tensor, bq: tf.Tensor, wk: tf.Tensor, bk: tf.Tensor, wv: tf.Tensor, bv: tf.Tensor): tf.Tensor2D[] {
  return tf.split(packedQkvProjection(x, wq, bq, wk, bk, wv, bv), 3, 1) as tf.Tensor2D[]
}

/** The three projections as one [rows, 3·H] tensor (query, key, value side by side): ops.packedAttention's input. */
export function packedQkvProjection(x: tf.Tensor2D, wq: tf.Tensor, bq: tf.Tensor, wk: tf.Tensor, bk: tf.Tensor, wv: tf.Tensor, bv: tf.Tensor): tf.Tensor2D {
  return linear(x, tf.concat([wq, wk, wv], 0), tf.concat([bq, bk, bv], 0))
}

/** Mask bias for padding keys; exp(-1e9 - max) underflows to exactly 0 like transformers' finfo.min. */
const MASK_BIAS = -1e9

export function bertFamily(options: BertFamilyOptions): EncoderArchitecture {
  const positionOffset = (config: HfConfig) => (options.paddingOffsetPositions ? (config.pad_token_id ?? 1) + 1 : 0)

  function positionIds(config: HfConfig, inputs: ForwardInputs): Int32Array {
    const {batchSize, seqLen, inputIds} = inputs
    const out = new Int32Array(batchSize * seqLen)
    if (!options.paddingOffsetPositions) {
      for (let b = 0; b < batchSize; b++) for (let t = 0; t < seqLen; t++) out[b * seqLen + t] = t
      return out
    }
    const pad = config.pad_token_id ?? 1
    for (let b = 0; b < batchSize; b++) {
      let count = 0
      for (let t = 0; t < seqLen; t++) {
        const i = b * seqLen + t
        out[i] = inputIds[i] === pad ? pad : pad + ++count
      }
    }
    return out
  }

  return {
    modelTypes: options.modelTypes,
    baseClass: options.baseClass,
    weightPrefixes: options.weightPrefixes,

    passthrough: (name) => name.startsWith('pooler.'),

    // What transformers' BertModel / XLMRobertaModel also leave out of a checkpoint they load: index
    // buffers (computed per batch here) and the heads of task models (BertForMaskedLM's cls.*,
    // RobertaForMaskedLM's lm_head.*, …ForSequenceClassification's classifier.*, …ForQuestionAnswering's qa_outputs.*).
    ignoredTensor(name) {
      if (name === 'embeddings.position_ids' || name === 'embeddings.token_type_ids') return 'index buffer, computed per batch'
      if (name.startsWith('cls.') || name.startsWith('lm_head.')) return 'masked-LM head, not part of the encoder'
      if (name.startsWith('classifier.') || name.startsWith('qa_outputs.')) return 'task head, not part of the encoder'
      return undefined
    },

    validateConfig(config) {
      const ints = ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'max_position_embeddings', 'vocab_size'] as const
      for (const key of ints) {
        const v = config[key]
        if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`${key} must be a positive integer, got ${JSON.stringify(v)}`)
      }
      if (config.hidden_size % config.num_attention_heads !== 0) {
        throw new Error(`hidden_size ${config.hidden_size} is not a multiple of num_attention_heads ${config.num_attention_heads}`)
      }
      const act = config.hidden_act ?? 'gelu'
      if (!(act in ACTIVATIONS)) throw new Error(`hidden_act "${act}" is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`)
      const pet = config.position_embedding_type ?? 'absolute'
      if (pet !== 'absolute') throw new Error(`position_embedding_type "${pet}" is not supported (only "absolute")`)
      if (config.is_decoder === true) throw new Error('is_decoder: true is not supported (encoders only)')
      if (config.is_causal === true) throw new Error('is_causal: true is not supported (BERT-family encoders attend bidirectionally)')
      if (options.paddingOffsetPositions && config.max_position_embeddings <= positionOffset(config)) {
        throw new Error(`max_position_embeddings ${config.max_position_embeddings} leaves no positions after padding_idx + 1`)
      }
    },

    parameterShapes(config) {
      const H = config.hidden_size
      const I = config.intermediate_size
      const shapes: [string, number[]][] = [
        ['embeddings.word_embeddings.weight', [config.vocab_size, H]],
        ['embeddings.position_embeddings.weight', [config.max_position_embeddings, H]],
        ['embeddings.token_type_embeddings.weight', [config.type_vocab_size ?? 2, H]],
        ['embeddings.LayerNorm.weight', [H]],
        ['embeddings.LayerNorm.bias', [H]],
      ]
      for (let l = 0; l < config.num_hidden_layers; l++) {
        const p = `encoder.layer.${l}.`
        for (const n of ['query', 'key', 'value']) {
          shapes.push([`${p}attention.self.${n}.weight`, [H, H]], [`${p}attention.self.${n}.bias`, [H]])
        }
        shapes.push(
          [`${p}attention.output.dense.weight`, [H, H]],
          [`${p}attention.output.dense.bias`, [H]],
          [`${p}attention.output.LayerNorm.weight`, [H]],
          [`${p}attention.output.LayerNorm.bias`, [H]],
          [`${p}intermediate.dense.weight`, [I, H]],
          [`${p}intermediate.dense.bias`, [I]],
          [`${p}output.dense.weight`, [H, I]],
          [`${p}output.dense.bias`, [H]],
          [`${p}output.LayerNorm.weight`, [H]],
          [`${p}output.LayerNorm.bias`, [H]],
        )
      }
      return shapes
    },

    maxSequenceLength: (config) => config.max_position_embeddings - positionOffset(config),

    activationMemory: (config, shape) => bertActivationMemory(config, shape),

    unmergedLoraModules: BERT_LINEAR_MODULES,

    forward(params, config, inputs, opts: ForwardOptions) {
      const P = (name: string): tf.Tensor => {
        const t = params.get(name)
        if (!t) throw new Error(`parameter ${name} is missing`)
        return t
      }
      const {batchSize: B, seqLen: T} = inputs
      const H = config.hidden_size
      const heads = config.num_attention_heads
      const dHead = H / heads
      const eps = config.layer_norm_eps ?? 1e-12
      const act = ACTIVATIONS[config.hidden_act ?? 'gelu']!
      // Dropout rates in effect: the config's when training, none otherwise.
      const hiddenDrop = opts.training ? config.hidden_dropout_prob ?? 0 : 0
      const attnDrop = opts.training ? config.attention_probs_dropout_prob ?? 0 : 0
      let seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31)
      const nextSeed = () => (seed = (seed * 1103515245 + 12345) % 2147483648)

      const maxPos = config.max_position_embeddings
      if (options.paddingOffsetPositions ? T + positionOffset(config) > maxPos : T > maxPos) {
        throw new Error(`sequence length ${T} exceeds the model's ${maxPos - positionOffset(config)} positions`)
      }

      const ids = tf.tensor1d(inputs.inputIds, 'int32')
      const types = tf.tensor1d(inputs.tokenTypeIds, 'int32')
      const pos = tf.tensor1d(positionIds(config, inputs), 'int32')
      const summed = tf.addN([
        tf.gather(P('embeddings.word_embeddings.weight'), ids),
        tf.gather(P('embeddings.position_embeddings.weight'), pos),
        tf.gather(P('embeddings.token_type_embeddings.weight'), types),
      ])
      let h = dropout(layerNorm(summed as tf.Tensor2D, P('embeddings.LayerNorm.weight'), P('embeddings.LayerNorm.bias'), eps), hiddenDrop, nextSeed()) as tf.Tensor2D
      const hiddenStates: tf.Tensor3D[] = [tf.reshape(h, [B, T, H])]

      // 0 for real keys, MASK_BIAS for padding, per key: [B, 1, 1, T], broadcast over heads and queries
      // by the attention kernels (O(B·T) memory; see tensor/ops.ts attention).
      const maskRow = new Float32Array(B * T)
      for (let i = 0; i < maskRow.length; i++) maskRow[i] = inputs.attentionMask[i] ? 0 : MASK_BIAS
      const maskBias = tf.tensor4d(maskRow, [B, 1, 1, T])
      const scale = 1 / Math.sqrt(dHead)
      const toHeads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, heads, dHead]), [0, 2, 1, 3]) as tf.Tensor4D

      // One encoder layer as a function of its input, weights (LAYER_WEIGHTS order), mask bias and
      // dropout seeds: pure, so a checkpointed layer recomputed in backward draws the same masks.
      // `w` may go on with the layer's LoRA adapters (`adapters`, layer-relative names) when they apply unmerged.
      const layer = (x: tf.Tensor2D, w: tf.Tensor[], bias: tf.Tensor, seeds: number[], adapters: string[] = []): tf.Tensor2D => {
        const [wq, bq, wk, bk, wv, bv, wo, bo, ln1Gamma, ln1Beta, wi, bi, wf, bf, ln2Gamma, ln2Beta] = w
        const W: Record<string, tf.Tensor> = Object.fromEntries(adapters.map((n, i) => [n, w[LAYER_WEIGHTS.length + i]!]))
        const adapt = (out: tf.Tensor2D, input: tf.Tensor2D, module: string) => withAdapter(out, input, W, module, opts.lora, seeds[3] ?? 0)
        const attentionOptions = {maskBias: bias, scale, dropoutRate: attnDrop, seed: seeds[0]}
        // Without unmerged adapters on q, k or v, attention runs on the packed projection (one kernel on torch).
        const context = adapters.length === 0
          ? packedAttention(packedQkvProjection(x, wq!, bq!, wk!, bk!, wv!, bv!), {...attentionOptions, batch: B, heads})
          : (() => {
              const [q, k, v] = qkvProjection(x, wq!, bq!, wk!, bk!, wv!, bv!)
                .map((p, i) => adapt(p, x, `attention.self.${['query', 'key', 'value'][i]}`))
                .map(toHeads)
              return tf.reshape(tf.transpose(attention(q, k, v, attentionOptions), [0, 2, 1, 3]), [B * T, H]) as tf.Tensor2D
            })()
        const attnOut = dropout(adapt(linear(context, wo!, bo), context, 'attention.output.dense'), hiddenDrop, seeds[1])
        const a = layerNorm(residualAdd(attnOut, x) as tf.Tensor2D, ln1Gamma!, ln1Beta!, eps) as tf.Tensor2D
        const inter = act(adapt(linear(a, wi!, bi), a, 'intermediate.dense')) as tf.Tensor2D
        const ffn = dropout(adapt(linear(inter, wf!, bf), inter, 'output.dense'), hiddenDrop, seeds[2])
        return layerNorm(residualAdd(ffn, a) as tf.Tensor2D, ln2Gamma!, ln2Beta!, eps) as tf.Tensor2D
      }

      for (let l = 0; l < config.num_hidden_layers; l++) {
        const adapters = opts.lora ? layerAdapterNames(params, `encoder.layer.${l}.`, BERT_LINEAR_MODULES) : []
        const weights = [...LAYER_WEIGHTS, ...adapters].map((n) => P(`encoder.layer.${l}.${n}`))
        // Drawn before the layer runs, in the order the layer uses them (attention, attention output,
        // FFN; then LoRA's, only with unmerged adapters so that runs without keep their masks).
        const seeds = opts.lora ? [nextSeed(), nextSeed(), nextSeed(), nextSeed()] : [nextSeed(), nextSeed(), nextSeed()]
        // Checkpointed, only the layer's input is kept and the layer is recomputed in backward.
        // Otherwise one scope per layer frees the layer's intermediates that no gradient keeps (the
        // tape holds its own copies of what backprop needs) instead of holding every layer's until the pass ends.
        const [next, state] = tf.tidy(() => {
          const out = opts.checkpointLayers
            ? (checkpoint(([x, ...w], [bias]) => layer(x as tf.Tensor2D, w, bias!, seeds, adapters), [h, ...weights], [maskBias]) as tf.Tensor2D)
            : layer(h, weights, maskBias, seeds, adapters)
          return [out, tf.reshape(out, [B, T, H]) as tf.Tensor3D] as [tf.Tensor2D, tf.Tensor3D]
        })
        h = next
        hiddenStates.push(state)
      }
      return hiddenStates
    },

    randomConfig(o: RandomInitOptions): HfConfig {
      const offset = options.paddingOffsetPositions ? o.padTokenId + 1 : 0
      return {
        architectures: [options.baseClass],
        attention_probs_dropout_prob: 0.1,
        hidden_act: 'gelu',
        hidden_dropout_prob: 0.1,
        hidden_size: o.hidden,
        initializer_range: 0.02,
        intermediate_size: o.intermediate,
        layer_norm_eps: 1e-12,
        max_position_embeddings: (o.maxPositions ?? 512) + offset,
        num_attention_heads: o.heads,
        num_hidden_layers: o.layers,
        pad_token_id: o.padTokenId,
        position_embedding_type: 'absolute',
        vocab_size: o.vocabSize,
        ...options.configDefaults,
        model_type: options.modelTypes[0]!,
      } as HfConfig
    },

    initParameter(name, shape, config, seed) {
      // transformers' _init_weights: Linear/Embedding ~ N(0, initializer_range), biases 0, LayerNorm 1/0,
      // the padding row of the word embeddings 0.
      if (name.endsWith('LayerNorm.weight')) return tf.ones(shape)
      if (name.endsWith('.bias')) return tf.zeros(shape)
      const std = typeof config.initializer_range === 'number' ? config.initializer_range : 0.02
      const w = tf.randomNormal(shape, 0, std, 'float32', seed)
      const pad = config.pad_token_id
      if (name === 'embeddings.word_embeddings.weight' && typeof pad === 'number' && pad >= 0 && pad < shape[0]!) {
        const keep = tf.reshape(tf.oneHot(tf.tensor1d([pad], 'int32'), shape[0]!), [shape[0]!, 1])
        return tf.mul(w, tf.sub(1, keep))
      }
      return w
    },
  }
}

/**
 * What a BERT-family forward pass keeps for backward, per token, in bytes: float32 tensors (4 bytes
 * per element) and, on the fused path, boolean dropout masks (1 byte). With H = hidden_size,
 * I = intermediate_size, n = heads, T = the padded length (attention keeps n·T probabilities per
 * token), hd / ad = 1 when hidden / attention dropout is active, per layer (in elements per token):
 *
 *   fused (torch: one kernel per op, ATen views share storage; a dense layer keeps its input, not
 *   its output, and dropout its boolean mask, not its output: ops.linear, ops.dropout; attention on
 *   the packed projection, ops.packedAttention, keeps it and its [B·T, H] output, which is also the
 *   output projection's input)
 *     3H (packed q, k, v) + H (attention output) + nT (probabilities) + ad·nT/4 (mask)
 *     + 2 × [hd·H/4 (dropout mask) + H (residual sum) + H (layer norm) + 2 (its mean, rstd)]
 *     + 2I (intermediate dense output, GELU output)
 *     = 8H + 2I + nT + 4 + hd·H/2 + ad·nT/4
 *   (the layer-norm output is counted once: the next dense layer keeps it, the norm keeps only its
 *   input and statistics)
 *   fused with bf16 activations (torch, --precision bf16), in bytes per token: q, k, v, the attention
 *   output and the two intermediate tensors are bfloat16 (2 bytes); the residual sums stay float32 (a
 *   bfloat16 branch plus a float32 residual widens), and each dense layer after a layer norm keeps the
 *   norm output's bfloat16 copy:
 *     2·3H + 2H + 4nT + ad·nT + 2 × [hd·H + 4H + 2H + 8] + 2·2I
 *     = 20H + 4I + 4nT + 16 + 2hd·H + ad·nT
 *   (unmerged LoRA adapters on q, k, v split the projection, which keeps H more, 2H with bf16: not counted)
 *   composite (cpu: tfjs ops; tf.fused.matMul keeps its output, Add keeps both inputs, row statistics
 *   are matmuls against ones)
 *     3H (q, k, v) + 3H (q, k, v per head) + H (q·scale) + 7nT (scores, masked scores, broadcast max,
 *     shifted, exp, broadcast 1/sum, probabilities) + 3n (row statistics) + ad·5nT (dropout: uniform,
 *     +keep, floor, mask, output) + H (heads merged) + 2 × [H (dense output) + hd·5H (dropout)
 *     + 7H (layer norm: sum, broadcast mean, centred, squared, broadcast scale, scaled, output) + 4]
 *     + 2I
 *     = 24H + 2I + 7nT + 3n + 8 + hd·10H + ad·5nT
 *
 * Outside the layers: the three token-id vectors (int32), the three embedding rows and their sum,
 * layer norm and dropout as above, and the attention mask bias (1 per token fused, [B, n, T, T]
 * broadcast once, n·T per token, composite). A checkpointed layer keeps only its input: H.
 */
function bertActivationMemory(config: HfConfig, shape: ActivationShape): ActivationMemory {
  const H = config.hidden_size
  const I = config.intermediate_size
  const n = config.num_attention_heads
  const nT = n * shape.seqLen
  const hd = shape.dropout && (config.hidden_dropout_prob ?? 0) > 0 ? 1 : 0
  const ad = shape.dropout && (config.attention_probs_dropout_prob ?? 0) > 0 ? 1 : 0
  const F = 4
  if (shape.kernels === 'fused' && shape.bf16Activations) {
    return {
      perLayer: 20 * H + 4 * I + 4 * nT + 16 + 2 * hd * H + ad * nT,
      checkpointedPerLayer: F * H,
      outsideLayers: F * (3 + 5 * H + 2 + hd * 1.25 * H + 1),
    }
  }
  if (shape.kernels === 'fused') {
    return {
      perLayer: F * (8 * H + 2 * I + nT + 4 + hd * 0.5 * H + (ad * nT) / 4),
      checkpointedPerLayer: F * H,
      outsideLayers: F * (3 + 5 * H + 2 + hd * 1.25 * H + 1),
    }
  }
  return {
    perLayer: F * (24 * H + 2 * I + 7 * nT + 3 * n + 8 + hd * 10 * H + ad * 5 * nT),
    checkpointedPerLayer: F * H,
    outsideLayers: F * (3 + 10 * H + 4 + hd * 5 * H + nT),
  }
}
