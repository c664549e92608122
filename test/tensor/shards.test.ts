import assert from 'node:assert/strict'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import {describeRanks, distributedAvailable, runRanks} from '../helpers/dist.js'

test('three ranks: blocks gathered in rank order (an empty one included), integers and floats broadcast; EmbeddingStore encodes slice i on rank i mod 3, rank 0 alone caches, a hit reaches every rank', async (t) => {
  if (!(await distributedAvailable(t))) return
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-shards-'))
  try {
    const ranks = await runRanks('shards-child.js', 3, {args: [dir]})
    assert.ok(ranks.every((r) => r.code === 0), describeRanks(ranks) + ranks.map((r) => r.stdout).join('\n'))
    for (const {rank, result} of ranks) {
      assert.deepEqual(result.gathered, [
        null,
        {rows: 1, dim: 2, extra: 2 ** 33 + 1, vectors: [100, 101]},
        {rows: 2, dim: 2, extra: 2 ** 33 + 2, vectors: [200, 201, 202, 203]},
      ])
      assert.deepEqual(result.integers, [5, 2 ** 30, -7])
      assert.deepEqual(result.floats, [0.25, -1.5])
      // slices [0,3) [3,6) [6,9) [9,10): round 0 → ranks 0, 1, 2; round 1 → rank 0 alone
      assert.deepEqual(result.calls, {0: ['text 0 ', 'text 9 xxxxxxxxx'], 1: ['text 3 xxx'], 2: ['text 6 xxxxxx']}[rank as 0 | 1 | 2])
      assert.equal(result.callsAfterHit, result.calls.length, 'a cache hit encodes nothing')
      assert.ok(result.sameAsAlone && result.hitSame, `rank ${rank}: the matrices differ from the single-process one`)
      assert.deepEqual(result.fromCache, [false, true])
      assert.deepEqual(result.counts, {hits: 1, misses: 1})
      assert.equal(result.cacheDirExists, rank === 0, `rank ${rank}: only rank 0 creates its cache folder`)
      assert.equal(result.tensorsLeft, 0)
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
