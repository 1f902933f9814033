import type { Model, PackedModel } from './model.js'
import { DEFAULT_BOUNDS, type ExploreOptions } from './options.js'
import { packedOf } from './packing.js'
import { OutcomeWatch } from './outcomes.js'
import { actionPath } from './path.js'
import type { Exploration, Mode, Violation } from './result.js'
import { StateStore } from './state-store.js'

export const NO_DEADLOCK = 'no-deadlock'

/**
 * What BFS and DFS share: the packed model, the visited set, bounds, counts,
 * the violations found (by stored state index) and progress reporting.
 */
export class Search<S, A> {
  readonly packed: PackedModel<S>
  readonly store: StateStore
  readonly invariantCount: number
  /** Invariant index -> stored state that first broke it; `deadlock` for no-deadlock. */
  private readonly broken = new Map<number, number>()
  private deadlock = -1
  private readonly watch: OutcomeWatch<S>
  /** Evidence property index -> facts seen so far, the first state showing each fact, and the conflict once found. */
  private readonly evidence: { seen: number; first: Map<number, number>; conflict: number }[]
  transitions = 0
  maxDepth = 0
  incomplete: string | null = null
  private readonly started = performance.now()
  private lastReport = this.started
  private ticks = 0
  readonly limits: { maxDepth: number; maxStates: number; maxSeconds: number }

  constructor(
    readonly model: Model<S, A>,
    readonly options: ExploreOptions,
    trackDepth: boolean,
  ) {
    this.packed = packedOf(model)
    this.store = new StateStore(this.packed.stateBytes, { trackDepth })
    this.invariantCount = model.invariants.length
    this.watch = new OutcomeWatch(model)
    this.evidence = (model.evidence ?? []).map(() => ({ seen: 0, first: new Map(), conflict: 0 }))
    this.limits = {
      maxDepth: options.maxDepth ?? DEFAULT_BOUNDS.maxDepth,
      maxStates: options.maxStates ?? DEFAULT_BOUNDS.maxStates,
      maxSeconds: options.maxSeconds ?? DEFAULT_BOUNDS.maxSeconds,
    }
  }

  /** Checks every not-yet-broken invariant on `packed.next`, stored as `idx`. */
  checkNext(idx: number): void {
    for (let i = 0; i < this.invariantCount; i++) {
      if (!this.broken.has(i) && !this.packed.holds(i)) this.broken.set(i, idx)
    }
    for (let i = 0; i < this.evidence.length; i++) {
      const e = this.evidence[i]
      const fresh = this.packed.facts!(i) & ~e.seen
      if (fresh === 0 || e.conflict !== 0) continue
      for (let bit = 0; bit < 31; bit++) if (fresh & (1 << bit)) e.first.set(bit, idx)
      e.seen |= fresh
      e.conflict = this.model.evidence![i].conflict(e.seen)
    }
  }

  /** `packed.cur`, stored as `idx`, has no enabled action: a deadlock, or a terminal state whose outcome and metrics are watched. */
  noActions(idx: number): void {
    if (!this.packed.terminal()) {
      if (this.deadlock < 0) this.deadlock = idx
    } else if (this.watch.active) {
      this.watch.observe(this.packed.decode(this.packed.cur), idx)
    }
  }

  /** True when the search must stop: a violation (unless all are wanted) or a bound. */
  shouldStop(queue: number, depth: number): boolean {
    if (!this.options.allViolations && (this.broken.size > 0 || this.deadlock >= 0 || this.watch.broken.size > 0 || this.evidence.some((e) => e.conflict))) {
      return true
    }
    if (this.store.size >= this.limits.maxStates || this.store.full) {
      this.incomplete = `max-states ${this.limits.maxStates} reached`
      return true
    }
    if ((++this.ticks & 1023) === 0) {
      const now = performance.now()
      if (now - this.started > this.limits.maxSeconds * 1000) {
        this.incomplete = `max-seconds ${this.limits.maxSeconds} reached`
        return true
      }
      if (this.options.onProgress && now - this.lastReport > 250) {
        this.lastReport = now
        const seconds = (now - this.started) / 1000
        this.options.onProgress({
          states: this.store.size,
          transitions: this.transitions,
          depth,
          queue,
          seconds,
          statesPerSecond: this.store.size / seconds,
        })
      }
    }
    return false
  }

  /** A state at the depth bound has successors left unexplored. */
  cutAtDepth(): void {
    this.incomplete ??= `max-depth ${this.limits.maxDepth} reached`
  }

  finish(mode: Mode): Exploration<A> {
    const seconds = (performance.now() - this.started) / 1000
    const violations: Violation<A>[] = []
    for (const [i, idx] of [...this.broken].sort((a, b) => a[0] - b[0])) {
      violations.push(this.violationAt(idx, this.model.invariants[i].id, (s) => this.model.invariants[i].check(s) ?? ''))
    }
    if (this.deadlock >= 0) {
      violations.push(this.violationAt(this.deadlock, NO_DEADLOCK, (s) => deadlockMessage(this.model, s)))
    }
    this.evidence.forEach((e, i) => {
      if (!e.conflict) return
      const p = this.model.evidence![i]
      const message = p.message(e.conflict)
      // One run per fact of the conflict (two for a lock-order inversion): each ends showing its fact.
      const runs = [...e.first.entries()]
        .filter(([bit]) => e.conflict & (1 << bit))
        .map(([bit, idx]) => ({ ...this.violationAt(idx, p.id, () => message), outcome: p.names[bit] }))
      violations.push({ ...runs[0], witness: runs[1] })
    })
    for (const [i, b] of this.watch.broken) {
      const p = this.model.outcomes![i]
      const message = this.watch.message(i)
      const witness = { ...this.violationAt(b.first, p.id, () => message), outcome: b.firstOutcome }
      violations.push({ ...this.violationAt(b.second, p.id, () => message), outcome: b.secondOutcome, witness })
    }
    return {
      verdict: violations.length > 0 ? 'violation' : this.incomplete ? 'incomplete' : 'ok',
      violations,
      incomplete: this.incomplete,
      mode,
      seed: null,
      metrics: { ...this.watch.metrics },
      outcomes: this.watch.outcomes,
      stats: {
        states: this.store.size,
        transitions: this.transitions,
        maxDepth: this.maxDepth,
        seconds,
        statesPerSecond: seconds > 0 ? this.store.size / seconds : 0,
        storeBytes: this.store.bytes,
      },
    }
  }

  private violationAt(idx: number, invariant: string, message: (s: S) => string): Violation<A> {
    const { init, actions, last } = actionPath(this.model, this.packed, this.store, idx)
    return { invariant, message: message(last), init, actions }
  }
}

export function deadlockMessage<S>(model: Model<S, unknown>, s: S): string {
  const where = model.whereIs?.(s)
  return `no step is enabled and not every thread has finished${where ? `: ${where}` : ''}`
}
