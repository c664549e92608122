/**
 * Rewrites a model directory's `model.safetensors` as a Hugging Face sharded checkpoint:
 * `model-0000i-of-0000n.safetensors` files (the tensors in file order, split into `n` runs of about
 * equal bytes), each tensor in its stored dtype, and `model.safetensors.index.json`
 * (`metadata.total_size`, `weight_map`), as transformers' save_pretrained writes them.
 */
import {rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {openSafetensors, DTYPE_SIZE} from '../../src/io/safetensors.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'

export const shardName = (i: number, n: number) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`

/**
 * Shards `dir`/model.safetensors and deletes it: a new shard starts when the next tensor would take
 * the current one past total/n bytes (transformers' max_shard_size rule), so there are about `n`
 * shards (never fewer than 2 when there are 2 tensors). Returns the weight map and the shard files.
 */
export async function shardCheckpoint(dir: string, n: number): Promise<{weightMap: Record<string, string>; files: string[]}> {
  const single = await openSafetensors(join(dir, 'model.safetensors'))
  const infos = single.tensors()
  const size = (i: (typeof infos)[number]) => i.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[i.dtype]
  const total = infos.reduce((a, i) => a + size(i), 0)
  const parts: (typeof infos)[] = [[]]
  let bytes = 0
  for (const info of infos) {
    if (parts.at(-1)!.length > 0 && bytes + size(info) > total / n) {
      parts.push([])
      bytes = 0
    }
    parts.at(-1)!.push(info)
    bytes += size(info)
  }
  const files = parts.map((_, i) => shardName(i, parts.length))
  const weightMap: Record<string, string> = {}
  try {
    for (const [i, part] of parts.entries()) {
      const tensors = []
      for (const info of part) {
        tensors.push({name: info.name, shape: info.shape, dtype: info.dtype, data: (await single.read(info.name)).data})
        weightMap[info.name] = files[i]!
      }
      await writeSafetensors(join(dir, files[i]!), tensors, {format: 'pt'})
    }
  } finally {
    await single.close()
  }
  rmSync(join(dir, 'model.safetensors'))
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({metadata: {total_size: total}, weight_map: weightMap}, null, 2))
  return {weightMap, files}
}
