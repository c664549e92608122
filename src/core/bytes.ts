/**
 * Byte sizes as people write them: `141GiB`, `80 GB`, `512MiB`, `1.5TB`, `1048576`. Binary units
 * (KiB, MiB, GiB, TiB: powers of 1024) and decimal ones (KB, MB, GB, TB: powers of 1000); a bare
 * number is bytes; `K`, `M`, `G`, `T` alone are binary (as `free -h` prints them). Case-insensitive.
 */

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  kib: 2 ** 10,
  kb: 1e3,
  m: 2 ** 20,
  mib: 2 ** 20,
  mb: 1e6,
  g: 2 ** 30,
  gib: 2 ** 30,
  gb: 1e9,
  t: 2 ** 40,
  tib: 2 ** 40,
  tb: 1e12,
}

/** Bytes of a size such as "141GiB"; throws a message naming the value when it is not one. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text)
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined
  if (!m || unit === undefined) throw new Error(`expected a size such as 141GiB, 80GB or 512MiB, got ${JSON.stringify(text)}`)
  const bytes = Math.round(Number(m[1]) * unit)
  if (!(bytes > 0)) throw new Error(`expected a positive size, got ${JSON.stringify(text)}`)
  return bytes
}

/** A byte count in binary units with three significant digits: 512 B, 1.50 KiB, 37.2 GiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let i = 0
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024
    i++
  }
  return i === 0 ? `${Math.round(value)} B` : `${value.toPrecision(3)} ${units[i]}`
}
