/**
 * The one temporary-name scheme of src/core/fs-atomic.ts, `.<name>.<pid>.<8 hex>.tmp` beside its
 * target, read back: kept apart from fs-atomic so that error messages (src/core/errors.ts) can
 * name the output a temporary stands for without importing the file operations.
 */

const TEMP_NAME = /^\.(.+)\.(\d+)\.([0-9a-f]{8})\.tmp$/

export interface TempName {
  /**
   * The name the temporary stands in for. A temporary of a temporary (a directory staged beside
   * another staging directory, as when an encoder is saved into a checkpoint being assembled) is
   * traced back to the final name, e.g. "checkpoint-6".
   */
  target: string
  /** The process that created this temporary. */
  pid: number
}

/** Parses a file name of the temporary scheme; undefined for any other name. */
export function parseTempName(name: string): TempName | undefined {
  const m = TEMP_NAME.exec(name)
  if (!m) return undefined
  const pid = Number(m[2])
  let target = m[1]!
  for (let inner = TEMP_NAME.exec(target); inner; inner = TEMP_NAME.exec(target)) target = inner[1]!
  return {target, pid}
}
