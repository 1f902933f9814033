/**
 * An independent brute-force enumerator: a plain breadth-first worklist over
 * `initialStates`, `actions` and `next` (the model's object backend), with
 * states keyed by a canonical JSON print (not the model's fingerprint nor the
 * engine's packed bytes). Imports nothing from explorer/ but types.
 */
import type { Model } from '../../explorer/model.js'
import { canonical } from './toy-models.js'

export interface BruteForce<S> {
  /** Distinct states with distance <= maxDepth. */
  readonly states: number
  /** (state, enabled action) pairs over the states with distance < maxDepth. */
  readonly edges: number
  /** Largest distance from an initial state. */
  readonly eccentricity: number
  /** States with no action that are terminal / not terminal (a deadlock), with distance <= maxDepth. */
  readonly terminal: number
  readonly deadlocks: number
  /** Smallest distance of a deadlock, or null. */
  readonly deadlockDepth: number | null
  /** Invariant id -> smallest distance of a state breaking it. */
  readonly violationDepth: ReadonlyMap<string, number>
  /** Canonical key -> distance. */
  readonly dist: ReadonlyMap<string, number>
  /** The states in BFS order. */
  readonly order: readonly S[]
  /** Every distinct `model.fingerprint` seen (to check the fingerprint is injective). */
  readonly fingerprints: number
}

export function bruteForce<S, A>(model: Model<S, A>, opts: { maxDepth?: number; fingerprints?: boolean } = {}): BruteForce<S> {
  const maxDepth = opts.maxDepth ?? Infinity
  const dist = new Map<string, number>()
  const order: S[] = []
  const depthOf: number[] = []
  for (const s of model.initialStates()) {
    const k = canonical(s)
    if (dist.has(k)) continue
    dist.set(k, 0)
    order.push(s)
    depthOf.push(0)
  }
  let edges = 0
  let terminal = 0
  let deadlocks = 0
  let deadlockDepth: number | null = null
  let eccentricity = 0
  const violationDepth = new Map<string, number>()
  const fps = new Set<string>()
  for (let q = 0; q < order.length; q++) {
    const s = order[q]
    const d = depthOf[q]
    eccentricity = Math.max(eccentricity, d)
    if (opts.fingerprints) fps.add(model.fingerprint(s))
    for (const inv of model.invariants) {
      if (inv.check(s) !== null && !violationDepth.has(inv.id)) violationDepth.set(inv.id, d)
    }
    const acts = model.actions(s)
    if (acts.length === 0) {
      if (model.terminal?.(s)) terminal++
      else {
        deadlocks++
        deadlockDepth ??= d
      }
    }
    if (d >= maxDepth) continue
    edges += acts.length
    for (const a of acts) {
      const t = model.next(s, a)
      const k = canonical(t)
      if (dist.has(k)) continue
      dist.set(k, d + 1)
      order.push(t)
      depthOf.push(d + 1)
    }
  }
  return {
    states: order.length,
    edges,
    eccentricity,
    terminal,
    deadlocks,
    deadlockDepth,
    violationDepth,
    dist,
    order,
    fingerprints: fps.size,
  }
}

/** The ids a complete search must report: every broken invariant, and `no-deadlock` when some state is stuck. */
export function expectedViolations(b: BruteForce<unknown>): string[] {
  const ids = [...b.violationDepth.keys()]
  if (b.deadlocks > 0) ids.push('no-deadlock')
  return ids.sort()
}
