/**
 * The vocab.txt WordPiece tokenizer on a worker thread (node:worker_threads), so batches can be
 * tokenized while the main thread runs tensor work (the trainer prefetches the next batches this
 * way). The worker (wordpiece-worker.ts) rebuilds the same tokenizer from the vocabulary file and
 * options and runs the same `encodeWordPieceBatch`, so its batches are identical to main-thread ones;
 * the typed arrays come back by transfer, not copy.
 *
 * Requests are answered in order. The worker is unref'd while idle (it never keeps a process alive)
 * and ref'd while a request is pending. A text that fails rejects its request with a
 * TokenizeTextError naming the text's position and content; a worker that dies rejects every
 * pending request.
 */
import {Worker} from 'node:worker_threads'
import {TokenizeTextError, type TokenBatch, type TokenizeOptions, type WordPieceSetup, type WorkerReply} from './types.js'

interface Pending {
  resolve: (batch: TokenBatch) => void
  reject: (error: Error) => void
}

export class WordPieceWorker {
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private failure?: Error
  /** Batches tokenized by the worker (tests and diagnostics). */
  batches = 0

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => this.settle(reply))
    worker.on('error', (error) => this.fail(new Error(`tokenizer worker failed: ${error.message}`)))
    worker.on('exit', (code) => this.fail(new Error(`tokenizer worker exited (code ${code})`)))
    worker.unref()
  }

  static async start(setup: WordPieceSetup): Promise<WordPieceWorker> {
    // No inherited execArgv: a parent started with --eval/--input-type would make those invalid here.
    const worker = new Worker(new URL('./wordpiece-worker.js', import.meta.url), {workerData: setup, execArgv: []})
    await new Promise<void>((resolve, reject) => {
      worker.once('online', resolve)
      worker.once('error', reject)
    })
    return new WordPieceWorker(worker)
  }

  get threadId(): number {
    return this.worker.threadId
  }

  encodeBatch(texts: string[], options: TokenizeOptions): Promise<TokenBatch> {
    if (this.failure) return Promise.reject(this.failure)
    const id = this.nextId++
    const promise = new Promise<TokenBatch>((resolve, reject) => this.pending.set(id, {resolve, reject}))
    if (this.pending.size === 1) this.worker.ref()
    this.worker.postMessage({id, texts, options})
    return promise
  }

  async terminate(): Promise<void> {
    this.fail(new Error('tokenizer worker was stopped'))
    await this.worker.terminate()
  }

  private settle(reply: WorkerReply): void {
    const request = this.pending.get(reply.id)
    if (!request) return
    this.pending.delete(reply.id)
    if (this.pending.size === 0) this.worker.unref()
    if ('batch' in reply) {
      this.batches++
      request.resolve(reply.batch)
    } else {
      const {message, index, text} = reply.error
      request.reject(index === undefined ? new Error(message) : new TokenizeTextError(message, index, text))
    }
  }

  private fail(error: Error): void {
    this.failure ??= error
    for (const request of this.pending.values()) request.reject(error)
    this.pending.clear()
  }
}
