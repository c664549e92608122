/** Small inputs shared by the reader tests and the layout recipe tests. */

/** CLUE OCNLI-style JSON lines: two premises, each label once, a "-" (no gold label) and an unknown label. */
const ocnli = (o: Record<string, unknown>) => JSON.stringify({level: 'easy', genre: 'news', label0: o.label, label1: o.label, label2: '', label3: '', label4: '', ...o})
export const OCNLI_LINES = [
  ocnli({sentence1: '他们正在看电影', sentence2: '他们在看东西', label: 'entailment', id: 0}),
  ocnli({sentence1: '他们正在看电影', sentence2: '他们在睡觉', label: 'contradiction', id: 1}),
  ocnli({sentence1: '他们正在看电影', sentence2: '电影很好看', label: 'neutral', id: 2}),
  ocnli({sentence1: '今天下雨', sentence2: '天气不好', label: '-', id: 3, genre: 'gov'}),
  ocnli({sentence1: '今天下雨', sentence2: '外面是湿的', label: 'entailment', id: 4, genre: 'gov'}),
  ocnli({sentence1: '今天下雨', sentence2: '阳光明媚', label: 'contradiction', id: 5, genre: 'gov'}),
  ocnli({sentence1: '今天下雨', sentence2: '不知道', label: 'maybe', id: 6, genre: 'gov'}),
].join('\n')
