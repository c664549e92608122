/**
 * A text file written line by line, synchronously, through a small buffer: for side outputs that
 * grow row by row while a stream is read (prepare's rejects.jsonl), where one write per line would
 * cost a system call each and an async stream would need awaiting in the row loop.
 */
import {closeSync, openSync, writeSync} from 'node:fs'

/** Characters buffered before they are written out. */
const FLUSH_AT = 1 << 16

export class LineWriter {
  private readonly fd: number
  private buffer: string[] = []
  private size = 0

  /** Creates (or truncates) `file`. */
  constructor(readonly file: string) {
    this.fd = openSync(file, 'w')
  }

  /** Appends `line` (which carries its own line ending). */
  write(line: string): void {
    this.buffer.push(line)
    this.size += line.length
    if (this.size > FLUSH_AT) this.flush()
  }

  flush(): void {
    if (this.buffer.length) writeSync(this.fd, this.buffer.join(''))
    this.buffer = []
    this.size = 0
  }

  /** Writes what is buffered and closes the file. */
  close(): void {
    this.flush()
    closeSync(this.fd)
  }
}
