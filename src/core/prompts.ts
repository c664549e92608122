/**
 * The one place where a text and its task instruction become the model input. Training
 * (train/data.ts), evaluation and mining (eval/evaluate.ts, eval/mine.ts) and embedding (the
 * encoder's encode(), model/embed.ts) all build inputs here, so the same example always gives the
 * same characters to the tokenizer, and therefore the same token ids and pooling mask.
 *
 * Template syntax. A template is literal text with placeholders:
 *   {instruction}  the task instruction, inserted verbatim wherever it appears (any number of times);
 *                  `{task}` is a synonym (as in the Qwen3-Embedding and e5-instruct model cards)
 *   {text}         where the text goes, at most once; `{query}` is a synonym. Without it the text
 *                  follows the template.
 * Nothing else is special: other braces are literal, `$` has no meaning, and neither the instruction
 * nor the text is scanned for placeholders. Examples:
 *   `Instruction: {instruction} Query: `        the CoDiEmb paper (text appended)
 *   `Instruct: {task}\nQuery:{query}`          Qwen3-Embedding, e5-instruct
 *   `为这个句子生成表示以用于检索相关文章：{query}`   bge-zh query prompt (no instruction placeholder)
 * A text whose instruction is empty gets no template at all (as it always has: "" disables it).
 *
 * Special tokens are never added here: the tokenizer's post-processor adds [CLS]/[SEP], <s>/</s> or
 * an end-of-text token around the whole model input.
 *
 * Pooling. The part before the text (the prefix) is left out of pooling unless the checkpoint says
 * `include_prompt`: callers hand the prefix (or its length in code points, the unit of token offsets)
 * to the tokenizer, which masks the leading tokens that lie inside it (model/tokenizer/batch.ts).
 * The part after the text (the suffix) is pooled like the text, as the tokenizer's trailing special
 * tokens are: last-token pooling reads the final token, which a suffix supplies (e.g. a template
 * ending in `in one word:"`), and sentence-transformers' include_prompt only ever masks a leading
 * prompt. Truncation to the maximum length cuts the end of the input, so a long text loses its
 * suffix first.
 */
import {CodiembError} from './errors.js'

/** The text placeholder and its synonym. */
export const TEXT_PLACEHOLDERS = ['{text}', '{query}'] as const
/** The instruction placeholder and its synonym. */
export const INSTRUCTION_PLACEHOLDERS = ['{instruction}', '{task}'] as const

/** The CoDiEmb paper's template: the instruction before the text, the text appended. */
export const INSTRUCTION_TEMPLATE = 'Instruction: {instruction} Query: '

/** Which training texts get their dataset's instruction, in which template (the `train.instructions` config section). */
export interface InstructionOptions {
  /** The template (see this module's syntax); paper: "Instruction: {instruction} Query: ". */
  template: string
  /** Apply to IR queries (paper: yes). IR passages never get one. */
  queries: boolean
  /** Apply to both texts of STS pairs (paper: yes). */
  sts: boolean
}

/** The paper's settings: its template, on IR queries and on both texts of STS pairs. */
export const PAPER_INSTRUCTIONS: Readonly<InstructionOptions> = Object.freeze({template: INSTRUCTION_TEMPLATE, queries: true, sts: true})

/** A template that cannot be used, e.g. one that places the text twice. Exit code 2. */
export class PromptTemplateError extends CodiembError {
  override name = 'PromptTemplateError'
}

/** What goes around a text once a template is filled with its instruction: literal characters, no placeholders left. */
export interface Prompt {
  /** Before the text; left out of pooling. */
  readonly prefix: string
  /** After the text; pooled with it. */
  readonly suffix: string
}

/** Nothing around the text. */
export const NO_PROMPT: Prompt = Object.freeze({prefix: '', suffix: ''})

/** The model input for one text. */
export interface PromptedText {
  /** prefix + text + suffix: exactly what the tokenizer receives (it adds the special tokens). */
  input: string
  /** The characters before the text, whose tokens pooling leaves out. */
  prefix: string
  /** The prefix's length in Unicode code points (the unit of token offsets). */
  prefixLength: number
}

const PLACEHOLDER = /\{(?:instruction|task|text|query)\}/g
const INSTRUCTION = Symbol('instruction')
type Piece = string | typeof INSTRUCTION

/** The template cut at its text placeholder, each side as literal pieces and instruction slots. */
function parseTemplate(template: string): {before: Piece[]; after: Piece[]} {
  if (typeof template !== 'string') throw new PromptTemplateError(`instruction template must be a string, got ${JSON.stringify(template)}`)
  const before: Piece[] = []
  const after: Piece[] = []
  let side = before
  let textSeen = false
  let last = 0
  for (const match of template.matchAll(PLACEHOLDER)) {
    side.push(template.slice(last, match.index))
    last = match.index! + match[0].length
    if ((INSTRUCTION_PLACEHOLDERS as readonly string[]).includes(match[0])) {
      side.push(INSTRUCTION)
      continue
    }
    if (textSeen) {
      throw new PromptTemplateError(`instruction template ${JSON.stringify(template)} places the text more than once (${TEXT_PLACEHOLDERS.join(' and ')} may appear once in all)`)
    }
    textSeen = true
    side = after
  }
  side.push(template.slice(last))
  return {before, after}
}

/**
 * Fills `template` with `instruction` (inserted verbatim, every placeholder). An empty or absent
 * instruction gives NO_PROMPT. The template is checked either way, so a bad one fails on first use.
 */
export function fillTemplate(template: string, instruction: string | undefined): Prompt {
  const {before, after} = parseTemplate(template)
  if (!instruction) return NO_PROMPT
  const fill = (pieces: Piece[]) => pieces.map((p) => (p === INSTRUCTION ? instruction : p)).join('')
  return {prefix: fill(before), suffix: fill(after)}
}

/** A literal prefix used as it is (a checkpoint's named prompt, `embed --instruction`): placeholders in it are not read. */
export function literalPrompt(prefix: string): Prompt {
  return prefix ? {prefix, suffix: ''} : NO_PROMPT
}

/** The model input for `text` under `prompt`, with the prefix pooling leaves out. */
export function applyPrompt(prompt: Prompt, text: string): PromptedText {
  return {input: prompt.prefix + text + prompt.suffix, prefix: prompt.prefix, prefixLength: codePointLength(prompt.prefix)}
}

/**
 * The prompt as one string for reports (evaluation results, embeddings metadata): the prefix alone
 * when nothing follows the text (what codiemb has always reported), else `prefix{text}suffix`.
 */
export function describePrompt(prompt: Prompt): string {
  return prompt.suffix === '' ? prompt.prefix : `${prompt.prefix}${TEXT_PLACEHOLDERS[0]}${prompt.suffix}`
}

/** Length of a string in Unicode code points (the unit of token offsets). */
export function codePointLength(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
    }
    n++
  }
  return n
}
