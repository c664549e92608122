/**
 * STS validation during training (train/run.ts stsSpearman): both texts of a pair get the prompt
 * training gives STS pairs, built by src/core/prompts.ts — including a template with text after the
 * text placeholder — and the score is the cosine Spearman × 100 of what the encoder returns.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {fillTemplate, INSTRUCTION_TEMPLATE, NO_PROMPT, type InstructionOptions, type Prompt} from '../../src/core/prompts.js'
import {stsSpearman} from '../../src/train/run.js'

/** An encoder that records the prompt of each call and embeds a text as [its length, 1]. */
function recordingEncoder(): {prompts: (Prompt | undefined)[]; encode(texts: string[], options: {instruction?: Prompt}): Promise<Float32Array[]>} {
  const prompts: (Prompt | undefined)[] = []
  return {
    prompts,
    async encode(texts, options) {
      prompts.push(options.instruction)
      return texts.map((t) => Float32Array.from([t.length, 1]))
    },
  }
}

/** Pairs whose cosine falls as the gold score falls (the second text grows longer). */
const set = {name: 'toy-sts', texts1: ['a', 'a', 'a'], texts2: ['b', 'bbb', 'bbbbbbbb'], instruction: 'judge similarity', gold: Float32Array.from([1, 0.5, 0])}

describe('stsSpearman', () => {
  it('encodes both texts with the training prompt, a template with a suffix included', async () => {
    const encoder = recordingEncoder()
    const instructions: InstructionOptions = {template: '<{instruction}> {text} </s>', queries: true, sts: true}
    const scores = await stsSpearman(encoder, [set], instructions, 8)
    const expected = fillTemplate(instructions.template, set.instruction)
    assert.deepEqual(expected, {prefix: '<judge similarity> ', suffix: ' </s>'})
    assert.deepEqual(encoder.prompts, [expected, expected])
    assert.ok(Math.abs(scores['toy-sts']! - 100) < 1e-9, `Spearman ${scores['toy-sts']}`)
  })

  it('gives no prompt when training gives STS pairs none, or the set has no instruction', async () => {
    const off = recordingEncoder()
    await stsSpearman(off, [set], {template: INSTRUCTION_TEMPLATE, queries: true, sts: false}, 8)
    assert.deepEqual(off.prompts, [NO_PROMPT, NO_PROMPT])
    const none = recordingEncoder()
    await stsSpearman(none, [{...set, instruction: ''}], {template: INSTRUCTION_TEMPLATE, queries: true, sts: true}, 8)
    assert.deepEqual(none.prompts, [NO_PROMPT, NO_PROMPT])
  })
})
