import { unreached, untaken } from '../explorer/coverage.js'
import { isBadInput, isModelError, ModelError } from '../explorer/errors.js'
import { NO_DEADLOCK } from '../explorer/search.js'
import type { ExploreOptions } from '../explorer/options.js'
import { expectationAt, resolveParams, type Scenario } from '../model/scenario.js'
import pc from 'picocolors'
import { wrap } from '../traces/diagram.js'
import { cellExpectation, mismatches, mismatchText, type Mismatch } from './expectations.js'
import { abbreviations, fitTable, legend, TABLE_WIDTH, widest } from './fit-table.js'
import { metricText, paramsText, verdictColour } from './format.js'
import type { Trace } from '../traces/format.js'
import { matrixStatus, traceWriteErrors } from './exit.js'
import { isAllocationFailure } from './internal-error.js'
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
  /** The invariants the variant declares it breaks (`expect.violates`); absent when it declares nothing. */
  readonly expected?: readonly string[]
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
  /** Variants that declare expected verdicts, none of them for these parameters (so their cells are not gated). */
  readonly ungated?: string[]
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
  options: {
    readonly traceDir?: string
    readonly save?: boolean
    readonly variants?: readonly string[]
    readonly collect?: (trace: Trace) => void
    readonly progress?: boolean
    readonly label?: string
  } = {},
): Comparison {
  const chosen = options.variants ?? scenario.variants.map((v) => v.name)
  let params: Record<string, number> = { ...resolveParams(scenario, given) }
  let invariants: string[] = []
  let units: Record<string, 'share' | 'count' | undefined> = {}
  // The expectation declared for the parameters run (the defaults, unless one names others).
  const expectedOf = (variant: string): { expected?: string[] } => {
    const e = expectationAt(scenario, variant, resolveParams(scenario, given))
    return e ? { expected: [...(e.violates ?? [])] } : {}
  }
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
      if (isModelError(e)) return { ...modelErrorRow(variant, e), ...expectedOf(variant) }
      if (e instanceof Error && !isBadInput(e) && !isAllocationFailure(e)) return { ...modelErrorRow(variant, new ModelError(`${e.name}: ${e.message}`)), ...expectedOf(variant) }
      throw e
    }
    const { instance, exploration, traces } = run
    for (const t of traces) options.collect?.(t.trace)
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
      ...expectedOf(variant),
      incomplete: exploration.incomplete,
      ...(traces.some((t) => t.writeError) ? { writeErrors: traces.flatMap((t) => (t.writeError ? [t.writeError] : [])) } : {}),
    }
  })
  const ungated = variants.filter((r) => r.expected === undefined && scenario.variants.find((v) => v.name === r.variant)?.expect !== undefined).map((r) => r.variant)
  return { scenario: scenario.name, ...(scenario.source ? { source: scenario.source.file } : {}), params, invariants, units, variants, ...(ungated.length ? { ungated } : {}) }
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

/** How the matrix is drawn: with cells marked against the declared expectations (default), and within `width` columns. */
export interface MatrixOptions {
  readonly expect?: boolean
  readonly width?: number
  readonly label?: (variant: string) => string
}

/**
 * The verdict matrix, variants x invariants (and metrics). With
 * expectations, a violation the variant does not declare is marked NEW and
 * a declared one that no longer reproduces GONE; a declared violation is
 * drawn as a known one. Too wide for `width`, the invariants are
 * abbreviated (with a legend) and the cells shortened, and the columns are
 * split into several tables as a last resort.
 */
export function comparisonTable(c: Comparison, options: MatrixOptions = {}): string {
  const { expect = true, width = TABLE_WIDTH, label = (v: string) => v } = options
  const metrics = [...new Set(c.variants.flatMap((row) => Object.keys(row.metrics)))]
  // When no variant could be built there are no invariant columns; the rows still say why.
  const ids = c.invariants.length > 0 ? c.invariants : ['result']
  const cell = (row: VariantRow, id: string, short: boolean): string => {
    const mark = expect ? cellExpectation(row, id) : 'none'
    if (row.error !== undefined) return verdictColour('model error')
    if (row.violated.includes(id)) {
      const text = short ? `V${row.steps[id]}` : `VIOLATED (${row.steps[id]} steps)`
      return mark === 'new' ? pc.red(pc.bold(`${text} NEW`)) : mark === 'expected' ? pc.yellow(text) : pc.red(text)
    }
    if (row.holds.includes(id)) {
      const vacuous = row.patchUnreached.length > 0 && row.violated.length === 0
      const text = short ? (vacuous ? 'ok?' : 'ok') : vacuous ? 'holds?' : 'holds'
      return mark === 'gone' ? pc.red(pc.bold(`${text} GONE`)) : pc.green(text)
    }
    return verdictColour(short ? '?' : 'undecided')
  }
  const rows = (short: boolean, names: ReadonlyMap<string, string>): string[][] => [
    ['variant', ...[...ids, ...metrics].map((id) => names.get(id) ?? id)],
    ...c.variants.map((row) => [label(row.variant), ...ids.map((id) => cell(row, id, short)), ...metrics.map((m) => metricCell(row, m, c.units[m]))]),
  ]
  const notes: string[] = []
  const marks = new Set(expect ? c.variants.flatMap((row) => ids.map((id) => cellExpectation(row, id))) : [])
  const meaning = [
    ...(marks.has('new') ? ['NEW: a violation the variant does not expect'] : []),
    ...(marks.has('gone') ? ['GONE: an expected violation that no longer reproduces'] : []),
  ]
  if (meaning.length > 0) notes.push(...wrap(`${meaning.join('; ')} (the variant's expect.violates)`, width))
  const full = fitTable(rows(false, new Map()), { width, keep: 1, wrap: metrics.map((_, k) => 1 + ids.length + k) })
  if (widest(full) <= width && !full.includes('\n\n')) return [full, ...notes].join('\n')
  // Too wide: short names with a legend; then short cells too; split if still too wide.
  const names = abbreviations([...ids, ...metrics])
  const wrapped = metrics.map((_, k) => 1 + ids.length + k)
  const named = fitTable(rows(false, names), { width, keep: 1, wrap: wrapped })
  if (widest(named) <= width && !named.includes('\n\n')) return [named, ...legend(names, width), ...notes].join('\n')
  const body = fitTable(rows(true, names), { width, keep: 1, wrap: wrapped })
  const cells = wrap('V12: violated, 12-step trace; ok: holds; ok?: holds, vacuously?; ?: undecided', width)
  return [body, ...legend(names, width), ...cells, ...notes].join('\n')
}

/** A heading, a note: word-wrapped to the table width, continuation lines indented. */
const block = (text: string, width = TABLE_WIDTH): string[] => wrap(text, width - 2).map((l, i) => (i === 0 ? l : `  ${l}`))

/** One scenario's matrix as printed: heading, table, notes, and the cells that differ from their expectation. */
function matrixText(c: Comparison, expect: boolean, found: readonly Mismatch[], source: boolean): string[] {
  return [
    ...block(`${c.scenario}${source && c.source ? ` (${c.source})` : ''}  ${paramsText(c.params)}`),
    comparisonTable(c, { expect }),
    ...comparisonNotes(c).flatMap((n) => block(n)),
    ...(expect && c.ungated?.length
      ? block(
          c.ungated.length === c.variants.length
            ? 'not gated: the variants declare expected verdicts at other parameters only (the defaults)'
            : `not gated: ${c.ungated.join(', ')} declare${c.ungated.length > 1 ? '' : 's'} expected verdicts at other parameters only`,
        )
      : []),
    ...(found.length > 0 ? ['differs from the expected verdicts:', ...found.flatMap((m) => block(mismatchText(m), TABLE_WIDTH - 2).map((l) => `  ${l}`))] : []),
  ]
}

export function compareCommand(
  scenario: Scenario,
  given: Record<string, string>,
  explore: ExploreOptions,
  json: boolean,
  options: { readonly traceDir?: string; readonly strict?: boolean; readonly expect?: boolean } = {},
): number {
  const expect = options.expect ?? true
  const c = compareScenario(scenario, given, explore, { traceDir: options.traceDir, progress: !json })
  const found = expect ? mismatches(c) : []
  const status = matrixStatus([c], !!options.strict, found)
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ scenario: c.scenario, ...(c.source ? { source: c.source } : {}), params: c.params, variants: c.variants, ...(expect ? { mismatches: found } : {}) }, null, 2)}\n`,
    )
    traceWriteErrors([c])
    return status
  }
  const lines = [...matrixText(c, expect, found, true), '']
  for (const row of c.variants) for (const [id, file] of Object.entries(row.traces)) if (file) lines.push(`${row.variant} ${id}: ${file}`)
  process.stdout.write(`${lines.join('\n')}\n`)
  traceWriteErrors([c])
  return status
}

/**
 * No arguments (`npm start`): every scenario and variant at default bounds,
 * one matrix per scenario. A scenario that cannot even be built shows as a
 * model error; the others still run, and the exit status is then 2. A cell
 * that differs from its variant's expectation makes it 1 (unless `expect`
 * is false: `--no-expect`).
 */
export function checkAllCommand(
  scenarios: readonly Scenario[],
  explore: ExploreOptions,
  json: boolean,
  options: { readonly traceDir?: string; readonly strict?: boolean; readonly expect?: boolean } = {},
): number {
  const expect = options.expect ?? true
  const all = scenarios.map((s) => compareScenario(s, {}, explore, { traceDir: options.traceDir, progress: !json }))
  const found = expect ? all.flatMap((c) => mismatches(c)) : []
  const status = matrixStatus(all, !!options.strict, found)
  if (json) {
    process.stdout.write(`${JSON.stringify(expect ? all.map((c) => ({ ...c, mismatches: mismatches(c) })) : all, null, 2)}\n`)
    traceWriteErrors(all)
    return status
  }
  const blocks = all.map((c) => matrixText(c, expect, found.filter((m) => m.scenario === c.scenario), false).join('\n'))
  if (found.length > 0) blocks.push(`${found.length} cell${found.length > 1 ? 's differ' : ' differs'} from the expected verdicts (--no-expect ignores them)`)
  process.stdout.write(`${blocks.join('\n\n')}\n`)
  traceWriteErrors(all)
  return status
}
