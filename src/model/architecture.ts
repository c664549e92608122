/**
 * What an encoder plugin (registry kind `encoder`) provides: the tensor layout of a Hugging Face
 * architecture and its forward pass in tfjs-core ops. Entries are keyed by config.json `model_type`
 * (listed in the entry's `meta.modelTypes`); `loadEncoder` picks the entry whose modelTypes contains the
 * checkpoint's model_type, checks every tensor against `parameterShapes`, and calls `forward`.
 *
 * Every tensor of a checkpoint must be accounted for (src/model/consistency.ts): a parameter
 * (`parameterShapes`), kept unused and written back on save (`passthrough`), or deliberately ignored
 * with a reason (`ignoredTensor`); any other tensor fails the load, so weights the config does not
 * describe (layers past num_hidden_layers) are never dropped silently.
 */
import type * as tf from '@tensorflow/tfjs-core'

/** A Hugging Face config.json (only the fields encoders read are typed). */
export interface HfConfig {
  model_type: string
  hidden_size: number
  num_hidden_layers: number
  num_attention_heads: number
  intermediate_size: number
  hidden_act?: string
  layer_norm_eps?: number
  max_position_embeddings: number
  type_vocab_size?: number
  vocab_size: number
  pad_token_id?: number | null
  hidden_dropout_prob?: number
  attention_probs_dropout_prob?: number
  position_embedding_type?: string
  [key: string]: unknown
}

/** Integer inputs of a forward pass, [batch, seqLen] row-major. */
export interface ForwardInputs {
  batchSize: number
  seqLen: number
  inputIds: Int32Array
  attentionMask: Int32Array
  tokenTypeIds: Int32Array
}

export interface ForwardOptions {
  training: boolean
  /** Seed for dropout masks (each call should pass a fresh one for reproducible training). */
  seed?: number
  /**
   * Activation checkpointing: keep only each layer's input for the backward pass and recompute the
   * layer there (with the same dropout masks), so gradients equal the direct ones at about a third
   * more compute. Meaningful only under a gradient tape; an architecture without support ignores it
   * (and says so by leaving `checkpointedPerLayer` out of its activationMemory).
   */
  checkpointLayers?: boolean
  /**
   * LoRA adapters applied beside their frozen weights, as PEFT computes them (src/model/lora.ts
   * withAdapter): `params` then also hold `<module>.lora_A.weight` / `lora_B.weight`, and each adapted
   * linear layer adds scaling · lora_B(lora_A(dropout(x))). Given only when training with LoRA dropout
   * (otherwise the adapters arrive folded into the weights); only for an architecture that lists the
   * module in `unmergedLoraModules`.
   */
  lora?: UnmergedLora
}

/** LoRA applied unmerged: α / r and the dropout rate on the adapters' input. */
export interface UnmergedLora {
  scaling: number
  dropout: number
}

export interface RandomInitOptions {
  layers: number
  hidden: number
  heads: number
  intermediate: number
  vocabSize: number
  padTokenId: number
  maxPositions?: number
}

/** The shape of a forward pass whose activation memory is asked for (see activationMemory). */
export interface ActivationShape {
  /** Padded tokens per sequence. */
  seqLen: number
  /** Whether dropout is active (training with the config's rates): its masks are kept for backward. */
  dropout: boolean
  /**
   * Which implementations the tensor ops run: codiemb's fused kernels (`fused`: the torch backend,
   * src/tensor/ops.ts) or tfjs composites (`composite`: cpu, tensorflow), which keep more.
   */
  kernels: 'fused' | 'composite'
  /**
   * Matrix products' results stay bfloat16 between the fused kernels (the torch backend under
   * --precision bf16, src/tensor/torch/backend.ts bf16Activations): they keep 2 bytes an element.
   * An architecture that does not distinguish may count them as float32 (an overestimate).
   */
  bf16Activations?: boolean
}

/**
 * Bytes per token that one forward pass under a gradient tape keeps until the backward pass reaches
 * them (float32 activations, dropout masks, saved statistics), for the memory plan of
 * `codiemb train --dry-run` (src/train/memory-plan.ts).
 */
export interface ActivationMemory {
  /** Kept by each encoder layer. */
  perLayer: number
  /** Kept by each layer under activation checkpointing (its input); absent when forward ignores `checkpointLayers`. */
  checkpointedPerLayer?: number
  /** Kept outside the layers: embeddings, the attention mask, pooling inputs. */
  outsideLayers: number
}

export interface EncoderArchitecture {
  /** config.json model_type values this implementation runs. */
  modelTypes: string[]
  /** The `architectures` entry written to config.json on save (the base model class). */
  baseClass: string
  /** Prefixes that task-head checkpoints put in front of the encoder's tensors (e.g. "bert."). */
  weightPrefixes: string[]
  /** Checkpoint tensors (after the prefix) that are kept as they are and written back on save. */
  passthrough(name: string): boolean
  /**
   * Why the encoder deliberately leaves a checkpoint tensor out (e.g. "buffer recomputed from the
   * input", "masked-LM head"), or undefined when it does not. Called with the name after the weight
   * prefix, or the whole name for a tensor outside it (a task head beside `bert.`). Ignored tensors
   * are neither loaded nor saved, and one warning per load lists them. Optional, so encoder plugins
   * written without it still work: they accept only their parameters and passthrough tensors.
   */
  ignoredTensor?(name: string, config: HfConfig): string | undefined
  /** Checks the config and throws a message naming the bad field. */
  validateConfig(config: HfConfig): void
  /** Every trainable tensor with its PyTorch shape, in checkpoint order. */
  parameterShapes(config: HfConfig): [name: string, shape: number[]][]
  /** How many positions a sequence may use (max_position_embeddings minus any offset). */
  maxSequenceLength(config: HfConfig): number
  /** Hidden states: [0] the embedding output, then one per layer; each [batch, seqLen, hidden]. */
  forward(params: ReadonlyMap<string, tf.Tensor>, config: HfConfig, inputs: ForwardInputs, options: ForwardOptions): tf.Tensor3D[]
  /**
   * The linear modules (names inside a layer, e.g. `self_attn.q_proj`) whose LoRA adapters `forward`
   * applies unmerged (ForwardOptions.lora), which LoRA dropout needs. Optional: without it LoRA
   * dropout is refused for this architecture.
   */
  unmergedLoraModules?: readonly string[]
  /**
   * Activation bytes per token of a training forward pass of this config, for memory planning.
   * Optional: without it the plan reports parameters, gradients and optimizer state only. The
   * parameter count comes from parameterShapes.
   */
  activationMemory?(config: HfConfig, shape: ActivationShape): ActivationMemory
  /** A config for a randomly initialised model (what `codiemb model init` writes). */
  randomConfig(options: RandomInitOptions): HfConfig
  /** Initial value of a parameter for random init (seeded; called inside tf.tidy). */
  initParameter(name: string, shape: number[], config: HfConfig, seed: number): tf.Tensor
}
