/**
 * The toy prepared training files the `codiemb train` command tests use: an IR file (queries about
 * animals, one positive, negatives naming the next animals) and an STS file of 24 pairs.
 */
import {join} from 'node:path'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'

const WORDS = ['猫', '狗', '鸟', '鱼', '马', '牛', '羊', '猪', '鸡', '鸭', '虎', '龙']

export interface ToyTrainingData {
  /** IR rows in ir.arrow. */
  irRows: number
  /** Row i's negatives name the animals i + k for each k returned (so a row can have too few). */
  negativeOffsets: (row: number) => number[]
}

/** Writes `ir.arrow` and `sts.arrow` into `dir`. */
export async function writeToyTrainingData(dir: string, {irRows, negativeOffsets}: ToyTrainingData): Promise<void> {
  const ir = new ArrowRecordWriter(join(dir, 'ir.arrow'), 'ir-example', {metadata: {'codiemb.dataset': 'toy-ir', 'codiemb.task': 'ir'}})
  for (let i = 0; i < irRows; i++) {
    const w = WORDS[i % WORDS.length]
    ir.write({
      id: `q${i}`,
      query: `哪只${w}在跑`,
      instruction: '检索相似句子',
      positives: [`一只${w}在跑步`],
      negatives: negativeOffsets(i).map((k) => `一只${WORDS[(i + k) % WORDS.length]}在睡觉`),
      positive_scores: null,
      negative_scores: null,
    })
  }
  await ir.finish()
  const sts = new ArrowRecordWriter(join(dir, 'sts.arrow'), 'sts-pair', {metadata: {'codiemb.dataset': 'toy-sts', 'codiemb.task': 'sts'}})
  for (let i = 0; i < 24; i++) {
    const a = WORDS[i % WORDS.length]
    const b = WORDS[(i * 5) % WORDS.length]
    sts.write({id: `s${i}`, text1: `${a}在吃东西`, text2: `${b}在吃东西`, score: a === b ? 1 : (i % 4) / 4, raw_score: 0, instruction: '判断相似度'})
  }
  await sts.finish()
}
