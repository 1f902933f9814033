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

export interface Step<W, L> {
  /** Enabled in this state? (default: always) */
  readonly guard?: (w: W, me: L) => boolean
  /** Number of nondeterministic branches, 0..n-1 (default 1). */
  readonly choices?: (w: W, me: L) => number
  /** The atomic effect of branch `choice`; returns the next label. */
  readonly run: (w: W, me: L, choice: number) => string
  /** How a trace shows the step, e.g. `hmm_range_fault(page 2)`; evaluated on the state before it. */
  readonly text?: (w: W, me: L, choice: number) => string
}

export interface Process<W, L> {
  readonly name: string
  readonly locals: Fields
  /** The label a thread starts at. */
  readonly start: string
  /** Label -> step. A label that is a goto target but has no step is where the thread ends. */
  readonly steps: Readonly<Record<string, Step<W, L>>>
  /** Labels with a step where the thread may also validly stay forever (SPIN's end labels). */
  readonly ends?: readonly string[]
}

/** A thread as a state holds it: its label and its locals. */
export type ThreadState = { pc: string } & Record<string, number | string>

/** A whole state: the world's globals and every thread. */
export type State<W> = W & { readonly threads: readonly ThreadState[] }

export interface ThreadSpec<W> {
  readonly name: string
  readonly process: Process<W, any>
  /** Initial values of some locals (e.g. the gfn a VP will touch, or its lock-owner id). */
  readonly locals?: Readonly<Record<string, number>>
}

/** Everything a scenario builds for one parameter set and variant. */
export interface Program<G extends Fields> {
  readonly globals: G
  /** Sets the initial values (on a zeroed world). */
  readonly init?: (w: ValueOf<G>) => void
  readonly threads: readonly ThreadSpec<ValueOf<G>>[]
}

/** The action of a compiled program: thread index and choice. */
export interface ProcessAction {
  readonly thread: number
  readonly choice: number
}

export function process<W, L>(p: Process<W, L>): Process<W, L> {
  return p
}
