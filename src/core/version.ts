import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

let cached: string | undefined

/** codiemb's package version (read from its package.json, found from this module in src or dist). */
export function packageVersion(): string {
  if (cached) return cached
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as {name?: string; version?: string}
      if (pkg.name === 'codiemb' && pkg.version) return (cached = pkg.version)
    }
    if (dirname(dir) === dir) return (cached = '0.0.0')
    dir = dirname(dir)
  }
}
