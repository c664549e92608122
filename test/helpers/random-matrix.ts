import {Rng} from '../../src/core/rng.js'

/** A seeded [n × dim] row-major matrix of values uniform in [−1, 1) (search and top-k tests). */
export function randomMatrix(n: number, dim: number, seed: number): Float32Array {
  const random = new Rng(seed)
  return Float32Array.from({length: n * dim}, () => random.next() * 2 - 1)
}
