/**
 * fileSystemError (src/core/errors.ts): a path error of an fs call is the user's to fix — exit 2,
 * the path named (a temporary sibling as the directory written into) — while the machine's own
 * failures (a full disk) stay exit 1.
 */
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {CodiembError, exitCodeOf, fileSystemError} from '../../src/core/errors.js'
import {tempSiblingPath, writeFileAtomic} from '../../src/core/fs-atomic.js'

/** The error an fs call throws, caught. */
function caught(f: () => unknown): unknown {
  try {
    f()
  } catch (error) {
    return error
  }
  assert.fail('expected an error')
}

describe('fileSystemError', () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-fserr-'))
  const file = join(dir, 'a-file')
  writeFileSync(file, 'x')
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('a file where a directory belongs (ENOTDIR): exit 2, what could not be done to which path', () => {
    const raw = caught(() => mkdirSync(join(file, 'sub'), {recursive: true}))
    assert.equal(exitCodeOf(raw), 2)
    const e = fileSystemError(raw)!
    assert.ok(e instanceof CodiembError)
    assert.equal(e.name, 'FileSystemError')
    assert.equal(e.message, `cannot create directory ${join(file, 'sub')}: a part of the path is a file, not a directory (ENOTDIR)`)
    assert.deepEqual(e.data, {code: 'ENOTDIR', syscall: 'mkdir', path: join(file, 'sub')})
  })

  it('an atomic write\'s temporary is named as the directory written into, never by its temporary name', () => {
    const raw = caught(() => writeFileAtomic(join(dir, 'missing', 'out.json'), '{}'))
    const e = fileSystemError(raw)!
    assert.equal(e.message, `cannot write into ${join(dir, 'missing')}: no such file or directory (ENOENT)`)
    assert.doesNotMatch(e.message, /\.tmp/)
    assert.match(tempSiblingPath(join(dir, 'x')), /\.tmp$/)
  })

  it('leaves other errors alone: CodiembErrors, plain errors, and machine failures such as a full disk (exit 1)', () => {
    assert.equal(fileSystemError(new CodiembError('x')), undefined)
    assert.equal(fileSystemError(new TypeError('y')), undefined)
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC', syscall: 'write'})
    assert.equal(fileSystemError(full), undefined)
    assert.equal(exitCodeOf(full), 1)
    const denied = Object.assign(new Error('EACCES: permission denied, open'), {code: 'EACCES', syscall: 'open', path: '/ro/x.arrow'})
    assert.equal(fileSystemError(denied)!.message, 'cannot open /ro/x.arrow: permission denied (EACCES)')
  })
})
