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

// The command is done (its output written, its catch and finally run): exit now, with its exit
// code, once standard output and error have drained. Without this, a timer or socket a plugin left
// behind would keep the process alive after the output, and work a signal abandoned would run on.
const drained = (stream) => new Promise((resolve) => (stream.writableLength === 0 ? resolve() : stream.write('', () => resolve())))
const patience = new Promise((resolve) => setTimeout(resolve, 5000).unref())
await Promise.race([Promise.all([drained(process.stdout), drained(process.stderr)]), patience])
process.exit()
