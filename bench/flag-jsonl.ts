/**
 * A synthetic FlagEmbedding JSON-lines file for the data benches (bench/data.bench.ts: prepare;
 * bench/train-data.bench.ts: training streamed from the prepared file). 4,000 distinct examples
 * (query, 1 positive, 7 negatives; English words and CJK, so UTF-8 paths are exercised) are made once
 * from a fixed seed and repeated with a running number in each query until the file reaches the
 * target size (generation speed is not the point).
 */
import {closeSync, openSync, writeSync} from 'node:fs'
import {Rng} from '../src/core/rng.js'

const DISTINCT = 4000
const VOCAB = 'the of and to in is for on that with as by this are from at be an or was it which retrieval embedding model query passage document score semantic similar text data train 飞机 起飞 城市 银行 问题 答案 检索 句子 语义 相似'.split(' ')

/** Writes the file; returns its bytes, lines and the mean UTF-8 text bytes of a row (query + positive + negatives). */
export function writeFlagEmbeddingFile(file: string, targetBytes: number): {bytes: number; lines: number; rowTextBytes: number} {
  const random = new Rng(42)
  const text = (words: number) => Array.from({length: words}, () => VOCAB[random.int(VOCAB.length)]).join(' ')
  const tails: string[] = []
  let textBytes = 0
  for (let i = 0; i < DISTINCT; i++) {
    const query = text(10)
    const pos = [text(35)]
    const neg = Array.from({length: 7}, () => text(30))
    textBytes += [query, ...pos, ...neg].reduce((s, t) => s + Buffer.byteLength(t), 0)
    tails.push(JSON.stringify({query, pos, neg}).slice('{"query":"'.length))
  }
  const fd = openSync(file, 'w')
  let bytes = 0
  let lines = 0
  try {
    while (bytes < targetBytes) {
      const chunk: string[] = []
      for (let i = 0; i < DISTINCT; i++) chunk.push(`{"query":"${lines + i} ${tails[i]}\n`)
      const buf = Buffer.from(chunk.join(''), 'utf8')
      writeSync(fd, buf)
      bytes += buf.byteLength
      lines += chunk.length
    }
  } finally {
    closeSync(fd)
  }
  // + the running number and its space in each query
  return {bytes, lines, rowTextBytes: textBytes / DISTINCT + String(lines).length}
}
