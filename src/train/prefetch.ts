/**
 * Runs `prepare` up to `depth` items ahead of the consumer, in order. Counts the items that were not
 * ready when asked for and the time spent waiting for them (with tokenization in a worker thread the
 * next batches are tokenized while the current step runs, so the loop should rarely wait).
 */
export class Prefetcher<I, O> {
  private readonly queue: {promise: Promise<O>; ready: boolean}[] = []
  private done = false
  readonly stats = {batches: 0, notReady: 0, waitSeconds: 0}

  constructor(private readonly source: Iterator<I>, private readonly prepare: (item: I) => Promise<O>, private readonly depth: number) {
    this.fill()
  }

  private fill(): void {
    while (!this.done && this.queue.length < this.depth) {
      const item = this.source.next()
      if (item.done) {
        this.done = true
        break
      }
      const entry = {promise: this.prepare(item.value), ready: false}
      entry.promise.then(
        () => (entry.ready = true),
        () => {}, // surfaced when consumed
      )
      this.queue.push(entry)
    }
  }

  /** The next prepared item in source order, or undefined once the source is exhausted (or closed). */
  async next(): Promise<O | undefined> {
    const head = this.queue.shift()
    this.fill()
    if (!head) return undefined
    this.stats.batches++
    if (head.ready) return head.promise
    this.stats.notReady++
    const started = performance.now()
    try {
      return await head.promise
    } finally {
      this.stats.waitSeconds += (performance.now() - started) / 1000
    }
  }

  /** Stops reading the source; items already being prepared are dropped. */
  close(): void {
    this.done = true
    this.queue.length = 0
  }
}
