/**
 * The peak memory of one training step, estimated from the model's shape (the architecture's
 * parameter shapes and activation bytes per token, src/model/architecture.ts) and the shape of the
 * step (the texts it embeds, whether layers are checkpointed, the GradCache chunk size).
 *
 * With P parameters (float32), a step holds the parameters (4P bytes) and AdamW's two moments (8P)
 * throughout, and peaks in one of two phases:
 *
 *   activation phase  = 12P + acc + max over what is under one tape at a time, and over the layer
 *                       i = L (top) or 1 (bottom) being back-propagated, of
 *                         Σ_passes rows·(i·a_layer + a_outside)          (kept for backward)
 *                       + max_pass rows·a_layer·(c + 1/3)                (layer i's backward)
 *                       + (L − i + 1)·g_layer                            (gradients of layers i..L)
 *   optimizer phase   = 12P + 4P (gradients) + max(4·P_max, o)
 *
 * a_layer / a_outside: the architecture's bytes per token (a checkpointed layer keeps only its input,
 * and its backward first recomputes the layer: c = 1, else 0); the backward of a layer holds
 * gradients of about a third of its activations besides what is kept (measured on the cpu backend:
 * 0.35 with checkpointing), and g_layer = 4(P − P_max)/L
 * bytes of that layer's parameter gradients (P_max: the largest tensor, the word embeddings).
 * acc = 4P when gradients from an earlier batch, part or GradCache chunk are already being summed.
 * The global-norm clip squares one gradient at a time (4·P_max); the optimizer's working set o is one
 * temporary of the largest tensor (4·P_max bytes) on the fused path (torch's AdamW updates parameters
 * and moments in place, one tensor at a time) and the update's fifteen temporaries of the largest
 * tensor (60·P_max bytes) on the composite path (one parameter at a time). GradCache (chunk size c) puts one chunk of c rows under the tape at a time;
 * its tape-free embedding pass holds less.
 *
 * With LoRA adapters (train.lora) only the adapters' T parameters train: the step holds the frozen
 * weights (4P) and the adapters with their moments (12T) throughout, gradients are 4T (and every P in
 * the gradient, clipping and optimizer terms above becomes T), and each pass under the tape keeps the
 * effective weights W + (α/r)·B A it formed (4·P_a bytes, P_a the adapted weights' elements; see
 * src/model/lora.ts). With LoRA dropout in a training pass (dropout on) the adapters apply unmerged
 * instead: no effective weights, but each adapted module [out, in] keeps per token its dropped input
 * and mask (4·in + in), its rank-r product (4r) and its output (4·out) — added to the layer's bytes per
 * token (a checkpointed layer keeps them only while it is recomputed).
 *
 * Precision changes only the activations: parameters, moments and gradients stay float32 under
 * tf32 and bf16, and under bf16 on the torch backend the matrix products' results stay bfloat16
 * (the architecture's activation bytes with bf16Activations; src/tensor/torch/backend.ts).
 */
import type {ActivationMemory, ActivationShape, EncoderArchitecture, HfConfig} from '../model/architecture.js'
import {loraModules, type LoraOptions} from '../model/lora.js'

/** Gradients in flight while one layer is back-propagated, as a fraction of the layer's activations. */
const BACKWARD_WORKING = 1 / 3

/** Texts embedded in one pass: rows of `seqLen` padded tokens (e.g. an IR batch's passages). */
export interface Pass {
  name: string
  rows: number
  seqLen: number
}

/** The model as the estimate needs it. */
export interface ModelMemory {
  arch: EncoderArchitecture
  config: HfConfig
  /** Parameters, and the elements of the largest tensor. */
  parameters: number
  largestParameter: number
  layers: number
  /** With LoRA: the adapters' parameters (what trains) and the elements of the adapted weights. */
  lora?: {trainable: number; adapted: number; largest: number; unmergedPerLayer?: number}
}

export interface StepShape {
  /** Passes differentiated together (an IR part's queries and passages; an STS part's two sides). */
  passes: Pass[]
  /** GradCache: rows under the tape at a time (each pass cut into chunks of this many rows). */
  chunkSize?: number
  /** Gradients of an earlier batch or part of the same optimizer step are being summed (GA > 1, mixed batches). */
  accumulates: boolean
  checkpointing: boolean
  dropout: boolean
  kernels: ActivationShape['kernels']
  /** bfloat16 activations (torch, --precision bf16): see ActivationShape. */
  bf16Activations?: boolean
}

export interface StepEstimate {
  /** Activations at their peak: kept for backward plus the backward's working set. */
  activationBytes: number
  activationPhaseBytes: number
  optimizerPhaseBytes: number
  peakBytes: number
}

/** The shape of a model from its architecture and config (no weights needed). */
export function modelMemory(arch: EncoderArchitecture, config: HfConfig, lora?: Pick<LoraOptions, 'rank' | 'targetModules'> & {dropout?: number}): ModelMemory {
  let parameters = 0
  let largestParameter = 0
  const shapes = arch.parameterShapes(config)
  for (const [, shape] of shapes) {
    const size = shape.reduce((a, b) => a * b, 1)
    parameters += size
    largestParameter = Math.max(largestParameter, size)
  }
  const model: ModelMemory = {arch, config, parameters, largestParameter, layers: config.num_hidden_layers}
  if (lora) {
    const byName = new Map(shapes)
    const adapted = loraModules(shapes, lora.targetModules).map((m) => byName.get(`${m}.weight`)!)
    model.lora = {
      trainable: adapted.reduce((n, [out, inp]) => n + lora.rank * (out! + inp!), 0),
      adapted: adapted.reduce((n, [out, inp]) => n + out! * inp!, 0),
      largest: Math.max(0, ...adapted.map(([out, inp]) => lora.rank * Math.max(out!, inp!))),
      ...((lora.dropout ?? 0) > 0
        ? {unmergedPerLayer: adapted.reduce((n, [out, inp]) => n + 5 * inp! + 4 * lora.rank + 4 * out!, 0) / Math.max(1, config.num_hidden_layers)}
        : {}),
    }
  }
  return model
}

/** Peak bytes of one step of `step`'s shape (see the module docstring for the formula). */
export function estimateStep(model: ModelMemory, step: StepShape): StepEstimate {
  const P = model.parameters
  const L = model.layers
  // What trains (all parameters, or LoRA's adapters) and its largest tensor.
  const T = model.lora?.trainable ?? P
  const largest = model.lora?.largest ?? model.largestParameter
  const fixed = 4 * P + 8 * T
  const gradients = 4 * T
  // LoRA dropout acts only in passes with dropout on; then the adapters run unmerged (module docstring).
  const unmerged = step.dropout ? model.lora?.unmergedPerLayer : undefined
  const effectiveWeights = model.lora && unmerged === undefined ? 4 * model.lora.adapted : 0
  const perToken = (seqLen: number): ActivationMemory => {
    const a = model.arch.activationMemory?.(model.config, {seqLen, dropout: step.dropout, kernels: step.kernels, bf16Activations: step.bf16Activations}) ?? {perLayer: 0, outsideLayers: 0}
    return unmerged === undefined ? a : {...a, perLayer: a.perLayer + unmerged}
  }
  const layerGradients = (4 * (model.lora ? T : P - model.largestParameter)) / Math.max(1, L)

  // What is under the tape together: every pass at once, or one chunk of one pass at a time.
  const groups: Pass[][] = step.chunkSize
    ? step.passes.map((p) => [{...p, rows: Math.min(p.rows, step.chunkSize!)}])
    : [step.passes]
  let activationBytes = 0
  for (const group of groups) {
    let perLayerKept = 0
    let outside = 0
    let working = 0
    for (const pass of group) {
      const a = perToken(pass.seqLen)
      const tokens = pass.rows * pass.seqLen
      const layer = step.checkpointing && a.checkpointedPerLayer !== undefined ? a.checkpointedPerLayer : a.perLayer
      perLayerKept += tokens * layer
      outside += tokens * a.outsideLayers
      const recompute = step.checkpointing && a.checkpointedPerLayer !== undefined ? 1 : 0
      working = Math.max(working, tokens * a.perLayer * (recompute + BACKWARD_WORKING))
    }
    // The backward of layer i (from the top, L, down to 1) holds layers 1..i's kept activations and
    // the parameter gradients of layers i..L: linear in i, so it peaks at the top layer or, when a
    // layer keeps less than its gradients take (checkpointing), at the bottom one.
    const atTop = outside + L * perLayerKept + working + layerGradients
    const atBottom = outside + perLayerKept + working + L * layerGradients
    activationBytes = Math.max(activationBytes, Math.max(atTop, atBottom) + effectiveWeights)
  }
  const chunks = step.chunkSize ? step.passes.reduce((n, p) => n + Math.ceil(p.rows / step.chunkSize!), 0) : 1
  const accumulated = step.accumulates || chunks > 1 ? gradients : 0
  const activationPhaseBytes = fixed + accumulated + activationBytes
  const optimizerWork = step.kernels === 'fused' ? 4 * largest : 60 * largest
  const optimizerPhaseBytes = fixed + gradients + Math.max(4 * largest, optimizerWork)
  return {activationBytes, activationPhaseBytes, optimizerPhaseBytes, peakBytes: Math.max(activationPhaseBytes, optimizerPhaseBytes)}
}
