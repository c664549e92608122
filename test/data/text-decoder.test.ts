import {describe, it} from 'node:test'
import assert from 'node:assert/strict'
import {Rng} from '../../src/core/rng.js'
import {decodeText, TextFileDecoder, textEncoding} from '../../src/data/text-decoder.js'
import {DataError} from '../../src/data/types.js'

/** A character of an encoding: its bytes and the text they decode to. */
type Piece = {bytes: number[]; text: string}

const ascii = (s: string): Piece[] => [...s].map((c) => ({bytes: [c.charCodeAt(0)], text: c}))
/** Multi-byte characters given as bytes; their text is what TextDecoder makes of them. */
const multi = (encoding: string, seqs: number[][]): Piece[] =>
  seqs.map((bytes) => {
    const text = new TextDecoder(encoding, {fatal: true}).decode(Uint8Array.from(bytes))
    return {bytes, text}
  })
const units16 = (s: string, be: boolean): Piece[] =>
  [...s].map((c) => {
    const bytes: number[] = []
    for (let i = 0; i < c.length; i++) {
      const u = c.charCodeAt(i)
      bytes.push(...(be ? [u >> 8, u & 0xff] : [u & 0xff, u >> 8]))
    }
    return {bytes, text: c}
  })

const SEP = ascii('ab,"\t 0\n\n\n/:9')
/**
 * Per encoding: its characters (trail bytes in the ASCII range included), and bytes that are invalid
 * in it (a lead byte before a space: Node's ICU decoders let some lone bytes such as GBK's 0xff pass).
 */
const ENCODINGS: {label: string; pieces: Piece[]; invalid: number[]}[] = [
  {label: 'utf-8', pieces: [...SEP, ...multi('utf-8', [[0xc3, 0xa9], [0xe4, 0xbb, 0x8a], [0xf0, 0x9f, 0x98, 0x80]])], invalid: [0xff]},
  {label: 'gbk', pieces: [...SEP, ...multi('gbk', [[0xd6, 0xd0], [0xce, 0xc4], [0x81, 0x40], [0xfe, 0x4f], [0x81, 0x7e]])], invalid: [0x81, 0x20]},
  {label: 'gb18030', pieces: [...SEP, ...multi('gb18030', [[0xd6, 0xd0], [0x81, 0x30, 0x81, 0x30], [0x95, 0x32, 0x82, 0x36], [0x81, 0x40]])], invalid: [0x81, 0x20]},
  {label: 'big5', pieces: [...SEP, ...multi('big5', [[0xa4, 0xa4], [0xa4, 0xe5], [0xa4, 0x40], [0xa5, 0x7e]])], invalid: [0x81, 0x20]},
  {label: 'shift_jis', pieces: [...SEP, ...multi('shift_jis', [[0x93, 0xfa], [0x96, 0x7b], [0x82, 0xa0], [0x83, 0x41], [0xb1]])], invalid: [0x81, 0x20]},
  {label: 'utf-16le', pieces: units16('ab,"\t\n\n/:é中😀', false), invalid: [0x00, 0xd8, 0x41, 0x00]},
  {label: 'utf-16be', pieces: units16('ab,"\t\n\n/:é中😀', true), invalid: [0xd8, 0x00, 0x00, 0x41]},
]

/** Feeds `bytes` to a decoder in random slices (1 byte to a few hundred) and returns the text. */
function decodeInSlices(rng: Rng, encoding: string, bytes: Uint8Array): string {
  const d = new TextFileDecoder('f.txt', encoding)
  let text = ''
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + rng.int(rng.int(2) ? 7 : 300)
    text += d.write(bytes.subarray(i, i + n))
    i += n
  }
  return text + d.end()
}

describe('TextFileDecoder', () => {
  it('decodes every encoding exactly, however the bytes are sliced (200 random texts per encoding)', () => {
    const rng = new Rng(7)
    for (const {label, pieces} of ENCODINGS) {
      for (let t = 0; t < 200; t++) {
        const chosen = Array.from({length: 1 + rng.int(120)}, () => pieces[rng.int(pieces.length)])
        const bytes = Uint8Array.from(chosen.flatMap((p) => p.bytes))
        assert.equal(decodeInSlices(rng, label, bytes), chosen.map((p) => p.text).join(''), `${label} #${t}`)
      }
    }
  })

  it('stops at the line and byte of an invalid sequence, wherever it falls in the slices (200 per encoding)', () => {
    const rng = new Rng(11)
    for (const {label, pieces, invalid} of ENCODINGS) {
      for (let t = 0; t < 200; t++) {
        const before = Array.from({length: rng.int(80)}, () => pieces[rng.int(pieces.length)])
        const after = Array.from({length: rng.int(20)}, () => pieces[rng.int(pieces.length)])
        const head = before.flatMap((p) => p.bytes)
        const line = 1 + before.filter((p) => p.text === '\n').length
        const lastBreak = before.map((p) => p.text).lastIndexOf('\n')
        const column = 1 + before.slice(lastBreak + 1).reduce((n, p) => n + p.bytes.length, 0)
        const bytes = Uint8Array.from([...head, ...invalid, ...after.flatMap((p) => p.bytes)])
        assert.throws(
          () => decodeInSlices(rng, label, bytes),
          (e: unknown) => {
            assert.ok(e instanceof DataError, String(e))
            assert.equal(e.at?.line, line, `${label} #${t}: ${e.message}`)
            assert.match(e.message, new RegExp(`at byte ${column} of the line`), `${label} #${t}`)
            assert.match(e.message, new RegExp(`not valid ${label} text`))
            return true
          },
        )
      }
    }
  })

  it('reports a file that ends inside a character at its last line', () => {
    const bytes = Uint8Array.from([0x61, 0x0a, 0x62, 0x0a, 0xe4, 0xbb])
    assert.throws(() => decodeText('t.txt', bytes), /^DataError: t\.txt:3: not valid utf-8 text: the file ends inside a character/)
    assert.throws(() => decodeText('t.txt', Uint8Array.from([0x61, 0xd6]), 'gbk'), /t\.txt:1: .*ends inside a character/)
  })

  it('names the encoding option when UTF-8 fails, drops a byte-order mark, and reads GBK as GBK', () => {
    const gbk = Uint8Array.from([0xd6, 0xd0, 0xce, 0xc4, 0x0a])
    assert.throws(() => decodeText('g.tsv', gbk), /g\.tsv:1: not valid utf-8 text: bytes d6 d0 at byte 1 of the line are not a character; .*reader option encoding \(e\.g\. gbk/)
    assert.equal(decodeText('g.tsv', gbk, 'gbk'), '中文\n')
    assert.equal(decodeText('b.txt', Uint8Array.from([0xef, 0xbb, 0xbf, 0x68, 0x69])), 'hi')
    assert.equal(decodeText('b.txt', Uint8Array.from([0xff, 0xfe, 0x68, 0x00]), 'utf-16le'), 'h')
  })

  it('knows the WHATWG labels and refuses others with the list it expects', () => {
    assert.equal(textEncoding('UTF8'), 'utf-8')
    assert.equal(textEncoding('latin1'), 'windows-1252')
    assert.equal(textEncoding('GB2312'), 'gbk')
    assert.throws(() => textEncoding('utf-9', 'options.encoding'), /^DataError: options\.encoding: unknown text encoding "utf-9" \(expected .*gbk, gb18030, big5/)
    assert.throws(() => textEncoding('hz-gb-2312'), /unknown text encoding/)
    assert.throws(() => textEncoding(3), /expected the name of a text encoding/)
  })
})
