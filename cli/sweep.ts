/**
 * `mapcheck sweep <scenario> --param name=a..b --param name=x,y,z`: `compare`
 * over the grid of parameter values, one row per point and variant: the
 * parameters, the properties each variant breaks, the outcomes its runs end
 * with per input, and the metrics.
 */
import { BadInput } from '../explorer/errors.js'
import type { ExploreOptions } from '../explorer/options.js'
import type { Scenario } from '../model/scenario.js'
import { instantiate } from '../invariants/scenarios.js'
import { allParams } from '../model/scenario.js'
import { compareScenario, metricCell, type VariantRow } from './compare.js'
import { fitTable } from './fit-table.js'
import { metricText, verdictColour } from './format.js'

/** `a..b` (inclusive), `x,y,z`, or one value. */
export function parseValues(name: string, spec: string): number[] {
  const range = /^(\d+)\.\.(\d+)$/.exec(spec)
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])]
    if (b < a) throw new BadInput(`--param ${name}=${spec}: empty range`)
    return Array.from({ length: b - a + 1 }, (_, k) => a + k)
  }
  if (/^\d+(,\d+)*$/.test(spec)) return spec.split(',').map(Number)
  throw new BadInput(`--param ${name}=${spec}: expected a value, a range a..b or a list x,y,z`)
}

export interface SweepRow {
  readonly point: Record<string, number>
  /** Set when the point is not a valid parameter set (e.g. an offset past the huge size). */
  readonly invalid?: string
  readonly row?: VariantRow
}

export function sweep(scenario: Scenario, specs: Readonly<Record<string, string>>, explore: ExploreOptions, variants?: readonly string[]): SweepRow[] {
  const name = scenario.name
  const axes = Object.entries(specs).map(([k, spec]) => {
    if (!allParams(scenario).some((p) => p.name === k)) throw new BadInput(`unknown parameter '${k}' of scenario ${name}`)
    return [k, parseValues(k, spec)] as const
  })
  const points = axes.reduce<Record<string, number>[]>((acc, [k, values]) => acc.flatMap((p) => values.map((v) => ({ ...p, [k]: v }))), [{}])
  if (points.length > 10_000) throw new BadInput(`the grid has ${points.length} points; at most 10000`)
  return points.flatMap((point): SweepRow[] => {
    try {
      const c = compareScenario(scenario, point, explore, { save: false, variants })
      return c.variants.map((row) => ({ point, row }))
    } catch (e) {
      // A point the scenario refuses (out of range, inconsistent) is a row, not an abort; other grid points go on.
      if (e instanceof BadInput) return [{ point, invalid: e.message }]
      throw e
    }
  })
}

const outcomesText = (row: VariantRow): string =>
  Object.values(row.outcomes)
    .flatMap((byInput) =>
      Object.entries(byInput)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([input, outs]) => `${input ? `${input}: ` : ''}${[...outs].sort().join(' | ')}`),
    )
    .join('; ')

export function sweepCommand(scenario: Scenario, specs: Record<string, string>, explore: ExploreOptions, json: boolean, variants?: string[]): number {
  if (Object.keys(specs).length === 0) throw new BadInput('sweep needs at least one --param name=a..b or name=x,y,z')
  const rows = sweep(scenario, specs, explore, variants)
  const status = rows.some((r) => r.row?.error !== undefined) ? 2 : 0
  if (json) {
    process.stdout.write(`${JSON.stringify({ scenario: scenario.name, rows }, null, 2)}\n`)
    return status
  }
  const units = Object.fromEntries((instantiate(scenario).model.metrics ?? []).map((m) => [m.id, m.unit]))
  const keys = Object.keys(specs)
  const metrics = [...new Set(rows.flatMap((r) => Object.keys(r.row?.metrics ?? {})))]
  const body = rows.map((r) => {
    const params = keys.map((k) => String(r.point[k]))
    if (!r.row) return [...params, '-', verdictColour(`invalid: ${r.invalid}`)]
    const broken = r.row.error !== undefined
      ? verdictColour('model error')
      : r.row.violated.length ? verdictColour(`VIOLATED ${r.row.violated.join(', ')}`) : r.row.undecided.length ? verdictColour('undecided') : verdictColour('holds')
    return [...params, r.row.variant, broken, outcomesText(r.row), ...metrics.map((m) => metricCell(r.row!, m, units[m]))]
  })
  const errors = rows.flatMap((r) => (r.row?.error !== undefined ? [`${keys.map((k) => `${k}=${r.point[k]}`).join(' ')} ${r.row.variant}: model error: ${r.row.error}`] : []))
  process.stdout.write(`${[sweepTable(keys, metrics, body), ...errors].join('\n')}\n`)
  return status
}

/** The sweep's rows within 100 columns: the long cells (broken invariants, outcomes, metric ranges) wrap onto several lines. */
export function sweepTable(keys: readonly string[], metrics: readonly string[], body: readonly (readonly string[])[]): string {
  const header = [...keys, 'variant', 'invariants', 'outcomes', ...metrics]
  const long = header.map((_, i) => i).filter((i) => i > keys.length)
  return fitTable([header, ...body], { keep: keys.length + 1, wrap: long })
}
