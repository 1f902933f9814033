import { NO_DEADLOCK } from '../explorer/search.js'
import type { ExploreOptions } from '../explorer/options.js'
import { catalog, findScenario } from '../invariants/scenarios.js'
import { metricText, paramsText, table, verdictColour } from './format.js'
import { runCheck } from './run.js'

export interface VariantRow {
  readonly variant: string
  readonly result: string
  readonly violated: string[]
  readonly holds: string[]
  readonly undecided: string[]
  readonly traces: Record<string, string>
  readonly steps: Record<string, number>
  readonly metrics: Record<string, { min: number; max: number }>
  /** Outcome property -> input -> the outcomes its runs ended with. */
  readonly outcomes: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>
  readonly stats: object
}

export interface Comparison {
  readonly scenario: string
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
  name: string,
  given: Readonly<Record<string, string | number>>,
  explore: ExploreOptions,
  options: { readonly traceDir?: string; readonly save?: boolean; readonly variants?: readonly string[] } = {},
): Comparison {
  const entry = findScenario(name)
  const chosen = options.variants ?? entry.scenario.variants.map((v) => v.name)
  let params: Record<string, number> = {}
  let invariants: string[] = []
  let units: Record<string, 'share' | 'count' | undefined> = {}
  const variants = chosen.map((variant): VariantRow => {
    const { instance, exploration, traces } = runCheck({
      scenario: name,
      variant,
      params: given,
      explore: { ...explore, mode: 'bfs', allViolations: true },
      traceDir: options.traceDir,
      save: options.save,
    })
    params = { ...instance.params }
    units = Object.fromEntries((instance.model.metrics ?? []).map((m) => [m.id, m.unit]))
    const ids = [
      ...instance.model.invariants.map((i) => i.id),
      ...(instance.model.outcomes ?? []).map((o) => o.id),
      ...(instance.model.evidence ?? []).map((e) => e.id),
      NO_DEADLOCK,
    ]
    invariants = ids
    const violated = [...new Set(exploration.violations.map((v) => v.invariant))]
    const rest = ids.filter((id) => !violated.includes(id))
    return {
      variant,
      result: exploration.verdict,
      violated,
      holds: exploration.incomplete ? [] : rest,
      undecided: exploration.incomplete ? rest : [],
      // The first trace of each broken property (an outcome property's other run is beside it).
      traces: Object.fromEntries([...traces].reverse().map((t) => [t.trace.violation.invariant, t.file ?? ''])),
      steps: Object.fromEntries([...traces].reverse().map((t) => [t.trace.violation.invariant, t.trace.steps.length])),
      metrics: { ...exploration.metrics },
      outcomes: exploration.outcomes,
      stats: exploration.stats,
    }
  })
  return { scenario: name, params, invariants, units, variants }
}

export function comparisonTable(c: Comparison, label: (variant: string) => string = (v) => v): string {
  const cell = (row: VariantRow, id: string): string =>
    row.violated.includes(id) ? verdictColour(`VIOLATED (${row.steps[id]} steps)`) : row.holds.includes(id) ? verdictColour('holds') : verdictColour('undecided')
  const metrics = [...new Set(c.variants.flatMap((row) => Object.keys(row.metrics)))]
  return table([
    ['variant', ...c.invariants, ...metrics],
    ...c.variants.map((row) => [label(row.variant), ...c.invariants.map((id) => cell(row, id)), ...metrics.map((m) => (row.metrics[m] ? metricText(row.metrics[m], c.units[m]) : '-'))]),
  ])
}

export function compareCommand(name: string, given: Record<string, string>, explore: ExploreOptions, json: boolean): number {
  const c = compareScenario(name, given, explore)
  if (json) {
    process.stdout.write(`${JSON.stringify({ scenario: c.scenario, params: c.params, variants: c.variants }, null, 2)}\n`)
    return 0
  }
  const lines = [`${c.scenario}  ${paramsText(c.params)}`, '', comparisonTable(c), '']
  for (const row of c.variants) for (const [id, file] of Object.entries(row.traces)) lines.push(`${row.variant} ${id}: ${file}`)
  process.stdout.write(`${lines.join('\n')}\n`)
  return 0
}

/** No arguments (`npm start`): every scenario and variant at default bounds, one matrix per scenario. */
export function checkAllCommand(explore: ExploreOptions, json: boolean): number {
  const all = catalog.map((e) => compareScenario(e.scenario.name, {}, explore))
  if (json) {
    process.stdout.write(`${JSON.stringify(all, null, 2)}\n`)
    return 0
  }
  const blocks = all.map((c) => `${c.scenario}  ${paramsText(c.params)}\n${comparisonTable(c)}`)
  process.stdout.write(`${blocks.join('\n\n')}\n`)
  return 0
}
