import { BitLayout } from './bit-layout.js'
import { Coverage } from './coverage.js'
import { BadInput, ModelError } from './errors.js'
import { FingerprintStore } from './fingerprint-store.js'
import { MetricRanges } from './metric-ranges.js'
import type { Cells, Model, PackedModel, PackedSymmetry } from './model.js'
import { DEFAULT_BOUNDS, type ExploreOptions } from './options.js'
import { packedOf } from './packing.js'
import { PorFallback } from './por.js'
import { OutcomeWatch } from './outcomes.js'
import { actionPath } from './path.js'
import type { Exploration, MetricRange, Mode, Violation } from './result.js'
import { NO_PARENT, StateStore } from './state-store.js'
import { Canonicalizer } from './symmetry.js'
import type { StoreView } from './path.js'

export const NO_DEADLOCK = 'no-deadlock'

/**
 * What BFS and DFS share: the packed model, the visited set, bounds, counts,
 * the violations found (by stored state index) and progress reporting.
 */
export class Search<S, A> {
  readonly packed: PackedModel<S>
  readonly store: StateStore | FingerprintStore | StoreView
  /** How cells pack into the stored words. */
  readonly layout: BitLayout
  /** Packs a state as stored: its least image under thread symmetry when reduced. */
  readonly canon: Canonicalizer
  /** Symmetry reduction: the sum of the orbit sizes of the states stored (the unreduced count). */
  private orbitStates = 0
  private readonly saved: Cells
  /** `packed.next` packed by `rejectNext`: what the search inserts. */
  readonly words: Uint32Array
  private readonly curWords: Uint32Array
  readonly invariantCount: number
  /** Invariant index -> stored state that first broke it; `deadlock` for no-deadlock. */
  private readonly broken = new Map<number, number>()
  private deadlock = -1
  private readonly watch: OutcomeWatch<S>
  /**
   * Evidence property index -> facts seen so far (a flag per fact, and the set `conflict` reads), the
   * first state showing each fact, and the conflict once found (null while none).
   */
  private readonly evidence: { flags: Uint8Array; seen: Set<number>; first: Map<number, number>; conflict: readonly number[] | null }[]
  /** The first successor that could not be stored (a cell outside its range): its parent and action index. */
  private outOfRange: { parent: number; k: number } | null = null
  readonly coverage: Coverage
  private readonly metricRanges: MetricRanges<S>
  transitions = 0
  maxDepth = 0
  incomplete: string | null = null
  /** A bound or an interrupt (not a violation) ended the search: `incomplete` says which. */
  cutShort = false
  /** Some state at the depth bound had successors left unexplored. */
  private depthCut = false
  private readonly started = performance.now()
  /** Search time of the runs this one resumes (checkpoints). */
  private priorSeconds = 0
  private lastReport = this.started
  private ticks = 0
  readonly limits: { maxDepth: number; maxStates: number; maxSeconds: number }

  constructor(
    readonly model: Model<S, A>,
    readonly options: ExploreOptions,
    trackDepth: boolean,
    /** A visited set of the caller's (the parallel BFS's shared one); else one by `options.store`. */
    store?: StoreView,
  ) {
    this.packed = packedOf(model)
    this.layout = BitLayout.of(this.packed)
    this.words = new Uint32Array(this.layout.words)
    this.curWords = new Uint32Array(this.layout.words)
    this.canon = new Canonicalizer(this.layout, options.symmetry === false ? null : (this.packed.symmetry ?? null))
    this.saved = new Int16Array(this.packed.stateBytes)
    if (store) {
      this.store = store
    } else if (options.store === 'fingerprint') {
      if (trackDepth) throw new BadInput('--store fingerprint: only a BFS search can rebuild traces from fingerprints (use --mode bfs)')
      this.store = new FingerprintStore(this.layout.words, { hashSeed: options.hashSeed, links: options.links })
    } else {
      this.store = new StateStore(this.layout.words, { trackDepth })
    }
    this.coverage = new Coverage(model as Model<unknown, unknown>)
    this.metricRanges = new MetricRanges(model, this.packed)
    this.invariantCount = model.invariants.length
    this.watch = new OutcomeWatch(model)
    this.evidence = (model.evidence ?? []).map((p) => ({ flags: new Uint8Array(p.names.length), seen: new Set<number>(), first: new Map(), conflict: null }))
    this.limits = {
      maxDepth: options.maxDepth ?? DEFAULT_BOUNDS.maxDepth,
      maxStates: options.maxStates ?? DEFAULT_BOUNDS.maxStates,
      maxSeconds: options.maxSeconds ?? DEFAULT_BOUNDS.maxSeconds,
    }
  }

  /**
   * Is `packed.next`, the k-th successor of stored state `parent`, outside
   * the state space? Then it is a violation of the model's range invariant
   * (the first one is kept) and must not be stored.
   */
  rejectNext(parent: number, k: number): boolean {
    if (this.canon.encode(this.packed.next, this.words)) return false
    if (parent === NO_PARENT || this.model.rangeInvariant === undefined) {
      const i = this.layout.firstOutOfRange(this.packed.next)
      throw new RangeError(`${this.model.name}: cell ${i} = ${this.packed.next[i]} is outside its range${parent === NO_PARENT ? ' in an initial state' : ''}`)
    }
    this.outOfRange ??= { parent, k }
    return true
  }

  /**
   * The range check of `rejectNext` alone, for a successor that may never
   * be stored (partial-order reduction keeps it aside): is it outside the
   * state space? Then it is a range violation, as there.
   */
  rejectRange(parent: number, k: number): boolean {
    if (this.layout.firstOutOfRange(this.packed.next) < 0) return false
    if (this.model.rangeInvariant === undefined) return this.rejectNext(parent, k)
    this.outOfRange ??= { parent, k }
    return true
  }

  /** Partial-order reduction: how many states were expanded with an ample set, and fully. */
  porStats: { reduced: number; full: number; restarts: number; overheadSeconds: number } | null = null
  private visibility = false

  /**
   * Under partial-order reduction: every property evaluation is watched, and
   * the first that reads a cell a thread owns ends the search (`PorFallback`),
   * since an ample step may have changed that cell unseen.
   */
  watchVisibility(): void {
    this.visibility = true
    this.packed.por!.propertiesReadOwned()
  }

  /** Unpacks stored state `idx` into `packed.cur`. */
  load(idx: number): void {
    this.store.get(idx, this.curWords)
    this.layout.unpack(this.curWords, 0, this.packed.cur)
  }

  /**
   * Expands `packed.cur` (stored as `idx`); an exception thrown by a step is
   * a `ModelError` naming the trace to the state it was thrown in.
   */
  expand(idx: number, emit: (k: number, c: number) => void): number {
    try {
      return this.packed.expand(emit)
    } catch (e) {
      throw this.modelError(e, idx)
    }
  }

  private modelError(e: unknown, idx: number): ModelError {
    const message = e instanceof Error ? e.message : String(e)
    try {
      const { actions, init } = actionPath(this.model, this.packed, this.canon, this.store, idx)
      let s = this.model.initialStates()[init]
      const steps = actions.map((a) => {
        const after = this.model.next(s, a)
        const label = this.model.describe(a, s, after)
        s = after
        return label
      })
      return new ModelError(message, { init, steps })
    } catch {
      return new ModelError(message)
    }
  }

  /** Checks every not-yet-broken invariant on `packed.next`, stored as `idx`. */
  checkNext(idx: number): void {
    this.orbitStates += this.canon.orbit
    if (this.canon.symmetry !== null) this.checkSymmetric()
    this.metricRanges.observeNext()
    for (let i = 0; i < this.invariantCount; i++) {
      if (!this.broken.has(i) && !this.packed.holds(i)) this.broken.set(i, idx)
    }
    for (let i = 0; i < this.evidence.length; i++) {
      const e = this.evidence[i]
      if (e.conflict !== null) continue
      const facts = this.packed.facts!(i)
      let fresh = false
      for (let f = 0; f < facts.length; f++) {
        const k = facts[f]
        if (e.flags[k]) continue
        e.flags[k] = 1
        e.seen.add(k)
        e.first.set(k, idx)
        fresh = true
      }
      if (!fresh) continue
      const conflict = this.model.evidence![i].conflict(e.seen)
      if (conflict.length > 0) e.conflict = conflict
    }
    if (this.visibility && this.packed.por!.propertiesReadOwned()) {
      throw new PorFallback(`a property reads a thread's own cells (its pc or locals), which the reduction's local steps change unseen: searched again without partial-order reduction`)
    }
  }

  /**
   * Symmetry reduction stores one state per orbit, so it is sound only for
   * invariants that give one answer on every renaming of a state: each new
   * state's renamings are checked, and an invariant that tells them apart
   * is a model error (run without symmetry, or make the invariant quantify
   * over the threads), never a silently missed violation.
   *
   * A renaming moves only thread-owned cells and rewrites thread-id values.
   * So an invariant that read no thread-owned cell on this state (the
   * model's `propertiesReadOwned` says) gives the same answer on every
   * renaming that leaves each unmoved thread-id cell's value alone (both
   * images agree on every cell it can read): it is evaluated only under the
   * other renamings. Without that record every invariant is evaluated under
   * every renaming.
   */
  private checkSymmetric(): void {
    const sym = this.canon.symmetry!
    const next = this.packed.next
    const por = this.packed.por
    const n = this.invariantCount
    const base = this.baseHolds ?? (this.baseHolds = new Uint8Array(n))
    const owned = this.readsOwned ?? (this.readsOwned = new Uint8Array(n))
    por?.propertiesReadOwned()
    let anyOwned = por === undefined
    for (let i = 0; i < n; i++) {
      base[i] = this.packed.holds(i) ? 1 : 0
      owned[i] = por === undefined || por.propertiesReadOwned() ? 1 : 0
      if (owned[i]) anyOwned = true
    }
    const fixedIds = this.fixedIdCells ?? (this.fixedIdCells = unmovedIdCells(sym))
    this.saved.set(next)
    try {
      for (let p = 0; p < sym.count; p++) {
        // Invariants that read no thread-owned cell on this state are first shown only the renamed thread-id values
        // (all the globals they read); one that then reads a thread (a changed id led it there) gets the whole image.
        const idsKept = !renameIdValues(sym, p, fixedIds[p], this.saved, next)
        if (idsKept && !anyOwned) continue
        let whole = anyOwned
        if (whole) sym.permute(p, this.saved, next)
        else por!.propertiesReadOwned()
        for (let i = 0; i < n; i++) {
          if (idsKept && !owned[i]) continue
          let holds = this.packed.holds(i) ? 1 : 0
          if (!whole && por!.propertiesReadOwned()) {
            sym.permute(p, this.saved, next)
            whole = true
            holds = this.packed.holds(i) ? 1 : 0
          }
          if (holds !== base[i]) {
            const id = this.model.invariants[i].id
            throw new ModelError(
              `${this.model.name}: invariant ${id} is not symmetric in the threads declared interchangeable: it ${base[i] ? 'holds' : 'fails'} on a state and not on its renaming ${sym.describe(p)} (run with symmetry off, or make it treat those threads alike)`,
            )
          }
        }
      }
    } finally {
      next.set(this.saved)
    }
  }

  private readsOwned: Uint8Array | null = null
  private fixedIdCells: UnmovedIds[] | null = null
  private baseHolds: Uint8Array | null = null

  /** `packed.cur`, stored as `idx`, has no enabled action: a deadlock, or a terminal state whose outcome and metrics are watched. */
  noActions(idx: number): void {
    if (!this.packed.terminal()) {
      if (this.deadlock < 0) this.deadlock = idx
    } else if (this.watch.active) {
      this.watch.observe(this.packed.decode(this.packed.cur), idx)
    }
  }

  /** Has some property been found broken? */
  get violated(): boolean {
    return this.broken.size > 0 || this.outOfRange !== null || this.deadlock >= 0 || this.watch.broken.size > 0 || this.evidence.some((e) => e.conflict !== null)
  }

  /**
   * How many first sightings this search has recorded (a broken invariant,
   * deadlock, out-of-range successor, evidence fact, outcome): what the
   * parallel BFS's workers watch, since the order of first sightings is
   * what only a sequential pass gets right.
   */
  get events(): number {
    let n = this.broken.size + (this.outOfRange !== null ? 1 : 0) + (this.deadlock >= 0 ? 1 : 0) + this.watch.fresh
    for (const e of this.evidence) n += e.first.size
    return n
  }

  /** What this search has seen first, for another search (a parallel BFS worker) to take as already seen. */
  known(): Known {
    return {
      broken: [...this.broken.keys()],
      deadlock: this.deadlock >= 0,
      outOfRange: this.outOfRange !== null,
      facts: this.evidence.map((e) => [...e.seen]),
      conflicts: this.evidence.map((e) => e.conflict !== null),
      outcomes: this.watch.known(),
    }
  }

  /** Takes `k` as seen (a state index of -1 where one is kept): only what is new to both counts as an event. */
  learn(k: Known): void {
    for (const i of k.broken) if (!this.broken.has(i)) this.broken.set(i, -1)
    if (k.deadlock && this.deadlock < 0) this.deadlock = 0
    if (k.outOfRange) this.outOfRange ??= { parent: -1, k: -1 }
    k.facts.forEach((facts, i) => {
      const e = this.evidence[i]
      for (const f of facts) {
        if (e.flags[f]) continue
        e.flags[f] = 1
        e.seen.add(f)
        e.first.set(f, -1)
      }
      if (k.conflicts[i] && e.conflict === null) e.conflict = []
    })
    this.watch.learn(k.outcomes)
  }

  /** The order-free sums since the last call (transitions, coverage, orbit sizes), reset; metric ranges so far. */
  takeTally(): Tally {
    const t: Tally = {
      transitions: this.transitions,
      orbitStates: this.orbitStates,
      coverage: [...this.coverage.counts],
      metricsAll: this.metricRanges.toRecord(),
      metrics: { ...this.watch.metrics },
    }
    this.transitions = 0
    this.orbitStates = 0
    this.coverage.counts.fill(0)
    return t
  }

  /** Adds another search's tally (a parallel BFS level) to this one's. */
  addTally(t: Tally): void {
    this.transitions += t.transitions
    this.orbitStates += t.orbitStates
    t.coverage.forEach((n, i) => (this.coverage.counts[i] += n))
    this.metricRanges.merge(t.metricsAll)
    for (const [id, r] of Object.entries(t.metrics)) {
      const m = this.watch.metrics[id]
      this.watch.metrics[id] = m ? { min: Math.min(m.min, r.min), max: Math.max(m.max, r.max) } : r
    }
  }

  /** True when the search must stop: a violation (unless all are wanted) or a bound. */
  shouldStop(queue: number, depth: number): boolean {
    if (!this.options.allViolations && this.violated) {
      return true
    }
    if (this.store.size >= this.limits.maxStates) return this.cut(`max-states ${this.limits.maxStates} reached`)
    if (this.store.full) return this.cut(`the store's capacity of ${this.store.capacity} states reached`)
    const stop = this.options.stop?.(this.store.size)
    if (stop) return this.cut(stop)
    if ((++this.ticks & 1023) === 0) {
      const now = performance.now()
      if (now - this.started > this.limits.maxSeconds * 1000) return this.cut(`max-seconds ${this.limits.maxSeconds} reached`)
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

  private cut(reason: string): true {
    this.incomplete = reason
    this.cutShort = true
    return true
  }

  /** A state at the depth bound has successors left unexplored. */
  cutAtDepth(): void {
    this.depthCut = true
    this.incomplete ??= `max-depth ${this.limits.maxDepth} reached`
  }

  /** The counters and findings, for a checkpoint (explorer/checkpoint.ts); plain JSON. */
  snapshot(): SearchSnapshot {
    return {
      orbitStates: this.orbitStates,
      transitions: this.transitions,
      maxDepth: this.maxDepth,
      depthCut: this.depthCut,
      seconds: this.priorSeconds + (performance.now() - this.started) / 1000,
      broken: [...this.broken],
      deadlock: this.deadlock,
      outOfRange: this.outOfRange,
      watch: this.watch.snapshot(),
      evidence: this.evidence.map((e) => ({ flags: [...e.flags], seen: [...e.seen], first: [...e.first], conflict: e.conflict })),
      coverage: [...this.coverage.counts],
      metricRanges: this.metricRanges.snapshot(),
    }
  }

  /** Takes up a snapshot of this same model's search (its store restored apart). */
  restore(snapshot: unknown): void {
    const s = snapshot as SearchSnapshot
    this.orbitStates = s.orbitStates
    this.transitions = s.transitions
    this.maxDepth = s.maxDepth
    this.priorSeconds = s.seconds
    if (s.depthCut) this.cutAtDepth()
    for (const [i, idx] of s.broken) this.broken.set(i, idx)
    this.deadlock = s.deadlock
    this.outOfRange = s.outOfRange
    this.watch.restore(s.watch)
    s.evidence.forEach((e, i) => {
      const mine = this.evidence[i]
      mine.flags.set(e.flags)
      for (const k of e.seen) mine.seen.add(k)
      for (const [k, idx] of e.first) mine.first.set(k, idx)
      mine.conflict = e.conflict
    })
    this.coverage.counts.set(s.coverage)
    this.metricRanges.restore(s.metricRanges)
  }

  finish(mode: Mode): Exploration<A> {
    const seconds = this.priorSeconds + (performance.now() - this.started) / 1000
    const violations: Violation<A>[] = []
    for (const [i, idx] of [...this.broken].sort((a, b) => a[0] - b[0])) {
      violations.push(this.violationAt(idx, this.model.invariants[i].id, (s) => this.model.invariants[i].check(s) ?? ''))
    }
    if (this.outOfRange !== null) {
      const { parent, k } = this.outOfRange
      const id = this.model.rangeInvariant!
      const inv = this.model.invariants.find((i) => i.id === id)
      const path = actionPath(this.model, this.packed, this.canon, this.store, parent)
      const a = this.model.actions(path.last)[k]
      const last = this.model.next(path.last, a)
      violations.push({ invariant: id, message: inv?.check(last) ?? '', init: path.init, actions: [...path.actions, a] })
    }
    if (this.deadlock >= 0) {
      violations.push(this.violationAt(this.deadlock, NO_DEADLOCK, (s) => deadlockMessage(this.model, s)))
    }
    this.evidence.forEach((e, i) => {
      if (e.conflict === null) return
      const p = this.model.evidence![i]
      const message = p.message(e.conflict)
      // One run per fact of the conflict, in its order (one per edge of a lock-order cycle): each ends showing its fact.
      const runs = e.conflict.map((k) => ({ ...this.violationAt(e.first.get(k)!, p.id, () => message), outcome: p.names[k] }))
      violations.push({ ...runs[0], witnesses: runs.slice(1) })
    })
    for (const [i, b] of this.watch.broken) {
      const p = this.model.outcomes![i]
      const message = this.watch.message(i)
      const witness = { ...this.violationAt(b.first, p.id, () => message), outcome: b.firstOutcome }
      violations.push({ ...this.violationAt(b.second, p.id, () => message), outcome: b.secondOutcome, witnesses: [witness] })
    }
    return {
      verdict: violations.length > 0 ? 'violation' : this.incomplete ? 'incomplete' : 'ok',
      violations,
      incomplete: this.incomplete,
      mode,
      seed: null,
      metrics: { ...this.watch.metrics },
      metricsAll: this.metricRanges.toRecord(),
      coverage: this.coverage.toRecord(),
      outcomes: this.watch.outcomes,
      stats: {
        states: this.store.size,
        transitions: this.transitions,
        maxDepth: this.maxDepth,
        seconds,
        statesPerSecond: seconds > 0 ? this.store.size / seconds : 0,
        storeBytes: this.store.bytes,
        ...(this.store instanceof FingerprintStore ? this.fingerprintStats(this.store) : {}),
        ...(this.canon.symmetry !== null ? { symmetry: { renamings: this.canon.symmetry.count + 1, orbitStates: this.orbitStates } } : {}),
        ...(this.porStats ? { por: this.porStats } : {}),
      },
    }
  }

  private fingerprintStats(store: FingerprintStore): Pick<Exploration<A>['stats'], 'collisionProbability' | 'diskBytes' | 'linksFallback'> {
    const fallback = store.linksFallback
    return { collisionProbability: store.collisionProbability, diskBytes: store.diskBytes, ...(fallback !== null ? { linksFallback: fallback } : {}) }
  }

  /** Frees what the store holds outside memory (a fingerprint store's link file): after `finish`, or when the search throws. */
  close(): void {
    if (this.store instanceof FingerprintStore) this.store.close()
  }

  private violationAt(idx: number, invariant: string, message: (s: S) => string): Violation<A> {
    const { init, actions, last } = actionPath(this.model, this.packed, this.canon, this.store, idx)
    return { invariant, message: message(last), init, actions }
  }
}

/** What a search has seen first (see `Search.known`), as plain data. */
export interface Known {
  readonly broken: readonly number[]
  readonly deadlock: boolean
  readonly outOfRange: boolean
  readonly facts: readonly (readonly number[])[]
  readonly conflicts: readonly boolean[]
  readonly outcomes: readonly (readonly [number, string, string])[]
}

/** The order-free part of what a search gathers (see `Search.takeTally`), as plain data. */
export interface Tally {
  readonly transitions: number
  readonly orbitStates: number
  readonly coverage: readonly number[]
  readonly metricsAll: Readonly<Record<string, MetricRange>>
  readonly metrics: Readonly<Record<string, MetricRange>>
}

/** What a checkpoint keeps of a Search besides its store. */
export interface SearchSnapshot {
  readonly orbitStates: number
  readonly transitions: number
  readonly maxDepth: number
  readonly depthCut: boolean
  readonly seconds: number
  readonly broken: readonly (readonly [number, number])[]
  readonly deadlock: number
  readonly outOfRange: { parent: number; k: number } | null
  readonly watch: ReturnType<OutcomeWatch<unknown>['snapshot']>
  readonly evidence: readonly { flags: number[]; seen: number[]; first: [number, number][]; conflict: readonly number[] | null }[]
  readonly coverage: readonly number[]
  readonly metricRanges: ReturnType<MetricRanges<unknown>['snapshot']>
}

export function deadlockMessage<S>(model: Model<S, unknown>, s: S): string {
  const where = model.whereIs?.(s)
  return `no step is enabled and not every thread has finished${where ? `: ${where}` : ''}`
}

/** Thread-id cells a renaming does not move (their values may still be renamed), with their biases. */
interface UnmovedIds {
  readonly cells: Int32Array
  readonly bias: Int32Array
}

/** Per renaming: its unmoved thread-id cells. */
function unmovedIdCells(sym: PackedSymmetry): UnmovedIds[] {
  return Array.from({ length: sym.count }, (_, p) => {
    const src = sym.sources(p)
    const keep = Array.from(sym.idCells.keys()).filter((k) => src[sym.idCells[k]] === sym.idCells[k])
    return { cells: Int32Array.from(keep, (k) => sym.idCells[k]), bias: Int32Array.from(keep, (k) => sym.idBias[k]) }
  })
}

/**
 * Writes into `to` the values renaming `p` gives the unmoved thread-id cells
 * of `from` (all an invariant reading no thread sees of the image); true
 * when one of them changes.
 */
function renameIdValues(sym: PackedSymmetry, p: number, unmoved: UnmovedIds, from: Cells, to: Cells): boolean {
  const map = sym.threadMap(p)
  const { cells, bias } = unmoved
  let changed = false
  for (let k = 0; k < cells.length; k++) {
    const t = from[cells[k]] - bias[k]
    if (t < 0 || t >= map.length) continue
    // Written even when kept: `to` may hold an earlier renaming's value.
    to[cells[k]] = map[t] + bias[k]
    if (map[t] !== t) changed = true
  }
  return changed
}
