import type { PackedModel, PackedPor } from './model.js'

/** `choose`: more than one thread can move and none has a local step. */
const NO_CHOICE = -1
/** `choose`: one thread has every action, nothing to reduce. */
const ONE_THREAD = -2

/**
 * Partial-order reduction by ample sets (Peled; Clarke, Grumberg and Peled,
 * ch. 10), the conditions SPIN's reduction uses, with footprints measured
 * on the state being expanded rather than declared:
 * - C0: the ample set is one thread's whole step (every choice), never
 *   empty while any action is enabled, so every deadlock is still reached;
 * - C1 (independence): the thread's step, guard and choices included,
 *   touched only cells that thread owns, in this very state; the model
 *   guarantees no other thread's step can touch those cells, so nothing a
 *   step of another thread does can enable, disable or change it, nor it them;
 * - C2 (visibility): it writes only cells its thread owns, and properties
 *   read no such cell: every evaluation is watched (`PackedPor.propertiesReadOwned`)
 *   and the first that reads one ends the reduced search, which is run again
 *   unreduced (`PorFallback`), never left to miss a violation;
 * - C3 (cycle proviso, for BFS as Bošnački and Holzmann do it): the state
 *   keeps its ample set only when every ample successor is a state no
 *   earlier expansion reached; otherwise it is expanded fully. A chain of
 *   reduced expansions then goes strictly deeper, so no step is ignored
 *   forever round a cycle.
 * Every successor is still computed, so out-of-range writes and step
 * coverage are judged on every enabled action of every state reached.
 */
export class AmpleSets {
  /** States expanded with an ample set / fully (though more than one thread had an action). */
  reduced = 0
  full = 0
  private readonly por: PackedPor
  private readonly n: number
  private cells: Int16Array
  private thread = new Int32Array(64)
  private action = new Int32Array(64)
  private count = 0

  constructor(private readonly packed: PackedModel<unknown>) {
    this.por = packed.por!
    this.n = packed.stateBytes
    this.cells = new Int16Array(64 * this.n)
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
   * Stores the successors kept since `begin`: the ample set when there is
   * one, else (or when the proviso says so) all of them. `store(k)` stores
   * `packed.next` as the successor by action k and says whether it is new.
   * Returns the number of successors stored (the edges of the reduced graph).
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

  /** The thread whose local step has the fewest successors (the first such), else NO_CHOICE or ONE_THREAD. */
  private choose(): number {
    const m = this.count
    const seen = this.seen
    let threads = 0
    for (let i = 0; i < m; i++) {
      const t = this.thread[i]
      if (t >= this.size.length) this.size = grown(this.size, new Int32Array(2 * t + 2))
      if (this.size[t]++ === 0) seen[threads++] = t
    }
    let best = threads < 2 ? ONE_THREAD : NO_CHOICE
    let bestCount = Infinity
    for (let j = 0; j < threads; j++) {
      const t = seen[j]
      const c = this.size[t]
      this.size[t] = 0
      if (threads > 1 && c < bestCount && this.por.local(t)) {
        best = t
        bestCount = c
      }
    }
    return best
  }
  /** Per thread: its successors in the state being committed (kept at 0 between states). */
  private size = new Int32Array(16)
  /** The threads with successors in the state being committed (as many as the successors at most). */
  private seen = new Int32Array(64)
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

