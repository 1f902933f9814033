import { CHANGED_SHARED, type Footprints, NEW, PorRelearn } from './footprints.js'
import type { PackedModel, PackedPor } from './model.js'

/** `choose`: more than one thread can move and none has a step that can go first alone. */
const NO_CHOICE = -1
/** `choose`: one thread has every action, nothing to reduce. */
const ONE_THREAD = -2
/** A step not independent this many times in a row (and never yet) is not re-run to find out again. */
const HOPELESS = 16

/**
 * Partial-order reduction by ample sets (Peled; Clarke, Grumberg and Peled,
 * ch. 10), with footprints measured on the state being expanded, or learned
 * and checked (footprints.ts), never declared. A state is expanded by one
 * thread's step alone (every choice of it) when:
 * - C1 (independence): that step, guard and count of choices included,
 *   writes no shared cell (not even with the value it held) and reads only
 *   shared cells no other thread is known to change; no step can touch a
 *   cell another thread owns (the model guarantees it), so nothing other
 *   threads do before it can enable, disable or change it, and it changes
 *   nothing they see;
 * - C0: that step is enabled, so a state with an action keeps one, and
 *   every deadlock is still reached;
 * - C2 (visibility): it writes only its thread's own cells, and properties
 *   read no such cell: every evaluation is watched (`PackedPor.propertiesReadOwned`)
 *   and the first that reads one ends the reduced search, which is run
 *   again unreduced (`PorFallback`), never left to miss a violation;
 * - C3 (cycle proviso, for BFS after Bošnački and Holzmann): every
 *   successor by that step is a state no earlier expansion reached; else
 *   the state is expanded fully. A chain of reduced expansions then goes
 *   strictly deeper, so no step is postponed forever round a cycle.
 * Why checking the learned change sets only on the states the reduced
 * search expands is enough: suppose some reachable state had a step
 * changing a cell outside its thread's set; take such a state r nearest
 * (fewest steps) to a state s the reduced search expanded, on a path whose
 * steps all stay within the sets. If the path takes s's ample step t first
 * or at all, moving t to the front (it commutes with every step before it)
 * gives an expanded successor nearer to r; if it never does, the state
 * after t followed by the same path reaches r with only t's thread's own
 * cells changed, which no other thread's step reads, so the same step
 * changes the same cell there, and the cycle proviso bounds how often that
 * can happen before the first case. So the search would have met it and
 * started again; a search that ends without restarting saw sets that hold
 * everywhere, and with them the usual ample-set theorem applies.
 * Every successor is still computed, so out-of-range writes, step coverage
 * and the change sets are judged on every enabled action of every state reached.
 */
export class AmpleSets {
  /** States expanded by one thread's step alone / fully though several threads could move. */
  reduced = 0
  full = 0
  private readonly por: PackedPor
  private readonly n: number
  private cells: Int16Array
  private thread = new Int32Array(64)
  private action = new Int32Array(64)
  private count = 0
  /** Per thread: its successors in the state being committed, and whether one changed a shared cell (kept clear between states). */
  private size: Int32Array
  private changes: Uint8Array
  /** The threads with successors in the state being committed, in first-action order. */
  private seen = new Int32Array(64)

  constructor(
    private readonly packed: PackedModel<unknown>,
    private readonly footprints: Footprints,
    /** Only learn footprints: expand every state fully and restart nothing. */
    private readonly learning = false,
  ) {
    this.por = packed.por!
    this.n = packed.stateBytes
    this.cells = new Int16Array(64 * this.n)
    this.size = new Int32Array(footprints.threads)
    this.changes = new Uint8Array(footprints.threads)
  }

  /** Starts the expansion of a state. */
  begin(): void {
    this.count = 0
  }

  /** Keeps `packed.next`, the successor by action `k`, until `commit`. */
  add(k: number): void {
    const i = this.count++
    if (i === this.thread.length) {
      this.thread = grown(this.thread, new Int32Array(2 * i))
      this.action = grown(this.action, new Int32Array(2 * i))
      this.cells = grown(this.cells, new Int16Array(2 * i * this.n))
      this.seen = new Int32Array(2 * i)
    }
    this.thread[i] = this.por.actingThread()
    this.action[i] = k
    this.cells.set(this.packed.next, i * this.n)
  }

  /**
   * Stores the successors kept since `begin` (of the state in `packed.cur`):
   * the ample set when there is one, else (or when the proviso says so) all
   * of them. `store(k)` stores `packed.next` as the successor by action k
   * and says whether it is new. Returns the number of successors stored
   * (the edges of the reduced graph). Throws `PorRelearn` when a successor
   * shows a step outside the footprints.
   */
  commit(store: (k: number) => boolean): number {
    const m = this.count
    if (m === 0) return 0
    const ample = this.choose()
    if (ample < 0) {
      for (let i = 0; i < m; i++) this.store(i, store)
      if (ample === NO_CHOICE) this.full++
      return m
    }
    let fresh = true
    let stored = 0
    for (let i = 0; i < m; i++) {
      if (this.thread[i] !== ample) continue
      stored++
      if (!this.store(i, store)) fresh = false
    }
    if (fresh) {
      this.reduced++
      return stored
    }
    this.full++
    for (let i = 0; i < m; i++) if (this.thread[i] !== ample) this.store(i, store)
    return m
  }

  private store(i: number, store: (k: number) => boolean): boolean {
    this.packed.next.set(this.cells.subarray(i * this.n, (i + 1) * this.n))
    return store(this.action[i])
  }

  /** Checks every successor against the footprints, then picks the thread whose step can go first alone (the fewest successors, the first such). */
  private choose(): number {
    const m = this.count
    const { seen, size, changes, footprints } = this
    const cur = this.packed.cur
    let threads = 0
    let fresh = 0
    for (let i = 0; i < m; i++) {
      const t = this.thread[i]
      if (size[t]++ === 0) seen[threads++] = t
      const r = footprints.learn(t, cur, this.cells.subarray(i * this.n, (i + 1) * this.n))
      fresh |= r & NEW
      if (r & CHANGED_SHARED) changes[t] = 1
    }
    let best = threads < 2 ? ONE_THREAD : NO_CHOICE
    if (fresh && !this.learning) {
      for (let j = 0; j < threads; j++) size[seen[j]] = changes[seen[j]] = 0
      throw new PorRelearn()
    }
    if (best === NO_CHOICE) {
      // Candidates by fewest successors: a thread whose step changed no shared cell, re-run to record what it reads.
      for (let bestCount = 1; best < 0; bestCount++) {
        let any = false
        for (let j = 0; j < threads && best < 0; j++) {
          const t = seen[j]
          if (changes[t] || size[t] < bestCount) continue
          any = true
          if (size[t] === bestCount && this.independent(t)) best = t
        }
        if (!any) break
      }
    }
    for (let j = 0; j < threads; j++) size[seen[j]] = changes[seen[j]] = 0
    if (this.learning) {
      // Learning expands fully; it only counts where a thread's step could have gone first alone.
      if (best >= 0) this.couldReduce++
      return ONE_THREAD
    }
    return best
  }

  /** Learning: states where one thread's step could have gone first alone (by what was known then). */
  couldReduce = 0

  /** Does thread t's step at `cur` write no shared cell and read none another thread may change from where it is? */
  private independent(t: number): boolean {
    const { pcCell } = this.por
    const cur = this.packed.cur
    const pc = cur[pcCell[t]]
    // Re-running a step to record its reads is the costly part: a step that was never independent in its first
    // tries is not tried again (declining to reduce is always sound).
    const key = t * 256 + pc
    const tally = this.tally.get(key) ?? 0
    if (tally >= HOPELESS) return false
    const yes = this.independentNow(t)
    if (!yes && tally >= 0) this.tally.set(key, tally + 1)
    else if (yes) this.tally.set(key, -1)
    return yes
  }

  private independentNow(t: number): boolean {
    const reads = this.por.sharedReads(t)
    if (reads === null) return false
    if (reads.length === 0) return true
    for (let v = 0; v < this.footprints.threads; v++) {
      if (v !== t && this.footprints.mayChange(v, reads)) return false
    }
    return true
  }

  /** Per thread and pc (t * 256 + pc): how many times in a row its step was not independent, or -1 once it was. */
  private readonly tally = new Map<number, number>()
}

function grown<T extends Int32Array | Int16Array>(a: T, b: T): T {
  b.set(a)
  return b
}

/** The reduced search met a property that reads a thread's own cells: it is run again without the reduction. */
export class PorFallback extends Error {
  constructor(readonly reason: string) {
    super(reason)
  }
}

/** Is partial-order reduction to be used for this model (it reports footprints) with these options? */
export const porApplies = (packed: PackedModel<unknown>, options: { readonly por?: boolean }): boolean => options.por !== false && packed.por !== undefined
