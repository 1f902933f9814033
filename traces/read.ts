/**
 * Reading an input file (a trace, a QEMU log) with a size cap: `replay
 * /dev/zero` or a multi-gigabyte log is one line of bad input, not a
 * process growing until the machine swaps.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import type { ZodError } from 'zod'
import { BadInput } from '../explorer/errors.js'

/** The largest input file read: traces are kilobytes, QEMU memslot logs megabytes at most. */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024

const mib = (n: number): string => `${Math.round(n / 1024 / 1024)} MiB`

/** The file's text; any problem is a one-line `BadInput` naming the file. */
export function readInputFile(file: string, maxBytes: number = MAX_INPUT_BYTES): string {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (e) {
    throw new BadInput(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  }
  try {
    const st = fstatSync(fd)
    if (st.isDirectory()) throw new BadInput(`${file}: cannot read: EISDIR`)
    if (st.isFile() && st.size > maxBytes) throw new BadInput(`${file}: too large (${st.size} bytes; at most ${mib(maxBytes)})`)
    // A device or FIFO has no size: read up to one byte past the cap.
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total))
      const n = readSync(fd, chunk, 0, chunk.length, null)
      if (n === 0) break
      chunks.push(chunk.subarray(0, n))
      total += n
      if (total > maxBytes) throw new BadInput(`${file}: too large (more than ${mib(maxBytes)})`)
    }
    return Buffer.concat(chunks, total).toString('utf8')
  } catch (e) {
    if (e instanceof BadInput) throw e
    throw new BadInput(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  } finally {
    closeSync(fd)
  }
}

/** The file's JSON (`readInputFile`, then parsed); any problem is a one-line `BadInput` naming the file. */
export function readJsonFile(file: string): unknown {
  const text = readInputFile(file)
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new BadInput(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`)
  }
}

/** A schema's refusal of the file as one line: `FILE: WHAT: path: message`, of its first issue. */
export function schemaError(file: string, what: string, error: ZodError): BadInput {
  const issue = error.issues[0]
  const where = issue.path.length > 0 ? issue.path.join('.') : 'top level'
  return new BadInput(`${file}: ${what}: ${where}: ${issue.message}`)
}
