/**
 * PACKAGE TEST (slower than most: 8–11 s on two idle cores, most of it npm pack and two TypeScript
 * compilations; backend-independent, so it runs in the cpu pass of scripts/run-tests.mjs only).
 *
 * The published package as a user and a plugin author meet it: `npm pack` of this checkout,
 * unpacked into a temporary project (test/helpers/packed.ts says how, and why not `npm install`),
 * then used only through its entry points 'codiemb' and 'codiemb/testing':
 *
 * - the tarball holds the compiled API with its declarations, the CLI and its manifest, no tests;
 * - every package the packed code imports is declared in `dependencies`;
 * - a small TypeScript plugin with one entry of every kind type-checks against it (tsc --noEmit,
 *   strict), and entries that break a contract do not;
 * - `import('codiemb')` runs no code of its own, and builds the built-in registry;
 * - examples/codiemb-plugin-example builds against it, passes its own tests (which run
 *   codiemb/testing's loss properties on its loss) and, linked into the installed CLI, shows its
 *   entries in `codiemb list`.
 *
 * Needs the build (dist/), node_modules from `npm ci`, npm and tar; no network, no ../shared.
 * Everything it writes lives in one temporary directory, removed at the end.
 */
import assert from 'node:assert/strict'
import {cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {builtinModules} from 'node:module'
import {join, relative} from 'node:path'
import {after, before, describe, it} from 'node:test'
import ts from 'typescript'
import {REPO_ROOT, TEST_BACKEND} from './helpers/env.js'
import {installPacked, type PackedInstall} from './helpers/packed.js'

const EXAMPLE = join(REPO_ROOT, 'examples', 'codiemb-plugin-example')
/** Strict settings for the plugins' type checks; skipLibCheck because tfjs-core's own .d.ts files need @types it does not declare. */
const TSCONFIG = {
  compilerOptions: {target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noImplicitOverride: true, skipLibCheck: true, types: ['node']},
}

// Backend-independent (the runtime checks select cpu themselves): run it in the cpu pass of
// scripts/run-tests.mjs only, not again for torch.
const skip = TEST_BACKEND !== 'cpu' && `backend-independent; runs in the cpu pass (this pass: ${TEST_BACKEND})`

describe('packed package (npm pack → temporary project)', {skip}, () => {
  let packed: PackedInstall
  const tsc = (project: string) => packed.node([join(packed.root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project])

  before(() => {
    packed = installPacked(['typescript', '@types/node'])
  })
  after(() => packed?.remove())

  it('holds the compiled API with declarations, the CLI, its manifest and help text, and no tests', () => {
    for (const file of ['package.json', 'bin/run.js', 'oclif.manifest.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/testing/index.js', 'dist/src/testing/index.d.ts', 'dist/src/builtins.js', 'messages/root.md', 'messages/config-print.md'])
      assert.ok(packed.files.includes(file), `the tarball lacks ${file}`)
    assert.deepEqual(packed.files.filter((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.startsWith('src/')), [])
  })

  it('imports only packages it declares in dependencies', () => {
    const declared = new Set(Object.keys(packed.manifest.dependencies ?? {}))
    const builtins = new Set(builtinModules)
    const undeclared: string[] = []
    for (const file of packed.files.filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(join(packed.packageDir, file), 'utf8')
      for (const {fileName: specifier} of ts.preProcessFile(text, true, true).importedFiles) {
        if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier.split('/')[0]!)) continue
        const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!
        if (!declared.has(name)) undeclared.push(`${file} imports ${specifier}`)
      }
    }
    assert.deepEqual(undeclared, [], `packages imported but not in package.json dependencies:\n${undeclared.join('\n')}`)
  })

  it('type-checks a strict TypeScript plugin with an entry of every kind, and rejects entries that break a contract', () => {
    const dir = join(packed.root, 'api-plugin')
    mkdirSync(join(dir, 'src'), {recursive: true})
    writeFileSync(join(dir, 'package.json'), JSON.stringify({name: 'api-plugin', private: true, type: 'module'}))
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({...TSCONFIG, compilerOptions: {...TSCONFIG.compilerOptions, noEmit: true}, include: ['src']}))
    writeFileSync(join(dir, 'src', 'plugin.ts'), API_PLUGIN)
    const r = tsc(dir)
    assert.equal(r.status, 0, `tsc --noEmit on a plugin written against the packed types:\n${r.stdout}${r.stderr}`)
  })

  it('import("codiemb") runs no code of its own; its registry, backends and codiemb/testing work', () => {
    writeFileSync(join(packed.root, 'runtime.mjs'), RUNTIME_CHECK)
    const r = packed.node(['runtime.mjs'])
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
    assert.match(r.stdout, /^ok /m)
  })

  it('builds examples/codiemb-plugin-example, passes its tests, and links it into the installed CLI', () => {
    const example = join(packed.root, 'codiemb-plugin-example')
    cpSync(EXAMPLE, example, {recursive: true, filter: (p) => !/[\\/](node_modules|dist)$/.test(p)})
    const build = tsc(example)
    assert.equal(build.status, 0, `the example does not build against the packed package:\n${build.stdout}${build.stderr}`)
    const tests = packed.node(['--test', 'dist/test/'], {cwd: example})
    assert.equal(tests.status, 0, `the example's tests fail:\n${tests.stdout}${tests.stderr}`)
    assert.match(tests.stdout, /# fail 0/)
    assert.match(tests.stdout, /costs less with similarities ordered like the labels/, 'the example runs the loss properties')

    const home = join(packed.root, 'home')
    const env = {CODIEMB_DATA_DIR: join(home, 'data'), CODIEMB_CACHE_DIR: join(home, 'cache'), CODIEMB_CONFIG_DIR: join(home, 'config')}
    const cli = (...args: string[]) => packed.node([join(packed.packageDir, 'bin', 'run.js'), ...args], {env})
    const link = cli('plugins', 'link', example, '--no-install')
    assert.equal(link.status, 0, link.stderr)
    const list = cli('list', '--json')
    assert.equal(list.status, 0, list.stderr)
    const mine = (list.json as {result: {entries: {kind: string; name: string; plugin: string}[]}}).result.entries
      .filter((e) => e.plugin === 'codiemb-plugin-example')
      .map((e) => `${e.kind}:${e.name}`)
    assert.deepEqual(mine.sort(), ['loss:cosine-mse', 'sampler:sequential'])
    assert.deepEqual((list.json as {warnings: string[]}).warnings, [])
    const registered = readdirSync(join(example, 'dist', 'src')).filter((f) => f.endsWith('.js'))
    assert.deepEqual(registered.sort(), ['cosine-mse.js', 'register.js', 'sequential.js'], `compiled into ${relative(packed.root, example)}/dist/src`)
  })
})

/** A plugin with one entry of every kind, written against the packed types only. */
const API_PLUGIN = `
import * as tf from '@tensorflow/tfjs-core'
import {
  CodiembError, DataError, MergeInputError, Registry, builtinRegistry, embedFile, evaluateTask, evaluateTasks, exitCodeOf,
  initRandomEncoder, loadEncoder, loadRegistry, mergeCheckpoints, prepare, runTasks, runTraining, selectBackend, setupTraining,
  type BackendEntry, type BenchmarkEntry, type EncoderArchitecture, type EncoderEntry, type IrEmbeddings, type IrLoss, type Kind,
  type LossEntry, type LossModule, type Merger, type MergerEntry, type ReadItem, type ReaderEntry, type RegisterHookOptions,
  type Sampler, type SamplerEntry, type StepEvent, type StsEmbeddings, type StsLoss, type TaskDefinition,
} from 'codiemb'
import {lossProperties, type LossProperty} from 'codiemb/testing'

const margin: StsLoss = {
  task: 'sts',
  name: 'margin',
  needsMiddleLayer: false,
  compute: (b: StsEmbeddings) => tf.tidy(() => tf.mean(tf.relu(tf.sub(0.5, tf.sum(tf.mul(b.left, b.right), 1)))) as tf.Scalar),
}
const nearest: IrLoss = {
  task: 'ir', name: 'nearest', needsMiddleLayer: false, positives: 1, negatives: 0,
  compute: (b: IrEmbeddings) => tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(b.queries, b.passages), 1))) as tf.Scalar),
}
const lossModule: LossModule = {create: (options = {}) => (options.ir ? nearest : margin)}
const checks: LossProperty[] = lossProperties(margin, {pairs: 4})

const reader: ReaderEntry = {
  kind: 'reader', name: 'one-pair', description: 'one STS pair', optionsSchema: {type: 'object'}, meta: {tasks: ['sts']},
  load: async () => ({
    optionsSchema: {type: 'object'},
    reader: {
      tasks: ['sts'],
      kindsFor: () => ['sts-pair'],
      sources: async () => [],
      async *read(): AsyncIterable<ReadItem> {
        yield {type: 'row', kind: 'sts-pair', split: 'train', at: {file: 'x', line: 1}, row: {text1: 'a', text2: 'b', score: 1}}
      },
    },
  }),
}
const loss: LossEntry = {kind: 'loss', name: 'margin', description: 'hinge on similarity', optionsSchema: {type: 'object'}, meta: {task: 'sts'}, load: async () => lossModule}
const sampler: SamplerEntry = {
  kind: 'sampler', name: 'nothing', description: 'no batches', optionsSchema: {type: 'object'},
  load: async () => ({
    create: (_datasets, _options, seed): Sampler => ({
      name: 'nothing', epochPlan: () => [], next: () => undefined, nextEpoch() {}, getState: () => ({epoch: 0, position: 0, epochRng: seed}), setState() {}, batchSize: () => 1,
    }),
  }),
}
declare const architecture: EncoderArchitecture
const encoder: EncoderEntry = {kind: 'encoder', name: 'toy', description: 'a toy', meta: {modelTypes: ['toy']}, load: async () => architecture}
const average: Merger<{scale: number}> = {
  name: 'average', needsBase: false, minCheckpoints: 1,
  resolveOptions: (raw) => ({scale: typeof raw.scale === 'number' ? raw.scale : 1}),
  mergeTensor(input, out, options) {
    out.fill(0)
    for (const c of input.checkpoints) for (let i = 0; i < out.length; i++) out[i] += (options.scale * c[i]!) / input.checkpoints.length
    return input.checkpoints.map(() => options.scale / input.checkpoints.length)
  },
}
const merger: MergerEntry = {kind: 'merger', name: 'average', description: 'mean', optionsSchema: {type: 'object'}, load: async () => average}
const task: TaskDefinition = {name: 'T', type: 'sts', split: 'test', mainScore: 'cosine_spearman', languages: ['eng-Latn']}
const benchmark: BenchmarkEntry = {kind: 'benchmark', name: 'one', description: 'one task', load: async () => ({name: 'one', description: 'one task', tasks: [task]})}
const backend: BackendEntry = {
  kind: 'backend', name: 'none', description: 'never available',
  load: async () => ({probe: async () => ({name: 'none', available: false, reason: 'a test'}), init: async () => 'cpu'}),
}

export default async function register({registry}: RegisterHookOptions): Promise<void> {
  registry.register(reader, loss, sampler, encoder, merger, benchmark, backend)
}

// @ts-expect-error a loss entry's load() must resolve to a LossModule
export const notALoss: LossEntry = {kind: 'loss', name: 'x', description: 'x', optionsSchema: {}, load: async () => ({compute: () => 0})}
// @ts-expect-error an entry's kind must match its type
export const wrongKind: SamplerEntry = {kind: 'loss', name: 'x', description: 'x', optionsSchema: {}, load: async () => ({create: () => ({} as Sampler)})}
// @ts-expect-error an STS loss declares its task
export const noTask: StsLoss = {name: 'x', needsMiddleLayer: false, compute: () => tf.scalar(0)}

export const kinds: Kind[] = ['reader', 'loss', 'sampler', 'encoder', 'merger', 'benchmark', 'backend']
export const engines = [prepare, setupTraining, runTraining, mergeCheckpoints, evaluateTasks, runTasks, evaluateTask, embedFile, loadEncoder, initRandomEncoder, selectBackend, loadRegistry, builtinRegistry]
export const exitCodes: number[] = [exitCodeOf(new DataError('x')), exitCodeOf(new MergeInputError('x')), new CodiembError('x', {exitCode: 2}).exitCode]
export const onStep = (event: StepEvent): string => \`step \${event.step}/\${event.totalSteps}: \${JSON.stringify(event.loss)}\`
export const registry: Registry = new Registry()
export {checks}

/** README.md § Library use, as written there. */
export async function libraryUse(): Promise<number> {
  const registry = await builtinRegistry()
  await selectBackend(registry, 'auto')
  const encoder = await loadEncoder('models/bge-small-zh', {registry})
  const scores = await evaluateTasks(encoder, ['ATEC', 'LCQMC'], {registry, dataDir: 'data'})
  return scores.ATEC!.main_score
}
`

/** Run in the temporary project: the package at run time, through its entry points only. */
const RUNTIME_CHECK = `
import assert from 'node:assert/strict'
import {readdirSync} from 'node:fs'
import * as tf from '@tensorflow/tfjs-core'

const files = readdirSync('.').sort()
const listeners = ['exit', 'uncaughtException', 'unhandledRejection', 'warning'].map((e) => process.listenerCount(e))
const env = JSON.stringify(process.env)
const api = await import('codiemb')

// No side effects: no backend registered, no kernel gradient registered, no listener, no file, no env.
assert.deepEqual(Object.keys(tf.engine().registryFactory), [], 'importing codiemb registered a tensor backend')
assert.equal(tf.getGradient('Add'), undefined, 'importing codiemb registered kernel gradients')
assert.deepEqual(['exit', 'uncaughtException', 'unhandledRejection', 'warning'].map((e) => process.listenerCount(e)), listeners)
assert.deepEqual(readdirSync('.').sort(), files)
assert.equal(JSON.stringify(process.env), env)

for (const name of ['prepare', 'setupTraining', 'runTraining', 'mergeCheckpoints', 'evaluateTasks', 'runTasks', 'evaluateTask', 'embedFile', 'loadEncoder', 'initRandomEncoder', 'builtinRegistry', 'loadRegistry', 'selectBackend'])
  assert.equal(typeof api[name], 'function', name)
assert.equal(api.exitCodeOf(new api.DataError('bad row')), 2)
assert.ok(new api.TrainConfigError('x') instanceof Error)

const registry = await api.builtinRegistry()
assert.deepEqual(registry.warnings, [])
for (const kind of api.KINDS) assert.ok(registry.list(kind).length > 0, 'no built-in ' + kind)
assert.ok(registry.list().every((e) => e.plugin === api.BUILTIN_PLUGIN))
await api.selectBackend(registry, 'cpu')

const {lossProperties, registeredLosses} = await import('codiemb/testing')
const losses = await registeredLosses(registry)
assert.deepEqual(losses.map((l) => l.entry.name), registry.list('loss').map((e) => e.name))
for (const property of lossProperties(losses.find((l) => l.entry.name === 'pearson').loss)) property.check()
console.log('ok ' + registry.list().length + ' built-in entries')
`
