/**
 * core/outputs.ts and core/output-lock.ts: what a claim finds, refuses, creates, locks, cleans up
 * and restores, one case per rule of the module docstring.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'
import {CodiembError, EXIT_FAILURE, EXIT_USER_ERROR, exitCodeOf} from '../../src/core/errors.js'
import {
  claimOutput,
  describeWriteError,
  isCodiembOutput,
  lockOutput,
  OUTPUT_MARKER,
  outputLockPath,
  outputMarkerText,
  publishTree,
  readOutputMarker,
  releaseAllOutputs,
  writeOutputDirectory,
  type OutputSpec,
} from '../../src/core/outputs.js'
import {processStartTime} from '../../src/core/output-lock.js'

/** A pid no process has (Linux pids stay below 2^22). */
const DEAD_PID = 999999999

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'codiemb-outputs-'))
}

const MODEL: OutputSpec = {kind: 'tree', content: 'model', policy: 'replace', command: 'test'}
const RESULTS: OutputSpec = {kind: 'dir', content: 'eval-results', policy: 'add', command: 'test'}
const FILE: OutputSpec = {kind: 'file', content: 'report', policy: 'refresh', command: 'test', recognise: (p) => readFileSync(p, 'utf8').startsWith('ours')}

/** Asserts that `promise` is refused as a user error (exit 2) whose message matches `pattern`. */
async function refused(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: Error) => {
    assert.ok(e instanceof CodiembError, `expected a CodiembError, got ${e}`)
    assert.equal(exitCodeOf(e), EXIT_USER_ERROR)
    assert.match(e.message, pattern)
    return true
  })
}

function marked(dir: string, content: Parameters<typeof outputMarkerText>[0] = 'model', createdAt?: string): void {
  mkdirSync(dir, {recursive: true})
  const text = outputMarkerText(content, 'earlier')
  writeFileSync(join(dir, OUTPUT_MARKER), createdAt ? text.replace(/"createdAt": "[^"]+"/, `"createdAt": "${createdAt}"`) : text)
}

test('an absent folder output is created with its marker, locked while claimed; a failed run removes it and the parents it created', async () => {
  const root = tmp()
  try {
    const out = join(root, 'a', 'b', 'results')
    const claim = await claimOutput(out, RESULTS)
    assert.equal(claim.found, 'absent')
    assert.equal(readOutputMarker(out)?.content, 'eval-results')
    const lock = JSON.parse(readFileSync(outputLockPath(out), 'utf8'))
    assert.deepEqual([lock.pid, lock.host, lock.command, lock.output], [process.pid, hostname(), 'test', out])
    claim.release({ok: false})
    assert.equal(existsSync(join(root, 'a')), false, 'nothing of a failed run is left')
    const kept = await claimOutput(out, RESULTS)
    writeFileSync(join(out, 'x.json'), '{}')
    kept.release({ok: false})
    assert.ok(existsSync(join(out, 'x.json')), 'a folder something was written into stays after a failure')
    mkdirSync(join(root, 'users-empty'))
    const emptyClaim = await claimOutput(join(root, 'users-empty'), RESULTS)
    assert.equal(emptyClaim.found, 'empty')
    emptyClaim.release({ok: false})
    assert.deepEqual(readdirSync(join(root, 'users-empty')), [], "a user's empty folder gets its marker back out after a failure, and stays")
    const ok = await claimOutput(join(root, 'c'), RESULTS)
    ok.release()
    assert.ok(existsSync(join(root, 'c', OUTPUT_MARKER)), 'a successful run keeps its (empty) folder')
    assert.equal(existsSync(outputLockPath(out)), false)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('an absent tree or file output is not created by the claim (it appears complete when written)', async () => {
  const root = tmp()
  try {
    const claim = await claimOutput(join(root, 'model'), MODEL)
    assert.equal(existsSync(join(root, 'model')), false)
    assert.deepEqual(readdirSync(root), ['.model.codiemb-lock'])
    claim.release()
    assert.deepEqual(readdirSync(root), [])
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('what codiemb did not create is refused, --overwrite or not, and left exactly as it was', async () => {
  const root = tmp()
  try {
    const notes = join(root, 'notes')
    mkdirSync(notes)
    writeFileSync(join(notes, 'todo.txt'), 'my notes')
    for (const overwrite of [false, true]) {
      await refused(claimOutput(notes, {...MODEL, overwrite, flag: '--out'}), /--out .*notes is a folder codiemb did not create .* --overwrite or not/)
      await refused(claimOutput(notes, {...RESULTS, overwrite}), /codiemb did not create/)
    }
    const plain = join(root, 'plain')
    writeFileSync(plain, 'a plain file')
    await refused(claimOutput(plain, {...MODEL, overwrite: true}), /plain is a file, not a folder/)
    await refused(claimOutput(notes, FILE), /notes is a folder, not a file/)
    assert.deepEqual(readdirSync(notes), ['todo.txt'])
    assert.equal(readFileSync(plain, 'utf8'), 'a plain file')
    assert.deepEqual(readdirSync(root).sort(), ['notes', 'plain'], 'no lock or temporary is left after a refusal')
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test("a codiemb output: 'replace' needs overwrite, 'add' writes into it, another content is refused even with overwrite", async () => {
  const root = tmp()
  try {
    const model = join(root, 'model')
    marked(model, 'model')
    writeFileSync(join(model, 'config.json'), '{}')
    await refused(claimOutput(model, {...MODEL, hint: 'or --resume'}), /already holds a model written by codiemb earlier on .*; pass --overwrite to replace it, or --resume/)
    const claim = await claimOutput(model, {...MODEL, overwrite: true})
    assert.equal(claim.found, 'codiemb')
    claim.release()
    await refused(claimOutput(model, {...RESULTS, overwrite: true}), /holds a model \(written by codiemb earlier\), not evaluation results/)
    const results = join(root, 'results')
    marked(results, 'eval-results')
    writeFileSync(join(results, 'other-model.json'), '{}')
    const added = await claimOutput(results, RESULTS)
    assert.equal(added.found, 'codiemb')
    added.release()
    const empty = join(root, 'empty')
    mkdirSync(empty)
    const e = await claimOutput(empty, MODEL)
    assert.equal(e.found, 'empty')
    e.release()
    const killedEarly = join(root, 'killed-early')
    marked(killedEarly, 'checkpoints')
    writeFileSync(join(killedEarly, `.checkpoint-2.${DEAD_PID}.00000001.tmp`), '')
    const k = await claimOutput(killedEarly, {kind: 'dir', content: 'checkpoints', policy: 'replace', command: 'test'})
    assert.equal(k.found, 'empty', 'a folder holding only its marker and dead temporaries holds nothing to protect')
    k.release()
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('folders of earlier codiemb versions (no marker) are recognised by their own records', async () => {
  const root = tmp()
  try {
    const cases: [Parameters<typeof isCodiembOutput>[1], (dir: string) => void][] = [
      ['model', (d) => writeFileSync(join(d, 'codiemb_training.json'), '{}')],
      ['model', (d) => writeFileSync(join(d, 'merge.json'), '{"format":"codiemb-merge/1"}')],
      ['checkpoints', (d) => (mkdirSync(join(d, 'checkpoint-4')), writeFileSync(join(d, 'checkpoint-4', 'trainer_state.json'), '{}'))],
      ['prepared-data', (d) => writeFileSync(join(d, 'manifest.json'), '{"format":"codiemb-prepare-manifest"}')],
      ['eval-results', (d) => (mkdirSync(join(d, 'm', 'r'), {recursive: true}), writeFileSync(join(d, 'm', 'r', 'summary.json'), '{"averages":{}}'))],
      ['quickstart-run', (d) => writeFileSync(join(d, 'quickstart.json'), '{}')],
    ]
    for (const [i, [content, make]] of cases.entries()) {
      const dir = join(root, `legacy-${i}`)
      mkdirSync(dir)
      make(dir)
      assert.ok(isCodiembOutput(dir, content), `${content} case ${i}`)
      const claim = await claimOutput(dir, {kind: 'dir', content, policy: 'add', command: 'test'})
      assert.equal(claim.found, 'legacy')
      claim.release()
      assert.equal(readOutputMarker(dir)?.content, content, 'a folder written into gets its marker')
    }
    const lookalike = join(root, 'hf-model')
    mkdirSync(lookalike)
    writeFileSync(join(lookalike, 'merge.json'), '{"format":"something else"}')
    writeFileSync(join(lookalike, 'config.json'), '{}')
    assert.equal(isCodiembOutput(lookalike, 'model'), false)
    const mixed = join(root, 'mixed-checkpoints')
    mkdirSync(join(mixed, 'checkpoint-1'), {recursive: true})
    writeFileSync(join(mixed, 'checkpoint-1', 'trainer_state.json'), '{}')
    writeFileSync(join(mixed, 'thesis.tex'), '')
    assert.equal(isCodiembOutput(mixed, 'checkpoints'), false, 'a folder with anything else in it is not codiemb checkpoints')
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test("single files: codiemb's are replaced, others only with overwrite", async () => {
  const root = tmp()
  try {
    const ours = join(root, 'ours.html')
    writeFileSync(ours, 'ours: a report')
    const a = await claimOutput(ours, FILE)
    assert.equal(a.found, 'codiemb')
    a.release()
    const theirs = join(root, 'theirs.html')
    writeFileSync(theirs, 'their page')
    await refused(claimOutput(theirs, FILE), /theirs\.html exists and was not written by codiemb; pass --overwrite/)
    const b = await claimOutput(theirs, {...FILE, overwrite: true})
    assert.equal(b.found, 'foreign-file')
    b.release()
    assert.equal(readFileSync(theirs, 'utf8'), 'their page', 'the claim itself writes nothing')
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('locks: a live holder is named and refused; a dead one on this host is taken over; another host is never judged', async () => {
  const root = tmp()
  try {
    const out = join(root, 'model')
    const first = await claimOutput(out, MODEL)
    await refused(claimOutput(out, MODEL), new RegExp(`in use by codiemb test \\(pid ${process.pid} on ${hostname()}, since `))
    first.release()
    const lock = outputLockPath(out)
    const base = {command: 'train', output: out, startedAt: '2020-01-01T00:00:00Z', nonce: 'n'}
    writeFileSync(lock, JSON.stringify({...base, pid: DEAD_PID, host: hostname()}))
    const taken = await claimOutput(out, MODEL)
    assert.equal(JSON.parse(readFileSync(lock, 'utf8')).pid, process.pid, 'a stale lock is taken over')
    taken.release()
    // A live pid whose start time differs from the recorded one is a reused pid: stale.
    writeFileSync(lock, JSON.stringify({...base, pid: process.pid, host: hostname(), procStart: '1'}))
    if (processStartTime(process.pid) !== undefined) (await claimOutput(out, MODEL)).release()
    writeFileSync(lock, JSON.stringify({...base, pid: DEAD_PID, host: 'elsewhere'}))
    await refused(claimOutput(out, MODEL), /in use by codiemb train \(pid 999999999 on elsewhere.*delete .*\.model\.codiemb-lock if that run is gone/)
    writeFileSync(lock, 'garbage')
    await refused(claimOutput(out, MODEL), /locked by .*which codiemb cannot read/)
    const other = await claimOutput(out, {...MODEL, lock: false})
    other.release()
    assert.equal(readFileSync(lock, 'utf8'), 'garbage', 'a claim without the lock (a rank other than 0) leaves the lock alone')
    rmSync(lock)
    // releasing removes only this claim's own lock
    const mine = lockOutput(out, 'test')
    writeFileSync(lock, JSON.stringify({...base, pid: DEAD_PID, host: hostname(), nonce: 'another'}))
    mine()
    assert.ok(existsSync(lock), "a lock that is no longer this run's is not removed")
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test("dead writers' temporaries are removed inside and beside the output; live ones are kept", async () => {
  const root = tmp()
  try {
    const ckpt = join(root, 'ckpt')
    marked(ckpt, 'checkpoints')
    mkdirSync(join(ckpt, `.checkpoint-8.${DEAD_PID}.0badc0de.tmp`))
    writeFileSync(join(ckpt, `.model.safetensors.${DEAD_PID}.00000001.tmp`), 'partial')
    writeFileSync(join(ckpt, `.live.${process.pid}.00000002.tmp`), 'in progress')
    mkdirSync(join(root, `.ckpt.${DEAD_PID}.00000003.tmp`))
    writeFileSync(join(root, `.other.${DEAD_PID}.00000004.tmp`), 'not this output')
    const claim = await claimOutput(ckpt, {kind: 'dir', content: 'checkpoints', policy: 'add', command: 'test'})
    assert.deepEqual(claim.removedTemps.map((p) => p.slice(root.length + 1)).sort(), [
      `.ckpt.${DEAD_PID}.00000003.tmp`,
      `ckpt/.checkpoint-8.${DEAD_PID}.0badc0de.tmp`,
      `ckpt/.model.safetensors.${DEAD_PID}.00000001.tmp`,
    ])
    claim.release()
    assert.deepEqual(readdirSync(ckpt).sort(), [OUTPUT_MARKER, `.live.${process.pid}.00000002.tmp`].sort())
    assert.ok(existsSync(join(root, `.other.${DEAD_PID}.00000004.tmp`)))
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('a run that died between the two renames of a replacement: the newest complete copy is restored, incomplete ones removed', async () => {
  const root = tmp()
  try {
    const out = join(root, 'prepared')
    const old = join(root, `.prepared.${DEAD_PID}.0000000a.tmp`)
    const staged = join(root, `.prepared.${DEAD_PID}.0000000b.tmp`)
    const partial = join(root, `.prepared.${DEAD_PID}.0000000c.tmp`)
    marked(old, 'prepared-data', '2024-01-01T00:00:00.000Z')
    marked(staged, 'prepared-data', '2024-06-01T00:00:00.000Z')
    writeFileSync(join(staged, 'manifest.json'), 'new')
    mkdirSync(partial)
    writeFileSync(join(partial, 'half.arrow'), '')
    const claim = await claimOutput(out, {kind: 'tree', content: 'prepared-data', policy: 'add', command: 'test'})
    assert.equal(claim.restored, staged)
    assert.equal(claim.found, 'codiemb')
    assert.equal(readFileSync(join(out, 'manifest.json'), 'utf8'), 'new')
    claim.release()
    assert.deepEqual(readdirSync(root), ['prepared'])
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test("the run's own --events file does not make a folder non-empty, and is refused inside a folder replaced whole", async () => {
  const root = tmp()
  try {
    const out = join(root, 'run')
    mkdirSync(out)
    writeFileSync(join(out, 'events.ndjson'), '')
    const claim = await claimOutput(out, {...RESULTS, ownFiles: [join(out, 'events.ndjson')]})
    assert.equal(claim.found, 'empty')
    claim.release()
    await refused(claimOutput(out, {...MODEL, ownFiles: [join(out, 'events.ndjson')]}), /events\.ndjson is inside .*run, which codiemb test replaces as a whole/)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('a symbolic link to an output folder stays a link: the folder it points to is what gets written', async () => {
  const root = tmp()
  try {
    const real = join(root, 'big-disk', 'model')
    marked(real, 'model')
    symlinkSync(real, join(root, 'model'))
    const claim = await claimOutput(join(root, 'model'), {...MODEL, overwrite: true})
    assert.equal(claim.path, real)
    await writeOutputDirectory(join(root, 'model'), 'model', 'test', (dir) => writeFileSync(join(dir, 'config.json'), '{"new":1}'))
    claim.release()
    assert.equal(readFileSync(join(root, 'model', 'config.json'), 'utf8'), '{"new":1}')
    assert.equal(readOutputMarker(real)?.command, 'test')
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('publishTree swaps in the staged folder carrying what it keeps of the old one, with a fresh marker, leaving no temporary', async () => {
  const root = tmp()
  try {
    const out = join(root, 'prepared')
    marked(out, 'prepared-data', '2020-01-01T00:00:00.000Z')
    mkdirSync(join(out, 'a'))
    writeFileSync(join(out, 'a', 'x.arrow'), 'old a')
    mkdirSync(join(out, 'b'))
    writeFileSync(join(out, 'b', 'x.arrow'), 'old b')
    writeFileSync(join(out, 'manifest.json'), 'old manifest')
    writeFileSync(join(out, `.half.${DEAD_PID}.00000001.tmp`), '')
    const staging = join(root, `.prepared.${process.pid}.0000000f.tmp`)
    mkdirSync(join(staging, 'b'), {recursive: true})
    writeFileSync(join(staging, 'b', 'x.arrow'), 'new b')
    writeFileSync(join(staging, 'manifest.json'), 'new manifest')
    publishTree(out, staging, {content: 'prepared-data', command: 'prepare', carry: (name) => name !== 'manifest.json'})
    assert.deepEqual(readdirSync(out).sort(), [OUTPUT_MARKER, 'a', 'b', 'manifest.json'])
    assert.deepEqual(['a', 'b'].map((d) => readFileSync(join(out, d, 'x.arrow'), 'utf8')), ['old a', 'new b'])
    assert.equal(readFileSync(join(out, 'manifest.json'), 'utf8'), 'new manifest')
    assert.notEqual(readOutputMarker(out)?.createdAt, '2020-01-01T00:00:00.000Z')
    assert.deepEqual(readdirSync(root), ['prepared'])
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('write errors: no space is exit 1, read-only or forbidden exit 2, both naming the outputs; other errors pass through', () => {
  const err = (code: string) => Object.assign(new Error(`${code}: oops, write`), {code})
  const full = describeWriteError(err('ENOSPC'), ['/x/model', '/x/model-checkpoints'], 'train')!
  assert.equal(exitCodeOf(full), EXIT_FAILURE)
  assert.match(full.message, /^codiemb train: no space left to write \/x\/model, \/x\/model-checkpoints \(ENOSPC: oops, write\); nothing was half-written/)
  const limit = describeWriteError(err('EFBIG'), ['/x/out.arrow'], 'embed')!
  assert.equal(exitCodeOf(limit), EXIT_FAILURE)
  assert.match(limit.message, /^codiemb embed: the file size limit \(ulimit -f\) stopped writing \/x\/out\.arrow \(EFBIG/)
  for (const code of ['EROFS', 'EACCES', 'EPERM']) {
    const e = describeWriteError(err(code), ['/x/out.arrow'], 'embed')!
    assert.equal(exitCodeOf(e), EXIT_USER_ERROR)
    assert.match(e.message, /cannot write \/x\/out\.arrow: .*choose a writable path/)
  }
  assert.equal(describeWriteError(err('ENOENT'), ['/x'], 'train'), undefined)
  const at = (code: string, path: string) => Object.assign(err(code), {path})
  assert.equal(describeWriteError(at('EACCES', '/data/input.jsonl'), ['/x/out.arrow'], 'embed'), undefined, 'an input it cannot read is not an output it cannot write')
  assert.match(describeWriteError(at('EACCES', '/x/.out.arrow.123.0000000a.tmp'), ['/x/out.arrow'], 'embed')!.message, /cannot write \/x\/out\.arrow: permission denied/)
  assert.match(describeWriteError(at('ENOSPC', '/var/log/events.ndjson'), ['/x/model'], 'train')!.message, /no space left to write \/var\/log\/events\.ndjson/)
  assert.equal(describeWriteError(new CodiembError('bad'), ['/x'], 'train'), undefined)
})

test('releaseAllOutputs ends every claim this process holds (what a signal handler calls)', async () => {
  const root = tmp()
  try {
    await claimOutput(join(root, 'a'), MODEL)
    await claimOutput(join(root, 'b'), RESULTS)
    releaseAllOutputs({ok: false})
    assert.deepEqual(readdirSync(root), [], 'locks removed, the new empty folder of the failed run too')
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
