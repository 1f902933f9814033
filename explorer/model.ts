/**
 * The one contract between the engine and everything it explores, after
 * Stateright's `Model` trait and TLA+'s Init/Next/Inv. The engine never
 * imports the kernel model: any `Model<S, A>` can be explored.
 */

/** A named safety property of one state: `null` when it holds, else a message naming the gfn/pfn/thread. */
export interface Invariant<S> {
  readonly id: string
  readonly description: string
  check(s: S): string | null
}

/**
 * A property of a whole exploration, not of one state: the outcome of a run,
 * read off its terminal state, must not depend on the nondeterministic
 * choices that led there (e.g. an ioctl's result must not depend on the
 * host's allocation choices). Two terminal states with different outcomes
 * break it, and both runs are reported.
 */
export interface OutcomeProperty<S> {
  readonly id: string
  readonly description: string
  /** The input the run was for (outcomes are compared per input); one input when absent. */
  input?(s: S): string
  outcome(s: S): string
}

/**
 * A property of the whole exploration built from evidence gathered on every
 * state (lockdep's rule is one: lock class A taken while holding B on some
 * run, and B while holding A on another). The property has `names.length`
 * facts, numbered from 0; a state shows some of them (`facts`, as indices);
 * the exploration collects them, and `conflict` picks, from all facts seen,
 * the ones that together break the property (none when it holds). Each
 * fact's first state is a witness with a trace: a violation has one run per
 * fact of the conflict.
 */
export interface EvidenceProperty<S> {
  readonly id: string
  readonly description: string
  /** Fact k's name (what the trace of its run is recorded with). */
  readonly names: readonly string[]
  /** The facts `s` shows: indices into `names`, each at most once. */
  facts(s: S): readonly number[]
  /** The facts, among all seen so far, that together break the property, in the order to report them; empty when it holds. */
  conflict(seen: ReadonlySet<number>): readonly number[]
  message(conflict: readonly number[]): string
}

/** A number measured on every terminal state; an exploration reports its minimum and maximum. */
export interface Metric<S> {
  readonly id: string
  readonly description: string
  /** A share in 0..1 is shown as a percentage. */
  readonly unit?: 'share' | 'count'
  measure(s: S): number
}

/** A kind of action, for coverage (TLC's action coverage, SPIN's unreached code): a process's step, by process and label. */
export interface StepClass {
  readonly group: string
  readonly name: string
}

/** How a step reads in a trace: the thread that took it, its label (the kernel function it mirrors) and the choice made. */
export interface StepLabel {
  readonly thread: string
  readonly label: string
  readonly choice: number
  /** The label with its arguments, e.g. `hmm_range_fault(gfn 0x200..0x3ff)`. */
  readonly text: string
}

/** A canonical key: equal states, equal prints. */
export type Fingerprint = string

export interface Model<S, A> {
  readonly name: string
  initialStates(): readonly S[]
  /** Every enabled action; nondeterminism is more actions. The order is stable. */
  actions(s: S): readonly A[]
  /** Pure: `s` is immutable. */
  next(s: S, a: A): S
  readonly invariants: readonly Invariant<S>[]
  /** Properties of the whole exploration, judged on terminal states. */
  readonly outcomes?: readonly OutcomeProperty<S>[]
  readonly evidence?: readonly EvidenceProperty<S>[]
  readonly metrics?: readonly Metric<S>[]
  fingerprint(s: S): Fingerprint
  describe(a: A, before: S, after: S): StepLabel
  /** Finished, not deadlocked (a state with no action that is not terminal is a `no-deadlock` violation). */
  terminal?(s: S): boolean
  /** Where `thread` (or, without one, every thread) is and whether it is blocked: "fault0 is at mutex_lock, blocked". */
  whereIs?(s: S, thread?: string): string
  /** The thread that takes `a` (as `describe` names it), cheaply: the livelock search asks it of every action. */
  threadOf?(a: A, s: S): string
  /** Is `a`, taken in `s`, a progress step? A cycle of steps none of which is one is a livelock (`no-livelock`). */
  progress?(a: A, s: S): boolean
  /** Optional fast path with exactly the same semantics, on fixed-size byte states. */
  readonly packed?: PackedModel<S>
  /** The kinds of action, for coverage; `classOf` says which one an action is. */
  readonly stepClasses?: readonly StepClass[]
  classOf?(a: A, s: S): number
  /**
   * The invariant (an id of `invariants`) that a successor breaks when it
   * cannot be stored because a cell is outside its range (`PackedModel.outOfRange`).
   */
  readonly rangeInvariant?: string
}

/**
 * A packed state during exploration: one cell per stored byte, held as a
 * signed 16-bit integer so that a step writing a value outside its field's
 * range (a counter going past 255 or below 0) is caught rather than wrapped;
 * stored states are bytes (signed cells in two's complement).
 */
export type Cells = Int16Array

/**
 * The engine's hot loop works on states packed into a fixed number of bytes.
 * A model that can pack its states offers this; any other model is packed by
 * interning (see `graph.ts`). The successor order of `expand` is the order of
 * `Model.actions`, so the k-th successor is the k-th action.
 */
export interface PackedModel<S> {
  readonly stateBytes: number
  /** The engine writes the state to expand here. */
  readonly cur: Cells
  /** Successors (and initial states) appear here, one at a time, during `emit`. */
  readonly next: Cells
  encode(s: S, out: Cells): void
  decode(b: Cells): S
  /** Writes each initial state into `next` and calls `emit`. */
  initial(emit: () => void): void
  /**
   * Expands `cur`: writes each successor into `next` and calls `emit(k, c)`
   * for the k-th action, of step class `c` (0 when the model has none); returns the count.
   */
  expand(emit: (k: number, c: number) => void): number
  /**
   * Each cell's declared range: the engine stores a cell in the bits its
   * range needs (see bit-layout.ts) and treats a successor with a cell
   * outside its range as a violation of `Model.rangeInvariant`, never stored.
   * Without it, a cell is a byte (signed for `signedCells`).
   */
  readonly cellRanges?: readonly { readonly min: number; readonly max: number }[]
  /** Is `next` outside the state space (a cell outside its field's range)? For searches that do not pack states (random mode). */
  outOfRange?(): boolean
  /** Cells that hold a signed byte (when there are no `cellRanges`). */
  readonly signedCells?: readonly number[]
  /** Metric `i` (index into `Model.metrics`) measured on `next`. */
  measure?(i: number): number
  /** Does invariant `i` (index into `Model.invariants`) hold on `next`? */
  holds(i: number): boolean
  /** The facts (indices into its `names`) evidence property `i` (index into `Model.evidence`) sees on `next`. */
  facts?(i: number): readonly number[]
  /** Is `cur` terminal? */
  terminal(): boolean
  /**
   * During `emit`: the thread that took the step (a small number, the same
   * for a thread in every state) and whether it is a progress step
   * (`Model.progress`). The livelock search reads them; without them it
   * searches the model through `Model.threadOf` and `Model.progress`.
   */
  stepThread?(): number
  stepProgress?(): boolean
  /** Renamings of interchangeable threads the state space is closed under (symmetry reduction). */
  readonly symmetry?: PackedSymmetry
  /** Which thread takes each action and which steps are local to their thread (partial-order reduction). */
  readonly por?: PackedPor
}

/**
 * What partial-order reduction needs of a packed model whose state is
 * shared cells plus cells each thread owns (its pc and locals). The model
 * guarantees by construction that no step of one thread reads or writes a
 * cell another thread owns, and that only a thread's own steps move its pc
 * (the engine takes both as given); every footprint it reports is measured
 * on the state at hand, never declared, so none can be silently wrong.
 */
export interface PackedPor {
  /** Per cell: the thread that owns it, or -1 for a shared cell. */
  readonly owner: Int32Array
  /** Per thread: the cell holding its pc, which says which step it takes next. */
  readonly pcCell: Int32Array
  /** During `expand`'s `emit`: the thread taking the action. */
  actingThread(): number
  /**
   * Re-runs thread `t`'s step at `cur` (its guard, its count of choices and
   * every choice) on a view that records each access: the shared cells it
   * reads, or null when it is disabled or writes a shared cell (even with
   * the value that cell held).
   */
  sharedReads(t: number): readonly number[] | null
  /**
   * Did a property (`holds`, `facts`, `measure`) evaluated since the last
   * call read a cell some thread owns? Clears the record.
   */
  propertiesReadOwned(): boolean
}

/**
 * A group of renamings (of interchangeable threads) under which the
 * transition relation, the initial states and the properties are invariant.
 * Permutation 0 is not the identity: `count` non-identity renamings.
 */
export interface PackedSymmetry {
  readonly count: number
  /** Writes the image of `from` under renaming `p` into `to`. */
  permute(p: number, from: Cells, to: Cells): void
  /** Renaming `p` as data: cell i of the image is cell `sources(p)[i]` of the state, ... */
  sources(p: number): Int32Array
  /** ... then a thread-id cell (`idCells`, holding thread index + `idBias`) naming thread t names `threadMap(p)[t]`. */
  threadMap(p: number): Int32Array
  readonly idCells: Int32Array
  readonly idBias: Int32Array
  /** Renaming `p` in words: "fault0 <-> fault1". */
  describe(p: number): string
}
