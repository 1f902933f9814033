/**
 * `mapcheck report <scenario|review-file> [--variant v]... [--param k=v]...
 * --out report.html`, and `check --html FILE`: the review report as one
 * self-contained HTML file (traces/html-report.ts), written atomically.
 */
import type { ExploreOptions } from '../explorer/options.js'
import type { Scenario } from '../model/scenario.js'
import { writeFileSafely } from '../traces/write.js'
import type { Trace } from '../traces/format.js'
import { htmlReport, type ReportCell, type ReportInput } from '../traces/html-report.js'
import { compareScenario, type Comparison } from './compare.js'
import { matrixStatus } from './exit.js'
import { cellExpectation, mismatches } from './expectations.js'
import { paramsText } from './format.js'
import type { CheckOutcome } from './run.js'

/** The matrix as the report draws it, each violation linked to its trace section. */
export function reportMatrix(c: Comparison, traces: readonly Trace[], expect = true): NonNullable<ReportInput['matrix']> {
  const ids = c.invariants.length > 0 ? c.invariants : ['result']
  const traceOf = (variant: string, id: string): number | undefined => {
    const k = traces.findIndex((t) => t.variant === variant && t.violation.invariant === id)
    return k < 0 ? undefined : k
  }
  return {
    columns: ids,
    rows: c.variants.map((row) => ({
      variant: row.variant,
      cells: ids.map((id): ReportCell => {
        const mark = expect ? cellExpectation(row, id) : 'none'
        if (row.error !== undefined) return { text: 'model error', kind: 'error' }
        if (row.violated.includes(id)) {
          const steps = `(${row.steps[id]} steps)`
          return mark === 'new' ? { text: `NEW: VIOLATED ${steps}`, kind: 'new', trace: traceOf(row.variant, id) } : { text: `VIOLATED ${steps}`, kind: 'violated', trace: traceOf(row.variant, id) }
        }
        if (row.holds.includes(id)) {
          const vacuous = row.patchUnreached.length > 0 && row.violated.length === 0
          if (mark === 'gone') return { text: 'GONE: holds', kind: 'gone' }
          return vacuous ? { text: 'holds?', kind: 'vacuous' } : { text: 'holds', kind: 'holds' }
        }
        return { text: 'undecided', kind: 'undecided' }
      }),
    })),
  }
}

export interface ReportRequest {
  readonly scenario: Scenario
  readonly variants?: readonly string[]
  readonly params: Readonly<Record<string, string | number>>
  readonly explore: ExploreOptions
  readonly out: string
  readonly expect?: boolean
}

/** `mapcheck report`: exit status as `compare` (1 when a cell differs from its expectation, 2 on a model error, 3 when interrupted). */
export function reportCommand(req: ReportRequest): number {
  const traces: Trace[] = []
  const c = compareScenario(req.scenario, req.params, req.explore, { save: false, variants: req.variants, collect: (t) => traces.push(t) })
  const html = htmlReport({
    title: `mapcheck report: ${c.scenario}`,
    subtitle: `${c.source ? `${c.source} · ` : ''}${paramsText(c.params)}`,
    matrix: reportMatrix(c, traces, req.expect ?? true),
    traces,
    scenario: req.scenario,
  })
  writeFileSafely(req.out, html)
  const found = req.expect === false ? [] : mismatches(c)
  process.stdout.write(`report: ${req.out} (${c.variants.length} variant${c.variants.length > 1 ? 's' : ''}, ${traces.length} violation trace${traces.length === 1 ? '' : 's'})\n`)
  return matrixStatus([c], false, found)
}

/** `check --html FILE`: the report of one run, its verdict and its traces. */
export function writeCheckReport(file: string, outcome: CheckOutcome): void {
  const { instance, exploration, traces } = outcome
  const html = htmlReport({
    title: `mapcheck check: ${instance.name} --variant ${instance.variant}`,
    subtitle: `${paramsText(instance.params)} · ${exploration.verdict}${exploration.incomplete ? ` (not exhaustive: ${exploration.incomplete})` : ''}`,
    traces: traces.map((t) => t.trace),
    scenario: instance.scenario,
  })
  writeFileSafely(file, html)
}
