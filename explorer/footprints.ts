import type { Cells, PackedModel, PackedPor } from './model.js'

/** `Footprints.learn`: the step changed a shared cell the thread was not known to change. */
export const NEW = 1
/** `Footprints.learn`: the step changed a shared cell. */
export const CHANGED_SHARED = 2

/**
 * What each thread may do to the shared cells, learned from what its steps
 * were seen to do, for partial-order reduction: per thread, every shared
 * cell one of its steps changed. A search that relies on these sets checks
 * every successor it computes against them, and the first step seen to
 * change a cell outside its thread's set ends the search (`PorRelearn`): it
 * is run again with what was learned. A search that ends without one saw
 * every step of every state it expanded stay within the sets, and that is
 * enough (see por.ts): the sets are then true of every reachable state, not
 * only of those seen. Per thread rather than per step: the kernel's threads
 * loop (a VP touches its next gfn), so what a thread may yet do from a step
 * is nearly all it ever does, and a coarser set is learned in fewer restarts.
 */
export class Footprints {
  readonly threads: number
  /** Words of a set of cells. */
  private readonly words: number
  /** Per thread: the shared cells its steps were seen to change (a bit set). */
  private readonly writes: Uint32Array[]
  /** Searches restarted because a step did something new. */
  restarts = 0

  constructor(private readonly por: PackedPor) {
    this.threads = por.pcCell.length
    this.words = (por.owner.length + 31) >>> 5
    this.writes = Array.from({ length: this.threads }, () => new Uint32Array(this.words))
  }

  /**
   * Checks the step of thread `t` from `before` to `after` against its set,
   * adding what it changed: NEW when that was outside it, | CHANGED_SHARED
   * when it changed a shared cell at all.
   */
  learn(t: number, before: Cells, after: Cells): number {
    const owner = this.por.owner
    const w = this.writes[t]
    let r = 0
    for (let c = 0; c < before.length; c++) {
      if (before[c] === after[c] || owner[c] >= 0) continue
      r |= CHANGED_SHARED
      const bit = 1 << (c & 31)
      if ((w[c >>> 5] & bit) === 0) {
        w[c >>> 5] |= bit
        r |= NEW
      }
    }
    return r
  }

  /** May thread `t` change one of `cells`? */
  mayChange(t: number, cells: readonly number[]): boolean {
    const w = this.writes[t]
    for (let i = 0; i < cells.length; i++) {
      const c = cells[i]
      if (w[c >>> 5] & (1 << (c & 31))) return true
    }
    return false
  }
}

/** A step changed a shared cell its thread was not known to change: the reduced search is run again with what was learned. */
export class PorRelearn extends Error {
  constructor() {
    super('a step changed a shared cell its thread was not known to change')
  }
}

/**
 * A first look at what the threads do, before a reduced search relies on
 * it, so that few searches need to start again: `walks` random runs from
 * the initial state (to a state with no action, or `steps` steps; `budget`
 * steps in all), every successor of every state on them learned from. Deep
 * states are where the restarts come from, and random runs reach them at once.
 */
export function seedFootprints(packed: PackedModel<unknown>, footprints: Footprints, walks: number, steps: number, budget: number): void {
  const n = packed.stateBytes
  const start = new Int16Array(n)
  const pick = new Int16Array(n)
  packed.initial(() => start.set(packed.next))
  let seed = 0x9e3779b9
  const random = (): number => {
    // xorshift32: a fixed sequence, so that a search is repeatable.
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 0x100000000
  }
  const por = packed.por!
  try {
    for (let w = 0; w < walks && budget > 0; w++) {
      packed.cur.set(start)
      for (let s = 0; s < steps && budget > 0; s++, budget--) {
        let seen = 0
        packed.expand(() => {
          footprints.learn(por.actingThread(), packed.cur, packed.next)
          if (random() * ++seen < 1) pick.set(packed.next)
        })
        if (seen === 0) break
        packed.cur.set(pick)
      }
    }
  } catch {
    // A step that throws is left to the search, which reports it with its trace.
  }
}
