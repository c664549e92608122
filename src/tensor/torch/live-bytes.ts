/**
 * The bytes behind a backend's live tensors, by storage dtype, and their peak: the torch backend's own
 * count of what a step holds (TorchBackend.liveBytes / takePeakLiveBytes). The tests of bf16
 * activations compare what the tape keeps with them on and off, and the memory estimate's test
 * checks a checkpointed bf16 step against it (on the CPU, oneDNN's scratch memory outside tensors
 * would blur the resident peak). An upper bound: views share storage but are counted in full; fused
 * kernels' stashed state is not counted.
 */
export interface CountedTensor {
  dtype: string
  shape: number[]
  /** bfloat16 storage behind a float32 tfjs dtype. */
  bf16?: boolean
}

export class LiveBytes {
  private readonly byDtype = new Map<string, number>()
  private total = 0
  private peak = 0

  /** Counts a tensor in (sign 1) or out (-1); returns it. */
  count<T extends CountedTensor>(t: T, sign: 1 | -1): T {
    const key = t.bf16 ? 'bfloat16' : t.dtype
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (t.bf16 ? 2 : t.dtype === 'bool' ? 1 : 4)
    this.byDtype.set(key, (this.byDtype.get(key) ?? 0) + sign * bytes)
    this.total += sign * bytes
    if (this.total > this.peak) this.peak = this.total
    return t
  }

  /** Live bytes by storage dtype (bfloat16 for bf16 storage). */
  bytes(): Record<string, number> {
    return Object.fromEntries(this.byDtype)
  }

  /** The highest total since the last call, which starts a new period from the current total. */
  takePeak(): number {
    const peak = this.peak
    this.peak = this.total
    return peak
  }
}
