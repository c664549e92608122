/**
 * Every configuration of docs/data.md "Recipes for common layouts", taken from the document itself,
 * run on small files this test writes in the layout the recipe names: each prepares, and every input
 * row is accounted for (rows written, unused with a reason, or rejected).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parse} from 'yaml'
import {readAllRecords} from '../../src/io/arrow-records.js'
import {prepare, type PrepareConfig, type PrepareResult} from '../../src/data/prepare.js'
import {validateOptions} from '../../src/config/validate.js'
import {BUILTINS, REPO_ROOT} from '../helpers/env.js'
import {OCNLI_LINES} from './readers/fixtures.js'

const DOC = readFileSync(join(REPO_ROOT, 'docs', 'data.md'), 'utf8')
const SCHEMA = JSON.parse(readFileSync(join(REPO_ROOT, 'data-schemas', 'config', 'prepare.schema.json'), 'utf8'))

function recipe(name: string): PrepareConfig {
  const m = new RegExp(`<!-- recipe: ${name} -->\\s*\`\`\`yaml\\n([\\s\\S]*?)\`\`\``).exec(DOC)
  assert.ok(m, `docs/data.md has no recipe ${name}`)
  const config = (parse(m[1]) as {prepare: PrepareConfig}).prepare
  validateOptions(SCHEMA, config, {pointer: '/prepare', subject: `recipe ${name}`, error: (message) => new Error(message)})
  return config
}

const SICK_HEADER = 'pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n'
const QA = (rows: string[]) => 'qtext,label,atext\n' + rows.join('\n') + '\n'

/** Each recipe's files, and the rows (per dataset) it must give. */
const CASES: Record<string, {files: Record<string, string>; rows: Record<string, number>; inputRows: number}> = {
  'semeval-sts': {
    files: {
      'sts2015/STS.input.answers-forums.txt': 'He said "yes.\tHe agreed "fully".\nA b c.\tX y z.\n',
      'sts2015/STS.gs.answers-forums.txt': '4.2\n\n',
      'sts2015/STS.input.headlines.txt': 'Cats sleep.\tA cat sleeps.\n',
      'sts2015/STS.gs.headlines.txt': '5\n',
    },
    rows: {STS15: 2},
    inputRows: 3,
  },
  'sick-r': {
    files: {
      'sick/SICK_train.txt': SICK_HEADER + '1\tA dog runs.\tA dog is running.\t4.5\tENTAILMENT\n2\tA man eats.\tA man sleeps.\t1.4\tNEUTRAL\n',
      'sick/SICK_trial.txt': SICK_HEADER + '3\tKids play.\tChildren play.\t4.9\tENTAILMENT\n',
      'sick/SICK_test_annotated.txt': SICK_HEADER + '4\tA cat sits.\tA cat is sitting.\t4.8\tENTAILMENT\n',
    },
    rows: {'SICK-R': 4},
    inputRows: 4,
  },
  'clue-nli': {
    files: {'ocnli/train.50k.json': OCNLI_LINES, 'ocnli/dev.json': OCNLI_LINES},
    rows: {'ocnli-sts': 10, 'ocnli-ir': 2},
    inputRows: 21,
  },
  'flat-qa': {
    files: {
      'qa/train.csv': QA(['how old is the sun,1,"About 4.6 billion years, say astronomers."', 'how old is the sun,0,"The sun is a star."', 'what is 2+2,0,"Math is ""fun""."']),
      'qa/test.csv': QA(['who painted the mona lisa,1,Leonardo da Vinci painted it.', 'who painted the mona lisa,0,"It hangs in the Louvre, Paris."']),
    },
    rows: {'qa-train': 1, 'QA-Retrieval': 2 + 1 + 1},
    inputRows: 5,
  },
  'wikiqa-tsv': {
    files: {
      'wikiqa/WikiQA-train.tsv':
        'QuestionID\tQuestion\tDocumentID\tDocumentTitle\tSentenceID\tSentence\tLabel\n' +
        'Q1\thow are glacier caves formed?\tD1\tGlacier cave\tD1-0\tA partly submerged glacier cave on Perito Moreno Glacier .\t0\n' +
        'Q1\thow are glacier caves formed?\tD1\tGlacier cave\tD1-1\tA glacier cave is a cave formed within the ice of a glacier .\t1\n' +
        'Q2\thow much is 1 tablespoon?\tD2\tTablespoon\tD2-0\tThis tablespoon has a "heaping" capacity.\t0\n',
    },
    rows: {'wikiqa-train': 1},
    inputRows: 3,
  },
  'msmarco-triples': {
    files: {'msmarco/triples.train.small.tsv': 'what is a lobster roll\tA lobster roll is a sandwich.\tLobsters live in the sea.\nis "x" a letter\tYes, x is a letter.\tNo.\n'},
    rows: {'msmarco-triples': 2},
    inputRows: 2,
  },
  flagembedding: {
    files: {
      'bge/part-0.jsonl': '{"query": "q1", "pos": ["p1"], "neg": ["n1", "n2"]}\n',
      'bge/part-1.jsonl': '{"query": "q2", "pos": ["p2"], "neg": [], "prompt": "Represent this: "}\n',
    },
    rows: {'bge-finetune': 2},
    inputRows: 2,
  },
}

for (const [name, c] of Object.entries(CASES)) {
  test(`docs/data.md recipe "${name}" prepares its layout and accounts for every input row`, async () => {
    const root = mkdtempSync(join(tmpdir(), `codiemb-recipe-${name}-`))
    try {
      for (const [file, content] of Object.entries(c.files)) {
        mkdirSync(join(root, file, '..'), {recursive: true})
        writeFileSync(join(root, file), content)
      }
      const config = recipe(name)
      const r: PrepareResult = await prepare(config, {registry: BUILTINS, dataRoot: root, out: join(root, 'out')})
      assert.deepEqual(Object.fromEntries(r.datasets.map((d) => [d.name, d.rows])), c.rows)
      assert.equal(r.rejected, 0)
      // every input row: in an output (a grouped example counts its candidates), or unused
      let accounted = 0
      for (const d of r.datasets) {
        accounted += d.unused
        for (const f of d.files) {
          if (f.kind === 'ir-example' && (d.grouped || d.reader === 'nli')) {
            // one input row per candidate (an NLI triplet is two pairs)
            const rows = await readAllRecords(join(root, 'out', f.path), 'ir-example')
            accounted += rows.reduce((s, x) => s + x.positives.length + x.negatives.length, 0)
          } else if (f.kind === 'sts-pair' || f.kind === 'ir-example' || f.kind === 'qrels') accounted += f.rows
        }
      }
      assert.equal(accounted, c.inputRows)
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })
}
