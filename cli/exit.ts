/**
 * Exit statuses, one table for every command (README "Exit statuses" and
 * `mapcheck --help` print it from here), and the verdict -> status mapping.
 */
import type { Verdict } from '../explorer/result.js'
import type { Comparison } from './compare.js'

export const EXIT = {
  /** Every invariant holds and the search was exhaustive (matrix, compare, sweep: every cell computed). */
  ok: 0,
  /** A violation (`check`); `replay`: the recorded violation reproduces; matrix, compare: a cell differs from its declared expectation. */
  violation: 1,
  /** Bad input: one line on stderr; or a model error. */
  badInput: 2,
  /** A bound (states, depth, seconds, memory) was reached, or the run was interrupted; no violation. */
  incomplete: 3,
  /** A bug in mapcheck: one line on stderr and the path of a report file holding the stack. */
  internal: 4,
  /** `replay` only: the trace breaks a property other than the one it records. */
  otherViolation: 5,
} as const

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT]

/** Every status some command may exit with (the fuzz tests check against this). */
export const EXIT_STATUSES: readonly number[] = Object.values(EXIT)

/** The table as `--help` prints it. */
export const EXIT_HELP = [
  'Exit status:',
  '  0  every invariant holds, search exhaustive (replay: the trace runs to its end without a violation)',
  '  1  a violation (check); replay: the recorded violation reproduces; the matrix and compare:',
  '     a cell differs from its expected verdict (--no-expect ignores them)',
  '  2  bad input or a model error (one line on stderr)',
  '  3  incomplete: a bound (--max-states/-depth/-seconds/-memory) was reached or the run was',
  '     interrupted (SIGINT/SIGTERM); no violation. compare, sweep and the matrix: only with --strict',
  '  4  internal error (one line on stderr, the stack in a report file)',
  '  5  replay: the trace breaks another property than the one it records',
].join('\n')

/** `check`: the status of one exploration's verdict. */
export const verdictStatus = (verdict: Verdict): ExitStatus =>
  verdict === 'violation' ? EXIT.violation : verdict === 'incomplete' ? EXIT.incomplete : EXIT.ok

/** The search was ended by SIGINT/SIGTERM (cli/stop.ts's reason, alone or inside random mode's). */
export const wasInterrupted = (incomplete: string | null | undefined): boolean => !!incomplete && /\binterrupted\b/.test(incomplete)

/**
 * compare, sweep and the matrix: 2 when some cell is a model error or a
 * trace could not be written; 3 when the run was interrupted, or under
 * `--strict` when some cell is incomplete; 1 when a cell differs from its
 * declared expectation; else 0.
 */
export function matrixStatus(all: readonly Comparison[], strict: boolean, mismatches: readonly unknown[] = []): ExitStatus {
  const rows = all.flatMap((c) => c.variants)
  if (rows.some((r) => r.error !== undefined || r.writeErrors)) return EXIT.badInput
  if (rows.some((r) => wasInterrupted(r.incomplete))) return EXIT.incomplete
  // A cell that differs from the variant's declared expectation (expect.violates): the regression gate.
  if (mismatches.length > 0) return EXIT.violation
  if (strict && rows.some((r) => r.result === 'incomplete')) return EXIT.incomplete
  return EXIT.ok
}

/** The traces that could not be written, as one line on stderr (the first, and how many more). */
export function traceWriteErrors(all: readonly Comparison[]): void {
  writeErrorLine(all.flatMap((c) => c.variants.flatMap((r) => r.writeErrors ?? [])))
}

export function writeErrorLine(errors: readonly string[]): void {
  if (errors.length === 0) return
  process.stderr.write(`mapcheck: ${errors[0]}${errors.length > 1 ? ` (and ${errors.length - 1} more trace${errors.length > 2 ? 's' : ''} not written)` : ''}\n`)
}
