/**
 * SignalStop (src/cli/signals.ts) on a stand-in process: what the first and the second SIGINT or
 * SIGTERM do to a command that stops cooperatively and to one that does not. The real signals, sent
 * to real commands, are test/reliability/interrupts.test.ts's.
 */
import assert from 'node:assert/strict'
import {EventEmitter} from 'node:events'
import {describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'
import {SignalStop} from '../../src/cli/signals.js'
import {InterruptedError} from '../../src/core/errors.js'

function harness(hardExitMs = 20) {
  const target = new EventEmitter()
  const notices: string[] = []
  const exits: number[] = []
  const stop = new SignalStop({target: target as never, notify: (m) => notices.push(m.trim()), exit: (code) => exits.push(code), hardExitMs}).install()
  return {target, notices, exits, stop}
}

/** Resolves to the work's value, or to the error it rejected with. */
const settle = <T>(p: Promise<T>): Promise<T | unknown> => p.then((v) => v, (e: unknown) => e)

describe('SignalStop', () => {
  it('a command that did not claim the signal is not waited for: the first SIGINT rejects its run with exit 130', async () => {
    const {target, notices, stop} = harness()
    const never = new Promise<string>(() => {})
    const run = settle(stop.race(never))
    target.emit('SIGINT', 'SIGINT')
    const error = (await run) as InterruptedError
    assert.ok(error instanceof InterruptedError)
    assert.equal(error.exitCode, 130)
    assert.equal(stop.signal.aborted, true)
    assert.equal(stop.signal.reason, error)
    assert.deepEqual(notices, ['SIGINT: stopping'])
    stop.uninstall()
  })

  it('a command that claimed the signal is waited for after the first signal; the second stops it at once, then a hard exit follows', async () => {
    const {target, notices, exits, stop} = harness()
    const signal = stop.claim('finishing the current step, then writing a checkpoint')
    let finish!: (v: string) => void
    const work = new Promise<string>((resolve) => (finish = resolve))
    const outcome: {settled?: unknown} = {}
    void settle(stop.race(work)).then((v) => (outcome.settled = v))
    target.emit('SIGTERM', 'SIGTERM')
    await sleep(5)
    assert.equal(signal.aborted, true)
    assert.equal((signal.reason as InterruptedError).exitCode, 143)
    assert.equal(outcome.settled, undefined, 'still waiting for the command to stop by itself')
    assert.deepEqual(notices, ['SIGTERM: finishing the current step, then writing a checkpoint; send it again to stop at once'])
    target.emit('SIGTERM', 'SIGTERM')
    await sleep(0)
    const settled = outcome.settled as unknown as InterruptedError
    assert.ok(settled instanceof InterruptedError)
    assert.match(settled.message, /stopped at once by a second SIGTERM/)
    assert.equal(settled.exitCode, 143)
    assert.deepEqual(exits, [], 'the hard exit waits for catch and finally')
    await sleep(40)
    assert.deepEqual(exits, [143], 'and comes if the process is still there')
    finish('late')
    stop.uninstall()
  })

  it('a claiming command that stops by itself ends with its own result or error; a signal before race() still counts', async () => {
    const {target, stop} = harness()
    const signal = stop.claim('writing a checkpoint')
    const work = new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(new InterruptedError('SIGINT', 'interrupted at step 5'))))
    const run = settle(stop.race(work))
    target.emit('SIGINT', 'SIGINT')
    assert.equal(((await run) as Error).message, 'interrupted at step 5')
    stop.uninstall()

    const early = harness()
    early.target.emit('SIGINT', 'SIGINT')
    assert.ok((await settle(early.stop.race(new Promise(() => {})))) instanceof InterruptedError)
    early.stop.uninstall()
    assert.equal(await harness().stop.race(Promise.resolve('done')), 'done')
  })

  it('uninstall removes its listeners (a later signal gets Node’s default) and listens to nothing else', () => {
    const {target, stop} = harness()
    assert.deepEqual(target.eventNames().sort(), ['SIGINT', 'SIGTERM'])
    stop.uninstall()
    assert.deepEqual(target.eventNames(), [])
    const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]
    const real = new SignalStop().install()
    assert.deepEqual([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], [before[0]! + 1, before[1]! + 1])
    real.uninstall()
    assert.deepEqual([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], before)
  })
})
