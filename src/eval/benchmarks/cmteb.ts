/**
 * `cmteb` — the 15 C-MTEB tasks the CoDiEmb paper reports: 8 retrieval tasks (main score nDCG@10)
 * and 7 STS tasks (main score Spearman of cosine similarity). Dataset ids, revisions, eval splits, score
 * ranges and ignore-identical-ids flags are those of MTEB 1.39.7's task metadata (ATEC, BQ and STSB list
 * validation and test; MTEB(cmn, v1) scores their test split, which summaries use); C-MTEB retrieval qrels live in
 * the separate `<id>-qrels` datasets.
 *
 * Instructions: the paper evaluates with Chinese per-task instructions in the template
 * "Instruction: {instruction} Query: " on queries and on both texts of an STS pair (passages get
 * none). The Chinese wordings below are codiemb's own, written from each task's description
 * (MTEB's English task prompts for the retrieval sets); override them with a user-defined task when
 * reproducing another protocol exactly.
 * Relations: src/eval/tasks.ts (TaskDefinition), src/eval/evaluate.ts (runs them).
 */
import type {BenchmarkImpl, TaskDefinition} from '../tasks.js'
import {benchmarkTask} from './benchmark-task.js'

const ZH = ['cmn-Hans']

function retrieval(name: string, revision: string, qrelsRevision: string, instruction: string, ignoreIdenticalIds: boolean): TaskDefinition {
  const hf = {path: `C-MTEB/${name}`, revision, qrelsPath: `C-MTEB/${name}-qrels`, qrelsRevision}
  return benchmarkTask('cmteb', ZH, {name, type: 'retrieval', split: 'dev', hf, instruction, ignoreIdenticalIds})
}

/**
 * An STS task: `evalSplits` are its MTEB metadata's eval_splits (each scored and written to its
 * result file when its data is there), `scored` the one MTEB(cmn, v1) scores (summaries, reports).
 */
function sts(name: string, revision: string, evalSplits: string[], scored: string, scoreRange: [number, number], instruction: string, localNames: string[]): TaskDefinition {
  const splits = evalSplits.length > 1 ? {splits: evalSplits, scoredSplit: scored} : {}
  return benchmarkTask('cmteb', ZH, {name, type: 'sts', split: scored, ...splits, hf: {path: `C-MTEB/${name}`, revision}, instruction, scoreRange, localNames})
}

export const CMTEB_TASKS: TaskDefinition[] = [
  retrieval('CmedqaRetrieval', 'cd540c506dae1cf9e9a59c3e06f42030d54e7301', '279d737f36c731c8ff6e2b055f31fe02216fa23d', '为这个中文医疗社区的问题，检索最能解答它的医生回复', false),
  retrieval('CovidRetrieval', '1271c7809071a13532e05f25fb53511ffce77117', 'a9f41b7cdf24785531d12417ce0d1157ed4b39ca', '为这个关于新冠疫情的问题，检索能解答它的新闻或政策文章', false),
  retrieval('DuRetrieval', 'a1a333e290fe30b10f3f56498e3a0d911a693ced', '497b7bd1bbb25cb3757ff34d95a8be50a3de2279', '为这个中文搜索查询，检索能解答它的网页段落', false),
  retrieval('EcomRetrieval', '687de13dc7294d6fd9be10c6945f9e8fec8166b9', '39c90699b034ec22ac45b3abf5b0bbb5ffd421f9', '为这个电商网站上的用户查询，检索相关商品的描述', true),
  retrieval('MedicalRetrieval', '2039188fb5800a9803ba5048df7b76e6fb151fc6', '37b8efec53c54c3d9c6af212f6710b62ccdf895c', '为这个医疗问题，检索最能解答它的用户回复', true),
  retrieval('MMarcoRetrieval', '539bbde593d947e2a124ba72651aafc09eb33fc2', 'bae08bb7bddbedb96c7e7db52018a55167b67f89', '为这个网页搜索查询，检索能回答它的相关段落', true),
  retrieval('T2Retrieval', '8731a845f1bf500a4f111cf1070785c793d10e64', '1c83b8d1544e529875e3f6930f3a1fcf749a8e97', '为这个中文搜索查询，检索能解答它的网页段落', true),
  retrieval('VideoRetrieval', '58c2597a5943a2ba48f4668c3b90d796283c5639', 'faa71382b6a29cf1778d1f436b963e75cb5b927c', '为这个视频搜索查询，检索相关视频的标题', true),
  sts('AFQMC', 'b44c3b011063adb25877c13823db83bb193913c4', ['validation'], 'validation', [0, 1], '检索与这个金融支付客服问句意思相同的问句', ['afqmc']),
  sts('ATEC', '0f319b1142f28d00e055a6770f3f726ae9b7d865', ['validation', 'test'], 'test', [0, 1], '检索与这个金融客服问句意思相同的问句', ['atec']),
  sts('BQ', 'e3dda5e115e487b39ec7e618c0c6a29137052a55', ['validation', 'test'], 'test', [0, 1], '检索与这个银行客服问句意思相同的问句', ['bq']),
  sts('LCQMC', '17f9b096f80380fce5ed12a9be8be7784b337daf', ['test'], 'test', [0, 1], '检索与这个问题意思相同的问题', ['lcqmc']),
  sts('PAWSX', '9c6a90e430ac22b5779fb019a23e820b11a8b5e1', ['test'], 'test', [0, 1], '检索与这个句子意思相同的改写句', ['pawsx']),
  sts('QBQTC', '790b0510dc52b1553e8c49f3d2afb48c0e5c48b7', ['test'], 'test', [0, 2], '检索与这个搜索查询相关的网页标题', ['qbqtc']),
  sts('STSB', '0cde68302b3541bb8b3c340dc0644b0b745b3dc0', ['validation', 'test'], 'test', [0, 5], '检索与这个句子语义相似的句子', ['stsb-zh']),
]

const benchmark: BenchmarkImpl = {
  name: 'cmteb',
  description: "The CoDiEmb paper's 15 C-MTEB tasks: 8 retrieval (nDCG@10, dev) and 7 STS (cosine Spearman)",
  tasks: CMTEB_TASKS,
}
export default benchmark
