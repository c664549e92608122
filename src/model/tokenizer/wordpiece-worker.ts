/**
 * Worker-thread entry of WordPieceWorker (wordpiece-thread.ts): builds the WordPiece tokenizer from
 * workerData once, then answers {id, texts, options} messages with a token batch (buffers
 * transferred) or with the error of the text that failed.
 */
import {readFileSync} from 'node:fs'
import {parentPort, workerData} from 'node:worker_threads'
import {encodeWordPieceBatch} from './batch.js'
import {TokenizeTextError, type TokenizeOptions, type WordPieceSetup, type WorkerReply} from './types.js'
import {WordPieceTokenizer} from './wordpiece.js'

const setup = workerData as WordPieceSetup
const tokenizer = new WordPieceTokenizer(WordPieceTokenizer.parseVocab(readFileSync(setup.vocabPath, 'utf8')), setup.options)
const port = parentPort!

port.on('message', ({id, texts, options}: {id: number; texts: string[]; options: TokenizeOptions}) => {
  let reply: WorkerReply
  try {
    const batch = encodeWordPieceBatch(tokenizer, setup, texts, options)
    reply = {id, batch}
    const buffers = [batch.inputIds, batch.attentionMask, batch.tokenTypeIds, batch.offsets, batch.specialTokensMask, batch.poolMask].map((a) => a.buffer as ArrayBuffer)
    port.postMessage(reply, buffers)
    return
  } catch (error) {
    const e = error as Error
    reply = {id, error: e instanceof TokenizeTextError ? {message: e.message, index: e.index, text: typeof e.text === 'string' ? e.text : String(e.text)} : {message: e.message}}
  }
  port.postMessage(reply)
})
