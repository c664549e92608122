#!/usr/bin/env node
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})

// The command is done (its output written, its catch and finally run): exit now, with its exit
// code, once standard output and error have drained. Without this, a timer or socket a plugin left
// behind would keep the process alive after the output, and work a signal abandoned would run on.
const drained = (stream) => new Promise((resolve) => (stream.writableLength === 0 ? resolve() : stream.write('', () => resolve())))
const patience = new Promise((resolve) => setTimeout(resolve, 5000).unref())
await Promise.race([Promise.all([drained(process.stdout), drained(process.stderr)]), patience])
process.exit()
