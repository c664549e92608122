/**
 * Outputs and clean-up, end to end, as a careless or unlucky user meets them (issue 14, items 1 and
 * 4): the real CLI on a workspace with a tiny model, against what already sits at each output path
 * (a plain file, a folder of notes, another codiemb output, an earlier run), locked outputs,
 * concurrent runs, kills at random moments, read-only and full file systems.
 *
 * Seeded: CODIEMB_TEST_SEED (default 14) picks the workspace's texts, the names and contents of the
 * user's files, which commands meet which hostile state, and when the kills land; a failure names
 * its seed. Full-disk and read-only cases need a small tmpfs (root, as here and in CI); without one
 * they fall back to `ulimit -f` / permissions, and a case that can set up neither is skipped saying
 * why, never passed.
 */
import {after, before, describe, it} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {Rng} from '../../src/core/rng.js'
import {claimOutput, OUTPUT_MARKER, outputLockPath, outputMarkerText} from '../../src/core/outputs.js'
import {readManifest} from '../../src/data/prepare.js'
import {canLimitFileSize, cli, cliAsync, fillUp, leftovers, makeWorkspace, mountTmpfs, remountReadOnly, snapshot, TOKENIZER, trainConfig, unmount, type Workspace} from './outputs-fixtures.js'

const SEED = Number(process.env.CODIEMB_TEST_SEED ?? 14)
const DEAD_PID = 999999999
const sha = (file: string) => snapshot(file)?.['.']

describe(`outputs and clean-up (CODIEMB_TEST_SEED=${SEED})`, () => {
  let ws: Workspace
  const rng = new Rng(SEED)
  before(async () => {
    ws = await makeWorkspace(SEED)
  })
  after(() => rmSync(ws.root, {recursive: true, force: true}))

  /** The command line of each writing command with its output at `out` (`dir`: a scratch folder for its config). */
  const commands = (dir: string): Record<string, {folder: boolean; args: (out: string) => string[]}> => {
    const evalFile = evalConfig(dir)
    return {
    train: {folder: true, args: (out) => ['train', '--config', trainConfig(ws, dir, out, 1)]},
    prepare: {folder: true, args: (out) => ['prepare', '--reader', 'delimited', '--task', 'sts', '--name', 'pairs', '--split', 'test=pairs.tsv', '--label-range', '0:1', '--data-root', ws.root, '--out', out]},
    merge: {folder: true, args: (out) => ['merge', '--base', ws.base, ws.base, '--out', out]},
    'model init': {folder: true, args: (out) => ['model', 'init', '--arch', 'bert', '--tokenizer', TOKENIZER, '--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', '--out', out]},
    eval: {folder: true, args: (out) => ['eval', '--model', ws.base, '--config', evalFile, '--out', out]},
    quickstart: {folder: true, args: (out) => ['quickstart', '--out', out]},
    embed: {folder: false, args: (out) => ['embed', '--model', ws.base, '--input', ws.texts, '--out', out]},
    mine: {folder: false, args: (out) => ['mine', '--model', ws.base, '--input', join(ws.data, 'ir.arrow'), '--corpus', join(ws.data, 'sts.arrow'), '--top-k', '1', '--out', out]},
    report: {folder: false, args: (out) => ['report', ws.root, '--out', out]},
    }
  }
  const evalConfig = (dir: string) => {
    const file = join(dir, 'eval.json')
    writeFileSync(file, JSON.stringify({eval: {dataDir: ws.data, tasks: [{name: 'Toy-STS', type: 'sts', files: {pairs: 'sts.arrow'}}]}}))
    return file
  }
  const REPLACING = new Set(['train', 'merge', 'model init', 'quickstart'])

  it('refuses (exit 2, naming the path) what codiemb did not create or may not replace, --overwrite or not, and leaves it byte for byte', async () => {
    const dir = join(ws.root, 'hostile')
    mkdirSync(dir)
    const word = () => ['notes', 'thesis', 'photos', 'todo', 'draft'][rng.int(5)]!
    const cases: {command: string; state: string; out: string; overwrite: boolean; message: RegExp}[] = []
    const cmds = commands(dir)
    for (const [i, [command, c]] of Object.entries(cmds).entries()) {
      const out = (s: string) => join(dir, `${command.replace(' ', '-')}-${s}`)
      if (c.folder) {
        writeFileSync(out('file'), `${word()} of the user\n`)
        cases.push({command, state: 'a plain file', out: out('file'), overwrite: rng.int(2) === 1, message: /is a file, not a folder/})
        mkdirSync(join(out('notes'), word()), {recursive: true})
        writeFileSync(join(out('notes'), `${word()}.md`), 'keep me')
        cases.push({command, state: "a user's folder", out: out('notes'), overwrite: true, message: /is a folder codiemb did not create .* --overwrite or not/})
        // Another kind of codiemb output: for a seeded half of the commands.
        if (rng.int(2) === 1 || i === 0) {
          mkdirSync(out('other'))
          const other = command === 'prepare' ? 'model' : 'prepared-data'
          writeFileSync(join(out('other'), OUTPUT_MARKER), outputMarkerText(other, 'earlier'))
          writeFileSync(join(out('other'), 'manifest.json'), '{}')
          cases.push({command, state: 'another kind of codiemb output', out: out('other'), overwrite: true, message: /holds .* \(written by codiemb earlier\), not /})
        }
        if (REPLACING.has(command)) {
          mkdirSync(out('earlier'))
          writeFileSync(join(out('earlier'), OUTPUT_MARKER), outputMarkerText(command === 'quickstart' ? 'quickstart-run' : 'model', 'earlier'))
          writeFileSync(join(out('earlier'), 'config.json'), '{}')
          cases.push({command, state: 'an earlier run, without --overwrite', out: out('earlier'), overwrite: false, message: /already holds .* pass --overwrite to replace it/})
        }
      } else {
        mkdirSync(out('folder'))
        writeFileSync(join(out('folder'), 'x'), 'x')
        cases.push({command, state: 'a folder', out: out('folder'), overwrite: true, message: /is a folder, not a file/})
        writeFileSync(out('file'), `${word()} the user wrote\n`)
        cases.push({command, state: "a user's file, without --overwrite", out: out('file'), overwrite: false, message: /exists and was not written by codiemb; pass --overwrite/})
      }
    }
    const before = snapshot(dir)
    // Three at a time: each run refuses before its first step, so they are short.
    for (let i = 0; i < cases.length; i += 3) {
      const batch = cases.slice(i, i + 3).map((k) => ({k, run: cliAsync([...cmds[k.command]!.args(k.out), ...(k.overwrite && k.command !== 'eval' ? ['--overwrite'] : [])], dir)}))
      for (const {k, run} of batch) {
        const r = await run.done
        const what = `${k.command} over ${k.state}${k.overwrite && k.command !== 'eval' ? ' with --overwrite' : ''}`
        assert.equal(r.status, 2, `${what}: ${r.stdout}`)
        const envelope = JSON.parse(r.stdout)
        assert.equal(envelope.name, 'OutputError', what)
        assert.ok(envelope.message.includes(k.out), `${what}: the message names ${k.out}: ${envelope.message}`)
        assert.match(envelope.message, k.message, what)
      }
    }
    // The train configs (written as the runs start) are the only new files.
    const now = snapshot(dir)!
    for (const key of Object.keys(now)) if (/^train-[^/]*\.json$/.test(key)) delete now[key]
    assert.deepEqual(now, before, 'nothing was created, changed or left behind (no lock, no temporary)')
    assert.ok(cases.length >= 20, `${cases.length} cases`)
  })

  it('two training runs into one output: the second is refused, or with --overwrite replaces every checkpoint and the model', async () => {
    const dir = join(ws.root, 'seeds')
    mkdirSync(dir)
    const out = join(dir, 'run')
    const a = cli(['train', '--config', trainConfig(ws, dir, out, 1)], dir)
    assert.equal(a.status, 0, a.stdout + a.stderr)
    const afterA = snapshot(dir)
    const b = cli(['train', '--config', trainConfig(ws, dir, out, 2)], dir)
    assert.equal(b.status, 2)
    assert.match(b.json.message, /run already holds a model written by codiemb train on .*; pass --overwrite to replace it/)
    const {'train-run-2.json': _config, ...unchanged} = snapshot(dir)!
    assert.deepEqual(unchanged, afterA, 'the first run is untouched')
    // What a killed run leaves: a partial checkpoint and a staged model of a dead process.
    const partial = join(out + '-checkpoints', `.checkpoint-4.${DEAD_PID}.0badc0de.tmp`)
    mkdirSync(partial)
    writeFileSync(join(partial, 'trainer_state.json'), '{"version":1,"step":4}')
    mkdirSync(join(dir, `.run.${DEAD_PID}.00c0ffee.tmp`))
    const c = cli(['train', '--config', trainConfig(ws, dir, out, 2), '--overwrite'], dir)
    assert.equal(c.status, 0, c.stdout + c.stderr)
    assert.match(c.json.warnings.join('\n'), /removed 1 temporary file\(s\) left by interrupted runs: .*\.run\.999999999\.00c0ffee\.tmp/)
    assert.match(c.json.warnings.join('\n'), /removed 1 temporary file\(s\) left by interrupted runs: .*\.checkpoint-4\.999999999\.0badc0de\.tmp/)
    const checkpoints = readdirSync(out + '-checkpoints').filter((n) => n !== OUTPUT_MARKER)
    assert.deepEqual(checkpoints.sort(), ['checkpoint-2', 'checkpoint-4'])
    for (const name of checkpoints) assert.equal(JSON.parse(readFileSync(join(out + '-checkpoints', name, 'trainer_state.json'), 'utf8')).seed, 2, `${name} is the second run's`)
    assert.notEqual(sha(join(out, 'model.safetensors')), afterA![join('run', 'model.safetensors')])
    assert.deepEqual(leftovers(dir), [])
  })

  it('a locked output is refused naming its holder, a stale lock is taken over, and concurrent prepares never lose a manifest entry', async () => {
    const dir = join(ws.root, 'locks')
    mkdirSync(dir)
    const out = join(dir, 'prepared')
    const prepareArgs = (name: string) => ['prepare', '--reader', 'delimited', '--task', 'sts', '--name', name, '--split', 'test=pairs.tsv', '--label-range', '0:1', '--data-root', ws.root, '--out', out]
    const lock = outputLockPath(out)
    writeFileSync(lock, JSON.stringify({pid: process.pid, host: hostname(), command: 'train', output: out, startedAt: new Date().toISOString(), nonce: 'live'}))
    const held = cli(prepareArgs('held'), dir)
    assert.equal(held.status, 2)
    assert.match(held.json.message, new RegExp(`prepared is in use by codiemb train \\(pid ${process.pid} on ${hostname()}`))
    writeFileSync(lock, JSON.stringify({pid: DEAD_PID, host: hostname(), command: 'prepare', output: out, startedAt: '2020-01-01T00:00:00Z', nonce: 'dead'}))
    const stale = cli(prepareArgs('stale'), dir)
    assert.equal(stale.status, 0, stale.stdout)
    assert.equal(existsSync(lock), false)
    const names = Array.from({length: 4}, (_, i) => `ds${i}-${rng.int(1000)}`)
    const runs = await Promise.all(names.map((n) => cliAsync(prepareArgs(n), dir).done))
    const succeeded = names.filter((_, i) => runs[i]!.status === 0)
    runs.forEach((r, i) => {
      if (r.status !== 0) {
        assert.equal(r.status, 2, r.stdout)
        assert.match(JSON.parse(r.stdout).message, /is in use by codiemb prepare/, names[i])
      }
    })
    assert.ok(succeeded.length >= 1)
    const manifest = readManifest(out)!
    assert.deepEqual(Object.keys(manifest.datasets).sort(), ['stale', ...succeeded].sort(), 'every successful run is in the manifest, no refused one')
    for (const f of manifest.files) assert.equal(sha(join(out, f.path)), f.sha256, f.path)
    assert.deepEqual(leftovers(dir), [])
  })

  it('a prepare killed at a random moment leaves the old output or the new one, never a mixture; the next run cleans up and succeeds', async () => {
    const dir = join(ws.root, 'kills')
    mkdirSync(dir)
    const big = join(dir, 'big.tsv')
    const lines = readFileSync(ws.pairs, 'utf8')
    writeFileSync(big, lines.repeat(150))
    const out = join(dir, 'prepared')
    const args = (name: string, extra: string[] = []) => ['prepare', '--reader', 'delimited', '--task', 'sts', '--name', name, '--split', `test=${big}`, '--label-range', '0:1', '--data-root', dir, '--out', out, ...extra]
    const started = Date.now()
    assert.equal(cli(args('base'), dir).status, 0)
    // Kills land anywhere in a run as long as the first one took (the machine may be busy).
    const span = Date.now() - started
    const consistent = () => {
      const m = readManifest(out)!
      for (const f of m.files) assert.equal(sha(join(out, f.path)), f.sha256, `${f.path} agrees with manifest.json`)
      return Object.keys(m.datasets).sort()
    }
    const states = new Set<string>()
    for (let k = 0; k < 3; k++) {
      const run = cliAsync(args(k % 2 ? 'base' : 'extra', ['--overwrite']), dir)
      await new Promise((resolve) => setTimeout(resolve, rng.int(span)))
      run.child.kill('SIGKILL')
      await run.done
      // Killed between the two renames of the swap, the output is missing: the next claim restores it.
      if (!existsSync(out)) (await claimOutput(out, {kind: 'tree', content: 'prepared-data', policy: 'add', command: 'test'})).release()
      states.add(consistent().join(','))
    }
    for (const s of states) assert.ok(['base', 'base,extra'].includes(s), s)
    const again = cli(args('extra', ['--overwrite']), dir)
    assert.equal(again.status, 0, again.stdout)
    assert.deepEqual(consistent(), ['base', 'extra'])
    assert.deepEqual(leftovers(dir), [], 'staging folders and locks of killed runs are gone')
    const failed = cli(['prepare', '--reader', 'delimited', '--task', 'sts', '--name', 'bad', '--split', 'test=texts.txt', '--label-range', '0:1', '--data-root', ws.root, '--out', join(dir, 'new', 'out')], dir)
    assert.equal(failed.status, 2)
    assert.equal(existsSync(join(dir, 'new')), false, 'a failed prepare leaves no empty --out (nor the folders it created for it)')
  })

  /**
   * A place holding earlier outputs of train, prepare, merge and embed: a small tmpfs when one can be
   * mounted, else a plain folder (`tmpfs: false`, for the fallbacks: permissions, `ulimit -f`).
   */
  function place(name: string, kilobytes: number): {dir: string; tmpfs: boolean; why?: string} {
    const dir = join(ws.root, name)
    const mounted = mountTmpfs(dir, kilobytes)
    cpSync(ws.base, join(dir, 'run'), {recursive: true})
    cpSync(ws.base, join(dir, 'merged'), {recursive: true})
    const r = cli(['prepare', '--reader', 'delimited', '--task', 'sts', '--name', 'pairs', '--split', 'test=pairs.tsv', '--label-range', '0:1', '--data-root', ws.root, '--out', join(dir, 'prepared')], ws.root)
    assert.equal(r.status, 0, r.stdout)
    writeFileSync(join(dir, 'e.arrow'), readFileSync(join(ws.data, 'sts.arrow')))
    return mounted.ok ? {dir, tmpfs: true} : {dir, tmpfs: false, why: mounted.reason}
  }

  it('read-only outputs: train, prepare, merge and embed fail before their first step (exit 2) and change nothing', async (t) => {
    const {dir: disk, tmpfs, why} = place('readonly', 4096)
    try {
      if (tmpfs) remountReadOnly(disk)
      else if (process.getuid?.() !== 0) spawnSync('chmod', ['-R', 'a-w', disk])
      else return t.skip(`${why}, and permissions do not stop root: no read-only place for this case`)
      const before = snapshot(disk)
      const events = join(ws.root, 'readonly-train.ndjson')
      const runs = {
        train: ['train', '--config', trainConfig(ws, ws.root, join(disk, 'run'), 3), '--overwrite', '--events', events],
        prepare: ['prepare', '--reader', 'delimited', '--task', 'sts', '--name', 'more', '--split', 'test=pairs.tsv', '--label-range', '0:1', '--data-root', ws.root, '--out', join(disk, 'prepared')],
        merge: ['merge', '--base', ws.base, ws.base, '--out', join(disk, 'merged'), '--overwrite'],
        embed: ['embed', '--model', ws.base, '--input', ws.texts, '--out', join(disk, 'e.arrow'), '--overwrite'],
      }
      for (const [command, args] of Object.entries(runs)) {
        const r = cli(args, ws.root)
        assert.equal(r.status, 2, `${command}: ${r.stdout}`)
        assert.match(r.json.message, new RegExp(`codiemb ${command}: cannot write ${disk}/\\S+: (the file system is read-only|permission denied)`), command)
      }
      assert.ok(!readFileSync(events, 'utf8').includes('"type":"step"'), 'train failed before its first step')
      assert.deepEqual(snapshot(disk), before)
    } finally {
      unmount(disk)
    }
  })

  it('a full disk (or a file size limit): exit 1 with a clear message, nothing half-written, the previous output intact', async (t) => {
    const {dir: disk, tmpfs, why} = place('full', 2048)
    try {
      // Without a tmpfs, `ulimit -f` stands in for the full disk: writes past it fail with EFBIG.
      if (!tmpfs && !canLimitFileSize()) return t.skip(`${why}, and ulimit -f cannot be set: no full disk for this case`)
      const limit = tmpfs ? undefined : 128
      const earlier = join(ws.root, 'seeds', 'run-checkpoints')
      if (existsSync(earlier)) cpSync(earlier, join(disk, 'run-checkpoints'), {recursive: true})
      writeFileSync(join(ws.root, 'big.tsv'), readFileSync(ws.pairs, 'utf8').repeat(100))
      if (tmpfs) fillUp(disk, 120)
      const before = snapshot(disk)
      const runs = {
        train: ['train', '--config', trainConfig(ws, ws.root, join(disk, 'run'), 4), '--overwrite'],
        prepare: ['prepare', '--reader', 'delimited', '--task', 'sts', '--name', 'pairs', '--split', 'test=big.tsv', '--label-range', '0:1', '--data-root', ws.root, '--out', join(disk, 'prepared'), '--overwrite'],
        merge: ['merge', '--base', ws.base, ws.base, '--out', join(disk, 'merged'), '--overwrite'],
      }
      const full = (command: string) => new RegExp(`^codiemb ${command}: (no space left to write|the file size limit \\(ulimit -f\\) stopped writing) ${disk}/.*nothing was half-written and what was there is unchanged`)
      for (const [command, args] of Object.entries(runs)) {
        const r = cli(args, ws.root, limit)
        assert.equal(r.status, 1, `${command}: ${r.stdout}`)
        assert.match(r.json.message, full(command))
        assert.deepEqual(snapshot(disk), before, `${command} left the disk as it was`)
      }
      // So full that not even the write probe fits: embed stops before loading the model.
      if (tmpfs) fillUp(disk, 0)
      const embed = cli(['embed', '--model', ws.base, '--input', ws.texts, '--out', join(disk, 'e.arrow'), '--overwrite'], ws.root, tmpfs ? undefined : 4)
      assert.equal(embed.status, 1, embed.stdout)
      assert.match(embed.json.message, full('embed'))
      assert.equal(sha(join(disk, 'e.arrow')), before!['e.arrow'])
      assert.deepEqual(leftovers(disk), [])
    } finally {
      unmount(disk)
    }
  })

  it("single files: a file codiemb wrote is replaced freely, someone else's only with --overwrite", () => {
    const dir = join(ws.root, 'files')
    mkdirSync(dir)
    const arrow = join(dir, 'vectors.arrow')
    writeFileSync(arrow, 'my spreadsheet export (refused without --overwrite: the first case)')
    assert.equal(cli(['embed', '--model', ws.base, '--input', ws.texts, '--out', arrow, '--overwrite'], dir).status, 0)
    const first = sha(arrow)
    const again = cli(['embed', '--model', ws.base, '--input', ws.texts, '--out', arrow, '--no-normalize'], dir)
    assert.equal(again.status, 0, again.stdout)
    assert.notEqual(sha(arrow), first, "codiemb's own embeddings file was replaced without --overwrite")
    const report = join(dir, 'report.html')
    assert.equal(cli(['report', ws.root, '--out', report], dir).status, 0)
    assert.equal(cli(['report', ws.root, '--out', report, '--title', 'again'], dir).status, 0)
    assert.match(readFileSync(report, 'utf8'), /<title>again<\/title>/)
    assert.deepEqual(readdirSync(dir).sort(), ['report.html', 'vectors.arrow'])
  })

  it("eval adds a model's results beside other models' without touching theirs; earlier outputs without a marker keep working", () => {
    const dir = join(ws.root, 'results-case')
    mkdirSync(dir)
    const results = join(dir, 'results')
    const config = evalConfig(dir)
    assert.equal(cli(['eval', '--model', ws.base, '--config', config, '--model-name', 'other', '--out', results], dir).status, 0)
    rmSync(join(results, OUTPUT_MARKER))
    const other = snapshot(join(results, 'other'))
    const mine = cli(['eval', '--model', ws.base, '--config', config, '--model-name', 'mine', '--out', results], dir)
    assert.equal(mine.status, 0, mine.stdout)
    assert.deepEqual(snapshot(join(results, 'other')), other, "the other model's files are untouched")
    assert.ok(existsSync(join(results, OUTPUT_MARKER)), 'an earlier results folder is recognised (summary.json) and marked')
    // An earlier trained model (codiemb_training.json, no marker) is codiemb's: refused without --overwrite, not as foreign.
    const legacy = join(ws.root, 'seeds', 'run')
    rmSync(join(legacy, OUTPUT_MARKER))
    const r = cli(['model', 'init', '--arch', 'bert', '--tokenizer', TOKENIZER, '--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', '--out', legacy], dir)
    assert.equal(r.status, 2)
    assert.match(r.json.message, /already holds a model written by an earlier codiemb; pass --overwrite/)
  })
})
