/**
 * The file row numbers of a streamed dataset's usable rows (ascending), held by whichever list is
 * shorter: the rows left out (IR rows with too few negatives — usually none, so nothing is held per
 * row) or the rows kept (4 bytes each). With D the rows left out, sorted, usable row i is file row
 * i + #{k : D[k] − k ≤ i} (D[k] − k usable rows lie before the k-th row left out).
 */
export class RowNumbers implements Iterable<number> {
  private constructor(
    /** Usable rows. */
    readonly length: number,
    private readonly kept?: Int32Array,
    private readonly left?: Int32Array,
  ) {}

  /** The usable rows of a file of `total` rows whose rows `leftOut` (ascending) are not usable. */
  static without(total: number, leftOut: readonly number[]): RowNumbers {
    const usable = total - leftOut.length
    if (leftOut.length <= usable) return new RowNumbers(usable, undefined, Int32Array.from(leftOut))
    const kept = new Int32Array(usable)
    let n = 0
    let k = 0
    for (let row = 0; row < total; row++) {
      if (k < leftOut.length && leftOut[k] === row) k++
      else kept[n++] = row
    }
    return new RowNumbers(usable, kept)
  }

  /** These file rows (ascending), listed. */
  static listed(rows: Int32Array): RowNumbers {
    return new RowNumbers(rows.length, rows)
  }

  /** The file row of usable row `i` (0 ≤ i < length). */
  at(i: number): number {
    if (this.kept) return this.kept[i]!
    const left = this.left!
    let lo = 0
    let hi = left.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (left[mid]! - mid <= i) lo = mid + 1
      else hi = mid
    }
    return i + lo
  }

  *[Symbol.iterator](): Iterator<number> {
    for (let i = 0; i < this.length; i++) yield this.at(i)
  }
}
