/**
 * Finding values that are not finite numbers (NaN, ±Infinity) in plain arrays of numbers: weights
 * and optimizer moments read from safetensors files are checked with it before they are used, so a
 * damaged checkpoint is refused naming the tensor instead of spreading NaN through training.
 */

/** The index of the first NaN or ±Infinity in `values`, or −1 when every value is finite. */
export function firstNonFiniteIndex(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    // x − x is 0 for every finite x and NaN for NaN and ±Infinity; one comparison per value.
    const x = values[i]!
    if (x - x !== 0) return i
  }
  return -1
}
