/**
 * An internal error (a bug in mapcheck, not in the input or the model): one
 * line on stderr, and the stack in a report file in the temporary directory,
 * to attach to a bug report. Never a stack trace on the terminal, never
 * exit status 1 (which means "violation").
 */
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { writeFileSafely } from '../traces/write.js'

/** A failed allocation: the engine ran out of memory despite the bound. */
export const isAllocationFailure = (e: unknown): boolean =>
  e instanceof RangeError && /allocation failed|Invalid (typed )?array length|Array buffer|Maximum .*size exceeded/i.test(e.message)

/** Writes the report; returns the one line to print. */
export function reportInternalError(e: unknown, argv: readonly string[] = process.argv.slice(2)): string {
  const message = (e instanceof Error ? `${e.name}: ${e.message}` : String(e)).split('\n')[0]
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const file = join(tmpdir(), `mapcheck-internal-error-${stamp}-${process.pid}.txt`)
  const text = [
    `mapcheck internal error, ${new Date().toISOString()}`,
    `node ${process.version} ${process.platform}-${process.arch}`,
    `argv: ${JSON.stringify(argv)}`,
    `cwd: ${process.cwd()}`,
    '',
    inspect(e, { depth: 6 }),
    '',
  ].join('\n')
  let where: string
  try {
    writeFileSafely(file, text)
    where = `report: ${file}`
  } catch (w) {
    where = `no report written: ${(w as Error).message}`
  }
  const what = isAllocationFailure(e) ? `out of memory (${message}); a lower --max-memory ends the search with its statistics instead` : message
  return `mapcheck: internal error: ${what} (${where})`
}
