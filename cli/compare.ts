import { unreached, untaken } from '../explorer/coverage.js'
import { isBadInput, isModelError, ModelError } from '../explorer/errors.js'
import { NO_DEADLOCK } from '../explorer/search.js'
import type { ExploreOptions } from '../explorer/options.js'
import { resolveParams, type Scenario } from '../model/scenario.js'
import { matrixStatus, traceWriteErrors } from './exit.js'
import { isAllocationFailure } from './internal-error.js'
import { metricText, paramsText, table, verdictColour } from './format.js'
import { runCheck } from './run.js'

export interface VariantRow {
  readonly variant: string
  /** `ok`, `violation`, `incomplete`, or `model error` (then `error` says what). */
  readonly result: string
  readonly error?: string
  /** Steps never taken (`process.label`); those of them the variant's patch changes. */
  readonly unreached: string[]
  readonly patchUnreached: string[]
  readonly violated: string[]
  readonly holds: string[]
  readonly undecided: string[]
  readonly traces: Record<string, string>
  readonly steps: Record<string, number>
  /** Every trace of every broken property: an outcome property's two runs each have one. */
  readonly traceRuns: { readonly invariant: string; readonly outcome?: string; readonly trace: string | null; readonly steps: number }[]
  readonly metrics: Record<string, { min: number; max: number }>
  /** Each metric's range over every state reached, not only the terminal ones. */
  readonly metricsAll: Record<string, { min: number; max: number }>
  /** Outcome property -> input -> the outcomes its runs ended with. */
  readonly outcomes: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>
  readonly stats: object
  /** Why the search stopped short (a bound, `interrupted`), when it did. */
  readonly incomplete?: string | null
  /** The traces that could not be written (one line each, naming the path and the reason). */
  readonly writeErrors?: string[]
}

export interface Comparison {
  readonly scenario: string
  readonly source?: string
  readonly params: Record<string, number>
  readonly invariants: string[]
  /** Metric id -> its unit, for display. */
  readonly units: Record<string, 'share' | 'count' | undefined>
  readonly variants: VariantRow[]
}

/**
 * Every variant of a scenario, explored past its first violation so that each
 * broken invariant is listed with its shortest trace. An invariant not broken
 * holds only if the exploration was complete; otherwise it is undecided.
 */
export function compareScenario(
  scenario: Scenario,
  given: Readonly<Record<string, string | number>>,
  explore: ExploreOptions,
  options: { readonly traceDir?: string; readonly save?: boolean; readonly variants?: readonly string[]; readonly progress?: boolean; readonly label?: string } = {},
): Comparison {
  const chosen = options.variants ?? scenario.variants.map((v) => v.name)
  let params: Record<string, number> = { ...resolveParams(scenario, given) }
  let invariants: string[] = []
  let units: Record<string, 'share' | 'count' | undefined> = {}
  const variants = chosen.map((variant): VariantRow => {
    let run
    try {
      run = runCheck({
        scenario,
        variant,
        params: given,
        explore: { ...explore, mode: 'bfs', allViolations: true },
        traceDir: options.traceDir,
        // Traces only where asked: no trace files appear in the working directory unless --trace-dir names one.
        save: options.save ?? options.traceDir !== undefined,
        progress: options.progress,
        progressLabel: `${options.label ?? scenario.name} ${variant}`,
      })
    } catch (e) {
      // A model error (or any exception the model's code throws) in one variant is its row; the others still run.
      if (isModelError(e)) return modelErrorRow(variant, e)
      if (e instanceof Error && !isBadInput(e) && !isAllocationFailure(e)) return modelErrorRow(variant, new ModelError(`${e.name}: ${e.message}`))
      throw e
    }
    const { instance, exploration, traces } = run
    params = { ...instance.params }
    units = Object.fromEntries((instance.model.metrics ?? []).map((m) => [m.id, m.unit]))
    const ids = [
      ...instance.model.invariants.map((i) => i.id),
      ...(instance.model.outcomes ?? []).map((o) => o.id),
      ...(instance.model.evidence ?? []).map((e) => e.id),
      NO_DEADLOCK,
    ]
    for (const id of ids) if (!invariants.includes(id)) invariants.push(id)
    const violated = [...new Set(exploration.violations.map((v) => v.invariant))]
    const rest = ids.filter((id) => !violated.includes(id))
    const never = unreached(exploration.coverage)
    return {
      variant,
      result: exploration.verdict,
      unreached: never,
      patchUnreached: untaken(instance.patched, exploration.coverage),
      violated,
      holds: exploration.incomplete ? [] : rest,
      undecided: exploration.incomplete ? rest : [],
      // The first trace of each broken property (an outcome property's other run is beside it).
      traces: Object.fromEntries([...traces].reverse().map((t) => [t.trace.violation.invariant, t.file ?? ''])),
      steps: Object.fromEntries([...traces].reverse().map((t) => [t.trace.violation.invariant, t.trace.steps.length])),
      traceRuns: traces.map(({ trace, file }) => ({
        invariant: trace.violation.invariant,
        ...(trace.violation.outcome !== undefined ? { outcome: trace.violation.outcome } : {}),
        trace: file,
        steps: trace.steps.length,
      })),
      metrics: { ...exploration.metrics },
      metricsAll: { ...exploration.metricsAll },
      outcomes: exploration.outcomes,
      stats: exploration.stats,
      incomplete: exploration.incomplete,
      ...(traces.some((t) => t.writeError) ? { writeErrors: traces.flatMap((t) => (t.writeError ? [t.writeError] : [])) } : {}),
    }
  })
  return { scenario: scenario.name, ...(scenario.source ? { source: scenario.source.file } : {}), params, invariants, units, variants }
}

function modelErrorRow(variant: string, e: ModelError): VariantRow {
  const steps = e.trace?.steps ?? []
  const where = steps.length ? ` (after ${steps.length} steps: ${steps.map((s) => s.text).join('; ')})` : ''
  return {
    variant,
    result: 'model error',
    error: `${e.message}${where}`,
    unreached: [],
    patchUnreached: [],
    violated: [],
    holds: [],
    undecided: [],
    traces: {},
    steps: {},
    traceRuns: [],
    metrics: {},
    metricsAll: {},
    outcomes: {},
    stats: {},
  }
}

/** Notes under a matrix: model errors, and fixes that hold while steps of their patch were never taken. */
export function comparisonNotes(c: Comparison): string[] {
  const notes: string[] = []
  for (const row of c.variants) {
    if (row.error) notes.push(`${row.variant}: ${verdictColour('model error')}: ${row.error}`)
    else if (row.patchUnreached.length > 0 && row.violated.length === 0) {
      notes.push(
        `${row.variant}: ${verdictColour(`holds, vacuously? ${row.patchUnreached.length} step${row.patchUnreached.length > 1 ? 's' : ''} of the patch unreached`)}: ${row.patchUnreached.join(', ')}`,
      )
    }
  }
  return notes
}

/** A metric over the terminal states, with its range over all states when that is wider (0% at the end, 75% mid-run). */
export function metricCell(row: VariantRow, id: string, unit?: 'share' | 'count'): string {
  const end = row.metrics[id]
  const all = row.metricsAll[id]
  if (!end) return all ? `- (mid-run ${metricText(all, unit)})` : '-'
  return all && (all.min < end.min || all.max > end.max) ? `${metricText(end, unit)} (mid-run ${metricText(all, unit)})` : metricText(end, unit)
}

/** True when some variant could not be checked (a model error): the command exits 2. */
export const hasModelError = (c: Comparison): boolean => c.variants.some((r) => r.error !== undefined)

export function comparisonTable(c: Comparison, label: (variant: string) => string = (v) => v): string {
  const cell = (row: VariantRow, id: string): string =>
    row.error !== undefined
      ? verdictColour('model error')
      : row.violated.includes(id)
        ? verdictColour(`VIOLATED (${row.steps[id]} steps)`)
        : row.holds.includes(id)
          ? verdictColour(row.patchUnreached.length && row.violated.length === 0 ? 'holds?' : 'holds')
          : verdictColour('undecided')
  const metrics = [...new Set(c.variants.flatMap((row) => Object.keys(row.metrics)))]
  // When no variant could be built there are no invariant columns; the rows still say why.
  const ids = c.invariants.length > 0 ? c.invariants : ['result']
  return table([
    ['variant', ...ids, ...metrics],
    ...c.variants.map((row) => [label(row.variant), ...ids.map((id) => cell(row, id)), ...metrics.map((m) => metricCell(row, m, c.units[m]))]),
  ])
}

export function compareCommand(
  scenario: Scenario,
  given: Record<string, string>,
  explore: ExploreOptions,
  json: boolean,
  options: { readonly traceDir?: string; readonly strict?: boolean } = {},
): number {
  const c = compareScenario(scenario, given, explore, { traceDir: options.traceDir, progress: !json })
  const status = matrixStatus([c], !!options.strict)
  if (json) {
    process.stdout.write(`${JSON.stringify({ scenario: c.scenario, ...(c.source ? { source: c.source } : {}), params: c.params, variants: c.variants }, null, 2)}\n`)
    traceWriteErrors([c])
    return status
  }
  const lines = [`${c.scenario}${c.source ? ` (${c.source})` : ''}  ${paramsText(c.params)}`, '', comparisonTable(c), ...comparisonNotes(c), '']
  for (const row of c.variants) for (const [id, file] of Object.entries(row.traces)) if (file) lines.push(`${row.variant} ${id}: ${file}`)
  process.stdout.write(`${lines.join('\n')}\n`)
  traceWriteErrors([c])
  return status
}

/**
 * No arguments (`npm start`): every scenario and variant at default bounds,
 * one matrix per scenario. A scenario that cannot even be built shows as a
 * model error; the others still run, and the exit status is then 2.
 */
export function checkAllCommand(
  scenarios: readonly Scenario[],
  explore: ExploreOptions,
  json: boolean,
  options: { readonly traceDir?: string; readonly strict?: boolean } = {},
): number {
  const all = scenarios.map((s) => compareScenario(s, {}, explore, { traceDir: options.traceDir, progress: !json }))
  const status = matrixStatus(all, !!options.strict)
  if (json) {
    process.stdout.write(`${JSON.stringify(all, null, 2)}\n`)
    traceWriteErrors(all)
    return status
  }
  const blocks = all.map((c) => [`${c.scenario}  ${paramsText(c.params)}`, comparisonTable(c), ...comparisonNotes(c)].join('\n'))
  process.stdout.write(`${blocks.join('\n\n')}\n`)
  traceWriteErrors(all)
  return status
}
