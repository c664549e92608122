/**
 * The trainer's stop request (TrainerOptions.signal, aborted by the CLI on SIGINT/SIGTERM) and the
 * multi-process seam beside it (agreeToStop): the run stops between steps, keeps every step done in
 * a checkpoint, reports `interrupted`, and a resume from that checkpoint ends with the weights of
 * the uninterrupted run, bit for bit.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import {InterruptedError} from '../../src/core/errors.js'
import {listCheckpoints} from '../../src/train/checkpoint.js'
import {ensureGradients} from '../../src/train/gradients.js'
import type {TrainEvent} from '../../src/train/trainer.js'
import {useTestBackend} from '../helpers/env.js'
import {ToyEncoder} from '../helpers/toy-encoder.js'
import {makeTrainer, weightsOf} from './fixtures.js'

async function setup(): Promise<string> {
  await useTestBackend()
  await ensureGradients()
  return mkdtempSync(join(tmpdir(), 'codiemb-interrupt-'))
}

const checkpointEvery = (dir: string) => ({dir, everyEpoch: false, everySteps: 4, keepLast: 0})

test('an abort between steps finishes the step, checkpoints it, reports interrupted; resuming ends bit-exact', async () => {
  const root = await setup()
  try {
    const reference = new ToyEncoder(1, 8, 97, 4)
    const full = makeTrainer({encoder: reference, checkpoint: checkpointEvery(join(root, 'full')), gradientAccumulation: 2})
    const fullRun = await full.run()

    const encoder = new ToyEncoder(1, 8, 97, 4)
    const controller = new AbortController()
    const events: TrainEvent[] = []
    const stopAt = 5
    const trainer = makeTrainer({
      encoder,
      checkpoint: checkpointEvery(join(root, 'part')),
      gradientAccumulation: 2,
      signal: controller.signal,
      // The CLI aborts from a signal handler, i.e. between two event-loop turns: here, right after step 5 is reported.
      onEvent: (e) => {
        events.push(e)
        if (e.type === 'step' && e.step === stopAt) controller.abort(new InterruptedError('SIGTERM'))
      },
    })
    const part = await trainer.run()
    const dir = join(root, 'part', 'checkpoint-5')
    assert.equal(part.steps, stopAt)
    assert.deepEqual(part.interrupted, {signal: 'SIGTERM', checkpoint: dir})
    assert.equal(part.stoppedEarly, false, 'stoppedEarly is for maxSteps')
    assert.deepEqual(listCheckpoints(join(root, 'part')).map((c) => c.step), [4, 5])
    assert.deepEqual(events.filter((e) => e.type !== 'step').at(-1), {type: 'interrupted', signal: 'SIGTERM', step: 5, totalSteps: fullRun.totalSteps, checkpoint: dir})
    assert.deepEqual(events.filter((e) => e.type === 'checkpoint').map((e) => e.step), [4, 5])

    const resumedEncoder = new ToyEncoder(1, 8, 97, 999)
    await resumedEncoder.loadWeights(dir)
    const resumed = makeTrainer({encoder: resumedEncoder, checkpoint: checkpointEvery(join(root, 'part')), gradientAccumulation: 2})
    await resumed.resumeFrom(dir)
    const rest = await resumed.run()
    assert.equal(rest.steps, fullRun.totalSteps)
    assert.equal(rest.interrupted, undefined)
    assert.deepEqual(await weightsOf(resumedEncoder), await weightsOf(reference))
    for (const t of [full, trainer, resumed]) t.dispose()
    for (const e of [reference, encoder, resumedEncoder]) e.dispose()
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('a stop at a step that already has its checkpoint writes none twice; before the first step nothing is written', async () => {
  const root = await setup()
  try {
    const encoder = new ToyEncoder(1, 8, 97, 4)
    const controller = new AbortController()
    const onStep = (e: TrainEvent) => e.type === 'checkpoint' && e.step === 4 && controller.abort()
    const events: TrainEvent[] = []
    const trainer = makeTrainer({encoder, checkpoint: checkpointEvery(join(root, 'a')), signal: controller.signal, onEvent: (e) => (events.push(e), onStep(e))})
    const part = await trainer.run()
    // A plain abort() (a library caller's) counts as SIGINT.
    assert.deepEqual(part.interrupted, {signal: 'SIGINT', checkpoint: join(root, 'a', 'checkpoint-4')})
    assert.equal(events.filter((e) => e.type === 'checkpoint').length, 1)

    // Resumed with the request already made: no step, and the checkpoint resumed from holds them all.
    const again = makeTrainer({encoder, checkpoint: checkpointEvery(join(root, 'a')), signal: controller.signal})
    await again.resumeFrom(join(root, 'a', 'checkpoint-4'))
    assert.deepEqual((await again.run()).interrupted, {signal: 'SIGINT', checkpoint: join(root, 'a', 'checkpoint-4')})

    const fresh = makeTrainer({encoder, checkpoint: checkpointEvery(join(root, 'b')), signal: controller.signal, onEvent: (e) => events.push(e)})
    const none = await fresh.run()
    assert.equal(none.steps, 0)
    assert.deepEqual(none.interrupted, {signal: 'SIGINT'})
    assert.deepEqual(events.at(-1), {type: 'interrupted', signal: 'SIGINT', step: 0, totalSteps: none.totalSteps})
    assert.deepEqual(readdirSync(root).sort(), ['a'], 'a fresh run stopped before its first step writes nothing')
    for (const t of [trainer, again, fresh]) t.dispose()
    encoder.dispose()
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('agreeToStop (the multi-process seam) decides at every step boundary: the run stops where it says, with a checkpoint', async () => {
  const root = await setup()
  try {
    const encoder = new ToyEncoder(1, 8, 97, 4)
    const asked: [boolean, number][] = []
    const controller = new AbortController()
    const trainer = makeTrainer({
      encoder,
      checkpoint: checkpointEvery(join(root, 'run')),
      signal: controller.signal,
      // As if another rank got the signal: this one was not asked, yet all stop after step 3.
      agreeToStop: async (requested, step) => (asked.push([requested, step]), step === 3),
    })
    const part = await trainer.run()
    assert.deepEqual(asked, [[false, 0], [false, 1], [false, 2], [false, 3]])
    assert.equal(part.steps, 3)
    assert.deepEqual(part.interrupted, {signal: 'SIGINT', checkpoint: join(root, 'run', 'checkpoint-3')})
    trainer.dispose()
    encoder.dispose()
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('a resumed run never prunes the checkpoint it was loaded from (the encoder copies its tokenizer from there); others beyond keepLast go', async () => {
  const root = await setup()
  try {
    const dir = join(root, 'run')
    const keepOne = {dir, everyEpoch: false, everySteps: 2, keepLast: 1}
    const encoder = new ToyEncoder(1, 8, 97, 4)
    const first = makeTrainer({encoder, checkpoint: keepOne, stopAfterSteps: 4})
    await first.run()
    assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [4])
    const resumed = makeTrainer({encoder, checkpoint: keepOne})
    await resumed.resumeFrom(join(dir, 'checkpoint-4'))
    const rest = await resumed.run()
    assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [4, rest.totalSteps])
    for (const t of [first, resumed]) t.dispose()
    encoder.dispose()
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
