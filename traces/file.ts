import { traceSchema, type Trace } from './format.js'
import { fromItf, isItf } from './itf.js'
import { readJsonFile, schemaError } from './read.js'
import { writeFileSafely } from './write.js'

/** Reads and validates a trace file (ours, or ITF written by us); any problem is a one-line `BadInput` naming the file. */
export function loadTrace(file: string): Trace {
  const json = readJsonFile(file)
  // An ITF file written by `show --format itf` carries the trace in its metadata.
  if (isItf(json)) return fromItf(json, file).trace
  const parsed = traceSchema.safeParse(json)
  if (!parsed.success) throw schemaError(file, 'not a mapcheck trace', parsed.error)
  return parsed.data
}

/** Writes atomically (see `writeFileSafely`): no half-written trace is ever left; a failure is a one-line `FileWriteError`. */
export function saveTrace(file: string, trace: Trace): void {
  writeFileSafely(file, `${JSON.stringify(trace, null, 2)}\n`)
}
