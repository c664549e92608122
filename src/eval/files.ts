import {existsSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

/**
 * The files below `dir`, depth-first in name order, descending at most `depth` directories;
 * hidden names (leading ".") and the names in `skip` are passed over. A missing path or a file
 * gives []. Shared by the task-data finder (--data-dir) and the report (a run folder).
 */
export function filesBelow(dir: string, depth: number, skip: readonly string[] = []): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return []
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.') || skip.includes(name)) continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) {
      if (depth > 0) out.push(...filesBelow(p, depth - 1, skip))
    } else out.push(p)
  }
  return out
}
