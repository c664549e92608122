/**
 * Streaming text input shared by the readers: lines with their numbers, JSON values from JSON-lines
 * or from one big JSON array, and file hashing. Memory is bounded by the read chunk plus the longest
 * line (or array element), never by the file.
 *
 * Every function that reads text takes the file's `encoding` (a TextDecoder label, default utf-8)
 * and decodes through TextFileDecoder (text-decoder.ts): bytes that are not valid text in that
 * encoding stop the read with `file:line`, never become U+FFFD.
 */
import {createHash} from 'node:crypto'
import {createReadStream, existsSync, statSync} from 'node:fs'
import {TextFileDecoder} from './text-decoder.js'
import {DataError, type SourceLocation} from './types.js'

const CHUNK = 1 << 20

export interface LineBatch {
  /** 1-based number of lines[0]. */
  firstLine: number
  lines: string[]
}

/** Fails with a clear message when `file` is missing or not a regular file. */
export function requireFile(file: string, what = 'input file'): void {
  if (!existsSync(file)) throw new DataError(`${what} not found: ${file}`)
  if (!statSync(file).isFile()) throw new DataError(`${what} is not a regular file: ${file}`)
}

export function requireDir(dir: string, what = 'input directory'): void {
  if (!existsSync(dir)) throw new DataError(`${what} not found: ${dir}`)
  if (!statSync(dir).isDirectory()) throw new DataError(`${what} is not a directory: ${dir}`)
}

/** A text file's content in pieces, strictly decoded from `encoding` (a byte-order mark is dropped). */
export async function* decodedChunks(file: string, encoding?: string): AsyncGenerator<string> {
  requireFile(file)
  const decoder = new TextFileDecoder(file, encoding)
  for await (const buf of createReadStream(file, {highWaterMark: CHUNK})) {
    const text = decoder.write(buf as Buffer)
    if (text) yield text
  }
  const rest = decoder.end()
  if (rest) yield rest
}

/**
 * Lines of a text file in batches (fewer awaits per line). Line terminators (\n, \r\n) are
 * removed; a final line without a terminator is kept; a BOM is dropped.
 */
export async function* readLineBatches(file: string, encoding?: string): AsyncGenerator<LineBatch> {
  let carry = ''
  let lineNo = 1
  for await (const text of decodedChunks(file, encoding)) {
    const parts = (carry + text).split('\n')
    carry = parts.pop()!
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]
      if (p.charCodeAt(p.length - 1) === 13) parts[i] = p.slice(0, -1)
    }
    if (parts.length) {
      yield {firstLine: lineNo, lines: parts}
      lineNo += parts.length
    }
  }
  if (carry.length) yield {firstLine: lineNo, lines: [carry.endsWith('\r') ? carry.slice(0, -1) : carry]}
}

/** Lines one at a time, with their 1-based numbers. */
export async function* readLines(file: string, encoding?: string): AsyncGenerator<{line: number; text: string}> {
  for await (const batch of readLineBatches(file, encoding)) {
    for (let i = 0; i < batch.lines.length; i++) yield {line: batch.firstLine + i, text: batch.lines[i]}
  }
}

/** A JSON value from a file, or why it could not be parsed, with where it starts. */
export type JsonItem = {at: SourceLocation; value: unknown; raw?: undefined; error?: undefined} | {at: SourceLocation; error: string; raw: string; value?: undefined}

function describeJsonError(error: unknown): string {
  return `malformed JSON: ${(error as Error).message}`
}

/** JSON lines: one value per non-blank line; a line that does not parse becomes an error item. */
export async function* readJsonLines(file: string, encoding?: string): AsyncGenerator<JsonItem> {
  for await (const batch of readLineBatches(file, encoding)) {
    for (let i = 0; i < batch.lines.length; i++) {
      const text = batch.lines[i]
      if (text.trim() === '') continue
      const at = {file, line: batch.firstLine + i}
      try {
        yield {at, value: JSON.parse(text)}
      } catch (error) {
        yield {at, error: describeJsonError(error), raw: text}
      }
    }
  }
}

/**
 * The elements of a top-level JSON array, one at a time, without holding the whole array: a small
 * scanner finds each element's extent (tracking nesting and strings), then JSON.parse reads it.
 * An element that does not parse becomes an error item; a broken array structure throws.
 */
export async function* readJsonArray(file: string, encoding?: string): AsyncGenerator<JsonItem> {
  let line = 1
  let state: 'start' | 'value' | 'in-value' | 'after' | 'done' = 'start'
  let depth = 0
  let inString = false
  let escaped = false
  let element = ''
  let elementLine = 0
  let elementIsContainer = false
  const fail = (what: string, ch: string) => {
    throw new DataError(`malformed JSON array: ${what}, found ${JSON.stringify(ch)}`, {file, line})
  }
  const finishElement = function* (): Generator<JsonItem> {
    const at = {file, line: elementLine}
    try {
      yield {at, value: JSON.parse(element)}
    } catch (error) {
      yield {at, error: describeJsonError(error), raw: element}
    }
    element = ''
  }
  for await (const text of decodedChunks(file, encoding)) {
    // An element that began in an earlier chunk continues from this chunk's first character.
    let segStart = state === 'in-value' ? 0 : -1
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]
      if (state === 'in-value') {
        if (inString) {
          if (escaped) escaped = false
          else if (ch === '\\') escaped = true
          else if (ch === '"') {
            inString = false
            if (!elementIsContainer && depth === 0) {
              // a bare string element ends at its closing quote
            }
          } else if (ch === '\n') line++
          continue
        }
        if (ch === '"') {
          inString = true
          continue
        }
        if (ch === '{' || ch === '[') {
          depth++
          continue
        }
        if (ch === '}' || ch === ']') {
          if (depth === 0) {
            // end of the enclosing array while reading a scalar element
            element += text.slice(segStart, i)
            segStart = -1
            yield* finishElement()
            state = 'done'
            continue
          }
          depth--
          if (depth === 0 && elementIsContainer) {
            element += text.slice(segStart, i + 1)
            segStart = -1
            yield* finishElement()
            state = 'after'
          }
          continue
        }
        if (ch === ',' && depth === 0) {
          element += text.slice(segStart, i)
          segStart = -1
          yield* finishElement()
          state = 'value'
          continue
        }
        if (ch === '\n') line++
        continue
      }
      if (ch === '\n') {
        line++
        continue
      }
      if (ch === ' ' || ch === '\t' || ch === '\r') continue
      if (state === 'start') {
        if (ch !== '[') fail('expected "[" at the start of the file', ch)
        state = 'value'
      } else if (state === 'value') {
        if (ch === ']' && element === '') {
          state = 'done'
          continue
        }
        state = 'in-value'
        elementLine = line
        elementIsContainer = ch === '{' || ch === '['
        depth = elementIsContainer ? 1 : 0
        inString = ch === '"'
        segStart = i
      } else if (state === 'after') {
        if (ch === ',') state = 'value'
        else if (ch === ']') state = 'done'
        else fail('expected "," or "]" after an array element', ch)
      } else if (state === 'done') {
        fail('unexpected content after the end of the array', ch)
      }
    }
    if (segStart !== -1) element += text.slice(segStart)
  }
  if (state !== 'done') {
    if (state === 'start') throw new DataError('empty file: expected a JSON array', {file, line})
    throw new DataError('malformed JSON array: the file ends before the closing "]"', {file, line})
  }
}

/** Detects JSON lines vs one JSON array from the first non-blank character. */
export async function detectJsonFormat(file: string, encoding?: string): Promise<'lines' | 'array'> {
  for await (const text of decodedChunks(file, encoding)) {
    const m = /\S/.exec(text)
    if (m) return m[0] === '[' ? 'array' : 'lines'
  }
  return 'lines'
}

/** sha256 and size of a file, streamed. */
export async function hashFile(file: string): Promise<{sha256: string; bytes: number}> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const buf of createReadStream(file, {highWaterMark: CHUNK})) {
    hash.update(buf as Buffer)
    bytes += (buf as Buffer).byteLength
  }
  return {sha256: hash.digest('hex'), bytes}
}

/** Reads a (possibly dotted) path from a JSON object: `a.b` -> obj.a.b. Undefined when absent. */
export function getPath(obj: unknown, path: string): unknown {
  if (obj === null || typeof obj !== 'object') return undefined
  if (Object.prototype.hasOwnProperty.call(obj, path)) return (obj as Record<string, unknown>)[path]
  if (!path.includes('.')) return undefined
  let cur: unknown = obj
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}

/** A short excerpt of a bad row for error messages and rejects.jsonl. */
export function excerpt(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text
}
