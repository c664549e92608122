/**
 * A stand-in for the CLI in test/cli/launch.test.ts: what one rank does, by argv[2].
 *   ok:     rank 0 prints a --json-like envelope with its torchrun variables and thread share
 *   fail:   rank 1 says why on stderr and exits 3; rank 0 waits (a rank blocked on a dead peer)
 *   usage:  rank 1 reports bad input and exits 2; rank 0 then fails on the dead peer (exit 1)
 *   signal: every rank waits; on SIGINT it writes <dir>/got-<rank> and exits 130
 */
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

const mode = process.argv[2]
const rank = Number(process.env.RANK)
const env = (k: string) => process.env[k]
if (mode === 'ok') {
  if (rank === 0) console.log(JSON.stringify({status: 0, result: {rank, worldSize: env('WORLD_SIZE'), localRank: env('LOCAL_RANK'), master: `${env('MASTER_ADDR')}:${env('MASTER_PORT')}`, threads: env('CODIEMB_TORCH_THREADS'), json: process.argv.includes('--json')}}))
} else if (mode === 'fail') {
  if (rank === 1) {
    process.stderr.write('Error: rank 1 broke on purpose\n')
    process.exit(3)
  }
  setTimeout(() => {}, 60_000)
} else if (mode === 'usage') {
  if (rank === 1) {
    process.stderr.write('Error: data.arrow: no "text" column\n')
    process.exit(2)
  }
  setTimeout(() => process.exit(1), 1500)
} else if (mode === 'signal') {
  process.on('SIGINT', () => {
    writeFileSync(join(process.argv[3]!, `got-${rank}`), 'SIGINT')
    process.exit(130)
  })
  setTimeout(() => {}, 60_000)
}
