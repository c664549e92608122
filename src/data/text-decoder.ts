/**
 * The one decoding path from bytes to text for every text input codiemb reads (the text readers of
 * `prepare`, `embed`'s .txt/.jsonl input, the JSON-lines and TSV files `eval` finds): strict
 * decoding in a named encoding, so a file that is not what it claims stops with `file:line` instead
 * of turning into U+FFFD or mojibake.
 *
 * - Encodings are the labels TextDecoder knows (WHATWG Encoding: utf-8, gbk, gb18030, big5,
 *   shift_jis, euc-kr, utf-16le, windows-1252, …); UTF-8 is the default. A byte-order mark at the
 *   start is dropped (UTF-8, UTF-16).
 * - Bytes that are not valid in the encoding are a DataError (exit 2) naming the file, the line,
 *   the byte column and the bytes, with a hint to give `encoding` when the file is UTF-8-invalid.
 * - Streaming: a file is fed in chunks (`write`, then `end`); the decoder cuts each chunk where no
 *   character can straddle the cut, so that a failing piece can be decoded again line by line to
 *   find where it fails. Line numbers count "\n" exactly as the line readers do.
 *
 * Where a cut is safe: in the ASCII-compatible encodings a byte 0x00–0x2F is always a whole
 * character (UTF-8 continuation bytes are 0x80–0xBF; the trail bytes of GBK, GB18030, Big5,
 * Shift_JIS and EUC-* are 0x30 or above), and a line ends at byte 0x0A; in UTF-16 a cut falls
 * between two code units, never after a high surrogate, and a line ends at unit 0x000A.
 */
import {DataError} from './types.js'

/** The encodings suggested when a file is not valid UTF-8. */
const SUGGESTED = 'gbk, gb18030, big5, shift_jis, euc-kr, windows-1252, utf-16le'

/**
 * The canonical name of the text encoding `label` (`latin1` -> `windows-1252`, `UTF8` -> `utf-8`),
 * or a DataError saying which labels are meant; `what` names where the label was given.
 */
export function textEncoding(label: unknown = 'utf-8', what = 'encoding'): string {
  if (typeof label !== 'string' || label.trim() === '')
    throw new DataError(`${what}: expected the name of a text encoding (e.g. utf-8, ${SUGGESTED}), got ${JSON.stringify(label)}`)
  try {
    return new TextDecoder(label).encoding
  } catch {
    throw new DataError(`${what}: unknown text encoding ${JSON.stringify(label)} (expected a label the WHATWG Encoding standard knows, e.g. utf-8, ${SUGGESTED})`)
  }
}

const isUtf16 = (encoding: string) => encoding === 'utf-16le' || encoding === 'utf-16be'

/** Counts "\n" in `text`. */
function newlines(text: string): number {
  let n = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++
  return n
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/** Whether `bytes` decode in `encoding` without an error (`stream`: an unfinished last character is not one). */
function decodes(encoding: string, bytes: Uint8Array, stream: boolean): boolean {
  try {
    new TextDecoder(encoding, {fatal: true, ignoreBOM: true}).decode(bytes, {stream})
    return true
  } catch {
    return false
  }
}

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ')

/**
 * Decodes one text file's bytes strictly, chunk by chunk. `write(chunk)` returns the text decoded so
 * far (possibly ""), `end()` the rest; either throws a DataError at the line where the bytes stop
 * being valid text in the encoding.
 */
export class TextFileDecoder {
  readonly encoding: string
  private readonly decoder: TextDecoder
  private readonly utf16: boolean
  /** Bytes after the last safe cut, not yet decoded. */
  private pending: Uint8Array = new Uint8Array(0)
  /** The 1-based line of the first pending byte, and how many bytes of that line came before it. */
  private line = 1
  private column = 0
  /** Whether the decoder may hold part of a character (after a piece without a safe cut was decoded). */
  private midCharacter = false

  constructor(
    readonly file: string,
    encoding: unknown = 'utf-8',
  ) {
    this.encoding = textEncoding(encoding)
    this.decoder = new TextDecoder(this.encoding, {fatal: true})
    this.utf16 = isUtf16(this.encoding)
  }

  /** Decodes `chunk` up to its last safe cut; the rest waits for the next chunk or `end()`. */
  write(chunk: Uint8Array): string {
    const data = concat(this.pending, chunk)
    let cut = this.safeCut(data)
    // A long run without a safe cut (no byte <= 0x2F for 16 MiB) is decoded anyway, so memory stays bounded.
    const forced = cut === 0 && data.length > 1 << 24
    if (forced) cut = data.length
    if (cut === 0) {
      this.pending = Uint8Array.prototype.slice.call(data)
      return ''
    }
    const head = data.subarray(0, cut)
    // a copy: a view would keep the whole chunk alive
    this.pending = Uint8Array.prototype.slice.call(data, cut)
    let text: string
    try {
      text = this.decoder.decode(head, {stream: true})
    } catch {
      throw this.locate(head, false)
    }
    this.advance(head, text)
    this.midCharacter = forced
    return text
  }

  /** Decodes what is left; an unfinished character at the end of the file is an error. */
  end(): string {
    const rest = this.pending
    this.pending = new Uint8Array(0)
    try {
      const text = this.decoder.decode(rest)
      this.advance(rest, text)
      return text
    } catch {
      throw this.locate(rest, true)
    }
  }

  /** Moves the position past `bytes`, decoded as `text`. */
  private advance(bytes: Uint8Array, text: string): void {
    const breaks = newlines(text)
    this.line += breaks
    this.column = breaks === 0 ? this.column + bytes.length : bytes.length - this.lastLineStart(bytes)
  }

  /** The offset just after the last line break in `bytes` (0 when there is none). */
  private lastLineStart(bytes: Uint8Array): number {
    if (!this.utf16) return bytes.lastIndexOf(0x0a) + 1
    const hiFirst = this.encoding === 'utf-16be'
    for (let i = bytes.length - (bytes.length % 2) - 2; i >= 0; i -= 2) {
      const unit = hiFirst ? (bytes[i] << 8) | bytes[i + 1] : (bytes[i + 1] << 8) | bytes[i]
      if (unit === 0x0a) return i + 2
    }
    return 0
  }

  /** The end of the last whole character after which decoding can restart cleanly (0: none). */
  private safeCut(data: Uint8Array): number {
    if (this.utf16) {
      const hiFirst = this.encoding === 'utf-16be'
      for (let i = data.length - (data.length % 2); i >= 2; i -= 2) {
        const unit = hiFirst ? (data[i - 2] << 8) | data[i - 1] : (data[i - 1] << 8) | data[i - 2]
        if (unit < 0xd800 || unit > 0xdbff) return i
      }
      return 0
    }
    for (let i = data.length - 1; i >= 0; i--) if (data[i] <= 0x2f) return i + 1
    return 0
  }

  /** The pieces of `bytes` that end after a line break (the last one may not), with their offsets. */
  private lines(bytes: Uint8Array): {start: number; end: number}[] {
    const out: {start: number; end: number}[] = []
    let start = 0
    if (this.utf16) {
      const hiFirst = this.encoding === 'utf-16be'
      for (let i = 0; i + 1 < bytes.length; i += 2) {
        const unit = hiFirst ? (bytes[i] << 8) | bytes[i + 1] : (bytes[i + 1] << 8) | bytes[i]
        if (unit === 0x0a) {
          out.push({start, end: i + 2})
          start = i + 2
        }
      }
    } else {
      for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) {
        out.push({start, end: i + 1})
        start = i + 1
      }
    }
    // the rest after the last line break (possibly empty: then it still marks where the next line starts)
    out.push({start, end: bytes.length})
    return out
  }

  /**
   * The error for `bytes` (which began at a clean cut, on line `this.line`) failing to decode: the
   * first line of them that fails on its own, and in it the first byte that cannot start or continue
   * a character. `final`: the bytes end the file, so an unfinished last character is an error too.
   */
  private locate(bytes: Uint8Array, final: boolean): DataError {
    const pieces = this.lines(bytes).filter((p, j, all) => p.end > p.start || all.length === 1)
    for (let j = 0; j < pieces.length; j++) {
      // The first piece continues a character the decoder holds when the previous piece had no safe cut.
      if (j === 0 && this.midCharacter) continue
      const piece = bytes.subarray(pieces[j].start, pieces[j].end)
      const last = j === pieces.length - 1
      if (decodes(this.encoding, piece, last && !final)) continue
      // Binary search for the shortest failing prefix (failing is monotone in the prefix length).
      let lo = 0
      let hi = piece.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (decodes(this.encoding, piece.subarray(0, mid + 1), true)) lo = mid + 1
        else hi = mid
      }
      const column = j === 0 ? this.column : 0
      if (lo === piece.length) return this.error(this.line + j, `the file ends inside a character (bytes ${hex(piece.subarray(Math.max(0, piece.length - 3)))} at the end)`)
      // The offending character starts at the last prefix that decodes completely.
      let start = lo
      while (start > 0 && lo - start < 4 && !decodes(this.encoding, piece.subarray(0, start), false)) start--
      const bad = piece.subarray(start, Math.min(piece.length, lo + 1))
      return this.error(this.line + j, `byte${bad.length === 1 ? '' : 's'} ${hex(bad)} at byte ${column + start + 1} of the line ${bad.length === 1 ? 'is' : 'are'} not a character`)
    }
    return this.error(this.line, 'the bytes cannot be decoded')
  }

  private error(line: number, what: string): DataError {
    const hint =
      this.encoding === 'utf-8'
        ? `; if the file is in another encoding, give it as the reader option encoding (e.g. ${SUGGESTED})`
        : '; check the file, or the encoding given for it'
    return new DataError(`not valid ${this.encoding} text: ${what}${hint}`, {file: this.file, line})
  }
}

/** A whole file's bytes as text, strictly decoded (see TextFileDecoder). */
export function decodeText(file: string, bytes: Uint8Array, encoding: unknown = 'utf-8'): string {
  const decoder = new TextFileDecoder(file, encoding)
  return decoder.write(bytes) + decoder.end()
}
