#!/usr/bin/env node
// Derives the quickstart's small sample (quickstart/data/) from SNLI 1.0 (CC BY-SA 4.0) as shipped in
// SentEval (s1/s2/labels .dev/.test). Run once by maintainers: node scripts/make-quickstart-sample.mjs ../shared/data/snli-senteval
// Deterministic: same input, same output. Training rows come from SNLI dev, evaluation rows from SNLI test,
// so no evaluation sentence pair is seen in training.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

const src = process.argv[2]
if (!src) {
  console.error('usage: node scripts/make-quickstart-sample.mjs DIR_WITH_SNLI_SENTEVAL_FILES')
  process.exit(2)
}
const out = new URL('../quickstart/data/', import.meta.url).pathname
const LIMITS = {irTrain: 1500, stsTrain: 3000, stsEval: 1500, retrievalQueries: 300, retrievalPremises: 1000}

function lines(file) {
  return readFileSync(join(src, file), 'utf8').split('\n').filter((l, i, all) => i < all.length - 1 || l !== '')
}
function load(split) {
  const [s1, s2, labels] = ['s1', 's2', 'labels'].map((f) => lines(`${f}.${split}`))
  if (s1.length !== s2.length || s1.length !== labels.length) throw new Error(`${split}: s1/s2/labels lengths differ`)
  // group the hypotheses of each premise, in file order
  const byPremise = new Map()
  for (let i = 0; i < s1.length; i++) {
    const premise = s1[i].trim()
    const group = byPremise.get(premise) ?? {premise, entailment: [], neutral: [], contradiction: []}
    group[labels[i].trim()].push(s2[i].trim())
    byPremise.set(premise, group)
  }
  return [...byPremise.values()]
}
const SCORE = {entailment: 1, neutral: 0.5, contradiction: 0}
const tsv = (rows) => rows.map((r) => r.join('\t')).join('\n') + '\n'
const jsonl = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n'

mkdirSync(join(out, 'retrieval', 'qrels'), {recursive: true})
const dev = load('dev')
const test = load('test')

// IR training: anchor premise, its entailment as positive, its contradictions as hard negatives (FlagEmbedding JSON lines).
const ir = dev.filter((g) => g.entailment.length && g.contradiction.length).slice(0, LIMITS.irTrain)
writeFileSync(join(out, 'ir-train.jsonl'), jsonl(ir.map((g) => ({query: g.premise, pos: [g.entailment[0]], neg: g.contradiction}))))

// STS training and evaluation pairs: entailment 1, neutral 0.5, contradiction 0.
const pairs = (groups) => groups.flatMap((g) => Object.keys(SCORE).flatMap((label) => g[label].map((h) => [g.premise, h, SCORE[label]])))
writeFileSync(join(out, 'sts-train.tsv'), tsv(pairs(dev).slice(0, LIMITS.stsTrain)))
writeFileSync(join(out, 'sts-eval.tsv'), tsv(pairs(test).slice(0, LIMITS.stsEval)))

// Retrieval evaluation (BEIR layout): queries are test premises, the corpus every hypothesis of a larger set
// of test premises; a query's relevant documents are the hypotheses its premise entails.
const premises = test.slice(LIMITS.stsEval / 3, LIMITS.stsEval / 3 + LIMITS.retrievalPremises)
const corpus = []
const qrels = []
const queries = []
for (const [p, g] of premises.entries()) {
  const ids = {}
  for (const label of Object.keys(SCORE)) {
    g[label].forEach((text, k) => {
      const id = `d${p}-${label[0]}${k}`
      corpus.push({_id: id, title: '', text})
      if (label === 'entailment') (ids.entailment ??= []).push(id)
    })
  }
  if (queries.length < LIMITS.retrievalQueries && ids.entailment) {
    const qid = `q${p}`
    queries.push({_id: qid, text: g.premise})
    for (const id of ids.entailment) qrels.push([qid, id, 1])
  }
}
writeFileSync(join(out, 'retrieval', 'corpus.jsonl'), jsonl(corpus))
writeFileSync(join(out, 'retrieval', 'queries.jsonl'), jsonl(queries))
writeFileSync(join(out, 'retrieval', 'qrels', 'test.tsv'), tsv([['query-id', 'corpus-id', 'score'], ...qrels]))

// A WordPiece vocabulary for the quickstart's small model, derived from the sample's own text:
// special tokens, every lower-cased word seen at least twice, and every character alone and as a ##suffix.
const texts = [
  ...ir.flatMap((g) => [g.premise, ...g.entailment, ...g.contradiction]),
  ...pairs(dev).slice(0, LIMITS.stsTrain).flatMap((r) => [r[0], r[1]]),
]
const counts = new Map()
const chars = new Set()
for (const t of texts) {
  for (const w of t.toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '').split(/[\s]+|(?=[\p{P}])|(?<=[\p{P}])/u)) {
    if (!w) continue
    counts.set(w, (counts.get(w) ?? 0) + 1)
    for (const c of w) chars.add(c)
  }
}
const words = [...counts].filter(([, n]) => n >= 2).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w)
const charList = [...chars].sort()
const vocab = [...new Set(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...charList, ...charList.map((c) => `##${c}`), ...words])]
mkdirSync(join(out, 'tokenizer'), {recursive: true})
writeFileSync(join(out, 'tokenizer', 'vocab.txt'), vocab.join('\n') + '\n')
writeFileSync(
  join(out, 'tokenizer', 'tokenizer_config.json'),
  JSON.stringify({tokenizer_class: 'BertTokenizer', do_lower_case: true, tokenize_chinese_chars: true, strip_accents: null, model_max_length: 128}, null, 2) + '\n',
)
console.log(
  `wrote ${out}: ir-train ${ir.length}, sts-train ${Math.min(LIMITS.stsTrain, pairs(dev).length)}, sts-eval ${Math.min(LIMITS.stsEval, pairs(test).length)}, ` +
    `retrieval ${queries.length} queries / ${corpus.length} docs / ${qrels.length} qrels, vocab ${vocab.length}`,
)
