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
import { compareScenario, metricCell, type Comparison, type VariantRow } from './compare.js'
import { EXIT, matrixStatus, traceWriteErrors } from './exit.js'
import { fitTable } from './fit-table.js'
import { metricText, verdictColour } from './format.js'

/** The most grid points a sweep runs. */
export const MAX_POINTS = 10_000

/** `a..b` (inclusive), `x,y,z`, or one value. */
export function parseValues(name: string, spec: string): number[] {
  const range = /^(\d+)\.\.(\d+)$/.exec(spec)
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])]
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) throw new BadInput(`--param ${name}=${spec}: values past ${Number.MAX_SAFE_INTEGER}`)
    if (b < a) throw new BadInput(`--param ${name}=${spec}: empty range`)
    // Counted before the values are made: a..b of 10^11 values is one line, not an allocation failure.
    if (b - a + 1 > MAX_POINTS) throw new BadInput(`--param ${name}=${spec}: ${b - a + 1} values; a sweep runs at most ${MAX_POINTS} points`)
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

export function sweep(
  scenario: Scenario,
  specs: Readonly<Record<string, string>>,
  explore: ExploreOptions,
  variants?: readonly string[],
  options: { readonly traceDir?: string; readonly progress?: boolean } = {},
): SweepRow[] {
  const name = scenario.name
  const axes = Object.entries(specs).map(([k, spec]) => {
    if (!allParams(scenario).some((p) => p.name === k)) throw new BadInput(`unknown parameter '${k}' of scenario ${name}`)
    return [k, parseValues(k, spec)] as const
  })
  const count = axes.reduce((n, [, values]) => n * values.length, 1)
  if (count > MAX_POINTS) throw new BadInput(`the grid has ${count} points; at most ${MAX_POINTS}`)
  for (const v of variants ?? []) {
    if (!scenario.variants.some((x) => x.name === v)) throw new BadInput(`unknown variant '${v}' of scenario ${name} (variants: ${scenario.variants.map((x) => x.name).join(', ')})`)
  }
  const points = axes.reduce<Record<string, number>[]>((acc, [k, values]) => acc.flatMap((p) => values.map((v) => ({ ...p, [k]: v }))), [{}])
  const label = (point: Record<string, number>): string => Object.entries(point).map(([k, v]) => `${k}=${v}`).join(' ')
  return points.flatMap((point): SweepRow[] => {
    try {
      const c = compareScenario(scenario, point, explore, { save: options.traceDir !== undefined, traceDir: options.traceDir, variants, progress: options.progress, label: label(point) })
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

export function sweepCommand(
  scenario: Scenario,
  specs: Record<string, string>,
  explore: ExploreOptions,
  json: boolean,
  variants?: string[],
  options: { readonly traceDir?: string; readonly strict?: boolean } = {},
): number {
  if (Object.keys(specs).length === 0) throw new BadInput('sweep needs at least one --param name=a..b or name=x,y,z')
  const rows = sweep(scenario, specs, explore, variants, { traceDir: options.traceDir, progress: !json })
  const computed: Comparison[] = rows.flatMap((r) => (r.row ? [{ scenario: scenario.name, params: r.point, invariants: [], units: {}, variants: [r.row] }] : []))
  const invalid = rows.filter((r) => r.invalid !== undefined)
  // A grid point the scenario refuses is bad input: the table still shows every point, and the status says so.
  const status = invalid.length > 0 ? EXIT.badInput : matrixStatus(computed, !!options.strict)
  const finish = (): number => {
    traceWriteErrors(computed)
    if (invalid.length > 0) {
      process.stderr.write(`mapcheck: ${invalid.length} of ${rows.length} grid points are not valid parameter sets (first: ${invalid[0].invalid})\n`)
    }
    return status
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ scenario: scenario.name, rows }, null, 2)}\n`)
    return finish()
  }
  const units = Object.fromEntries((instantiate(scenario).model.metrics ?? []).map((m) => [m.id, m.unit]))
  const keys = Object.keys(specs)
  const metrics = [...new Set(rows.flatMap((r) => Object.keys(r.row?.metrics ?? {})))]
  // No outcomes column for a scenario without outcome properties: it would be empty on every row.
  const withOutcomes = rows.some((r) => r.row && Object.keys(r.row.outcomes).length > 0)
  const body = rows.map((r) => {
    const params = keys.map((k) => String(r.point[k]))
    if (!r.row) return [...params, '-', verdictColour(`invalid: ${r.invalid}`)]
    const broken = r.row.error !== undefined
      ? verdictColour('model error')
      : r.row.violated.length ? verdictColour(`VIOLATED ${r.row.violated.join(', ')}`) : r.row.undecided.length ? verdictColour('undecided') : verdictColour('holds')
    return [...params, r.row.variant, broken, ...(withOutcomes ? [outcomesText(r.row)] : []), ...metrics.map((m) => metricCell(r.row!, m, units[m]))]
  })
  const errors = rows.flatMap((r) => (r.row?.error !== undefined ? [`${keys.map((k) => `${k}=${r.point[k]}`).join(' ')} ${r.row.variant}: model error: ${r.row.error}`] : []))
  process.stdout.write(`${[sweepTable(keys, metrics, body, withOutcomes), ...errors].join('\n')}\n`)
  return finish()
}

/** The sweep's rows within 100 columns: the long cells (broken invariants, outcomes, metric ranges) wrap onto several lines. */
export function sweepTable(keys: readonly string[], metrics: readonly string[], body: readonly (readonly string[])[], withOutcomes = true): string {
  // A scenario without outcome properties gets no (empty) outcomes column.
  const header = [...keys, 'variant', 'invariants', ...(withOutcomes ? ['outcomes'] : []), ...metrics]
  const long = header.map((_, i) => i).filter((i) => i > keys.length)
  return fitTable([header, ...body], { keep: keys.length + 1, wrap: long })
}
