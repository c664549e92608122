import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {REPO_ROOT} from '../helpers/env.js'

export interface CommandRun {
  status: number | null
  stdout: string
  stderr: string
  json?: any
}

/**
 * Runs one compiled command class in a child process through oclif (Command.run with the package
 * config), so it works whether or not the committed oclif.manifest.json lists the command yet.
 */
export function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv = {}): CommandRun {
  const url = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'commands', `${command}.js`)).href
  const script = `const {default: C} = await import(${JSON.stringify(url)}); await C.run(JSON.parse(process.env.CODIEMB_TEST_ARGS), ${JSON.stringify(REPO_ROOT)})`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    env: {...process.env, NO_COLOR: '1', CI: '1', ...env, CODIEMB_TEST_ARGS: JSON.stringify(args)},
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  let json: unknown
  const text = r.stdout.trim()
  if (text.startsWith('{')) {
    try {
      json = JSON.parse(text)
    } catch {
      /* not a single JSON document */
    }
  }
  return {status: r.status, stdout: r.stdout, stderr: r.stderr, json}
}
