/**
 * The layout rules of src/ and test/ (README.md § Layout):
 *
 * - the import graph of src/ has no cycles;
 * - a file imports only from its own floor or below. Floors, bottom-up (test/import-graph.ts FLOORS):
 *   core < registry < tensor < config < io < data, merge < model < eval < train
 *   < builtins.ts, index.ts, testing < cli, quickstart < commands;
 * - every room (first path segment) of src/ is on a floor;
 * - no hand-written TypeScript file in src/ is longer than MAX_LINES lines (a file whose first
 *   comment says `@generated` is exempt);
 * - the entry points src/index.ts and src/testing/index.ts only import, re-export and declare types,
 *   so importing codiemb runs no code of its own;
 * - test/ mirrors src/: every folder under test/ is a folder of src/ (test/helpers/ and
 *   test/examples/ excepted), and no top-level test file is named after a folder of src/ (those tests
 *   belong in that folder; top-level tests are about src-wide matters).
 */
import assert from 'node:assert/strict'
import {existsSync, readFileSync, readdirSync, statSync} from 'node:fs'
import {join, relative, sep} from 'node:path'
import {describe, it} from 'node:test'
import ts from 'typescript'
import {REPO_ROOT} from './helpers/env.js'
import {FLOORS, cycles, floorOf, importGraph, roomOf, upwardImports} from './import-graph.js'

const SRC = join(REPO_ROOT, 'src')
const TEST = join(REPO_ROOT, 'test')
const MAX_LINES = 450
/**
 * Folders of test/ that mirror nothing in src/: shared test code, tests of examples/, and the
 * reliability suites (kills, full disks, fuzzed inputs) that cross every room at once.
 */
const TEST_ONLY_FOLDERS = ['helpers', 'examples', 'reliability']

const graph = importGraph(SRC)
const posix = (path: string) => path.split(sep).join('/')

describe('src/ layout', () => {
  it('has no import cycles', () => {
    const found = cycles(graph)
    assert.deepEqual(found, [], `import cycles in src/ (each line one strongly connected set of files):\n${found.map((c) => c.join(' <-> ')).join('\n')}`)
  })

  it(`imports only from the same floor or below (${FLOORS.map((rooms) => rooms.join(', ')).join(' < ')})`, () => {
    const up = upwardImports(graph)
    assert.deepEqual(up, [], `imports from a lower floor to a higher one (floors in test/import-graph.ts FLOORS):\n${up.join('\n')}`)
  })

  it('puts every room of src/ on a floor', () => {
    const rooms = [...new Set([...graph.keys()].map(roomOf))]
    const homeless = rooms.filter((room) => !FLOORS.some((floor) => floor.includes(room)))
    assert.deepEqual(homeless, [], `rooms on no floor of test/import-graph.ts FLOORS: ${homeless.join(', ')}`)
    for (const file of graph.keys()) floorOf(file)
  })

  it(`keeps every hand-written TypeScript file within ${MAX_LINES} lines`, () => {
    const long = [...graph.keys()]
      .map((file) => ({file, text: readFileSync(join(SRC, file), 'utf8')}))
      .filter(({text}) => !/^\s*(\/\/|\/\*)[^\n]*@generated/.test(text))
      .map(({file, text}) => ({file, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0)}))
      .filter(({lines}) => lines > MAX_LINES)
      .sort((a, b) => b.lines - a.lines)
    assert.deepEqual(long.map((f) => `src/${f.file}: ${f.lines} lines`), [], `files over ${MAX_LINES} lines: split them by concern`)
  })

  it('has entry points that only import, re-export and declare types (importing codiemb runs none of its code)', () => {
    const inert = new Set([ts.SyntaxKind.ImportDeclaration, ts.SyntaxKind.ExportDeclaration, ts.SyntaxKind.InterfaceDeclaration, ts.SyntaxKind.TypeAliasDeclaration])
    for (const entry of ['index.ts', 'testing/index.ts']) {
      const source = ts.createSourceFile(entry, readFileSync(join(SRC, entry), 'utf8'), ts.ScriptTarget.ES2022)
      const code = source.statements.filter((s) => !inert.has(s.kind)).map((s) => `src/${entry}:${source.getLineAndCharacterOfPosition(s.getStart(source)).line + 1}: ${ts.SyntaxKind[s.kind]}`)
      assert.deepEqual(code, [], `statements that run when the entry point is imported`)
    }
  })
})

describe('test/ layout', () => {
  const folders = (dir: string): string[] =>
    readdirSync(dir)
      .filter((name) => statSync(join(dir, name)).isDirectory())
      .flatMap((name) => [join(dir, name), ...folders(join(dir, name))])

  it(`mirrors src/: every folder under test/ is a folder of src/ (except ${TEST_ONLY_FOLDERS.map((f) => `test/${f}/`).join(', ')})`, () => {
    const unmatched = folders(TEST)
      .map((dir) => posix(relative(TEST, dir)))
      .filter((dir) => !TEST_ONLY_FOLDERS.includes(dir.split('/')[0]!))
      .filter((dir) => !(existsSync(join(SRC, dir)) && statSync(join(SRC, dir)).isDirectory()))
    assert.deepEqual(unmatched.map((dir) => `test/${dir}/`), [], 'test folders with no src/ folder of the same path')
  })

  it('keeps tests of one folder of src/ out of the top level of test/', () => {
    const rooms = new Set([...graph.keys()].filter((file) => file.includes('/')).map(roomOf))
    const misplaced = readdirSync(TEST)
      .filter((name) => name.endsWith('.test.ts') && rooms.has(name.replace(/\.test\.ts$/, '')))
      .map((name) => `test/${name} belongs in test/${name.replace(/\.test\.ts$/, '')}/`)
    assert.deepEqual(misplaced, [])
  })
})
