/**
 * Code paths as processes, PlusCal style: a thread is a table of labelled
 * atomic steps, the label being the kernel function the step mirrors
 * (`mmap_read_lock`, `hmm_range_fault`, ...). A step has a guard (a blocked
 * lock acquire is a false guard, hence a disabled action), a number of
 * nondeterministic choices, and an effect written as plain mutations of the
 * world and of the thread's locals; it returns the label to go to.
 *
 * Step code must only read and write the world through `w` and `me` (no
 * closures over mutable state, no other side effects): the same function
 * runs on the packed byte view during exploration and on an immer draft
 * during replay.
 */
import type { Fields, ValueOf } from './schema.js'

export interface Step<W, L, K extends string = string> {
  /** Enabled in this state? (default: always) */
  // Methods, not function-typed properties: a process over a wider world fits a program over any world.
  guard?(w: W, me: L): boolean
  /** Number of nondeterministic branches, 0..n-1 (default 1). */
  choices?(w: W, me: L): number
  /** The atomic effect of branch `choice`; returns the next label (a goto). */
  run(w: W, me: L, choice: number): K
  /** How a trace shows the step, e.g. `hmm_range_fault(page 2)`; evaluated on the state before it. */
  text?(w: W, me: L, choice: number): string
  /**
   * A progress step (SPIN's `progress` label): taking it is the work getting
   * done (a fault that installs its mapping, an invalidation that ends).
   * `check --livelock` reports a reachable cycle on which no step is one.
   */
  readonly progress?: boolean
  /**
   * For a step made by a helper (`Locks.lockStep`): the labels it may go to,
   * or the functions that compute them, which the build's label check reads
   * instead of the helper's own `run` (see labels.ts).
   */
  readonly targets?: readonly (string | ((...args: any[]) => string))[]
}

/** The label where every thread may end without a step: always declared. */
export const DONE = 'done'

export interface Process<W, L> {
  readonly name: string
  readonly locals: Fields
  /** The label a thread starts at. */
  readonly start: string
  /** Label -> step. */
  readonly steps: Readonly<Record<string, Step<W, L>>>
  /**
   * End labels (SPIN's): where a thread may validly stop. A label without a
   * step ends the thread; one with a step is a place it may stay forever.
   * `done` is always one. A goto to any other label without a step is a
   * model error, so a mistyped label never ends a thread silently.
   */
  readonly ends?: readonly string[]
  /** Labels reached only by a computed goto (a variable, a helper's result), which the build's label check cannot read. */
  readonly gotos?: readonly string[]
}

/** What `process<W, L>()` takes: the step labels `K` and end labels `E` are inferred, and every goto is checked against them by tsc. */
export interface ProcessSpec<W, L, K extends string, E extends string> {
  readonly name: string
  readonly locals: Fields
  readonly start: NoInfer<K>
  readonly steps: { readonly [k in K]: Step<W, L, NoInfer<K | E> | typeof DONE> }
  readonly ends?: readonly E[]
  readonly gotos?: readonly NoInfer<K>[]
}

/** A thread as a state holds it: its label and its locals. */
export type ThreadState = { pc: string } & Record<string, number | string>

/** A whole state: the world's globals and every thread. */
export type State<W> = W & { readonly threads: readonly ThreadState[] }

export interface ThreadSpec<W> {
  readonly name: string
  readonly process: Process<any, any>
  /** Initial values of some locals (e.g. the gfn a VP will touch, or its lock-owner id). */
  readonly locals?: Readonly<Record<string, number>>
}

/** Everything a scenario builds for one parameter set and variant. */
export interface Program<G extends Fields> {
  readonly globals: G
  /** Sets the initial values (on a zeroed world). */
  readonly init?: (w: ValueOf<G>) => void
  readonly threads: readonly ThreadSpec<ValueOf<G>>[]
  /**
   * Groups of interchangeable threads (by name): same process, same start,
   * no step that depends on which of them it is except through fields
   * declared `threadId`/`threadRef`. Symmetry reduction stores one state
   * per renaming of each group's threads.
   */
  readonly symmetric?: readonly (readonly string[])[]
}

/** The action of a compiled program: thread index and choice. */
export interface ProcessAction {
  readonly thread: number
  readonly choice: number
}

/**
 * A process. `process<W, L>()({...})` infers the labels, so a goto to a
 * label that is neither a step nor an end label is a type error;
 * `process<W, L>({...})` takes the labels as plain strings (the build
 * still checks them, see labels.ts).
 */
export function process<W, L>(): <const K extends string, const E extends string = never>(p: ProcessSpec<W, L, K, E>) => Process<W, L>
export function process<W, L>(p: Process<W, L>): Process<W, L>
export function process<W, L>(p?: Process<W, L>): Process<W, L> | ((q: ProcessSpec<W, L, string, string>) => Process<W, L>) {
  return p ?? ((q) => q as Process<W, L>)
}
