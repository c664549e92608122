/**
 * The `vocab.txt` fallback tokenizer: BERT's basic tokenizer followed by greedy longest-match-first
 * WordPiece, as in Hugging Face `BertTokenizer` (used when a checkpoint ships no tokenizer.json).
 *
 * Basic tokenizer: drop NUL, U+FFFD and control characters and map whitespace to a space; put spaces
 * around CJK ideographs (tokenize_chinese_chars); split on whitespace; when lower-casing, lower-case and
 * strip accents (NFD, drop combining marks) unless strip_accents says otherwise; split off every
 * punctuation character (ASCII symbols count as punctuation, as in BERT). WordPiece then splits each
 * word into the longest vocabulary pieces, continuation pieces prefixed `##`; a word that cannot be
 * split, or is longer than 100 characters, becomes `[UNK]`. Special tokens listed in the vocabulary
 * and found verbatim in the text (e.g. `[MASK]`) are kept whole.
 *
 * Every token carries the character offsets [start, end) into the original text, counted in Unicode
 * code points (as the Rust tokenizers report them).
 */

export interface WordPieceOptions {
  lowercase: boolean
  /** undefined: strip when lower-casing (BERT's behaviour). */
  stripAccents?: boolean
  tokenizeChineseChars: boolean
  unkToken: string
  /** Tokens that must never be split (the special tokens). */
  neverSplit: string[]
  maxInputCharsPerWord?: number
}

export interface WordPieceToken {
  id: number
  start: number
  end: number
}

export class WordPieceTokenizer {
  private readonly unkId: number
  private readonly maxChars: number
  private readonly specialRe: RegExp | undefined

  constructor(
    readonly vocab: Map<string, number>,
    readonly options: WordPieceOptions,
  ) {
    const unk = vocab.get(options.unkToken)
    if (unk === undefined) throw new Error(`unknown token ${options.unkToken} is not in the vocabulary`)
    this.unkId = unk
    this.maxChars = options.maxInputCharsPerWord ?? 100
    const specials = options.neverSplit.filter((s) => vocab.has(s)).sort((a, b) => b.length - a.length)
    this.specialRe = specials.length ? new RegExp(specials.map(escapeRegExp).join('|'), 'gu') : undefined
  }

  /** Parses a vocab.txt (one token per line, id = line number). */
  static parseVocab(text: string): Map<string, number> {
    const vocab = new Map<string, number>()
    const lines = text.split('\n')
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
    lines.forEach((line, i) => {
      const token = line.replace(/\r$/, '')
      if (!vocab.has(token)) vocab.set(token, i)
    })
    return vocab
  }

  /** Tokenizes one text (no special tokens added). */
  tokenize(text: string): WordPieceToken[] {
    const chars = Array.from(text)
    const out: WordPieceToken[] = []
    // Split around verbatim special tokens first; offsets are code point indices.
    let cursor = 0
    if (this.specialRe) {
      this.specialRe.lastIndex = 0
      const utf16ToCp = utf16ToCodePointIndex(text)
      for (let m = this.specialRe.exec(text); m; m = this.specialRe.exec(text)) {
        const start = utf16ToCp(m.index)
        const end = utf16ToCp(m.index + m[0].length)
        this.tokenizeSpan(chars, cursor, start, out)
        out.push({id: this.vocab.get(m[0])!, start, end})
        cursor = end
      }
    }
    this.tokenizeSpan(chars, cursor, chars.length, out)
    return out
  }

  private tokenizeSpan(chars: string[], from: number, to: number, out: WordPieceToken[]): void {
    const {lowercase, tokenizeChineseChars} = this.options
    const stripAccents = this.options.stripAccents ?? lowercase
    // Build words as arrays of (normalised character, original index).
    let word: {c: string; i: number}[] = []
    const flush = () => {
      if (word.length) this.wordPiece(word, out)
      word = []
    }
    for (let i = from; i < to; i++) {
      const ch = chars[i]!
      const cp = ch.codePointAt(0)!
      if (cp === 0 || cp === 0xfffd || isControl(ch)) continue
      if (isWhitespace(ch)) {
        flush()
        continue
      }
      if (tokenizeChineseChars && isCjk(cp)) {
        flush()
        word.push({c: lowercase ? ch.toLowerCase() : ch, i})
        flush()
        continue
      }
      let normalised = lowercase ? ch.toLowerCase() : ch
      if (stripAccents) normalised = normalised.normalize('NFD').replace(/\p{Mn}/gu, '')
      for (const c of Array.from(normalised)) {
        if (isPunctuation(c)) {
          flush()
          word.push({c, i})
          flush()
        } else {
          word.push({c, i})
        }
      }
    }
    flush()
  }

  private wordPiece(word: {c: string; i: number}[], out: WordPieceToken[]): void {
    const start = word[0]!.i
    const end = word[word.length - 1]!.i + 1
    if (word.length > this.maxChars) {
      out.push({id: this.unkId, start, end})
      return
    }
    const pieces: WordPieceToken[] = []
    let s = 0
    while (s < word.length) {
      let e = word.length
      let found: number | undefined
      while (s < e) {
        let sub = ''
        for (let k = s; k < e; k++) sub += word[k]!.c
        if (s > 0) sub = '##' + sub
        found = this.vocab.get(sub)
        if (found !== undefined) break
        e--
      }
      if (found === undefined) {
        out.push({id: this.unkId, start, end})
        return
      }
      pieces.push({id: found, start: word[s]!.i, end: word[e - 1]!.i + 1})
      s = e
    }
    out.push(...pieces)
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function utf16ToCodePointIndex(text: string): (utf16: number) => number {
  return (utf16) => Array.from(text.slice(0, utf16)).length
}

function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || /^\p{Zs}$/u.test(ch)
}

function isControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false
  return /^[\p{Cc}\p{Cf}]$/u.test(ch)
}

function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true
  return /^\p{P}$/u.test(ch)
}

/** The CJK Unified Ideographs blocks BERT treats as Chinese characters. */
function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  )
}
