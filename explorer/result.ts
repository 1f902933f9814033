/** What an exploration found and what it covered. */

export type Verdict = 'ok' | 'violation' | 'incomplete'
export type Mode = 'bfs' | 'dfs' | 'random'

/** A broken invariant with the path that breaks it: the initial state's index and the actions from it. All of a violation's runs: `runsOf`. */
export interface Violation<A> {
  readonly invariant: string
  readonly message: string
  readonly init: number
  readonly actions: readonly A[]
  /** A lasso (`no-livelock`): `actions[cycleStart..]` lead from the state after `actions[0..cycleStart)` back to it, forever. */
  readonly cycleStart?: number
  /**
   * For an outcome property: the outcome this run ends with; for an evidence
   * property: the fact this run ends showing.
   */
  readonly outcome?: string
  /**
   * The other runs of a property of the whole exploration, each with its own
   * outcome or fact: for an outcome property the one run that ends
   * differently, for an evidence property one run per other fact of the
   * conflict (e.g. one per edge of a lock-order cycle).
   */
  readonly witnesses?: readonly Violation<A>[]
}

/** A violation's runs: itself, then its witnesses (each gets its own trace). */
export const runsOf = <A>(v: Violation<A>): readonly Violation<A>[] => (v.witnesses ? [v, ...v.witnesses] : [v])

/** A metric's range over the terminal states explored. */
export interface MetricRange {
  readonly min: number
  readonly max: number
}

export interface Stats {
  /** Distinct states stored (random mode: distinct states seen). */
  readonly states: number
  /** Edges: (reachable state, enabled action) pairs expanded. */
  readonly transitions: number
  readonly maxDepth: number
  readonly seconds: number
  readonly statesPerSecond: number
  /** Bytes held by the visited set's arrays. */
  readonly storeBytes: number
  /** `fingerprint` store only: TLC's estimate of the probability that a fingerprint collision hid a state. */
  readonly collisionProbability?: number
  /** `fingerprint` store only: bytes of parent links in its temporary file on disk (not in `storeBytes`). */
  readonly diskBytes?: number
  /** `fingerprint` store only: why its parent links are in memory though disk was asked (the temp dir could not be written). */
  readonly linksFallback?: string
  /**
   * Symmetry reduction: the renamings of interchangeable threads, and the
   * sum of the orbit sizes of the states stored: the states the search
   * stands for, which is the unreduced count when the search is exhaustive.
   */
  readonly symmetry?: { readonly renamings: number; readonly orbitStates: number }
  /**
   * A BFS asked for several workers: how many ran, the levels they expanded,
   * and the levels replayed in order (where a first sighting happened: a
   * violation, a new evidence fact or outcome), or why the search was
   * sequential after all.
   */
  readonly parallel?: { readonly workers: number; readonly levels: number; readonly replayed: number; readonly sequential?: string }
  /**
   * Partial-order reduction (BFS): the states expanded by one thread's local
   * step alone and those expanded fully though several threads could move,
   * and how many times the search started again having seen a step do
   * something new (footprints.ts); or why the search ran without it (`off`).
   * `overheadSeconds`: time spent besides `seconds` (the first look at the
   * footprints, searches started again or dropped).
   */
  readonly por?:
    | { readonly reduced: number; readonly full: number; readonly restarts: number; readonly overheadSeconds: number }
    | { readonly off: string; readonly overheadSeconds?: number }
  /** `livelock`: the states of the unreduced graph the cycle search built, and its time (not in `seconds`). */
  readonly livelock?: { readonly states: number; readonly seconds: number }
}

export interface Exploration<A> {
  readonly verdict: Verdict
  /** The first violation of each broken invariant (one, unless `allViolations`). */
  readonly violations: readonly Violation<A>[]
  readonly stats: Stats
  /** Why the search stopped short of the whole reachable space, when it did. */
  readonly incomplete: string | null
  readonly mode: Mode
  /** Random mode: the seed that replays this run. */
  readonly seed: number | null
  /** Each metric's range over the terminal states reached (absent when none was). */
  readonly metrics: Readonly<Record<string, MetricRange>>
  /** Each metric's range over every state reached. */
  readonly metricsAll: Readonly<Record<string, MetricRange>>
  /** Step class group -> name -> transitions taken (the model's `stepClasses`; empty when it has none). */
  readonly coverage: Readonly<Record<string, Readonly<Record<string, number>>>>
  /** Each outcome property's outcomes seen, per input. */
  readonly outcomes: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>
}

/** Progress of a running search, for a progress line. */
export interface Progress {
  readonly states: number
  readonly transitions: number
  readonly depth: number
  readonly queue: number
  readonly seconds: number
  readonly statesPerSecond: number
}
