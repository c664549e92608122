/**
 * examples/codiemb-plugin-example stays in step with codiemb: its hook points at what its build
 * writes, it asks for the versions codiemb uses, its README names what it registers. These checks
 * read files only. The example itself — built against the packed package, its own tests (the loss
 * properties of codiemb/testing among them) and `codiemb plugins link` — runs in
 * test/package.test.ts, which installs the package once for both.
 */
import assert from 'node:assert/strict'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {join, posix} from 'node:path'
import {it} from 'node:test'
import {REPO_ROOT} from '../helpers/env.js'

const EXAMPLE = join(REPO_ROOT, 'examples', 'codiemb-plugin-example')
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8'))
const plugin = json(join(EXAMPLE, 'package.json'))
const codiemb = json(join(REPO_ROOT, 'package.json'))
const tsconfig = json(join(EXAMPLE, 'tsconfig.json'))

it('declares its codiemb:register hook at the file its TypeScript build writes, and publishes it', () => {
  const {outDir, rootDir} = tsconfig.compilerOptions
  const compiled = './' + posix.join(outDir, posix.relative(rootDir, 'src/register.ts')).replace(/\.ts$/, '.js')
  assert.equal(plugin.oclif.hooks['codiemb:register'], compiled)
  assert.ok(existsSync(join(EXAMPLE, 'src', 'register.ts')))
  assert.ok(
    plugin.files.some((f: string) => compiled.slice(2).startsWith(f.replace(/\/?$/, '/'))),
    `package.json files ${JSON.stringify(plugin.files)} leave out ${compiled}`,
  )
  assert.equal(tsconfig.compilerOptions.strict, true)
})

it('uses the host’s tfjs-core as a peer, and develops against the versions codiemb uses', () => {
  const tfjs = '@tensorflow/tfjs-core'
  assert.equal(plugin.peerDependencies[tfjs], codiemb.dependencies[tfjs], 'peer range of tfjs-core')
  assert.equal(plugin.dependencies?.[tfjs], undefined, 'tfjs-core must not be a dependency: two copies keep two engines')
  assert.equal(plugin.devDependencies.codiemb, `^${codiemb.version}`)
  for (const tool of ['typescript', '@types/node']) assert.equal(plugin.devDependencies[tool], codiemb.devDependencies[tool], tool)
})

it('has a README that names every entry it registers, the hook and where its tests run', () => {
  const readme = readFileSync(join(EXAMPLE, 'README.md'), 'utf8')
  const register = readFileSync(join(EXAMPLE, 'src', 'register.ts'), 'utf8')
  const names = [...register.matchAll(/^\s*name: '([a-z0-9._-]+)'/gm)].map((m) => m[1]!)
  assert.deepEqual(names.sort(), ['cosine-mse', 'sequential'])
  for (const name of names) assert.ok(readme.includes(`\`${name}\``), `README.md does not mention \`${name}\``)
  assert.ok(readme.includes('codiemb:register'))
  assert.ok(readme.includes('test/package.test.ts'), 'README.md says where codiemb runs the example')
  for (const file of readdirSync(join(EXAMPLE, 'test'))) assert.match(file, /\.test\.ts$/)
})
