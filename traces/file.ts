import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { BadInput } from '../explorer/errors.js'
import { traceSchema, type Trace } from './format.js'
import { fromItf, isItf } from './itf.js'

/** Reads and validates a trace file (ours, or ITF written by us); any problem is a one-line `BadInput` naming the file. */
export function loadTrace(file: string): Trace {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new BadInput(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new BadInput(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`)
  }
  // An ITF file written by `show --format itf` carries the trace in its metadata.
  if (isItf(json)) return fromItf(json, file).trace
  const parsed = traceSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue.path.length > 0 ? issue.path.join('.') : 'top level'
    throw new BadInput(`${file}: not a mapcheck trace: ${where}: ${issue.message}`)
  }
  return parsed.data
}

/** Writes atomically: a temporary file renamed into place, so no half-written trace is ever left. */
export function saveTrace(file: string, trace: Trace): void {
  writeAtomically(file, `${JSON.stringify(trace, null, 2)}\n`)
}

export function writeAtomically(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  try {
    writeFileSync(tmp, text)
    renameSync(tmp, file)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw e
  }
}
