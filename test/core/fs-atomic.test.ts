import {spawnSync} from 'node:child_process'
import {test} from 'node:test'
import {pathToFileURL} from 'node:url'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, dirname, join} from 'node:path'
import {
  AtomicFile,
  createTempSiblingDir,
  discardTemp,
  linkTree,
  liveTempPaths,
  parseTempName,
  processAlive,
  removeAtomic,
  removeLiveTemps,
  removeTemps,
  swapDirectory,
  tempSiblingPath,
  writeDirectoryAtomic,
  writeFileAtomic,
} from '../../src/core/fs-atomic.js'
import {REPO_ROOT} from '../helpers/env.js'

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'codiemb-atomic-'))
}

/** A pid no process has (Linux pids stay below 2^22). */
const DEAD_PID = 999999999

test('temporary names follow the one scheme: hidden sibling, pid, 8 random hex digits, .tmp', () => {
  const target = join('/some/dir', 'model.safetensors')
  const a = tempSiblingPath(target)
  const b = tempSiblingPath(target)
  assert.equal(dirname(a), '/some/dir')
  assert.match(basename(a), new RegExp(`^\\.model\\.safetensors\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`))
  assert.notEqual(a, b, 'two temporaries of one target never share a name')
  assert.deepEqual(parseTempName(basename(a)), {target: 'model.safetensors', pid: process.pid})
  // a directory staged beside a staging directory is traced to the final name
  const nested = basename(tempSiblingPath(join('/runs', basename(tempSiblingPath('/runs/checkpoint-6')))))
  assert.deepEqual(parseTempName(nested), {target: 'checkpoint-6', pid: process.pid})
  // an all-digit random part is still read as the random part, not as the pid
  assert.deepEqual(parseTempName('.x.123.45678901.tmp'), {target: 'x', pid: 123})
  for (const other of ['model.safetensors', '.model.tmp', 'x.123.tmp', '.x.123.deadbee.tmp', '.x.abc.deadbeef.tmp', '.x.1.deadbeef.partial'])
    assert.equal(parseTempName(other), undefined, other)
})

test('writeFileAtomic writes and replaces; every writer leaves no temporary behind', () => {
  const dir = tmp()
  try {
    const path = join(dir, 'a.json')
    writeFileAtomic(path, 'first\n')
    writeFileAtomic(path, new Uint8Array([0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64]), {fsync: true})
    assert.equal(readFileSync(path, 'utf8'), 'second')
    assert.deepEqual(readdirSync(dir), ['a.json'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('a failure mid-write leaves the old file intact and no temporary file', () => {
  const dir = tmp()
  try {
    const path = join(dir, 'data.f32')
    writeFileSync(path, 'old complete content')
    const file = AtomicFile.create(path)
    assert.equal(dirname(file.tempPath), dir)
    assert.deepEqual(parseTempName(basename(file.tempPath)), {target: 'data.f32', pid: process.pid})
    assert.throws(() => {
      file.write('half of the new')
      throw new Error('producer failed')
    }, /producer failed/)
    assert.equal(readFileSync(path, 'utf8'), 'old complete content', 'the target is untouched while the temporary is written')
    file.abort()
    file.abort()
    assert.deepEqual(readdirSync(dir), ['data.f32'])
    assert.equal(readFileSync(path, 'utf8'), 'old complete content')
    assert.throws(() => file.write('more'), /write after the file was aborted/)

    // A failing commit (the rename onto a non-empty directory fails) also cleans up after itself.
    const blocked = join(dir, 'blocked')
    mkdirSync(blocked)
    writeFileSync(join(blocked, 'inside'), 'x')
    assert.throws(() => writeFileAtomic(blocked, 'content'))
    assert.deepEqual(readdirSync(dir).sort(), ['blocked', 'data.f32'])
    assert.deepEqual(readdirSync(blocked), ['inside'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('removeTemps removes the leftovers it is asked to: dead writers, or one kind of output', () => {
  const dir = tmp()
  try {
    // a writer killed mid-write leaves its temporary (no abort ran)
    const crashed = AtomicFile.create(join(dir, 'x.f32'))
    crashed.write('partial')
    const dead = `.x.f32.${DEAD_PID}.deadbeef.tmp`
    writeFileSync(join(dir, dead), 'partial')
    writeFileSync(join(dir, 'x.json'), '{}')
    assert.equal(processAlive(process.pid), true)
    assert.equal(processAlive(DEAD_PID), false)
    assert.deepEqual(removeTemps(dir, (t) => !processAlive(t.pid)), [dead])
    assert.deepEqual(readdirSync(dir).sort(), [basename(crashed.tempPath), 'x.json'].sort(), 'a live writer keeps its temporary')
    crashed.abort()

    mkdirSync(join(dir, basename(tempSiblingPath(join(dir, 'checkpoint-4')))))
    mkdirSync(join(dir, basename(tempSiblingPath(join(dir, 'other')))))
    removeTemps(dir, (t) => /^checkpoint-\d+$/.test(t.target))
    assert.deepEqual(readdirSync(dir).map((n) => parseTempName(n)?.target ?? n).sort(), ['other', 'x.json'])
    assert.deepEqual(removeTemps(join(dir, 'absent'), () => true), [])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('swapDirectory replaces a directory whole, keeping the old one until the new one is in place', () => {
  const dir = tmp()
  try {
    const target = join(dir, 'model')
    const first = createTempSiblingDir(target)
    writeFileSync(join(first, 'a'), '1')
    swapDirectory(first, target)
    assert.deepEqual(readdirSync(dir), ['model'])

    const second = createTempSiblingDir(target)
    writeFileSync(join(second, 'b'), '2')
    swapDirectory(second, target)
    assert.deepEqual(readdirSync(target), ['b'], 'nothing of the old directory is mixed into the new one')
    assert.deepEqual(readdirSync(dir), ['model'], 'the old directory is removed once the new one is in place')

    // When the new directory cannot be moved in, the old one is put back.
    assert.throws(() => swapDirectory(join(dir, 'never-staged'), target))
    assert.deepEqual(readdirSync(dir), ['model'])
    assert.equal(readFileSync(join(target, 'b'), 'utf8'), '2')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('writeDirectoryAtomic: a failing fill leaves the previous directory and no staging folder', async () => {
  const dir = tmp()
  try {
    const target = join(dir, 'nested', 'out')
    const value = await writeDirectoryAtomic(target, (staging) => {
      assert.deepEqual(parseTempName(basename(staging)), {target: 'out', pid: process.pid})
      writeFileSync(join(staging, 'v1'), 'one')
      return 42
    })
    assert.equal(value, 42)
    await assert.rejects(
      writeDirectoryAtomic(target, async (staging) => {
        writeFileSync(join(staging, 'v2'), 'two')
        throw new Error('fill failed')
      }),
      /fill failed/,
    )
    assert.deepEqual(readdirSync(join(dir, 'nested')), ['out'])
    assert.deepEqual(readdirSync(target), ['v1'])
    await writeDirectoryAtomic(target, (staging) => writeFileSync(join(staging, 'v3'), 'three'))
    assert.deepEqual(readdirSync(target), ['v3'])
    assert.equal(existsSync(join(dir, 'nested', 'out', 'v1')), false)
    assert.deepEqual(readdirSync(join(dir, 'nested')), ['out'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('live temporaries: tracked from creation until commit, abort, swap or discard; removeLiveTemps removes the rest', async () => {
  const dir = tmp()
  try {
    const before = new Set(liveTempPaths())
    const mine = () => liveTempPaths().filter((p) => !before.has(p))
    const committed = AtomicFile.create(join(dir, 'a.txt'), 'a')
    const aborted = AtomicFile.create(join(dir, 'b.txt'), 'b')
    const open = AtomicFile.create(join(dir, 'c.txt'), 'c')
    const staging = createTempSiblingDir(join(dir, 'out'))
    writeFileSync(join(staging, 'x'), 'x')
    assert.deepEqual(mine().sort(), [committed.tempPath, aborted.tempPath, open.tempPath, staging].sort())
    committed.commit()
    aborted.abort()
    await writeDirectoryAtomic(join(dir, 'model'), (s) => writeFileSync(join(s, 'w'), 'w'))
    await assert.rejects(writeDirectoryAtomic(join(dir, 'failed'), () => Promise.reject(new Error('disk full'))))
    assert.deepEqual(mine().sort(), [open.tempPath, staging].sort())
    discardTemp(staging)
    assert.deepEqual(mine(), [open.tempPath])
    assert.deepEqual(removeLiveTemps().filter((p) => !before.has(p)), [open.tempPath])
    assert.deepEqual(readdirSync(dir).sort(), ['a.txt', 'model'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('a process that exits with temporaries open (process.exit, as after a second Ctrl-C) leaves none; committed files stay', () => {
  const dir = tmp()
  try {
    const url = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'core', 'fs-atomic.js')).href
    const script = `const {AtomicFile, createTempSiblingDir, writeFileAtomic} = await import(${JSON.stringify(url)})
const dir = ${JSON.stringify(dir)}
writeFileAtomic(dir + '/kept.json', '{}')
AtomicFile.create(dir + '/model.safetensors', 'half a tensor')
const staging = createTempSiblingDir(dir + '/checkpoint-7')
AtomicFile.create(staging + '/optimizer.safetensors', 'moments')
setInterval(() => {}, 1000)
process.exit(130)`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8'})
    assert.equal(r.status, 130, r.stderr)
    assert.deepEqual(readdirSync(dir), ['kept.json'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('removeAtomic takes a directory off its name in one rename; an absent path is no error', () => {
  const dir = tmp()
  try {
    mkdirSync(join(dir, 'checkpoint-4', '1_Pooling'), {recursive: true})
    writeFileSync(join(dir, 'checkpoint-4', 'model.safetensors'), 'x')
    writeFileSync(join(dir, 'checkpoint-8'), 'a file')
    removeAtomic(join(dir, 'checkpoint-4'))
    removeAtomic(join(dir, 'checkpoint-8'))
    removeAtomic(join(dir, 'checkpoint-12'))
    assert.deepEqual(readdirSync(dir), [])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('linkTree recreates a tree with hard links (same files, no bytes copied) and symbolic links as links', () => {
  const dir = tmp()
  try {
    const src = join(dir, 'src')
    mkdirSync(join(src, 'sub'), {recursive: true})
    writeFileSync(join(src, 'a.arrow'), 'a')
    writeFileSync(join(src, 'sub', 'b.arrow'), 'b')
    symlinkSync('a.arrow', join(src, 'link'))
    linkTree(src, join(dir, 'dst'))
    assert.equal(statSync(join(dir, 'dst', 'sub', 'b.arrow')).ino, statSync(join(src, 'sub', 'b.arrow')).ino)
    assert.equal(readlinkSync(join(dir, 'dst', 'link')), 'a.arrow')
    assert.equal(readFileSync(join(dir, 'dst', 'link'), 'utf8'), 'a')
    assert.throws(() => linkTree(src, join(dir, 'dst')), /EEXIST/, 'never merges into an existing tree')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('a file is never replaced by a directory: the swap refuses and the file stays', async () => {
  const dir = tmp()
  try {
    const target = join(dir, 'model')
    writeFileSync(target, 'a plain file')
    await assert.rejects(writeDirectoryAtomic(target, (staging) => writeFileSync(join(staging, 'config.json'), '{}')), /model is a file, not a folder: it is not replaced by one/)
    assert.equal(readFileSync(target, 'utf8'), 'a plain file')
    assert.deepEqual(readdirSync(dir), ['model'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
