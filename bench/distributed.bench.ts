/**
 * Data-parallel scaling on CPU (torch backend, c10d Gloo): the same global IR batch trained by
 * 1 process × 1 thread and by 2 processes × 1 thread (each computes half the batch, gradients
 * averaged by one bucketed all-reduce per step). Prints the mean step time of each, the speed-up,
 * the scaling efficiency (speed-up / 2) and the bytes all-reduced per step, with the load average
 * (the machine may be shared: figures under load are not final).
 *
 * Encoding (embed/eval/mine --nproc-per-node): the same texts encoded by 1 process × 1 thread and by
 * 2 processes × 1 thread (slice i by rank i mod 2, every slice's vectors all-gathered to every rank,
 * EmbeddingStore); texts/s, speed-up, bytes gathered, and whether both matrices are bit-identical.
 *
 *   npm run bench -- distributed        BENCH_DIST_PARTS (default train,encode),
 *                                       BENCH_DIST_STEPS (default 6), BENCH_DIST_BATCH (global, default 16),
 *                                       BENCH_DIST_MODEL=layers,hidden (default 4,256),
 *                                       BENCH_DIST_TEXTS (encoding, default 4096), BENCH_DIST_SLICE (default 512)
 */
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {createServer} from 'node:net'
import {loadavg} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const SHARED = process.env.CODIEMB_SHARED ?? join(process.cwd(), '..', 'shared')
if (!existsSync(join(SHARED, 'data', 'stsb-zh-hardneg'))) {
  console.log(`distributed bench skipped: ${SHARED}/data/stsb-zh-hardneg not found (set CODIEMB_SHARED)`)
  process.exit(0)
}
const {torchDistributedInfo} = await import('../src/tensor/torch/distributed.js').catch(() => ({torchDistributedInfo: undefined}))
let info: {available: boolean; reason?: string} | undefined
try {
  info = torchDistributedInfo?.()
} catch (error) {
  info = {available: false, reason: (error as Error).message}
}
if (!info?.available) {
  console.log(`distributed bench skipped: ${info?.reason ?? 'no torch addon'}`)
  process.exit(0)
}
const steps = Number(process.env.BENCH_DIST_STEPS ?? 6)
const batch = Number(process.env.BENCH_DIST_BATCH ?? 16)
const [layers, hidden] = (process.env.BENCH_DIST_MODEL ?? '4,256').split(',').map(Number) as [number, number]
const parts = (process.env.BENCH_DIST_PARTS ?? 'train,encode').split(',')
const texts = Number(process.env.BENCH_DIST_TEXTS ?? 4096)
const slice = Number(process.env.BENCH_DIST_SLICE ?? 512)
const worker = join(dirname(fileURLToPath(import.meta.url)), 'distributed.worker.js')
const encodeWorker = join(dirname(fileURLToPath(import.meta.url)), 'distributed-encode.worker.js')

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const {port} = s.address() as {port: number}
      s.close(() => resolve(port))
    })
  })
}

async function run(world: number, crossDevice: boolean, script = worker, args = [batch, steps, layers, hidden, crossDevice ? 1 : 0]): Promise<any[]> {
  const port = await freePort()
  return Promise.all(
    Array.from({length: world}, (_, rank) => new Promise<any>((resolve, reject) => {
      const env: NodeJS.ProcessEnv = {...process.env, CODIEMB_TORCH_THREADS: '1'}
      if (world > 1) Object.assign(env, {RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port)})
      const child = spawn(process.execPath, [script, ...args.map(String)], {env, stdio: ['ignore', 'pipe', 'inherit']})
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`rank ${rank} of ${world} exited with ${code}`))))
    })),
  )
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ')
if (parts.includes('train')) {
  console.log(`global IR batch ${batch} (1 positive + 3 negatives per query, ≤32 tokens), random BERT ${layers} layers × hidden ${hidden}; ${steps} measured steps after 1 warm-up; 1 thread per process; load average before: ${load()}`)
  const single = await run(1, false)
  const s1 = mean(single[0].stepSeconds)
  console.log(`1 process  × 1 thread : ${s1.toFixed(3)} s/step (${(batch / s1).toFixed(1)} queries/s); ${single[0].parameters} parameters; load ${load()}`)
  for (const crossDevice of [false, true]) {
    const two = await run(2, crossDevice)
    // A step ends when the slowest rank's all-reduce returns: every rank's step times are the same up to noise.
    const s2 = mean(two.map((r) => mean(r.stepSeconds)))
    const speedup = s1 / s2
    console.log(
      `2 processes × 1 thread${crossDevice ? ', cross-device negatives' : ''}: ${s2.toFixed(3)} s/step (${(batch / s2).toFixed(1)} queries/s); speed-up ${speedup.toFixed(2)}×, scaling efficiency ${((speedup / 2) * 100).toFixed(0)}%; ` +
        `all-reduced ${(two[0].bytesReducedPerStep / 2 ** 20).toFixed(2)} MiB/step per rank; load ${load()}`,
    )
  }
}

if (parts.includes('encode')) {
  console.log(`encoding: ${texts} distinct texts of stsb-zh-hardneg (≤64 tokens, batches of 32, slices of ${slice}), random BERT ${layers} layers × hidden ${hidden}; 1 thread per process; load average before: ${load()}`)
  const args = [texts, slice, layers, hidden]
  const [one] = await run(1, false, encodeWorker, args)
  console.log(`1 process  × 1 thread : ${one.seconds.toFixed(2)} s, ${(one.texts / one.seconds).toFixed(1)} texts/s; load ${load()}`)
  const two = await run(2, false, encodeWorker, args)
  // The encoding ends on every rank with the last gather: the slowest rank's time is the job's.
  const s2 = Math.max(...two.map((r) => r.seconds))
  const same = two.every((r) => r.sha256 === one.sha256)
  console.log(
    `2 processes × 1 thread: ${s2.toFixed(2)} s, ${(two[0].texts / s2).toFixed(1)} texts/s; speed-up ${(one.seconds / s2).toFixed(2)}×, scaling efficiency ${((one.seconds / s2 / 2) * 100).toFixed(0)}%; ` +
      `gathered ${(two[0].bytesGathered / 2 ** 20).toFixed(2)} MiB per rank; vectors ${same ? 'bit-identical to' : 'DIFFERENT from'} the single process's; load ${load()}`,
  )
}
