import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {resolveTasks, TaskSelectionError} from '../../../src/eval/resolve-tasks.js'
import type {BenchmarkImpl} from '../../../src/eval/tasks.js'
import {queryPrompt, type EvalEncoder} from '../../../src/eval/evaluate.js'
import {NO_PROMPT} from '../../../src/core/prompts.js'
import {builtinRegistry} from '../../../src/builtins.js'

describe('benchmarks', () => {
  it('register cmteb (8 IR + 7 STS), mteb-en-sts and beir with their task lists', async () => {
    const registry = await builtinRegistry()
    const names = registry.list('benchmark').map((e) => e.name)
    for (const b of ['cmteb', 'mteb-en-sts', 'beir']) assert.ok(names.includes(b), b)
    const cmteb = await registry.load<BenchmarkImpl>('benchmark', 'cmteb')
    assert.equal(cmteb.tasks.length, 15)
    const ir = cmteb.tasks.filter((t) => t.type === 'retrieval')
    const sts = cmteb.tasks.filter((t) => t.type === 'sts')
    assert.deepEqual(ir.map((t) => t.name).sort(), ['CmedqaRetrieval', 'CovidRetrieval', 'DuRetrieval', 'EcomRetrieval', 'MMarcoRetrieval', 'MedicalRetrieval', 'T2Retrieval', 'VideoRetrieval'])
    assert.deepEqual(sts.map((t) => t.name).sort(), ['AFQMC', 'ATEC', 'BQ', 'LCQMC', 'PAWSX', 'QBQTC', 'STSB'])
    for (const t of ir) {
      assert.equal(t.split, 'dev')
      assert.equal(t.mainScore, 'ndcg_at_10')
      assert.equal(t.hf!.qrelsPath, `${t.hf!.path}-qrels`)
      assert.match(t.hf!.qrelsRevision!, /^[0-9a-f]{40}$/)
    }
    for (const t of cmteb.tasks) {
      assert.match(t.hf!.revision, /^[0-9a-f]{40}$/, t.name)
      assert.match(t.instruction!, /[\u4e00-\u9fff]/, `${t.name} has a Chinese instruction`)
    }
    assert.equal(sts.find((t) => t.name === 'AFQMC')!.split, 'validation')
    assert.ok(sts.filter((t) => t.name !== 'AFQMC').every((t) => t.split === 'test' && t.mainScore === 'cosine_spearman'))
    const entry = registry.list('benchmark').find((e) => e.name === 'cmteb')!
    assert.equal((entry.meta!.tasks as unknown[]).length, 15)
    assert.equal((await registry.load<BenchmarkImpl>('benchmark', 'mteb-en-sts')).tasks.length, 8)
  })

  it('put task instructions in the paper template, or the configured one', () => {
    const encoder: EvalEncoder = {encode: async () => [], fingerprint: () => 'none'}
    assert.deepEqual(queryPrompt(encoder, '检索相似句子', {}, 'sts'), {prefix: 'Instruction: 检索相似句子 Query: ', suffix: ''})
    assert.deepEqual(queryPrompt(encoder, '', {}, 'sts'), NO_PROMPT)
    assert.deepEqual(queryPrompt(encoder, 'x', {instructionTemplate: '<{instruction}>'}, 'sts'), {prefix: '<x>', suffix: ''})
  })

  it('resolve --benchmark, --tasks, both, and user-defined config tasks', async () => {
    const registry = await builtinRegistry()
    assert.equal((await resolveTasks(registry, {benchmarks: ['cmteb']})).length, 15)
    assert.deepEqual((await resolveTasks(registry, {tasks: ['ATEC', 'scifact']})).map((t) => t.name), ['ATEC', 'SciFact'])
    assert.deepEqual((await resolveTasks(registry, {benchmarks: ['beir'], tasks: ['SciFact']})).map((t) => t.name), ['SciFact'])
    const custom = await resolveTasks(registry, {configTasks: [{name: 'MyIR', type: 'retrieval', dir: 'my-ir'}, 'STSB']})
    assert.deepEqual(custom.map((t) => [t.name, t.mainScore]), [['STSB', 'cosine_spearman'], ['MyIR', 'ndcg_at_10']])
    await assert.rejects(resolveTasks(registry, {tasks: ['Nope']}), TaskSelectionError)
    await assert.rejects(resolveTasks(registry, {benchmarks: ['beir'], tasks: ['ATEC']}), /not in benchmark beir/)
    await assert.rejects(resolveTasks(registry, {benchmarks: ['nope']}), /unknown benchmark "nope"/)
    await assert.rejects(resolveTasks(registry, {}), /no tasks selected/)
  })
})

describe('eval config section', () => {
  it('accepts benchmark/task names and user-defined tasks, and names every bad key', async () => {
    const {validateConfig} = await import('../../../src/config/load.js')
    validateConfig({eval: {benchmark: 'cmteb', tasks: ['STSB', {name: 'Mine', type: 'retrieval', files: {corpus: 'c.arrow', queries: 'q.arrow', qrels: 'r.arrow'}}], cacheDir: false, topK: 100}})
    assert.throws(
      () => validateConfig({eval: {tasks: [{name: 'X', type: 'ir'}], topK: 0, colour: 1}}),
      (e: Error & {data?: {problems: string[]}}) => {
        const problems = e.data!.problems.join('\n')
        assert.match(problems, /\/eval\/tasks\/0\/type: expected one of "retrieval", "sts", got "ir"/)
        assert.match(problems, /\/eval\/topK: expected integer >= 1/)
        assert.match(problems, /\/eval\/colour: unknown key/)
        return true
      },
    )
  })
})
