import type { ModelRecipe } from './recipe.js'
import type { CheckpointOptions } from './checkpoint.js'
import type { Mode, Progress } from './result.js'

export type StoreKind = 'full' | 'fingerprint'

export interface ExploreOptions {
  readonly mode?: Mode
  /** Do not expand states at this depth (steps from an initial state). */
  readonly maxDepth?: number
  readonly maxStates?: number
  readonly maxSeconds?: number
  /** Keep exploring after a first violation, to list every broken invariant. */
  readonly allViolations?: boolean
  /** Random mode: the seed (drawn and reported when absent) and the number of runs. */
  readonly seed?: number
  readonly runs?: number
  /**
   * Asked once per state with the number of states stored: a reason to end
   * the search now (a memory bound, an interrupt), or null to go on. The
   * search then ends `incomplete` with that reason, its statistics and the
   * violations found so far.
   */
  readonly stop?: (states: number) => string | null
  /**
   * The visited set: `full` keeps every state (exact, the default);
   * `fingerprint` keeps a 64-bit fingerprint per state (BFS only; a
   * collision may hide a state, with the probability the result reports).
   */
  readonly store?: StoreKind
  /**
   * `fingerprint` store: where the parent links (4 bytes per state) are
   * kept: `disk` (the default, as TLC: a temporary file, read back only to
   * rebuild a trace; in memory if it cannot be written) or `memory`.
   */
  readonly links?: 'disk' | 'memory'
  /** Also search for a reachable cycle on which no step is a progress step (`no-livelock`, SPIN's -l); off by default. */
  readonly livelock?: boolean
  /** Symmetry reduction over the threads the model declares interchangeable (on by default; false to compare). */
  readonly symmetry?: boolean
  /** Swarm shards (explorer/swarm.ts): emit each state's successors in an order shuffled from this seed (absent: the model's order). */
  readonly successorSeed?: number
  /** Swarm shards: seed the fingerprint store's hash function (`store: 'fingerprint'` only; absent: the default). */
  readonly hashSeed?: number
  /**
   * BFS over this many threads (parallel-bfs.ts); 1, the default, is the
   * sequential BFS. Needs `recipe`: without one the search is sequential
   * and says so (`stats.parallel.sequential`).
   */
  readonly workers?: number
  /** How a worker thread rebuilds the model (the same model as the one given). */
  readonly recipe?: ModelRecipe
  /** Levels of fewer states than this are expanded by the calling thread alone (starting threads costs more than they save); default 10,000. */
  readonly parallelFrom?: number
  /** BFS only: save the search every so often and when cut short, or resume a saved one (explorer/checkpoint.ts). */
  readonly checkpoint?: CheckpointOptions
  /**
   * Partial-order reduction (BFS, where the model reports its steps'
   * footprints, as compiled programs do): by default, on only where it pays:
   * where one thread's step alone could expand at least a quarter of the
   * first 1,000 states, and then does expand a quarter of the first 20,000
   * (else the plain search runs, and the statistics say why), and a search
   * that finds a violation is run again without it, so that its traces are
   * shortest; true: on regardless (traces may be longer); false: off.
   */
  readonly por?: boolean
  /** Called about four times a second while the search runs. */
  readonly onProgress?: (p: Progress) => void
}

/** Bounds used when none are given: a search that hits one is `incomplete`, never `ok`. */
export const DEFAULT_BOUNDS = {
  maxDepth: 10_000,
  maxStates: 50_000_000,
  maxSeconds: 600,
  runs: 1_000,
} as const
