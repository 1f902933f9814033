/**
 * The commands as functions, for the public API: each returns the object
 * the CLI prints with `--json`. A scenario is a built-in's name, a review
 * file's path (`./review.ts`, `./review.ts#name`), or a scenario object.
 */
import type { Mode } from '../explorer/result.js'
import { resolveVariant, type Scenario } from '../model/scenario.js'
import { mismatches, mismatchText } from './expectations.js'
import { checkReport, type CheckReport } from './check.js'
import { compareScenario, type Comparison } from './compare.js'
import { runCheck } from './run.js'
import { openScenario, openScenarios } from './scenarios.js'
import { replayReport } from './trace-commands.js'

export interface CheckOptions {
  readonly variant?: string
  readonly params?: Readonly<Record<string, number | string>>
  readonly mode?: Mode
  readonly seed?: number
  readonly runs?: number
  readonly maxDepth?: number
  readonly maxStates?: number
  readonly maxSeconds?: number
  readonly allViolations?: boolean
  /** The visited set: `full` (default, exact) or `fingerprint` (BFS only). */
  readonly store?: 'full' | 'fingerprint'
  /** `fingerprint` store: its parent links on `disk` (default, a temp file) or in `memory`. */
  readonly links?: 'disk' | 'memory'
  /** Symmetry reduction where the scenario declares interchangeable threads (default true). */
  readonly symmetry?: boolean
  /** Partial-order reduction in BFS where the model's steps allow it (default true). */
  readonly por?: boolean
  /** Also look for a fair non-progress cycle (no-livelock, `check --livelock`; default false). */
  readonly livelock?: boolean
  /** BFS threads (default: the cores; 1: the sequential BFS); the counts and traces do not depend on it. */
  readonly workers?: number
  /** Write the traces: to this file (the first; others beside it), or into this directory. Nothing is written otherwise. */
  readonly out?: string
  readonly traceDir?: string
}

const scenarioOf = (s: string | Scenario): Promise<Scenario> => (typeof s === 'string' ? openScenario(s) : Promise.resolve(s))

/** `mapcheck check`: explores one variant; the report of `check --json` (`result` is ok, violation or incomplete). */
export async function check(scenario: string | Scenario, options: CheckOptions = {}): Promise<CheckReport> {
  const { variant, params, out, traceDir, ...explore } = options
  return checkReport(
    runCheck({ scenario: await scenarioOf(scenario), variant, params, explore, out, traceDir, save: out !== undefined || traceDir !== undefined }),
  )
}

/** `mapcheck compare`: every variant (the review file's first), each invariant kept or broken, coverage and vacuity. */
export async function compare(
  scenario: string | Scenario,
  options: Pick<CheckOptions, 'params' | 'maxDepth' | 'maxStates' | 'maxSeconds' | 'traceDir'> & { readonly variants?: readonly string[] } = {},
): Promise<Comparison> {
  const { params = {}, traceDir, variants, ...explore } = options
  return compareScenario(await scenarioOf(scenario), params, explore, { traceDir, save: traceDir !== undefined, variants })
}

/** `mapcheck replay`: re-executes a trace file; `reproduced` says whether its violation happens again. */
export const replay = (traceFile: string, options: { readonly force?: boolean } = {}) => replayReport(traceFile, options)

/** The scenarios a review file exports (its own, and built-ins extended with its variants). */
export const loadScenarios = (file: string): Promise<Scenario[]> => openScenarios(file)

/**
 * For a user's own test suite (vitest, or any runner that fails on a thrown
 * error): runs `compare` and throws one error naming every cell that differs
 * from the expected verdicts, the variants' declared `expect` unless
 * `expect` here says otherwise (variant -> the invariants it breaks; `[]`:
 * it keeps every one). A cell left undecided by the bounds is an error too:
 * a gate must not pass on an incomplete search. Resolves to the comparison.
 *
 *   await expectVerdicts('./review.ts', { expect: { 'my-fix': [] } })
 */
export async function expectVerdicts(
  scenario: string | Scenario,
  options: Parameters<typeof compare>[1] & { readonly expect?: Readonly<Record<string, readonly string[]>> } = {},
): Promise<Comparison> {
  const { expect, ...rest } = options
  const s = await scenarioOf(scenario)
  for (const v of Object.keys(expect ?? {})) resolveVariant(s, v)
  const c = await compare(s, rest)
  const found = mismatches(c, expect).map(mismatchText)
  for (const v of Object.keys(expect ?? {})) if (!c.variants.some((row) => row.variant === v)) found.push(`${c.scenario} ${v}: expected verdicts given, but the variant was not compared`)
  for (const row of c.variants) {
    if (row.error !== undefined) found.push(`${c.scenario} ${row.variant}: model error: ${row.error}`)
    const declared = expect?.[row.variant] ?? row.expected
    if (declared !== undefined && row.undecided.length > 0) found.push(`${c.scenario} ${row.variant}: undecided (a bound cut the search): ${row.undecided.join(', ')}`)
  }
  if (found.length > 0) throw new VerdictMismatch(`${found.length} verdict${found.length > 1 ? 's differ' : ' differs'} from the expected:\n  ${found.join('\n  ')}`)
  return c
}

/** What `expectVerdicts` throws. */
export class VerdictMismatch extends Error {
  override name = 'VerdictMismatch'
}
