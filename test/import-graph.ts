/**
 * The import graph of src/: every relative import (static, dynamic, `export … from`, `new URL(…)` worker
 * files) between src/ files, read with TypeScript's own pre-processor, and the rules the layout keeps:
 * no cycles, and no import from a lower floor to a higher one.
 */
import {existsSync, readFileSync, readdirSync, statSync} from 'node:fs'
import {dirname, join, relative, resolve, sep} from 'node:path'
import ts from 'typescript'

/**
 * Floors from the ground up. A file may import files on its own floor or below, never above.
 * Rooms on one floor do not depend on each other by rule, only by need (no cycles either way).
 */
export const FLOORS: readonly (readonly string[])[] = [
  ['core'],
  ['registry'],
  ['tensor'],
  ['config'],
  ['io'],
  ['data', 'merge'],
  ['model'],
  ['eval'],
  ['train'],
  ['builtins.ts', 'index.ts', 'testing'],
  ['cli', 'quickstart'],
  ['commands'],
]

/** The room of a src-relative path: its first path segment (a folder, or a top-level file). */
export function roomOf(path: string): string {
  return path.split('/')[0]!
}

export function floorOf(path: string): number {
  const room = roomOf(path)
  const i = FLOORS.findIndex((rooms) => rooms.includes(room))
  if (i === -1) throw new Error(`src/${path}: room "${room}" is on no floor of test/import-graph.ts FLOORS`)
  return i
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return walk(p)
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : []
  })
}

/** src-relative file → src-relative files it imports. */
export function importGraph(srcDir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  const rel = (p: string) => relative(srcDir, p).split(sep).join('/')
  for (const file of walk(srcDir)) {
    const text = readFileSync(file, 'utf8')
    const specifiers = ts.preProcessFile(text, true, true).importedFiles.map((i) => i.fileName)
    for (const m of text.matchAll(/new URL\(\s*'(\.[^']+)'\s*,\s*import\.meta\.url\s*\)/g)) specifiers.push(m[1]!)
    const targets = new Set<string>()
    for (const s of specifiers) {
      if (!s.startsWith('.')) continue
      const base = resolve(dirname(file), s)
      const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]
      const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile())
      if (hit && hit.startsWith(srcDir + sep)) targets.add(rel(hit))
    }
    graph.set(rel(file), [...targets].sort())
  }
  return graph
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    index.set(v, counter)
    low.set(v, counter++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

/** Imports from a lower floor to a higher one, as "from -> to" lines. */
export function upwardImports(graph: Map<string, string[]>): string[] {
  const up: string[] = []
  for (const [from, targets] of graph) for (const to of targets) if (floorOf(to) > floorOf(from)) up.push(`${from} -> ${to}`)
  return up
}
