import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {runNode, type CliRun} from '../helpers/cli.js'
import {REPO_ROOT} from '../helpers/env.js'

/**
 * Runs one compiled command class in a child process through oclif (Command.run with the package
 * config), so it works whether or not the committed oclif.manifest.json lists the command yet.
 */
export function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const url = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'commands', `${command}.js`)).href
  const script = `const {default: C} = await import(${JSON.stringify(url)}); await C.run(JSON.parse(process.env.CODIEMB_TEST_ARGS), ${JSON.stringify(REPO_ROOT)})`
  return runNode(['--input-type=module', '-e', script], {env: {CI: '1', ...env, CODIEMB_TEST_ARGS: JSON.stringify(args)}})
}
