/**
 * Bench section for the mshv-movable scenario: every variant from the
 * catalog at a few parameter sets, each (variant, parameters) explored in
 * fresh child processes (see run.ts `--one-scenario`):
 * - a full BFS with `allViolations: true`, so the whole reachable space is
 *   counted (states, transitions, states/s), with every broken invariant;
 * - when that run found a violation, a separate plain `bfs(model)` that
 *   stops at the first one: the time to first counterexample.
 */
import { rowFormatter } from './columns.js'
import { explore } from '../explorer/explore.js'
import { scenarioRecipe } from '../cli/model-recipe.js'
import type { StoreKind } from '../explorer/options.js'
import type { Stats } from '../explorer/result.js'
import { findScenario, instantiate } from '../invariants/scenarios.js'
import type { Params } from '../model/scenario.js'

export const MSHV = 'mshv-movable'

/** Parameter sets, as overrides of the scenario's defaults. The heavier two take 5-12 s per full run here. */
export const MSHV_SETS: readonly Params[] = [{}, { destroy: 1 }, { uaddr_offset: 1, collapses: 1 }]
/** `--sizes small` (and `--mshv default`) keeps only the first. */
export const MSHV_SMALL_SETS: readonly Params[] = MSHV_SETS.slice(0, 1)

/** A bound per search, so a regression shows up as `incomplete` rather than a hang. */
const MAX_SECONDS = 120

export type Stop = 'all' | 'first'

export interface ScenarioRun extends Stats {
  readonly scenario: string
  readonly variant: string
  /** Every parameter, defaults filled in. */
  readonly params: Params
  readonly stop: Stop
  readonly verdict: string
  readonly incomplete: string | null
  /** Cells (16-bit) per packed state; the store keeps one byte per cell. */
  readonly stateCells: number
  /** Invariants checked on every state, besides no-deadlock. */
  readonly invariants: number
  /** Broken invariants (first violation of each) with their trace length in steps. */
  readonly violations: readonly { readonly invariant: string; readonly steps: number }[]
  readonly baselineRssBytes: number
  readonly maxRssBytes: number
  readonly peakBytesPerState: number
}

type Failed = { readonly error: string }
const ok = <T extends object>(r: T | Failed | null | undefined): r is T => r != null && !('error' in r)

export interface MshvResult {
  /** The overrides, e.g. { destroy: 1 }; {} for the defaults. */
  readonly given: Params
  readonly variant: string
  readonly full: ScenarioRun | Failed
  /** null when the full run found no violation (then there is none to stop at). */
  readonly first: ScenarioRun | Failed | null
  /** From `first`: its seconds, and its (shortest) counterexample. */
  readonly firstCounterexample: { readonly seconds: number; readonly invariant: string; readonly steps: number } | null
}

export const paramsKey = (p: Params): string =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')

export function parseParams(text: string): Params {
  if (text === '' || text === 'default') return {}
  return Object.fromEntries(
    text.split(',').map((kv) => {
      const [k, v] = kv.split('=')
      const n = Number(v)
      if (!k || v === undefined || !Number.isInteger(n)) throw new Error(`bad parameter '${kv}': expected name=integer`)
      return [k.trim(), n]
    }),
  )
}

/** `name/variant[:k=v,...]` */
export function parseSpec(text: string): { scenario: string; variant: string; given: Params } {
  const m = /^([^/:]+)\/([^:]+)(?::(.*))?$/.exec(text)
  if (!m) throw new Error(`bad scenario run '${text}': expected NAME/VARIANT[:k=v,...]`)
  return { scenario: m[1], variant: m[2], given: parseParams(m[3] ?? '') }
}

export const specOf = (scenario: string, variant: string, given: Params): string =>
  `${scenario}/${variant}${Object.keys(given).length > 0 ? `:${paramsKey(given)}` : ''}`

export function mshvVariants(): readonly string[] {
  return findScenario(MSHV).variants.map((v) => v.name)
}

export function mshvDefaults(): Params {
  return Object.fromEntries(findScenario(MSHV).params.map((p) => [p.name, p.default]))
}

// ---- child: one search ---------------------------------------------------

export function runScenarioOne(spec: string, stop: Stop, opts: { readonly symmetry?: boolean; readonly por?: boolean; readonly store?: StoreKind; readonly maxSeconds?: number; readonly maxStates?: number; readonly workers?: number } = {}): ScenarioRun {
  const { scenario, variant, given } = parseSpec(spec)
  const gc = (globalThis as { gc?: () => void }).gc
  const inst = instantiate(scenario, variant, given)
  const { model } = inst
  gc?.()
  gc?.()
  const baselineRssBytes = process.memoryUsage.rss()
  // Workers > 1: the parallel BFS (as `check --workers N` runs it), its workers in this process (their memory in its RSS).
  const r = explore(model, { allViolations: stop === 'all', maxSeconds: MAX_SECONDS, workers: 1, recipe: scenarioRecipe(inst), ...opts })
  const maxRssBytes = process.resourceUsage().maxRSS * 1024
  const { states } = r.stats
  return {
    scenario,
    variant: inst.variant,
    params: inst.params,
    stop,
    verdict: r.verdict,
    incomplete: r.incomplete,
    states,
    transitions: r.stats.transitions,
    maxDepth: r.stats.maxDepth,
    seconds: r.stats.seconds,
    statesPerSecond: r.stats.statesPerSecond,
    storeBytes: r.stats.storeBytes,
    stateCells: model.packed?.stateBytes ?? 0,
    invariants: model.invariants.length,
    violations: r.violations.map((v) => ({ invariant: v.invariant, steps: v.actions.length })),
    baselineRssBytes,
    maxRssBytes,
    peakBytesPerState: (maxRssBytes - baselineRssBytes) / states,
    ...(r.stats.symmetry ? { symmetry: r.stats.symmetry } : {}),
    ...(r.stats.por ? { por: r.stats.por } : {}),
    ...(r.stats.collisionProbability !== undefined ? { collisionProbability: r.stats.collisionProbability } : {}),
  }
}

// ---- parent --------------------------------------------------------------

/** Shortest first; on a tie, the one the first-violation run stopped at first. */
function byLength(vs: ScenarioRun['violations'], first: string | undefined): ScenarioRun['violations'] {
  return [...vs].sort((a, b) => a.steps - b.steps || Number(b.invariant === first) - Number(a.invariant === first))
}

export function runMshv(
  sets: readonly Params[],
  fork: (args: readonly string[]) => ScenarioRun | Failed,
  progress: (msg: string) => void,
): MshvResult[] {
  const out: MshvResult[] = []
  for (const given of sets) {
    for (const variant of mshvVariants()) {
      const spec = specOf(MSHV, variant, given)
      progress(`${spec} (all violations) ...`)
      const full = fork(['--one-scenario', spec])
      let first: MshvResult['first'] = null
      if (!ok(full) || full.violations.length > 0) {
        progress(`${spec} (first violation) ...`)
        first = fork(['--one-scenario', spec, '--first'])
      }
      let firstCounterexample: MshvResult['firstCounterexample'] = null
      if (ok(first) && first.violations.length > 0) {
        const v = byLength(first.violations, undefined)[0]
        firstCounterexample = { seconds: first.seconds, invariant: v.invariant, steps: v.steps }
      }
      out.push({ given, variant, full, first, firstCounterexample })
    }
  }
  return out
}

/** A run failed, was cut short, or the two runs disagree on whether there is a violation. */
export function mshvFailed(results: readonly MshvResult[]): boolean {
  return results.some(
    (r) =>
      !ok(r.full) ||
      r.full.verdict === 'incomplete' ||
      (r.first !== null && !ok(r.first)) ||
      (r.full.violations.length > 0) !== (r.firstCounterexample !== null),
  )
}

// ---- text output -----------------------------------------------------------

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const WIDTH = 100

/** Items joined by `sep`, wrapped at WIDTH: `lead` on the first line, as many spaces on the rest. */
function wrap(items: readonly string[], lead: string, sep = ', '): string[] {
  const lines: string[] = []
  let line = lead
  let empty = true
  for (let i = 0; i < items.length; i++) {
    const piece = items[i] + (i < items.length - 1 ? sep.trimEnd() : '')
    if (!empty && line.length + 1 + piece.length > WIDTH) {
      lines.push(line)
      line = ' '.repeat(lead.length) + piece
    } else line += (empty ? '' : ' ') + piece
    empty = false
  }
  lines.push(line)
  return lines
}

export function mshvTable(results: readonly MshvResult[]): string {
  const out: string[] = []
  out.push(`${MSHV}: every variant (from the catalog), BFS, fresh processes per run`)
  const defaults = mshvDefaults()
  out.push(...wrap(Object.entries(defaults).map(([k, v]) => `${k}=${v}`), 'defaults: ', ' '))
  const cols = [
    ['variant', 29, 'l'],
    ['verdict', 10, 'l'],
    ['states', 10, 'r'],
    ['transitions', 11, 'r'],
    ['sec', 7, 'r'],
    ['states/s', 8, 'r'],
    ['1st-cex s', 9, 'r'],
    ['len', 3, 'r'],
  ] as const
  const row = rowFormatter(cols)
  const sets: string[] = []
  for (const r of results) if (!sets.includes(paramsKey(r.given))) sets.push(paramsKey(r.given))
  for (const set of sets) {
    const rows = results.filter((r) => paramsKey(r.given) === set)
    const shape = rows.map((r) => r.full).find(ok)
    out.push('')
    out.push(
      `params: ${set === '' ? 'defaults' : `${set.replaceAll(',', ' ')} (others default)`}` +
        (shape ? `; state ${shape.stateCells} cells, ${shape.invariants} invariants + no-deadlock` : ''),
    )
    out.push(row(cols.map((c) => c[0])))
    out.push(row(cols.map((c) => '-'.repeat(c[1]))))
    for (const r of rows) {
      const f = r.full
      if (!ok(f)) {
        out.push(row([r.variant, 'FAILED', f.error.split('\n')[0].slice(0, 60)]))
        continue
      }
      const cex = r.firstCounterexample
      out.push(
        row([
          r.variant,
          f.verdict,
          int(f.states),
          int(f.transitions),
          f.seconds.toFixed(3),
          int(f.statesPerSecond),
          cex ? cex.seconds.toFixed(3) : r.first !== null && !ok(r.first) ? 'FAILED' : '-',
          cex ? String(cex.steps) : '-',
        ]),
      )
      if (f.violations.length > 0) {
        const items = byLength(f.violations, cex?.invariant).map(
          (v, i) => `${v.invariant} (${v.steps}${i === 0 && cex?.invariant === v.invariant ? ', first' : ''})`,
        )
        out.push(...wrap(items, '    broken: '))
      }
      if (f.incomplete) out.push(`    incomplete: ${f.incomplete}`)
      if (r.first !== null && !ok(r.first)) out.push(`    first-violation run FAILED: ${r.first.error.split('\n')[0]}`)
    }
  }
  out.push('')
  out.push('states .. states/s: bfs(model, { allViolations: true }), the whole reachable space.')
  out.push('broken: every invariant the full run found broken, with its shortest trace (steps);')
  out.push('"first" marks the one a plain bfs(model) stops at. 1st-cex s: that separate run\'s')
  out.push('search time (own process), len its trace length; "-" when the full run found none.')
  return `${out.join('\n')}\n`
}
