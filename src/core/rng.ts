/**
 * A small seeded pseudo-random generator whose whole state is one 32-bit integer, so samplers and
 * the trainer can save it in a checkpoint and resume the exact same stream (Math.random cannot).
 * Algorithm: mulberry32 (Tommy Ettinger's 32-bit mixer), ample for shuffling and sampling.
 */
export class Rng {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  /** The generator's state; `Rng.fromState(rng.getState())` continues the same stream. */
  getState(): number {
    return this.state
  }

  static fromState(state: number): Rng {
    return new Rng(state)
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** A fresh 32-bit seed (for child generators and tfjs ops that take a seed). */
  seed(): number {
    return Math.floor(this.next() * 4294967296) >>> 0
  }

  /**
   * Fisher–Yates shuffle in place; returns the array. Typed arrays shuffle with the same draws as
   * plain arrays of the same length (the draws depend on the length only), so a plan held in an
   * Int32Array is the permutation a number[] would have got.
   */
  shuffle<A extends {length: number; [index: number]: unknown}>(items: A): A {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const swap = items[i]
      items[i] = items[j]
      items[j] = swap
    }
    return items
  }
}
