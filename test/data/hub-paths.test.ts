/**
 * The name rules of `data pull` (src/data/hub-paths.ts): which repository ids and revisions are
 * requests at all, which listed paths are refused, skipped or written, and which collide.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {join} from 'node:path'
import {checkRepoId, checkRevision, partialPath, planFiles, skipReason, unsafeReason} from '../../src/data/hub-paths.js'

const exitCode = (f: () => void): number | undefined => {
  try {
    f()
    return undefined
  } catch (e) {
    return (e as {exitCode?: number}).exitCode
  }
}

test('checkRepoId accepts the hub syntax and refuses traversal, extra segments and malformed names with exit code 2', () => {
  for (const id of ['C-MTEB/T2Retrieval', 'BAAI/bge-small-zh-v1.5', 'bert-base-uncased', 'a_b/c.d', 'x/y', '_a/b_']) assert.equal(exitCode(() => checkRepoId(id)), undefined, id)
  const bad = ['a/..', '../a', 'a/.', '.', '..', '.a/b', 'a/b.', 'a/-b', 'a/b/c', 'a//b', '/a/b', 'a/', '', 'a b/c', 'a--b/c', 'a/b..c', 'a/b%2F', `a/${'x'.repeat(97)}`, 'a\\b/c']
  for (const id of bad) assert.equal(exitCode(() => checkRepoId(id)), 2, id)
  assert.throws(() => checkRepoId('a/..'), /^HubError: not a hub repository id: "a\/\.\." \(expected OWNER\/NAME, e\.g\. C-MTEB\/T2Retrieval\)$/)
})

test('checkRevision accepts branches, tags, refs and commits, refuses dot segments, blanks and control characters', () => {
  for (const rev of ['main', 'v1.0', 'refs/pr/1', '0f319b1142f28d00e055a6770f3f726ae9b7d865', 'refs/convert/parquet']) assert.equal(exitCode(() => checkRevision(rev)), undefined, rev)
  for (const rev of ['', '.', '..', 'a b', 'main\n', 'x\u0000', 'r'.repeat(257)]) assert.equal(exitCode(() => checkRevision(rev)), 2, JSON.stringify(rev))
})

test('unsafeReason refuses every path that could leave or corrupt the output folder', () => {
  const cases: [string, RegExp | undefined][] = [
    ['data/train.parquet', undefined],
    ['a/b/c/d.json', undefined],
    ['x.incomplete', undefined],
    ['..a/b..', undefined],
    ['', /empty path$/],
    ['../evil', /"\.\." segment/],
    ['a/../../b', /"\.\." segment/],
    ['a/./b', /"\." segment/],
    ['a/..', /"\.\." segment/],
    ['/etc/passwd', /absolute path/],
    ['a//b', /empty path segment/],
    ['a/', /empty path segment/],
    ['a\\..\\b', /backslash/],
    ['C:/x', /drive letter/],
    ['a\u0000b', /control character/],
    ['a\nb', /control character/],
    ['.git/config', /\.git segment/],
    ['sub/.git/hooks/post-checkout', /\.git segment/],
    ['.GIT/config', /\.git segment/],
    ['.git. /config', /\.git segment/],
    ['GIT~1/config', /\.git segment/],
    ['.git', /\.git segment/],
  ]
  for (const [path, expected] of cases) {
    const reason = unsafeReason(path)
    if (expected) assert.match(reason ?? '', expected, JSON.stringify(path))
    else assert.equal(reason, undefined, path)
  }
  assert.equal(unsafeReason('.gitattributes'), undefined)
  assert.equal(unsafeReason('.github/x'), undefined, 'only .git itself is unsafe; .github is merely hidden')
})

test('skipReason leaves out codiemb configuration and hidden names but .gitattributes and .gitignore', () => {
  const config = 'codiemb would read it as configuration when run in its folder'
  const cases: [string, string | undefined][] = [
    ['README.md', undefined],
    ['.gitattributes', undefined],
    ['sub/.gitattributes', undefined],
    ['.gitignore', undefined],
    ['.codiembrc.js', config],
    ['.codiembrc', config],
    ['.CODIEMBRC.YAML', config],
    ['sub/dir/.codiembrc.mjs', config],
    ['codiemb.config.ts', config],
    ['.config/codiembrc.cjs', config],
    ['package.json', config],
    ['nested/package.yaml', config],
    ['packages.json', undefined],
    ['my.codiembrc.js', undefined],
    ['.envrc', 'a hidden file (of hidden names only .gitattributes and .gitignore are written)'],
    ['.vscode/settings.json', 'a hidden folder (of hidden names only .gitattributes and .gitignore are written)'],
    ['.config/config.js', 'a hidden folder (of hidden names only .gitattributes and .gitignore are written)'],
    ['.hidden/.gitattributes', 'a hidden folder (of hidden names only .gitattributes and .gitignore are written)'],
    ['data/.x.incomplete', 'a hidden file (of hidden names only .gitattributes and .gitignore are written)'],
  ]
  for (const [path, expected] of cases) assert.equal(skipReason(path), expected, path)
})

test('planFiles writes, skips, and refuses unsafe paths and collisions all at once, naming each', () => {
  const f = (path: string) => ({path, size: 1})
  const plan = planFiles([f('a.txt'), f('x'), f('x.incomplete'), f('.envrc'), f('package.json'), f('d/e.txt')], 'dataset o/r@main')
  assert.deepEqual(plan.write.map((e) => e.path), ['a.txt', 'x', 'x.incomplete', 'd/e.txt'])
  assert.deepEqual(plan.skipped.map((e) => e.path), ['.envrc', 'package.json'])

  const refused = (paths: string[]) => {
    try {
      planFiles(paths.map(f), 'dataset o/r@main')
    } catch (e) {
      assert.equal((e as {exitCode?: number}).exitCode, 1)
      return (e as Error).message
    }
    assert.fail(`not refused: ${paths.join(', ')}`)
  }
  assert.equal(refused(['README.md', 'readme.md']), 'refusing the listing of dataset o/r@main, nothing was written: "README.md" and "readme.md" differ only in letter case or Unicode form (one file on macOS and Windows). If the repository is trustworthy, select the files you need with --include.')
  assert.match(refused(['caf\u00e9.txt', 'cafe\u0301.txt']), /"caf\u00e9\.txt" and "cafe\u0301\.txt" differ only in letter case or Unicode form/)
  assert.match(refused(['a.txt', 'a.txt']), /"a\.txt" is listed twice/)
  assert.match(refused(['a', 'a/b']), /"a" is a file, but "a\/b" needs a folder of that name/)
  assert.match(refused(['A', 'a/b']), /"A" is a file, but "a\/b" needs a folder of that name/)
  const many = refused(['../x', '/y', '.git/config', 'ok.txt', 'OK.txt'])
  assert.match(many, /"\.\.\/x": a "\.\." segment; "\/y": an absolute path; "\.git\/config": a \.git segment .*; "ok\.txt" and "OK\.txt" differ/)
  assert.match(refused(Array.from({length: 12}, (_, i) => `../${i}`)), /; and 2 more\. If the repository/)
  // skipped files do not collide with written ones
  assert.deepEqual(planFiles([f('.Envrc'), f('.envrc'), f('e')], 'x').write.map((e) => e.path), ['e'])
})

test('partialPath is a hidden sibling, which no written repository path can be', () => {
  assert.equal(partialPath(join('/out', 'data', 'x')), join('/out', 'data', '.x.incomplete'))
  assert.equal(partialPath(join('/out', '.gitattributes')), join('/out', '..gitattributes.incomplete'))
  for (const dest of ['x', 'x.incomplete', '.gitattributes', 'a/b.parquet']) {
    const partial = partialPath(join('/out', dest)).slice('/out/'.length)
    assert.notEqual(skipReason(partial) ?? unsafeReason(partial), undefined, `${partial} is never written from a listing`)
  }
})
