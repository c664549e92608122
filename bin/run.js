#!/usr/bin/env node
import {flush, handle, run} from '@oclif/core'

const argv = process.argv.slice(2)
try {
  await run(argv, import.meta.url)
  await flush()
} catch (error) {
  // Commands answer --json themselves; an error raised before one runs (an unknown command or topic)
  // still gets the envelope, so standard output under --json is always one JSON document.
  if (argv.includes('--json') && error?.oclif?.exit !== 0) {
    const {errorEnvelope} = await import('../dist/src/cli/base-command.js')
    const envelope = errorEnvelope(error)
    process.stdout.write(JSON.stringify(envelope, null, 2) + '\n')
    process.exitCode = envelope.exitCode
  } else await handle(error)
}
