/**
 * Bench section for the reductions (issue 13): each case explored with the
 * reduction off and on, every search in a fresh child (run.ts
 * `--one-scenario SPEC --symmetry on|off --store full|fingerprint`), with
 * `allViolations` so the whole reachable space is counted. With symmetry
 * on, "stands for" is the sum of the orbit sizes of the states stored,
 * which must equal the unreduced count (the off row, or SPIN's count).
 */
import { rowFormatter } from './columns.js'
import type { StoreKind } from '../explorer/options.js'
import type { ScenarioRun } from './mshv.js'

export interface ReductionCase {
  /** NAME/VARIANT[:k=v,...] */
  readonly spec: string
  readonly symmetry: boolean
  readonly store: StoreKind
  /** Partial-order reduction forced on (`por: true`); off when absent, so the other rows measure the rest alone. */
  readonly por?: boolean
  /** Parallel BFS threads (`--workers`; 1 when absent). */
  readonly workers?: number
  /** Stop at the first violation, as a plain `check` does (BFS: every state up to the shortest violation's depth), not explore the whole space. */
  readonly first?: boolean
  /** The unreduced count when known from elsewhere (SPIN, shared/reference/README.md). */
  readonly known?: number
  readonly note?: string
  /** Bounds above the defaults, for a long opt-in case (seconds; states). */
  readonly maxSeconds?: number
  readonly maxStates?: number
}

const ref = (size: string): string => {
  const [P, V, I, K, F] = size.split(',')
  return `fault-invalidate/retry:P=${P},V=${V},I=${I},K=${K},F=${F}`
}

export const REDUCTION_CASES: readonly ReductionCase[] = [
  { spec: ref('4,2,1,2,2'), symmetry: false, store: 'full', known: 6_095_075 },
  { spec: ref('4,2,1,2,2'), symmetry: true, store: 'full', known: 6_095_075 },
  { spec: ref('4,2,1,2,2'), symmetry: true, store: 'fingerprint', known: 6_095_075 },
  { spec: ref('4,3,1,2,1'), symmetry: false, store: 'full', known: 20_871_226 },
  { spec: ref('4,3,1,2,1'), symmetry: true, store: 'full', known: 20_871_226 },
  { spec: 'mshv-movable/fixed:vps=2', symmetry: false, store: 'full' },
  { spec: 'mshv-movable/fixed:vps=2', symmetry: true, store: 'full' },
  { spec: 'mshv-movable/fixed:vps=3,zaps=2', symmetry: false, store: 'full', note: 'cut at the time bound' },
  { spec: 'mshv-movable/fixed:vps=3,zaps=2', symmetry: true, store: 'full' },
  { spec: 'mshv-movable/fixed:splits=1,migrations=1', symmetry: false, store: 'full', note: 'one VP: symmetry has nothing to reduce' },
  // What `check` runs by default on this machine: both cores (and symmetry where declared), to the first violation.
  { spec: 'mshv-movable/fixed:vps=3,zaps=2', symmetry: true, store: 'full', workers: 2, first: true, note: 'check as run by default: to the first violation (every state to depth 27)' },
  { spec: 'mshv-movable/fixed:splits=1,migrations=1', symmetry: false, store: 'full', workers: 2 },
  // Partial-order reduction (not combined with symmetry yet): each beside its symmetry-off, POR-off row above.
  { spec: ref('4,2,1,2,2'), symmetry: false, store: 'full', por: true, known: 6_095_075 },
  { spec: 'mshv-movable/fixed:vps=3,zaps=2', symmetry: false, store: 'full', por: true },
  { spec: 'mshv-movable/fixed:splits=1,migrations=1', symmetry: false, store: 'full', por: true },
]
export const REDUCTION_SMALL_CASES: readonly ReductionCase[] = REDUCTION_CASES.slice(0, 3)
/**
 * Opt-in (`--reductions big`, tens of minutes and GiBs): the size SPIN cannot
 * store in 24 GiB, exhaustive with symmetry over its 3 fault threads; its
 * unreduced count is not known, so "stands for" is only reported.
 */
export const REDUCTION_BIG_CASES: readonly ReductionCase[] = [
  { spec: ref('4,3,1,2,2'), symmetry: true, store: 'full', maxSeconds: 4 * 3600, maxStates: 1_600_000_000, note: 'SPIN cannot store this size in 24 GiB' },
]

type Failed = { readonly error: string }
const ok = <T extends object>(r: T | Failed | null | undefined): r is T => r != null && !('error' in r)

export interface ReductionResult {
  readonly case: ReductionCase
  readonly run: ScenarioRun | Failed
}

export const reductionArgs = (c: ReductionCase): string[] => [
  '--one-scenario', c.spec, '--symmetry', c.symmetry ? 'on' : 'off', '--por', c.por ? 'on' : 'off', '--store', c.store,
  ...(c.workers !== undefined ? ['--workers', String(c.workers)] : []),
  ...(c.first ? ['--first'] : []),
  ...(c.maxSeconds !== undefined ? ['--max-seconds', String(c.maxSeconds)] : []),
  ...(c.maxStates !== undefined ? ['--max-states', String(c.maxStates)] : []),
]

export function runReductions(cases: readonly ReductionCase[], fork: (args: readonly string[]) => ScenarioRun | Failed, progress: (msg: string) => void): ReductionResult[] {
  return cases.map((c) => {
    progress(`${c.spec} symmetry ${c.symmetry ? 'on' : 'off'}, POR ${c.por ? 'on' : 'off'}, ${c.store} store ...`)
    return { case: c, run: fork(reductionArgs(c)) }
  })
}

/** A run failed, or an exhaustive reduced run's orbit sum differs from the unreduced count it must equal. */
export function reductionsFailed(results: readonly ReductionResult[]): boolean {
  return results.some((r) => {
    if (!ok(r.run)) return true
    const want = unreducedCount(results, r)
    return r.run.symmetry !== undefined && r.run.incomplete === null && want !== null && r.run.symmetry.orbitStates !== want
  })
}

/** What an exhaustive unreduced search counts for this case: the known count, else the same spec's exhaustive run with symmetry off. */
function unreducedCount(results: readonly ReductionResult[], r: ReductionResult): number | null {
  if (r.case.known !== undefined) return r.case.known
  const off = results.find((x) => x.case.spec === r.case.spec && !x.case.symmetry && !x.case.por && ok(x.run) && x.run.incomplete === null)
  return off && ok(off.run) ? off.run.states : null
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US')

export function reductionsTable(results: readonly ReductionResult[]): string {
  const out: string[] = []
  out.push('reductions: each case with symmetry reduction and partial-order reduction off and on (fresh process per run, BFS, all violations unless noted)')
  const cols = [
    ['case', 40, 'l'],
    ['symm', 4, 'l'],
    ['por', 3, 'l'],
    ['thr', 3, 'r'],
    ['store', 11, 'l'],
    ['verdict', 10, 'l'],
    ['states', 10, 'r'],
    ['stands for', 10, 'r'],
    ['sec', 7, 'r'],
    ['states/s', 9, 'r'],
    ['B/st pk', 7, 'r'],
  ] as const
  const row = rowFormatter(cols)
  out.push(row(cols.map((c) => c[0])))
  out.push(row(cols.map((c) => '-'.repeat(c[1]))))
  for (const r of results) {
    const c = r.case
    const name = c.spec.replace('fault-invalidate/retry:', 'ref ').replace('mshv-movable/', 'movable ')
    if (!ok(r.run)) {
      out.push(row([name, c.symmetry ? 'on' : 'off', c.por ? 'on' : 'off', String(c.workers ?? 1), c.store, 'FAILED', r.run.error.split('\n')[0].slice(0, 40)]))
      continue
    }
    const x = r.run
    const want = unreducedCount(results, r)
    const stands = x.symmetry ? `${int(x.symmetry.orbitStates)}${want !== null && x.incomplete === null ? (x.symmetry.orbitStates === want ? '' : ' (DIFFERS)') : ''}` : '-'
    out.push(row([name, c.symmetry ? 'on' : 'off', c.por ? 'on' : 'off', String(c.workers ?? 1), c.store, x.verdict, int(x.states), stands, x.seconds.toFixed(2), int(x.statesPerSecond), x.peakBytesPerState.toFixed(1)]))
    const broken = x.violations.map((v) => `${v.invariant} (${v.steps})`).join(', ')
    if (broken) out.push(`    broken: ${broken}`)
    if (x.incomplete) out.push(`    incomplete: ${x.incomplete}${c.note ? ` (${c.note})` : ''}`)
    else if (c.note) out.push(`    ${c.note}`)
    if (x.por && 'reduced' in x.por) {
      out.push(`    POR: ${int(x.por.reduced)} states expanded by one thread's step alone, ${int(x.por.full)} fully; ${x.por.restarts} restarts; ${x.por.overheadSeconds.toFixed(2)} s besides the search (first look, restarts)`)
    } else if (x.por && c.por) out.push(`    POR off: ${x.por.off}`)
    if (x.collisionProbability !== undefined) out.push(`    fingerprints: probability a collision hid a state ~ ${x.collisionProbability.toExponential(1)}`)
  }
  out.push('')
  out.push('thr: BFS threads (2: the parallel BFS, --workers 2, what check runs by default on 2 cores).')
  out.push('stands for: the sum of the orbit sizes of the states stored; it must equal the unreduced count')
  out.push('(the known count for the reference model, else the off row when that finished): "(DIFFERS)" if not.')
  return `${out.join('\n')}\n`
}
