/**
 * Layout row checks (src/io/record-checks.ts): the rules come from data-schemas/records/ and agree
 * with the Arrow layouts; column checks find non-finite, out-of-range and null numbers, empty texts
 * and lists, mismatched score lists and labels outside the label range, naming the file row; text
 * checks find texts that are only white space.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {Float32, Float64, List, Field, Schema, Utf8} from 'apache-arrow'
import {RECORD_KINDS, RecordFile, recordFields, rowsToBatch, type IrExampleRecord, type StsPairRecord} from '../../src/io/arrow-records.js'
import {RecordChecker, formatRowProblem, layoutRules, type RowProblem} from '../../src/io/record-checks.js'
import {readSchema} from '../../src/config/schema.js'
import {writeArrowColumns} from '../helpers/arrow-files.js'

const sts = (i: number, over: Partial<StsPairRecord> = {}): StsPairRecord => ({id: `s${i}`, text1: `a ${i}`, text2: `b ${i}`, score: 0.4, raw_score: 2, instruction: '', ...over})
const ir = (i: number, over: Partial<IrExampleRecord> = {}): IrExampleRecord => ({id: `q${i}`, query: `q ${i}`, instruction: '', positives: ['p'], negatives: ['n1', 'n2'], positive_scores: null, negative_scores: null, ...over})

/** The problems of rows written as one record batch starting at file row `firstRow`. */
function problemsOf(checker: RecordChecker, rows: object[], firstRow = 0): RowProblem[] {
  const batch = rowsToBatch(new Schema(recordFields(checker.kind)), rows as Record<string, unknown>[])
  const out: RowProblem[] = []
  checker.columnProblems(batch, firstRow, (p) => out.push(p))
  return out
}

const lines = (problems: RowProblem[]) => problems.map((p) => formatRowProblem(undefined, p))

describe('layout rules', () => {
  it('come from data-schemas/records/<kind>.schema.json and agree with the Arrow layout (fields, order, nullability, type)', () => {
    for (const kind of RECORD_KINDS) {
      const schema = readSchema(`records/${kind}.schema.json`) as {properties: Record<string, {'x-arrow-type': string}>}
      const fields = recordFields(kind, 3)
      assert.deepEqual(layoutRules(kind).map((r) => r.field), fields.map((f) => f.name), kind)
      for (const [i, rule] of layoutRules(kind).entries()) {
        assert.equal(rule.nullable, fields[i]!.nullable, `${kind}.${rule.field} nullability`)
        const arrowType = schema.properties[rule.field]!['x-arrow-type'].replace(' (nullable)', '').replace('[dim]', '')
        assert.equal(String(fields[i]!.type).replace('[3]', ''), arrowType.replace(/^FixedSizeList<(.*)>$/, 'FixedSizeList<$1>'), `${kind}.${rule.field} type`)
      }
    }
    const stsRules = Object.fromEntries(layoutRules('sts-pair').map((r) => [r.field, r]))
    assert.deepEqual(stsRules.score, {field: 'score', type: 'number', nullable: false, minimum: 0, maximum: 1})
    assert.deepEqual(stsRules.text2, {field: 'text2', type: 'text', nullable: false, minLength: 1})
    assert.deepEqual(layoutRules('ir-example').find((r) => r.field === 'positives'), {field: 'positives', type: 'list', nullable: false, item: 'text', minItems: 1, itemMinLength: 1})
  })
})

describe('schemaProblems', () => {
  it('names a missing column, a column of another type and a column the layout does not have; accepts Float64 for Float32', () => {
    const checker = new RecordChecker('sts-pair')
    const fields = recordFields('sts-pair').filter((f) => f.name !== 'text2').map((f) => (f.name === 'score' ? new Field('score', new Utf8()) : f))
    assert.deepEqual(checker.schemaProblems(new Schema([...fields, new Field('label', new Float32())])), [
      'text2: expected a Utf8 column, but the file has none',
      'score: expected a Float32 column, got Utf8',
      'label: not a column of the sts-pair layout (id, text1, text2, score, raw_score, instruction)',
    ])
    const wide = recordFields('sts-pair').map((f) => (f.type instanceof Float32 ? new Field(f.name, new Float64(), true) : f))
    assert.deepEqual(checker.schemaProblems(new Schema(wide)), [])
    const irWrong = recordFields('ir-example').map((f) => (f.name === 'positives' ? new Field('positives', new List(new Field('item', new Float32()))) : f))
    assert.deepEqual(new RecordChecker('ir-example').schemaProblems(new Schema(irWrong)), ['positives: expected a List<Utf8> column, got List<Float32>'])
  })
})

describe('columnProblems', () => {
  it('sts-pair: non-finite and out-of-range scores, empty texts; rows numbered in the file; clean rows pass', () => {
    const checker = new RecordChecker('sts-pair')
    const rows = [sts(0), sts(1, {score: NaN}), sts(2, {score: Infinity}), sts(3, {score: 7}), sts(4, {score: -0.5}), sts(5, {text2: ''}), sts(6, {raw_score: -Infinity}), sts(7, {text1: '', score: 1})]
    assert.deepEqual(lines(problemsOf(checker, rows, 4096)), [
      'row 4103 (id "s7"): text1: expected a non-empty text, got ""',
      'row 4101 (id "s5"): text2: expected a non-empty text, got ""',
      'row 4097 (id "s1"): score: expected a finite number in [0, 1], got NaN',
      'row 4098 (id "s2"): score: expected a finite number in [0, 1], got Infinity',
      'row 4099 (id "s3"): score: expected a finite number in [0, 1], got 7',
      'row 4100 (id "s4"): score: expected a finite number in [0, 1], got -0.5',
      'row 4102 (id "s6"): raw_score: expected a finite number, got -Infinity',
    ])
    assert.deepEqual(problemsOf(checker, [sts(0), sts(1, {score: 0, raw_score: -3})]), [])
  })

  it('sts-pair with a label range: raw_score within it (or among its values) and score its normalisation', () => {
    const range = new RecordChecker('sts-pair', {labelRange: {min: 0, max: 5}, labelRangeSource: 'dataset stsb in manifest.json'})
    const rows = [sts(0, {raw_score: 5, score: 1}), sts(1, {raw_score: 7, score: 1}), sts(2, {raw_score: 2.5, score: 0.9}), sts(3, {raw_score: 4.2, score: 0.84})]
    assert.deepEqual(lines(problemsOf(range, rows)), [
      'row 1 (id "s1"): raw_score: expected a label in [0, 5] (the label range of dataset stsb in manifest.json), got 7',
      'row 2 (id "s2"): score: expected 0.5 = (raw_score − 0) / (5 − 0), got 0.8999999761581421',
    ])
    const values = new RecordChecker('sts-pair', {labelRange: {min: 0, max: 1, values: [0, 1]}})
    assert.deepEqual(lines(problemsOf(values, [sts(0, {raw_score: 1, score: 1}), sts(1, {raw_score: 0.5, score: 0.5})])), [
      'row 1 (id "s1"): raw_score: expected a label in {0, 1} (the label range of the dataset), got 0.5',
    ])
  })

  it('ir-example: a query, at least one positive, non-empty list items, one finite score per text', () => {
    const checker = new RecordChecker('ir-example')
    const rows = [
      ir(0),
      ir(1, {positives: []}),
      ir(2, {negatives: ['n', '']}),
      ir(3, {positive_scores: [1, 2]}),
      ir(4, {negative_scores: [0.1, NaN]}),
      ir(5, {query: ''}),
      ir(6, {negatives: [], negative_scores: []}),
    ]
    assert.deepEqual(lines(problemsOf(checker, rows)), [
      'row 5 (id "q5"): query: expected a non-empty text, got ""',
      'row 1 (id "q1"): positives: expected at least 1 item, got 0',
      'row 2 (id "q2"): negatives[1]: expected a non-empty text, got ""',
      'row 4 (id "q4"): negative_scores[1]: expected a finite number, got NaN',
      'row 3 (id "q3"): positive_scores: expected one score per item of positives (1) or null, got 2 scores',
    ])
  })

  it('nulls in columns the layout does not allow them in (a file written by another tool)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-checks-'))
    try {
      const file = join(dir, 'nulls.arrow')
      const utf8 = (values: (string | null)[]) => ({type: new Utf8(), values})
      const f32 = (values: (number | null)[]) => ({type: new Float32(), values})
      writeArrowColumns(
        file,
        {id: utf8(['a', 'b', 'c']), text1: utf8(['x', null, 'z']), text2: utf8(['y', 'y', 'y']), score: f32([0.5, 0.5, null]), raw_score: f32([1, 1, 1]), instruction: utf8(['', '', ''])},
        {'codiemb.kind': 'sts-pair'},
      )
      const records = await RecordFile.open(file, {kind: 'sts-pair'})
      const checker = new RecordChecker('sts-pair')
      assert.deepEqual(checker.schemaProblems(records.schema), [])
      const found: RowProblem[] = []
      for await (const {batch, firstRow} of records.batches()) checker.columnProblems(batch, firstRow, (p) => found.push(p))
      await records.close()
      assert.deepEqual(lines(found), [
        'row 1 (id "b"): text1: expected a text (the layout does not allow null), got null',
        'row 2 (id "c"): score: expected a finite number in [0, 1] (the layout does not allow null), got null',
      ])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('textProblem', () => {
  it('refuses a required text or list item that is only white space, and passes everything else', () => {
    const stsChecker = new RecordChecker('sts-pair')
    assert.deepEqual(stsChecker.textProblem({...sts(0), text2: ' \t\u3000'}, 12), {row: 12, id: 's0', field: 'text2', expected: 'a text with a non-space character', got: '" \\t\u3000"'})
    assert.equal(stsChecker.textProblem({...sts(0), instruction: '  '}, 0), undefined, 'instructions may be empty')
    const irChecker = new RecordChecker('ir-example')
    assert.equal(formatRowProblem('f.arrow', irChecker.textProblem({...ir(0), negatives: ['ok', '\n']}, 3)!), 'f.arrow: row 3 (id "q0"): negatives[1]: expected a text with a non-space character, got "\\n"')
    assert.equal(irChecker.textProblem(ir(0), 0), undefined)
  })
})
