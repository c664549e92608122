/**
 * src/cli/progress.ts: the task output line each event becomes (live loss, throughput, ETA), which
 * events reach --events (counters at most once a second, their first and last value always), and, at
 * compile time, that a command's `emit` takes members of the event union only.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {CodiembCommand} from '../../src/cli/base-command.js'
import {formatDuration, ProgressLines, ProgressReporter} from '../../src/cli/progress.js'
import type {PlanEvent, ProgressEvent, StepEvent} from '../../src/core/events.js'

/** A clock the test moves by hand (milliseconds). */
function clock(): {now: () => number; advance: (seconds: number) => void} {
  let t = 0
  return {now: () => t, advance: (seconds) => (t += seconds * 1000)}
}

const step: StepEvent = {
  type: 'step', step: 3, totalSteps: 10, epoch: 0, lr: 0.001, loss: {ir: 1.23456, sts: 0.5}, components: {}, gradNorm: 1,
  examples: 12, tokens: 300, examplesPerSecond: 54.24, tokensPerSecond: 1234.4, elapsedSeconds: 2, etaSeconds: 65,
}

describe('formatDuration', () => {
  it('writes seconds, minutes and hours, and ? for unknown', () => {
    assert.deepEqual([5, 65, 3720, Number.POSITIVE_INFINITY, Number.NaN].map(formatDuration), ['5s', '1m05s', '1h02m', '?', '?'])
  })
})

describe('ProgressLines', () => {
  it('shows a training step with its loss, rate and ETA, and the last probe loss after it', () => {
    const lines = new ProgressLines(clock().now)
    assert.equal(lines.line(step), 'step 3/10 · loss ir 1.2346, sts 0.5000 · lr 1.00e-3 · 54.2 ex/s · 1234 tok/s · ETA 1m05s')
    lines.line({type: 'probe', step: 2, totalSteps: 10, when: 'checkpoint', loss: {ir: 1.1}, components: {}, batches: {}, rows: {}, seconds: 0})
    assert.match(lines.line(step)!, / · probe \(step 2\) ir 1\.1000$/)
  })

  it('shows the rest of a training run: plan, status, probe loss with its terms, checkpoint, interruption, validation', () => {
    const lines = new ProgressLines()
    const plan: PlanEvent = {
      type: 'plan', sampler: {name: 'dynamic', options: {}}, datasets: [], batchesPerEpoch: 5, stepsPerEpoch: 5, stepsPerEpochByTask: {}, epochs: 2, totalSteps: 10,
      warmupSteps: 1, gradientAccumulation: 1, examplesPerBatch: {}, examplesPerStep: {}, losses: {}, droppedRows: 0,
    }
    assert.equal(lines.line(plan), 'plan: 10 steps (5/epoch × 2), 0 datasets, warm-up 1')
    const probe = {type: 'probe', step: 4, totalSteps: 10, when: 'epoch', loss: {ir: 2, sts: 3.5}, components: {sts: {pro: 0.25, pearson: 1.5}}, batches: {}, rows: {}, seconds: 0} as const
    assert.equal(lines.line(probe), 'probe loss at step 4/10: ir 2.0000, sts 3.5000 (pro 0.250, pearson 1.500)')
    assert.equal(lines.line({type: 'status', message: 'loading models/x'}), 'loading models/x')
    assert.equal(lines.line({type: 'checkpoint', path: 'runs/x-checkpoints/checkpoint-4', step: 4}), 'checkpoint at step 4: runs/x-checkpoints/checkpoint-4')
    assert.equal(
      lines.line({type: 'interrupted', signal: 'SIGINT', step: 4, totalSteps: 10, checkpoint: 'runs/x-checkpoints/checkpoint-4'}),
      'SIGINT at step 4/10: resume with --resume runs/x-checkpoints/checkpoint-4',
    )
    assert.equal(lines.line({type: 'interrupted', signal: 'SIGTERM', step: 0, totalSteps: 10}), 'SIGTERM at step 0/10: no step to save')
    assert.equal(lines.line({type: 'validation', epoch: 0, spearman: {a: 12.345}}), 'before training: a Spearman 12.35')
    assert.equal(lines.line({type: 'validation', epoch: 2, spearman: {a: 40, b: 50}}), 'validation after epoch 2: a Spearman 40.00, b Spearman 50.00')
    // The step line carries the probe's task losses, not its terms.
    assert.match(lines.line(step)!, / · probe \(step 4\) ir 2\.0000, sts 3\.5000$/)
  })

  it('measures a counter from its first event: rate and ETA', () => {
    const c = clock()
    const lines = new ProgressLines(c.now)
    const at = (done: number): ProgressEvent => ({type: 'eval-progress', task: 'T', stage: 'encode', detail: 'queries', done, total: 100})
    assert.equal(lines.line(at(10)), 'encode queries 10/100')
    c.advance(2)
    assert.equal(lines.line(at(30)), 'encode queries 30/100 · 10.0/s · ETA 7s')
    // another counter (the corpus) starts its own measurement
    assert.equal(lines.line({type: 'eval-progress', task: 'T', stage: 'encode', detail: 'corpus', done: 50, total: 100}), 'encode corpus 50/100')
    // a pipeline's evaluation names the model and task
    assert.equal(lines.line({type: 'eval-progress', task: 'T', stage: 'load', model: 'merged'}), 'merged T: load')
  })

  it('shows merge, mine, embed, prepare and pull progress', () => {
    const c = clock()
    const lines = new ProgressLines(c.now)
    assert.equal(lines.line({type: 'merge-progress', phase: 'hash', item: 'a', done: 1, total: 3}), 'hashing inputs 1/3')
    assert.equal(lines.line({type: 'mine-progress', stage: 'search', done: 5, total: 20}), 'search 5/20')
    assert.equal(lines.line({type: 'embed-progress', done: 100, tokens: 2000, seconds: 4}), '100 texts, 2000 tokens · 25.0 texts/s · 500 tokens/s')
    assert.equal(lines.line({type: 'dataset-start', dataset: 'faq', reader: 'beir', task: 'eval', index: 1, total: 3}), '2/3 faq (beir, eval)')
    c.advance(10)
    assert.equal(lines.line({type: 'dataset-progress', dataset: 'faq', rows: 50000, rejected: 0}), 'faq: 50,000 rows · 5,000 rows/s')
    assert.equal(lines.line({type: 'listed', files: 2, bytes: 4e6}), '2 files, 4.0 MB')
    c.advance(2)
    lines.line({type: 'file-start', path: 'a', size: 2e6, resumeFrom: 0})
    assert.equal(lines.line({type: 'file-done', path: 'a', size: 2e6, status: 'downloaded'}), '1/2 files · 2.0 MB of 4.0 MB · 1.0 MB/s · ETA 2s')
    assert.equal(lines.line({type: 'file-start', path: 'b', size: 2e6, resumeFrom: 10}), '2/2 b (resuming at 10 bytes) · 2.0 MB of 4.0 MB · 1.0 MB/s · ETA 2s')
  })

  it('leaves the line alone for events that are not progress (backend, done, error)', () => {
    const lines = new ProgressLines()
    assert.equal(lines.line({type: 'backend', name: 'cpu', reason: 'x'}), undefined)
    assert.equal(lines.line({type: 'done', command: 'embed', stage: 'embed', rows: 1, tokens: 1, seconds: 1}), undefined)
    assert.equal(lines.line({type: 'error', name: 'E', message: 'm', exitCode: 1}), undefined)
  })
})

describe('ProgressReporter', () => {
  it('records a counter at most once a second (first and last always), every other event, and shows every event', () => {
    const c = clock()
    const recorded: ProgressEvent[] = []
    const reporter = new ProgressReporter((e) => recorded.push(e), c.now)
    const task = {output: ''}
    const onEvent = reporter.into(task)
    const merged = (done: number): ProgressEvent => ({type: 'merge-progress', phase: 'merge', item: `t${done}`, done, total: 5})
    onEvent(merged(1))
    c.advance(0.3)
    onEvent(merged(2))
    assert.equal(task.output, '2/5 t2 · 3.3/s · ETA 1s')
    c.advance(0.3)
    onEvent({type: 'merge-progress', phase: 'hash', item: 'f', done: 1, total: 2}) // another counter
    c.advance(0.5)
    onEvent(merged(3)) // 1.1 s after the first record of this counter
    c.advance(0.1)
    onEvent(merged(4))
    onEvent(merged(5)) // the last value
    onEvent({type: 'status', message: 'saving'})
    onEvent({type: 'status', message: 'saved'})
    assert.deepEqual(
      recorded.map((e) => (e.type === 'merge-progress' ? `${e.phase} ${e.done}` : e.type)),
      ['merge 1', 'hash 1', 'merge 3', 'merge 5', 'status', 'status'],
    )
    assert.equal(task.output, 'saved')
  })

  it('moves its output line from task to task', () => {
    const reporter = new ProgressReporter(() => {})
    const first = {output: ''}
    const second = {output: ''}
    reporter.into(first)
    reporter.onEvent({type: 'status', message: 'one'})
    reporter.into(second)
    reporter.onEvent({type: 'status', message: 'two'})
    assert.deepEqual([first.output, second.output], ['one', 'two'])
  })

  it('keeps the line of an event reported between two tasks for the next task, and returns each line', () => {
    const reporter = new ProgressReporter(() => {})
    const first = {output: ''}
    reporter.into(first)
    assert.equal(reporter.onEvent({type: 'status', message: 'one'}), 'one')
    reporter.target = undefined
    assert.equal(reporter.onEvent({type: 'status', message: 'between'}), 'between')
    assert.equal(reporter.onEvent({type: 'backend', name: 'cpu', reason: 'x'}), undefined)
    const second = {output: ''}
    reporter.into(second)
    assert.deepEqual([first.output, second.output], ['one', 'between'])
    const third = {output: ''}
    reporter.into(third)
    assert.equal(third.output, '', 'the waiting line is shown once')
  })
})

/** Never run: `tsc` checks that `emit` takes the members of the event union and nothing else. */
export class EmitTypeCheck extends CodiembCommand<typeof EmitTypeCheck> {
  protected async exec(): Promise<void> {
    this.emit({type: 'backend', name: 'cpu', reason: 'always there'})
    this.emit({type: 'done', command: 'merge', out: 'o', summary: {tensors: 1, merged: 1, copied: 0, parameters: 1, mergedParameters: 1, meanWeights: [1], seconds: 0}})
    // @ts-expect-error: no event has type "progress"
    this.emit({type: 'progress', done: 1})
    // @ts-expect-error: a checkpoint event has no loss
    this.emit({type: 'checkpoint', path: 'x', step: 1, loss: 2})
    // @ts-expect-error: a status event needs its message
    this.emit({type: 'status'})
    // @ts-expect-error: every done event says which command finished
    this.emit({type: 'done', out: 'o'})
    // @ts-expect-error: an arbitrary record is not an event
    this.emit({type: 'backend', name: 'cpu', reason: 'x'} as Record<string, unknown>)
  }
}
