/**
 * Llama-like decoder LLMs used as text encoders (Qwen3-Embedding, MiniCPM-Embedding, gte-Qwen2,
 * e5-mistral) as transformers' modeling_llama.py / modeling_qwen2.py / modeling_qwen3.py /
 * modeling_mistral.py and OpenBMB's modeling_minicpm.py compute them, pre-RMSNorm:
 *
 *   h0 = embed_tokens[ids] · scale_emb                                     (scale_emb: MiniCPM only, else 1)
 *   per layer:  h = h + r · o_proj(Attention(RMSNorm(h)))                  (r = scale_depth / √L: MiniCPM, else 1)
 *               h = h + r · down_proj(silu(gate_proj(x)) ∘ up_proj(x)),  x = RMSNorm(h)
 *   hidden states: [h0, layer 1, …, layer L−1, RMSNorm(layer L)]          (transformers' output_hidden_states)
 *
 * RMSNorm(x) = w ∘ x / √(mean(x²) + rms_norm_eps), in float32. Attention is grouped-query: q_proj gives
 * num_attention_heads heads of head_dim (config.head_dim, else hidden_size / heads), k_proj / v_proj
 * num_key_value_heads heads; query head h reads key/value head ⌊h / (heads / kv_heads)⌋. Qwen3 RMS-norms
 * each q and k head over head_dim (q_norm / k_norm) before the rotary embedding. Rotary embedding is
 * rotate-half: x·cos + rotate_half(x)·sin with rotate_half([a, b]) = [−b, a] over the two halves of a
 * head, angle = position · θ^(−2i/head_dim), θ = rope_theta (top level, or rope_parameters.rope_theta
 * in transformers 5 saves; default 10000); positions are 0..T−1 in every row whatever the padding side
 * (transformers' default; the embedding is relative, so left padding changes nothing). Scores are
 * q kᵀ / √head_dim with −1e9 on masked keys (padding, and later tokens when causal): finite, so a
 * fully masked row (a causal left-padded pad query) gives finite values nobody reads, never NaN.
 *
 * Causal or bidirectional: config.json `is_causal` (MiniCPM-Embedding ships false), default causal.
 * Qwen2 has q/k/v biases; attention_bias: true (Llama's biases on q/k/v/o) is refused. rope_scaling other than
 * none/"default" and Mistral's sliding window (sequences longer than it) are refused, not approximated.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {ActivationMemory, ActivationShape, EncoderArchitecture, ForwardInputs, ForwardOptions, HfConfig, RandomInitOptions} from './architecture.js'
import {ACTIVATIONS, attention, linear, residualAdd} from '../tensor/ops.js'
import {checkpoint} from '../tensor/checkpoint.js'
import {matmulsInBf16} from '../tensor/storage.js'
import {layerAdapterNames, withAdapter} from './lora-forward.js'

export interface DecoderFamilyOptions {
  modelTypes: string[]
  baseClass: string
  /** q/k/v projections carry biases (Qwen2). */
  qkvBias: boolean
  /** Per-head q/k RMSNorm before RoPE (Qwen3). */
  qkNorm: boolean
  /** MiniCPM's scale_emb on the embeddings and scale_depth / √L on each residual branch. */
  minicpmScaling: boolean
  /** Extra config.json fields written by randomConfig. */
  configDefaults: Partial<HfConfig>
  /**
   * What the model's transformers config class assumes for keys config.json leaves out (a config.json
   * holds only the keys that differ from them, e.g. MiniCPM's max_position_embeddings 2048).
   */
  classDefaults: Partial<HfConfig>
}

/** Mask bias for masked keys (as the BERT family): exp(−1e9 − max) is exactly 0 in float32. */
const MASK_BIAS = -1e9

/** A layer's linear modules, which LoRA adapters may target (applied unmerged with LoRA dropout). */
const DECODER_LINEAR_MODULES = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'] as const

/** The numbers the forward pass reads from a config, with the family's defaults applied. */
export interface DecoderDims {
  H: number
  heads: number
  kvHeads: number
  headDim: number
  I: number
  eps: number
  theta: number
  causal: boolean
  scaleEmb: number
  residualScale: number
  attentionBias: boolean
}

export function decoderDims(config: HfConfig, options: Pick<DecoderFamilyOptions, 'qkvBias' | 'minicpmScaling'>): DecoderDims {
  const heads = config.num_attention_heads
  const params = config.rope_parameters as {rope_theta?: unknown} | undefined
  const theta = typeof config.rope_theta === 'number' ? config.rope_theta : typeof params?.rope_theta === 'number' ? params.rope_theta : 10000
  const num = (key: string, fallback: number) => (typeof config[key] === 'number' ? (config[key] as number) : fallback)
  return {
    H: config.hidden_size,
    heads,
    kvHeads: num('num_key_value_heads', heads),
    headDim: num('head_dim', config.hidden_size / heads),
    I: config.intermediate_size,
    eps: num('rms_norm_eps', 1e-6),
    theta,
    causal: config.is_causal !== false,
    scaleEmb: options.minicpmScaling ? num('scale_emb', 1) : 1,
    residualScale: options.minicpmScaling ? num('scale_depth', 1) / Math.sqrt(config.num_hidden_layers) : 1,
    attentionBias: options.qkvBias,
  }
}

/**
 * RMSNorm over the last axis of x [rows, n]: w ∘ x / √(mean(x²) + eps). The row statistic and its
 * broadcast are matmuls (mean = x² · (1/n), scale = rsqrt(·) wᵀ as an outer product), so only
 * same-shape element-wise ops run (tfjs-cpu is slow on broadcasting ones; see cpuFastPaths in ops.ts);
 * in float32 always, also under --precision bf16 (see below).
 */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor, eps: number): tf.Tensor2D {
  // Under --precision bf16 the matmuls would round the statistic and the scale to bfloat16;
  // transformers computes RMSNorm in float32, so do we: element-wise ops, which stay float32.
  if (matmulsInBf16()) return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), 1, true), eps))), weight) as tf.Tensor2D
  const n = x.shape[1]
  const meanSquare = tf.matMul(tf.square(x), tf.fill([n, 1], 1 / n) as tf.Tensor2D)
  const scale = tf.matMul(tf.rsqrt(tf.add(meanSquare, eps)), tf.reshape(weight, [1, n]) as tf.Tensor2D)
  return tf.mul(x, scale)
}

/** cos and sin tables [T, headDim] of the rotate-half embedding (float64 angles, then float32). */
export function ropeTables(T: number, headDim: number, theta: number): {cos: Float32Array; sin: Float32Array} {
  const half = headDim / 2
  const cos = new Float32Array(T * headDim)
  const sin = new Float32Array(T * headDim)
  for (let i = 0; i < half; i++) {
    // transformers forms inv_freq and position · inv_freq in float32; so do we (Math.fround).
    const invFreq = Math.fround(1 / Math.pow(theta, (2 * i) / headDim))
    for (let t = 0; t < T; t++) {
      const angle = Math.fround(t * invFreq)
      cos[t * headDim + i] = cos[t * headDim + half + i] = Math.cos(angle)
      sin[t * headDim + i] = sin[t * headDim + half + i] = Math.sin(angle)
    }
  }
  return {cos, sin}
}

/** x·cos + rotate_half(x)·sin for x [B, n, T, d], cos/sin [T, d]. */
function rotate(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  const [B, n, T, d] = x.shape
  const half = d / 2
  const x1 = tf.slice(x, [0, 0, 0, 0], [B, n, T, half])
  const x2 = tf.slice(x, [0, 0, 0, half], [B, n, T, half])
  const rotated = tf.concat([tf.neg(x2), x1], 3)
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D
}

/** The attention mask bias: [B, 1, 1, T] (key padding) or [B, 1, T, T] (causal and key padding). */
export function maskBias(inputs: Pick<ForwardInputs, 'batchSize' | 'seqLen' | 'attentionMask'>, causal: boolean): tf.Tensor4D {
  const {batchSize: B, seqLen: T, attentionMask} = inputs
  if (!causal) {
    const row = new Float32Array(B * T)
    for (let i = 0; i < row.length; i++) row[i] = attentionMask[i] ? 0 : MASK_BIAS
    return tf.tensor4d(row, [B, 1, 1, T])
  }
  const full = new Float32Array(B * T * T)
  for (let b = 0; b < B; b++) {
    for (let q = 0; q < T; q++) {
      const base = (b * T + q) * T
      for (let k = 0; k < T; k++) full[base + k] = k <= q && attentionMask[b * T + k] ? 0 : MASK_BIAS
    }
  }
  return tf.tensor4d(full, [B, 1, T, T])
}

/** The weights of layer l (after `layers.<l>.`) in the order the layer function takes them. */
function layerWeightNames(dims: DecoderDims, qkNorm: boolean): string[] {
  const names = ['input_layernorm.weight', 'self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight']
  if (dims.attentionBias) names.push('self_attn.q_proj.bias', 'self_attn.k_proj.bias', 'self_attn.v_proj.bias')
  if (qkNorm) names.push('self_attn.q_norm.weight', 'self_attn.k_norm.weight')
  names.push('self_attn.o_proj.weight', 'post_attention_layernorm.weight', 'mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight')
  return names
}

/**
 * Positions a sequence may use: max_position_embeddings, or less where a sliding window would apply
 * (Mistral's always, Qwen2's when use_sliding_window): attention inside the window is plain attention,
 * so capping at the window computes exactly what the model does.
 */
function maxSequenceLength(config: HfConfig): number {
  const window = typeof config.sliding_window === 'number' && (config.model_type === 'mistral' || config.use_sliding_window === true) ? config.sliding_window : Infinity
  return Math.min(config.max_position_embeddings, window)
}

export function decoderFamily(options: DecoderFamilyOptions): EncoderArchitecture {
  const full = (config: HfConfig): HfConfig => ({...options.classDefaults, ...config})
  const dimsOf = (config: HfConfig) => decoderDims(full(config), options)
  const maxLength = (config: HfConfig) => maxSequenceLength(full(config))

  return {
    modelTypes: options.modelTypes,
    baseClass: options.baseClass,
    // A bare backbone (Qwen3-Embedding, a saved MiniCPMModel) has flat keys; a *ForCausalLM save prefixes model.
    weightPrefixes: ['', 'model.'],
    passthrough: () => false,

    ignoredTensor(name) {
      if (name === 'lm_head.weight' || name === 'model.lm_head.weight') return 'language-model head, not part of the encoder'
      if (/(?:^|\.)rotary_emb\.inv_freq$/.test(name)) return 'rotary buffer, recomputed from rope_theta'
      return undefined
    },

    validateConfig(given) {
      const config = full(given)
      const ints = ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'max_position_embeddings', 'vocab_size'] as const
      for (const key of ints) {
        const v = config[key]
        if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`${key} must be a positive integer, got ${JSON.stringify(v)}`)
      }
      const d = dimsOf(config)
      if (!Number.isInteger(d.kvHeads) || d.kvHeads < 1 || d.heads % d.kvHeads !== 0) {
        throw new Error(`num_key_value_heads ${JSON.stringify(config.num_key_value_heads)} must be a positive divisor of num_attention_heads ${d.heads}`)
      }
      if (!Number.isInteger(d.headDim) || d.headDim < 2 || d.headDim % 2 !== 0) {
        throw new Error(`head_dim ${d.headDim} must be an even integer (config.head_dim, else hidden_size / num_attention_heads)`)
      }
      const act = config.hidden_act ?? 'silu'
      if (act !== 'silu' && act !== 'swish') throw new Error(`hidden_act "${act}" is not supported (the gated MLP of this family uses silu)`)
      const scaling = (config.rope_scaling ?? (config.rope_parameters as Record<string, unknown> | undefined)) as Record<string, unknown> | null | undefined
      const kind = scaling?.rope_type ?? scaling?.type
      if (scaling && kind !== undefined && kind !== 'default') throw new Error(`rope scaling "${String(kind)}" is not supported (only plain rotary embeddings)`)
      if (config.mlp_bias === true) throw new Error('mlp_bias: true is not supported')
      if (config.attention_bias === true) throw new Error('attention_bias: true is not supported (Qwen2-style q/k/v biases are, through model_type qwen2)')
      if (typeof config.is_causal !== 'undefined' && typeof config.is_causal !== 'boolean') throw new Error(`is_causal must be true or false, got ${JSON.stringify(config.is_causal)}`)
    },

    parameterShapes(config) {
      const d = dimsOf(config)
      const q = d.heads * d.headDim
      const kv = d.kvHeads * d.headDim
      const shapes: [string, number[]][] = [['embed_tokens.weight', [config.vocab_size, d.H]]]
      const shape: Record<string, number[]> = {
        'input_layernorm.weight': [d.H],
        'self_attn.q_proj.weight': [q, d.H],
        'self_attn.k_proj.weight': [kv, d.H],
        'self_attn.v_proj.weight': [kv, d.H],
        'self_attn.q_proj.bias': [q],
        'self_attn.k_proj.bias': [kv],
        'self_attn.v_proj.bias': [kv],
        'self_attn.q_norm.weight': [d.headDim],
        'self_attn.k_norm.weight': [d.headDim],
        'self_attn.o_proj.weight': [d.H, q],
        'post_attention_layernorm.weight': [d.H],
        'mlp.gate_proj.weight': [d.I, d.H],
        'mlp.up_proj.weight': [d.I, d.H],
        'mlp.down_proj.weight': [d.H, d.I],
      }
      for (let l = 0; l < config.num_hidden_layers; l++) {
        for (const n of layerWeightNames(d, options.qkNorm)) shapes.push([`layers.${l}.${n}`, shape[n]!])
      }
      shapes.push(['norm.weight', [d.H]])
      return shapes
    },

    maxSequenceLength: maxLength,

    activationMemory: (config, shape) => decoderActivationMemory(dimsOf(config), shape),

    unmergedLoraModules: DECODER_LINEAR_MODULES,

    forward(params, config, inputs, opts: ForwardOptions) {
      const P = (name: string): tf.Tensor => {
        const t = params.get(name)
        if (!t) throw new Error(`parameter ${name} is missing`)
        return t
      }
      const d = dimsOf(config)
      const {batchSize: B, seqLen: T} = inputs
      const max = maxLength(config)
      if (T > max) throw new Error(`sequence length ${T} exceeds the model's ${max} positions`)
      const attnDrop = opts.training ? (typeof config.attention_dropout === 'number' ? config.attention_dropout : 0) : 0
      let seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31)
      const nextSeed = () => (seed = (seed * 1103515245 + 12345) % 2147483648)

      const ids = tf.tensor1d(inputs.inputIds, 'int32')
      let h = tf.gather(P('embed_tokens.weight'), ids) as tf.Tensor2D
      if (d.scaleEmb !== 1) h = tf.mul(h, d.scaleEmb)
      const hiddenStates: tf.Tensor3D[] = [tf.reshape(h, [B, T, d.H])]
      const bias = maskBias(inputs, d.causal)
      const tables = ropeTables(T, d.headDim, d.theta)
      const cos = tf.tensor2d(tables.cos, [T, d.headDim])
      const sin = tf.tensor2d(tables.sin, [T, d.headDim])
      const rep = d.heads / d.kvHeads
      const scale = 1 / Math.sqrt(d.headDim)
      const names = layerWeightNames(d, options.qkNorm)
      const toHeads = (x: tf.Tensor, n: number) => tf.transpose(tf.reshape(x, [B, T, n, d.headDim]), [0, 2, 1, 3]) as tf.Tensor4D
      const headNorm = (x: tf.Tensor2D, w: tf.Tensor, n: number) => tf.reshape(rmsNorm(tf.reshape(x, [B * T * n, d.headDim]) as tf.Tensor2D, w, d.eps), [B * T, n * d.headDim]) as tf.Tensor2D
      // Key/value head j serves query heads j·rep … j·rep + rep − 1 (repeat_interleave, as repeat_kv).
      const repeatKv = (x: tf.Tensor4D) =>
        rep === 1 ? x : (tf.reshape(tf.tile(tf.reshape(x, [B, d.kvHeads, 1, T, d.headDim]), [1, 1, rep, 1, 1]), [B, d.heads, T, d.headDim]) as tf.Tensor4D)

      // One layer as a pure function of its input, weights and constants (mask, cos, sin), so a
      // checkpointed layer recomputed in backward computes the same thing.
      // `w` holds the layer's weights (`names`), then its LoRA adapters (`adapters`) when they apply unmerged.
      const layer = (x: tf.Tensor2D, w: tf.Tensor[], consts: tf.Tensor[], adapters: string[], seeds: [number, number]): tf.Tensor2D => {
        const W: Record<string, tf.Tensor> = Object.fromEntries([...names, ...adapters].map((n, i) => [n, w[i]!]))
        const [mask, c, s] = consts as [tf.Tensor, tf.Tensor, tf.Tensor]
        const [attnSeed, loraSeed] = seeds
        const lin = (input: tf.Tensor2D, module: string) =>
          withAdapter(linear(input, W[`${module}.weight`]!, W[`${module}.bias`]), input, W, module, opts.lora, loraSeed)
        const a = rmsNorm(x, W['input_layernorm.weight']!, d.eps)
        let q = lin(a, 'self_attn.q_proj')
        let k = lin(a, 'self_attn.k_proj')
        const v = lin(a, 'self_attn.v_proj')
        if (options.qkNorm) {
          q = headNorm(q, W['self_attn.q_norm.weight']!, d.heads)
          k = headNorm(k, W['self_attn.k_norm.weight']!, d.kvHeads)
        }
        const qh = rotate(toHeads(q, d.heads), c, s)
        const kh = repeatKv(rotate(toHeads(k, d.kvHeads), c, s))
        const vh = repeatKv(toHeads(v, d.kvHeads))
        const attended = attention(qh, kh, vh, {maskBias: mask, scale, dropoutRate: attnDrop, seed: attnSeed}) as tf.Tensor4D
        const context = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [B * T, d.heads * d.headDim]) as tf.Tensor2D
        let attnOut = lin(context, 'self_attn.o_proj')
        if (d.residualScale !== 1) attnOut = tf.mul(attnOut, d.residualScale)
        const h1 = residualAdd(x, attnOut) as tf.Tensor2D
        const m = rmsNorm(h1, W['post_attention_layernorm.weight']!, d.eps)
        const gate = lin(m, 'mlp.gate_proj')
        const gated = tf.mul(ACTIVATIONS.silu!(gate), lin(m, 'mlp.up_proj')) as tf.Tensor2D
        let mlpOut = lin(gated, 'mlp.down_proj')
        if (d.residualScale !== 1) mlpOut = tf.mul(mlpOut, d.residualScale)
        return residualAdd(h1, mlpOut) as tf.Tensor2D
      }

      const L = config.num_hidden_layers
      for (let l = 0; l < L; l++) {
        const adapters = opts.lora ? layerAdapterNames(params, `layers.${l}.`, DECODER_LINEAR_MODULES) : []
        const weights = [...names, ...adapters].map((n) => P(`layers.${l}.${n}`))
        // Seeds drawn before the layer runs (the LoRA one only with unmerged adapters, so runs without keep their masks).
        const seeds: [number, number] = [nextSeed(), opts.lora ? nextSeed() : 0]
        const [next, state] = tf.tidy(() => {
          const out = opts.checkpointLayers
            ? (checkpoint(([x, ...w], consts) => layer(x as tf.Tensor2D, w, consts, adapters, seeds), [h, ...weights], [bias, cos, sin]) as tf.Tensor2D)
            : layer(h, weights, [bias, cos, sin], adapters, seeds)
          // The last entry is the final norm's output (transformers' hidden_states convention).
          const listed = l === L - 1 ? rmsNorm(out, P('norm.weight'), d.eps) : out
          return [out, tf.reshape(listed, [B, T, d.H]) as tf.Tensor3D] as [tf.Tensor2D, tf.Tensor3D]
        })
        h = next
        hiddenStates.push(state)
      }
      return hiddenStates
    },

    randomConfig(o: RandomInitOptions): HfConfig {
      return {
        architectures: [options.baseClass],
        attention_dropout: 0,
        hidden_act: 'silu',
        hidden_size: o.hidden,
        initializer_range: 0.02,
        intermediate_size: o.intermediate,
        max_position_embeddings: o.maxPositions ?? 512,
        num_attention_heads: o.heads,
        num_hidden_layers: o.layers,
        num_key_value_heads: o.heads,
        head_dim: o.hidden / o.heads,
        pad_token_id: o.padTokenId,
        rms_norm_eps: 1e-6,
        rope_theta: 10000,
        tie_word_embeddings: true,
        vocab_size: o.vocabSize,
        ...options.configDefaults,
        model_type: options.modelTypes[0]!,
      } as HfConfig
    },

    initParameter(name, shape, config, seed) {
      // transformers' _init_weights: Linear/Embedding ~ N(0, initializer_range), biases 0, RMSNorm 1.
      if (name.endsWith('norm.weight') || name.endsWith('layernorm.weight')) return tf.ones(shape)
      if (name.endsWith('.bias')) return tf.zeros(shape)
      const std = typeof config.initializer_range === 'number' ? config.initializer_range : 0.02
      return tf.randomNormal(shape, 0, std, 'float32', seed)
    },
  }
}

/**
 * What a decoder-family forward pass keeps for backward, per token, in bytes (float32, 4 bytes per
 * element). With H = hidden_size, I = intermediate_size, n = heads, g = kv heads, d = head_dim,
 * q = n·d, kv = g·d, per layer (in elements per token):
 *
 *   2 RMSNorms (input, output, statistics: 2H + 2) + q, k, v projections (q + 2kv) + RoPE of q and k
 *   (their inputs, halves, rotated: 3q + 3n·d after repeating k) + repeated k, v (2q) + attention
 *   output and merged heads (2q) + gate, silu, up, product (4I)
 *   ≈ 4H + 4 + 11q + 2kv + 4I
 *   (the residual sums are the RMSNorms' inputs; o_proj's and down_proj's outputs are not kept:
 *   ops.linear keeps its input, ops.residualAdd nothing)
 *
 * plus, on composite kernels, attention scores per block (chunked, not kept) and the mask: n·T per
 * token for a causal [B, 1, T, T] bias broadcast once (T per token, causal; 1 per token otherwise).
 * A checkpointed layer keeps only its input: H. Outside the layers: the ids and the embedding rows.
 */
function decoderActivationMemory(d: DecoderDims, shape: ActivationShape): ActivationMemory {
  const q = d.heads * d.headDim
  const kv = d.kvHeads * d.headDim
  const F = 4
  const mask = d.causal ? shape.seqLen : 1
  const composite = shape.kernels === 'composite' ? 2 * q + d.heads * shape.seqLen : 0
  return {
    perLayer: F * (4 * d.H + 4 + 11 * q + 2 * kv + 4 * d.I + composite),
    checkpointedPerLayer: F * d.H,
    outsideLayers: F * (1 + 2 * d.H + mask),
  }
}
