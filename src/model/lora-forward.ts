/**
 * The LoRA forward pass applied beside a frozen linear layer (PEFT's LoRA Linear), used by the encoder
 * families when adapters are trained with dropout (see lora.ts for the format and the merged path).
 * Kept apart from lora.ts because it needs the tensor ops, whose import registers kernel gradients:
 * lora.ts is reachable from the public API's config and dry-run paths, which must stay free of that
 * side effect (test/package.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core'
import {dropout, linear} from '../tensor/ops.js'
import type {UnmergedLora} from './architecture.js'
import {loraA, loraB} from './lora.js'

/** The adapter tensors (layer-relative names, A then B per module) that `params` holds for a layer's `modules`. */
export function layerAdapterNames(params: ReadonlyMap<string, tf.Tensor>, layerPrefix: string, modules: readonly string[]): string[] {
  return modules.filter((m) => params.has(layerPrefix + loraA(m))).flatMap((m) => [loraA(m), loraB(m)])
}

/** A 31-bit hash of a module name (FNV-1a), mixed into its dropout seed. */
function nameHash(name: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619)
  return (h >>> 0) % 2147483648
}

/**
 * PEFT's LoRA Linear on top of the frozen product `out` = x Wᵀ (+ b): out + scaling ·
 * lora_B(lora_A(dropout(x))), where `W` holds `<module>.lora_A.weight` / `lora_B.weight`; `out`
 * itself when the module has no adapter or `lora` is undefined. The mask is seeded by `layerSeed` and
 * the module's name: a pure function of them, so recomputing a checkpointed layer redraws it.
 */
export function withAdapter(out: tf.Tensor2D, x: tf.Tensor2D, W: Readonly<Record<string, tf.Tensor | undefined>>, module: string, lora: UnmergedLora | undefined, layerSeed: number): tf.Tensor2D {
  const a = W[loraA(module)]
  if (!lora || !a) return out
  const dropped = dropout(x, lora.dropout, (layerSeed + nameHash(module)) % 2147483648) as tf.Tensor2D
  const low = linear(linear(dropped, a), W[loraB(module)]!)
  return tf.add(out, lora.scaling === 1 ? low : tf.mul(low, lora.scaling)) as tf.Tensor2D
}

