/**
 * The streaming merge engine behind `codiemb merge`.
 *
 * It opens the base θ_0 (when given) and the checkpoints θ_1..θ_K as safetensors, checks they hold
 * the same tensors with the same shapes, then goes tensor by tensor: read that tensor from every
 * input, let the merge method fill a fresh output array, append it to the output file, drop it.
 * Peak memory is therefore about (K + 2) × the largest tensor (base + K checkpoints + output), never
 * K × the model. Integer and boolean tensors (e.g. position ids) are copied from the base (or the
 * first checkpoint when there is no base); tensors that the include/exclude filters leave out are
 * copied from a chosen input.
 *
 * The output is a complete checkpoint directory: model.safetensors, plus the model files
 * (tokenizer, config.json, modules.json and its module folders such as 1_Pooling/, prompts…) of one
 * input — the first checkpoint by default — and merge.json recording the method, its options, the inputs (paths and
 * sha256 of their weight files) and per-tensor weight statistics. It is written to a temporary
 * directory beside the target and renamed into place only when complete.
 */
import {createHash} from 'node:crypto'
import {copyFileSync, cpSync, createReadStream, existsSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {basename, dirname, isAbsolute, join, relative, resolve, sep} from 'node:path'
import {isDeepStrictEqual} from 'node:util'
import {openSafetensors, type SafetensorsDtype, type SafetensorsFile, type TensorInfo} from '../io/safetensors.js'
import type {Registry} from '../registry/registry.js'
import type {RegistryEntry} from '../registry/types.js'
import {resolveMergerOptions} from './options.js'
import {SafetensorsStreamWriter, type PlannedTensor} from '../io/safetensors-stream.js'
import {MergeInputError, type Merger} from './types.js'
import type {MergeProgressEvent, MergeSummary} from '../core/events.js'
import {writeDirectoryAtomic} from '../core/fs-atomic.js'
import {stopIfAborted} from '../core/errors.js'
import {isCodiembOutput, OUTPUT_MARKER, writeOutputDirectory} from '../core/outputs.js'
import {readJsonFile} from '../core/json-file.js'

/** Which input a file set or a tensor comes from: "base", or a checkpoint number (1 = the first). */
export type InputRef = 'base' | number

export interface MergeRequest {
  /** A registered merger (default "delta"). */
  method?: string
  /** θ_0: the directory of the model the checkpoints were fine-tuned from. */
  base?: string
  /** θ_1..θ_K: checkpoint directories. */
  checkpoints: string[]
  /** The output directory (must not exist unless `force`). */
  out: string
  /** The method's options (validated against its optionsSchema). */
  options?: Record<string, unknown>
  /** Regular expressions on tensor names: merge only tensors matching one of them (default: all). */
  include?: string[]
  /** Regular expressions on tensor names: never merge tensors matching one of them. */
  exclude?: string[]
  /** Where tensors left out by include/exclude come from (default: the base, else checkpoint 1). */
  copyFrom?: InputRef
  /** Whose tokenizer, config, pooling config and prompts the output gets (default: checkpoint 1). */
  filesFrom?: InputRef
  /** Floating-point dtype of the output: keep each tensor's dtype in the reference input (default), or F32/F16/BF16. */
  dtype?: 'keep' | 'F32' | 'F16' | 'BF16'
  /** Replace an existing output directory that codiemb wrote (one it did not create is refused even then). */
  force?: boolean
  /** The registry holding the mergers. */
  registry: Registry
  /** Progress: each input weight file hashed, then each tensor written. */
  onEvent?: (event: MergeProgressEvent) => void
  /**
   * Stop request, checked while hashing and between tensors: the merge then fails with an
   * InterruptedError, its temporary directory removed and the output as it was.
   */
  signal?: AbortSignal
}

export type {MergeProgressEvent, MergeSummary} from '../core/events.js'

export interface InputRecord {
  path: string
  /** Weight files (model.safetensors, or the shard index and shards) with their sha256. */
  files: {file: string; bytes: number; sha256: string}[]
}

export type TensorRecord =
  | {name: string; shape: number[]; dtype: SafetensorsDtype; action: 'merged'; weights: number[]}
  | {name: string; shape: number[]; dtype: SafetensorsDtype; action: 'copied'; from: string; reason: string}

/** The contents of merge.json (and the `--json` result of `codiemb merge`). */
export interface MergeReport {
  format: 'codiemb-merge/1'
  createdAt: string
  method: string
  /** The options after defaults were applied. */
  options: Record<string, unknown>
  base: InputRecord | null
  checkpoints: InputRecord[]
  selection: {include: string[]; exclude: string[]; copyFrom: string}
  filesFrom: string
  dtype: string
  output: {path: string; files: string[]}
  summary: MergeSummary
  tensors: TensorRecord[]
  warnings: string[]
}

const FLOAT_DTYPES = new Set<SafetensorsDtype>(['F64', 'F32', 'F16', 'BF16'])
/** Files never copied into the output: weights (written fresh), and our own record. */
const SKIPPED_FILE = /(\.safetensors|\.safetensors\.index\.json|\.bin|\.bin\.index\.json|\.pt|\.pth|\.ckpt|\.h5|\.msgpack|\.onnx|\.gguf)$/i
/** Sentence-transformers files compared across checkpoints (a difference is worth a warning). */
const ST_FILES = ['modules.json', 'sentence_bert_config.json', 'config_sentence_transformers.json', '1_Pooling/config.json']

interface Input {
  label: string
  ref: InputRef
  dir: string
  file: SafetensorsFile
}

export async function mergeCheckpoints(request: MergeRequest): Promise<MergeReport> {
  const started = Date.now()
  const methodName = request.method ?? 'delta'
  const registry = request.registry
  const entry = registry.entry('merger', methodName) as RegistryEntry<Merger>
  const merger = await entry.load()
  const K = request.checkpoints.length
  const minCheckpoints = merger.minCheckpoints ?? 1
  if (K < Math.max(1, minCheckpoints))
    throw new MergeInputError(`merger "${methodName}" needs at least ${Math.max(1, minCheckpoints)} checkpoint(s), got ${K}`)
  if (merger.needsBase && !request.base)
    throw new MergeInputError(`merger "${methodName}" works on deltas θ_k − θ_0 and needs the base model: pass --base DIR (the model the checkpoints were fine-tuned from)`)
  const options = resolveMergerOptions(entry, merger, request.options ?? {}, K)

  const baseDir = request.base === undefined ? undefined : resolve(request.base)
  const ckptDirs = request.checkpoints.map((c) => resolve(c))
  const out = resolve(request.out)
  for (const [label, dir] of [...(baseDir ? [['base', baseDir]] : []), ...ckptDirs.map((d, i) => [`checkpoint ${i + 1}`, d])] as [string, string][]) {
    if (!existsSync(dir)) throw new MergeInputError(`${label} ${dir}: no such directory`)
    if (!statSync(dir).isDirectory()) throw new MergeInputError(`${label} ${dir}: expected a checkpoint directory (with model.safetensors), got a file`)
    // A LoRA adapter folder (src/model/lora.ts) holds low-rank factors, not weights: averaging factors is not averaging updates.
    if (existsSync(join(dir, 'adapter_config.json')) && !existsSync(join(dir, 'config.json')))
      throw new MergeInputError(`${label} ${dir}: a LoRA adapter folder, not a full model; fold it into its base first: codiemb model fold --adapter ${dir} --out DIR`)
    if (dir === out || dir.startsWith(out + sep))
      throw new MergeInputError(`the output ${out} would replace ${label} ${dir}; choose another --out`)
  }
  if (existsSync(out) && !request.force) throw new MergeInputError(`output ${out} already exists; pass --force to replace it`)
  if (existsSync(out) && !isCodiembOutput(out, 'model') && !(statSync(out).isDirectory() && readdirSync(out).length === 0))
    throw new MergeInputError(`output ${out} is not a model codiemb wrote (no ${OUTPUT_MARKER}); merge never replaces it, --force or not: choose another --out`)

  const include = compilePatterns(request.include ?? [], 'include')
  const exclude = compilePatterns(request.exclude ?? [], 'exclude')
  const copyFrom = checkRef(request.copyFrom ?? (baseDir ? 'base' : 1), 'copyFrom', !!baseDir, K)
  const filesFrom = checkRef(request.filesFrom ?? 1, 'filesFrom', !!baseDir, K)
  const dtype = request.dtype ?? 'keep'
  const warnings: string[] = []

  const inputs: Input[] = []
  try {
    if (baseDir) inputs.push({label: 'base', ref: 'base', dir: baseDir, file: await openSafetensors(baseDir)})
    for (const [i, dir] of ckptDirs.entries()) inputs.push({label: `checkpoint ${i + 1}`, ref: i + 1, dir, file: await openSafetensors(dir)})
    const base = baseDir ? inputs[0] : undefined
    const checkpoints = inputs.filter((x) => x.ref !== 'base')
    const reference = inputs[0]!
    const tensors = checkSameTensors(inputs)
    const byRef = (ref: InputRef) => inputs.find((x) => x.ref === ref)!

    // Plan: what happens to each tensor, and its output dtype.
    const plan = tensors.map((t) => {
      const isFloat = FLOAT_DTYPES.has(t.dtype)
      const selected = (include.length === 0 || include.some((r) => r.test(t.name))) && !exclude.some((r) => r.test(t.name))
      const action: 'merged' | 'copied' = isFloat && selected ? 'merged' : 'copied'
      const source = !isFloat ? reference : byRef(copyFrom)
      const reason = !isFloat ? `${t.dtype} tensor (not merged)` : 'left out by the include/exclude filters'
      const outDtype: SafetensorsDtype = isFloat && dtype !== 'keep' ? dtype : (action === 'copied' ? source.file.info(t.name).dtype : t.dtype)
      return {info: t, action, source, reason, outDtype}
    })
    if (!plan.some((p) => p.action === 'merged')) {
      const why = include.length || exclude.length ? 'the include/exclude filters select none of them' : 'the checkpoints hold no floating-point tensor'
      throw new MergeInputError(`nothing to merge: ${why} (${tensors.length} tensors, e.g. ${tensors.slice(0, 3).map((t) => t.name).join(', ')})`)
    }

    // Hash the inputs' weight files (merge.json records them so a merge can be traced and repeated).
    const records: InputRecord[] = []
    const allFiles = inputs.flatMap((x) => weightFiles(x.dir, x.file.path))
    let hashed = 0
    for (const x of inputs) {
      const files: InputRecord['files'] = []
      for (const f of weightFiles(x.dir, x.file.path)) {
        files.push({file: relative(x.dir, f), bytes: statSync(f).size, sha256: await sha256File(f, request.signal)})
        request.onEvent?.({type: 'merge-progress', phase: 'hash', item: f, done: ++hashed, total: allFiles.length})
      }
      records.push({path: x.dir, files})
    }

    // Stream the merge into a temporary directory beside the output, swapped into place when complete.
    return await writeOutputDirectory(out, 'model', 'merge', async (tmp) => {
      const planned: PlannedTensor[] = plan.map((p) => ({name: p.info.name, dtype: p.outDtype, shape: p.info.shape}))
      const writer = await SafetensorsStreamWriter.create(join(tmp, 'model.safetensors'), planned, {format: 'pt'})
      const tensorRecords: TensorRecord[] = []
      const weightSums = new Float64Array(K)
      let mergedParameters = 0
      let parameters = 0
      try {
        for (const [i, p] of plan.entries()) {
          stopIfAborted(request.signal)
          const {name, shape} = p.info
          const count = shape.reduce((a, b) => a * b, 1)
          parameters += count
          if (p.action === 'copied') {
            const t = await p.source.file.read(name)
            await writer.write(name, t.data)
            tensorRecords.push({name, shape, dtype: p.outDtype, action: 'copied', from: p.source.label, reason: p.reason})
          } else {
            const [b, ...cs] = await Promise.all([
              base ? base.file.read(name) : Promise.resolve(undefined),
              ...checkpoints.map((c) => c.file.read(name)),
            ])
            const merged = new Float32Array(count)
            const weights = merger.mergeTensor(
              {name, shape, base: b?.data as Float32Array | undefined, checkpoints: cs.map((c) => c!.data as Float32Array)},
              merged,
              options,
            )
            const bad = countNonFinite(merged)
            if (bad > 0) warnings.push(`tensor "${name}": ${bad} of ${count} merged values are NaN or infinite`)
            await writer.write(name, merged)
            for (let k = 0; k < K; k++) weightSums[k]! += weights[k]! * count
            mergedParameters += count
            tensorRecords.push({name, shape, dtype: p.outDtype, action: 'merged', weights: weights.map(round6)})
          }
          request.onEvent?.({type: 'merge-progress', phase: 'merge', item: name, done: i + 1, total: plan.length})
        }
        await writer.finish()
      } catch (error) {
        await writer.abort()
        throw error
      }

      const filesSource = byRef(filesFrom)
      const copied = copyCheckpointFiles(filesSource.dir, tmp)
      if (!copied.includes('modules.json'))
        warnings.push(`${filesSource.label} (${filesSource.dir}) has no modules.json: the output is a plain Hugging Face checkpoint, not a sentence-transformers one; pass --files-from to take the files from another input`)
      warnings.push(...compareSentenceTransformersFiles(filesSource, checkpoints.filter((c) => c !== filesSource)))

      const report: MergeReport = {
        format: 'codiemb-merge/1',
        createdAt: new Date().toISOString(),
        method: methodName,
        options: options as Record<string, unknown>,
        base: base ? records[0]! : null,
        checkpoints: records.slice(base ? 1 : 0),
        selection: {include: request.include ?? [], exclude: request.exclude ?? [], copyFrom: refLabel(copyFrom)},
        filesFrom: refLabel(filesFrom),
        dtype,
        output: {path: out, files: ['model.safetensors', ...copied, 'merge.json'].sort()},
        summary: {
          tensors: plan.length,
          merged: tensorRecords.filter((t) => t.action === 'merged').length,
          copied: tensorRecords.filter((t) => t.action === 'copied').length,
          parameters,
          mergedParameters,
          meanWeights: Array.from(weightSums, (s) => round6(s / mergedParameters)),
          seconds: (Date.now() - started) / 1000,
        },
        tensors: tensorRecords,
        warnings,
      }
      writeFileSync(join(tmp, 'merge.json'), JSON.stringify(report, null, 2) + '\n')
      if (existsSync(out) && !request.force) throw new MergeInputError(`output ${out} appeared while merging; pass --force to replace it`)
      stopIfAborted(request.signal)
      return report
    })
  } finally {
    await Promise.all(inputs.map((x) => x.file.close()))
  }
}

function refLabel(ref: InputRef): string {
  return ref === 'base' ? 'base' : `checkpoint ${ref}`
}

function checkRef(ref: InputRef, what: string, hasBase: boolean, K: number): InputRef {
  if (ref === 'base') {
    if (!hasBase) throw new MergeInputError(`${what} "base": no --base was given`)
    return ref
  }
  if (!Number.isInteger(ref) || ref < 1 || ref > K)
    throw new MergeInputError(`${what}: expected "base" or a checkpoint number 1..${K}, got ${JSON.stringify(ref)}`)
  return ref
}

function compilePatterns(patterns: string[], what: string): RegExp[] {
  return patterns.map((p) => {
    try {
      return new RegExp(p)
    } catch (error) {
      throw new MergeInputError(`--${what} ${JSON.stringify(p)}: not a valid regular expression (${(error as Error).message})`)
    }
  })
}

/**
 * The reference input's tensors, after checking every input has exactly the same names, shapes
 * and kind of dtype (floating or not). Errors name the tensor and both files.
 */
function checkSameTensors(inputs: Input[]): TensorInfo[] {
  const [reference, ...others] = inputs as [Input, ...Input[]]
  const tensors = reference.file.tensors()
  for (const other of others) {
    const missing = tensors.filter((t) => !other.file.has(t.name)).map((t) => t.name)
    const extra = other.file.tensors().filter((t) => !reference.file.has(t.name)).map((t) => t.name)
    if (missing.length || extra.length) {
      const list = (names: string[]) => names.slice(0, 5).map((n) => `"${n}"`).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '')
      const parts: string[] = []
      if (missing.length) parts.push(`tensor(s) ${list(missing)} of ${reference.file.path} (${reference.label}) are missing from ${other.file.path} (${other.label})`)
      if (extra.length) parts.push(`tensor(s) ${list(extra)} of ${other.file.path} (${other.label}) are not in ${reference.file.path} (${reference.label})`)
      throw new MergeInputError(`the checkpoints do not have the same tensors: ${parts.join('; ')}`)
    }
    for (const t of tensors) {
      const o = other.file.info(t.name)
      if (!isDeepStrictEqual(o.shape, t.shape))
        throw new MergeInputError(
          `tensor "${t.name}" has shape [${t.shape.join(', ')}] in ${reference.file.path} (${reference.label}) but [${o.shape.join(', ')}] in ${other.file.path} (${other.label}): the checkpoints are not fine-tunes of the same architecture`,
        )
      if (FLOAT_DTYPES.has(t.dtype) !== FLOAT_DTYPES.has(o.dtype))
        throw new MergeInputError(`tensor "${t.name}" is ${t.dtype} in ${reference.file.path} (${reference.label}) but ${o.dtype} in ${other.file.path} (${other.label})`)
    }
  }
  return tensors
}

/** The weight files behind an opened checkpoint: the file itself, or the shard index and its shards. */
function weightFiles(dir: string, opened: string): string[] {
  if (!opened.endsWith('.json')) return [opened]
  const index = JSON.parse(readFileSync(opened, 'utf8')) as {weight_map: Record<string, string>}
  return [opened, ...[...new Set(Object.values(index.weight_map))].sort().map((f) => join(dirname(opened), f))].map((f) => resolve(dir, f))
}

async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, {highWaterMark: 1 << 22})) {
    stopIfAborted(signal)
    hash.update(chunk as Buffer)
  }
  return hash.digest('hex')
}

/** Run records of the inputs: they describe how an input was made, not the merged model. */
const RUN_RECORDS = new Set(['merge.json', 'codiemb_training.json', 'trainer_state.json', 'training_args.json'])

/**
 * Copies the non-weight files of `from` into `to` and returns their relative paths: every top-level
 * file (config.json, tokenizer files, modules.json, prompts…) except weights and run records, plus
 * the module directories that modules.json names (1_Pooling/, 2_Normalize/…). Other directories
 * (training checkpoints, exports for other runtimes) are not part of the model and are skipped.
 */
function copyCheckpointFiles(from: string, to: string): string[] {
  const copied: string[] = []
  for (const name of readdirSync(from)) {
    const src = join(from, name)
    if (name.startsWith('.') || !statSync(src).isFile() || SKIPPED_FILE.test(name) || RUN_RECORDS.has(name)) continue
    copyFileSync(src, join(to, name))
    copied.push(name)
  }
  const modules = join(from, 'modules.json')
  if (existsSync(modules)) {
    const list = readJsonFile(modules, (reason) => new MergeInputError(`${modules}: not valid JSON (${reason})`))
    for (const m of Array.isArray(list) ? (list as {path?: unknown}[]) : []) {
      const dir = typeof m?.path === 'string' ? m.path : ''
      if (!dir || dir.split(/[\\/]/).includes('..') || isAbsolute(dir)) continue
      const src = join(from, dir)
      if (!existsSync(src) || !statSync(src).isDirectory()) continue
      cpSync(src, join(to, dir), {recursive: true, filter: (p) => !SKIPPED_FILE.test(basename(p)) && !basename(p).startsWith('.')})
      for (const f of listFiles(join(to, dir))) copied.push(relative(to, f).split(sep).join('/'))
    }
  }
  return copied.sort()
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? listFiles(p) : [p]
  })
}

/** Warnings for checkpoints whose sentence-transformers settings differ from the ones copied. */
function compareSentenceTransformersFiles(source: Input, others: Input[]): string[] {
  const read = (dir: string, file: string): unknown => {
    const p = join(dir, file)
    if (!existsSync(p)) return undefined
    try {
      const json = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>
      delete json.__version__
      return json
    } catch {
      return readFileSync(p, 'utf8')
    }
  }
  const warnings: string[] = []
  for (const other of others) {
    const differing = ST_FILES.filter((f) => !isDeepStrictEqual(read(source.dir, f), read(other.dir, f)))
    if (differing.length)
      warnings.push(`${other.label} (${other.dir}) has a different ${differing.join(', ')} than ${source.label}; the output uses ${source.label}'s`)
  }
  return warnings
}

function countNonFinite(a: Float32Array): number {
  let bad = 0
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) bad++
  return bad
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6
}
