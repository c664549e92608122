/**
 * `--events FILE` end to end: the commands run on the tiny FAQ sample (examples/faq) as a user would
 * chain them — prepare, model init, embed, mine, train (dry run and two steps), merge, eval, and a
 * failing embed — and every NDJSON line they write must be a member of data-schemas/events.schema.json.
 * `data pull`'s events are checked through the library against an in-process stand-in of the hub.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import type {ProgressEvent} from '../../src/core/events.js'
import {pullRepo} from '../../src/data/hub.js'
import {runCommand} from '../eval/run-command.js'
import {TEST_BACKEND} from '../helpers/env.js'
import {assertEvent, readEvents} from '../helpers/events.js'

let work: string
before(() => {
  work = mkdtempSync(join(tmpdir(), 'codiemb-events-'))
})
after(() => rmSync(work, {recursive: true, force: true}))

/** Runs a command (from the repository root) and returns the events it wrote, each checked against the schema. */
function eventsOf(command: string, args: string[], expectStatus = 0): {type: string; [key: string]: unknown}[] {
  const file = join(work, `${command.replace('/', '-')}-${Math.random().toString(36).slice(2, 8)}.ndjson`)
  const r = runCommand(command, [...args, '--events', file, '--json'])
  assert.equal(r.status, expectStatus, `${command} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`)
  return readEvents(file)
}

const types = (events: {type: string}[]) => [...new Set(events.map((e) => e.type))]

describe('--events NDJSON of the commands (FAQ sample)', () => {
  it('prepare, embed, mine, train, merge and eval write only events of the schema, ending with their result', () => {
    const prepared = join(work, 'prepared')
    const prepare = eventsOf('prepare', ['--config', 'examples/faq/prepare.yaml', '--data-root', 'examples/faq', '--out', prepared])
    assert.deepEqual(types(prepare), ['dataset-start', 'dataset-done'])
    assert.equal(prepare.length, 6)

    const model = join(work, 'tiny')
    const init = runCommand('model/init', ['--arch', 'bert', '--tokenizer', 'quickstart/data/tokenizer', '--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', '--max-length', '64', '--out', model, '--backend', TEST_BACKEND, '--json'])
    assert.equal(init.status, 0, init.stdout + init.stderr)

    const backend = ['--backend', TEST_BACKEND]
    const embed = eventsOf('embed', ['--model', model, '--input', 'examples/faq/sentences.txt', '--out', join(work, 'sentences.arrow'), '--batch-size', '2', ...backend])
    assert.deepEqual(types(embed), ['backend', 'embed-progress', 'done'])
    assert.deepEqual(embed.at(-1), {...embed.at(-1), type: 'done', command: 'embed', rows: 4})

    const failed = eventsOf('embed', ['--model', model, '--input', join(work, 'missing.txt'), '--out', join(work, 'x.arrow'), ...backend], 2)
    assert.deepEqual(failed.map((e) => [e.type, e.exitCode]), [['error', 2]])

    const mined = join(work, 'mined.ir-example.arrow')
    const mine = eventsOf('mine', ['--model', model, '--input', join(prepared, 'faq-train', 'train.ir-example.arrow'), '--corpus', join(prepared, 'faq', 'corpus.arrow'), '--out', mined, '--top-k', '2', ...backend])
    assert.deepEqual(types(mine), ['backend', 'mine-progress'])
    assert.deepEqual(new Set(mine.filter((e) => e.type === 'mine-progress').map((e) => e.stage)), new Set(['encode corpus', 'encode queries', 'encode positives', 'search']))

    const trainConfig = join(work, 'train.json')
    const run = join(work, 'run')
    writeFileSync(
      trainConfig,
      JSON.stringify({
        train: {
          model,
          output: run,
          dataDir: work,
          data: ['mined.ir-example.arrow'],
          tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 1, temperature: 0.05}}], maxLength: {query: 16, passage: 24}}},
          sampler: {name: 'dynamic', options: {batchSizes: {ir: 4}}},
          epochs: 1,
          learningRate: 1e-3,
          seed: 3,
          probeLoss: {batches: 1},
          checkpoint: {everyEpoch: true, keepLast: 1},
          validation: {sts: [join(prepared, 'faq-sts', 'test.sts-pair.arrow')]},
        },
      }),
    )
    const dryRun = eventsOf('train', ['--config', trainConfig, '--dry-run', ...backend])
    assert.deepEqual(types(dryRun), ['plan'])
    const train = eventsOf('train', ['--config', trainConfig, ...backend])
    for (const type of ['backend', 'plan', 'status', 'validation', 'probe', 'step', 'checkpoint', 'done']) assert.ok(types(train).includes(type), `train reports ${type}: ${types(train)}`)
    assert.deepEqual(train.at(-1), {...train.at(-1), type: 'done', command: 'train', output: run})

    const merged = join(work, 'merged')
    const merge = eventsOf('merge', ['--base', model, run, '--out', merged])
    assert.deepEqual(types(merge), ['merge-progress', 'done'])
    assert.deepEqual(merge.at(-1), {...merge.at(-1), type: 'done', command: 'merge', out: merged})

    const evalConfig = join(work, 'eval.json')
    writeFileSync(
      evalConfig,
      JSON.stringify({
        eval: {
          dataDir: prepared,
          out: join(work, 'results'),
          batchSize: 8,
          tasks: [
            {name: 'FAQ-Retrieval', type: 'retrieval', dir: 'faq'},
            {name: 'FAQ-STS', type: 'sts', files: {pairs: 'faq-sts/test.sts-pair.arrow'}},
          ],
        },
      }),
    )
    const evaluation = eventsOf('eval', ['--model', merged, '--config', evalConfig, ...backend])
    assert.deepEqual(types(evaluation), ['backend', 'eval-progress', 'eval-task', 'eval-summary'])
    assert.deepEqual(evaluation.filter((e) => e.type === 'eval-task').map((e) => e.task), ['FAQ-Retrieval', 'FAQ-STS'])
  })
})

describe('data pull events (library, in-process stand-in of the hub)', () => {
  it('reports listed, file-start and file-done, all events of the schema', async () => {
    const files: Record<string, Buffer> = {'README.md': Buffer.from('# tiny\n'), 'data/train.jsonl': Buffer.from('{"text": "a"}\n')}
    const hub: typeof fetch = async (input) => {
      const url = new URL(input instanceof Request ? input.url : String(input))
      if (url.pathname.startsWith('/api/datasets/org/tiny/tree/'))
        return Response.json(Object.entries(files).map(([path, content]) => ({type: 'file', path, oid: '0'.repeat(40), size: content.length})))
      const m = /^\/datasets\/org\/tiny\/resolve\/main\/(.+)$/.exec(url.pathname)
      const content = m ? files[decodeURIComponent(m[1]!)] : undefined
      return content ? new Response(new Uint8Array(content)) : new Response('not found', {status: 404})
    }
    const events: ProgressEvent[] = []
    const out = join(work, 'pulled')
    await pullRepo('org/tiny', {out, endpoint: 'http://hub.invalid', token: 'hf_test', fetch: hub, onEvent: (e) => events.push(e)})
    await pullRepo('org/tiny', {out, endpoint: 'http://hub.invalid', token: 'hf_test', fetch: hub, onEvent: (e) => events.push(e)})
    for (const e of events) assertEvent(JSON.parse(JSON.stringify(e)))
    assert.deepEqual(
      events.map((e) => (e.type === 'file-done' ? `${e.type} ${e.status}` : e.type)),
      ['listed', 'file-start', 'file-done downloaded', 'file-start', 'file-done downloaded', 'listed', 'file-done present', 'file-done present'],
    )
  })
})
