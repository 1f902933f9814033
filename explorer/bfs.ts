import { Checkpointing } from './checkpoint.js'
import { BadInput } from './errors.js'
import type { Model } from './model.js'
import type { ExploreOptions } from './options.js'
import type { Exploration } from './result.js'
import { FingerprintStore } from './fingerprint-store.js'
import { Footprints, PorRelearn, seedFootprints } from './footprints.js'
import { packedOf } from './packing.js'
import { AmpleSets, PorFallback, porApplies } from './por.js'
import { Search } from './search.js'
import { NO_PARENT, type StateStore } from './state-store.js'

/**
 * Exhaustive breadth-first search. States are stored in discovery order, so
 * the queue is the index range [head, size) of the store and a violation's
 * parent chain is a shortest counterexample. With `options.checkpoint`,
 * the search is saved every so often and when cut short, and may resume
 * from a saved one (explorer/checkpoint.ts).
 */
export function bfs<S, A>(model: Model<S, A>, options: ExploreOptions = {}): Exploration<A> {
  const packed = packedOf(model)
  // A checkpoint saves one plain BFS: POR's first look and restarts are searches of their own.
  if (options.checkpoint) {
    if (options.por === true) throw new BadInput('--checkpoint/--resume: a checkpoint saves the plain BFS; partial-order reduction (por: true) is not checkpointed')
    return breadthFirst(model, options, null)
  }
  if (!porApplies(packed, options)) return breadthFirst(model, options, null)
  if (options.symmetry !== false && packed.symmetry) return unreduced(model, options, 'not combined with symmetry reduction yet (run with --no-symmetry to compare)')
  const por = packed.por!
  const footprints = new Footprints(por)
  const started = performance.now()
  /** Time spent besides the search returned: the first look, and searches started again or dropped. */
  const overhead = (found: Exploration<A>): number => Math.max(0, (performance.now() - started) / 1000 - found.stats.seconds)
  try {
    // A first look at what the steps do, so that few reduced searches need to start again: the
    // first states, then (when those were not all) random runs, which reach the deep ones.
    const maxStates = Math.min(POR_SEED.states, options.maxStates ?? POR_SEED.states)
    let could = 0
    const seen = breadthFirst(model, { ...options, maxStates, allViolations: true, onProgress: undefined }, footprints, true, (n) => (could = n))
    // By default, a reduction that could expand few of these states by one step alone is not tried.
    if (options.por === undefined && could < seen.stats.states * PROBE_SHARE) {
      throw new PorFallback(`it could expand ${could} of the first ${seen.stats.states} states by one thread's step alone, too few to pay for itself`)
    }
    if (seen.incomplete !== null) seedFootprints(packed, footprints, POR_SEED.walks, POR_SEED.steps, POR_SEED.budget)
    for (;;) {
      try {
        const found = breadthFirst(model, options, footprints)
        // By default BFS keeps its promise of shortest counterexamples, which the reduction may lengthen:
        // the reduction pays off in proving that everything holds.
        if (options.por === undefined && found.violations.length > 0) {
          return unreduced(model, options, 'it found a violation: searched again without it, for the shortest traces', overhead)
        }
        const stats = found.stats.por as { reduced: number; full: number }
        return { ...found, stats: { ...found.stats, por: { ...stats, restarts: footprints.restarts, overheadSeconds: overhead(found) } } }
      } catch (e) {
        if (!(e instanceof PorRelearn)) throw e
        if (++footprints.restarts > MAX_RESTARTS) return unreduced(model, options, `the steps kept doing what they had not been seen to do (${MAX_RESTARTS} restarts)`, overhead)
      }
    }
  } catch (e) {
    if (!(e instanceof PorFallback)) throw e
    return unreduced(model, options, e.reason, overhead)
  }
}

/**
 * The first, unreduced look at the steps' footprints: the states a BFS
 * explores, then random runs, their length bound and the steps of all of them. Only the cost depends
 * on them, never the verdict (tests set them to 0 to make the search learn
 * by restarting).
 */
export const POR_SEED = { states: 1_000, walks: 2_000, steps: 1_000, budget: 200_000 }
const MAX_RESTARTS = 100
/** By default the reduction must (be able to) expand at least this share of the first states by one thread's step alone, or it is dropped. */
const PROBE_STATES = 20_000
const PROBE_SHARE = 0.25

function unreduced<S, A>(model: Model<S, A>, options: ExploreOptions, why: string, overhead?: (found: Exploration<A>) => number): Exploration<A> {
  const found = breadthFirst(model, options, null)
  return { ...found, stats: { ...found.stats, por: { off: why, ...(overhead ? { overheadSeconds: overhead(found) } : {}) } } }
}

/**
 * With partial-order reduction (`footprints`), each state's successors are
 * kept until its expansion ends and only an ample set of them is stored
 * (see por.ts); `learning`: expand fully, only learning the footprints.
 */
function breadthFirst<S, A>(
  model: Model<S, A>,
  options: ExploreOptions,
  footprints: Footprints | null,
  learning = false,
  /** Learning: told how many states one thread's step could have expanded alone. */
  could?: (states: number) => void,
): Exploration<A> {
  const search = new Search(model, options, false)
  // Whatever ends the search (its end, a bound, an exception), the store's file goes.
  try {
    return searchFrom(search, options, footprints, learning, could)
  } finally {
    search.close()
  }
}

function searchFrom<S, A>(search: Search<S, A>, options: ExploreOptions, footprints: Footprints | null, learning: boolean, could?: (states: number) => void): Exploration<A> {
  const { packed, words } = search
  // Its own store (not a caller's view): one it can insert into.
  const store = search.store as StateStore | FingerprintStore
  const maxDepth = search.limits.maxDepth
  const ample = footprints ? new AmpleSets(packed, footprints, learning) : null
  // By default (not `por: true`), a reduction that finds little to reduce in its first states gives way to the plain search.
  const probe = ample !== null && !learning && options.por === undefined
  if (ample) search.watchVisibility()

  const ckpt = options.checkpoint ? new Checkpointing(search as Search<unknown, unknown>, options.checkpoint) : null
  const resumed = ckpt?.resume() ?? null
  let init = 0
  if (resumed === null) {
    packed.initial(() => {
      search.rejectNext(NO_PARENT, init)
      const idx = store.insert(words, NO_PARENT, 0, init++)
      if (idx >= 0) search.checkNext(idx)
    })
  }

  let parent = 0
  const covered = search.coverage.counts
  const emit = (k: number, c: number): void => {
    if (covered.length > 0) covered[c]++
    if (ample) {
      if (!search.rejectRange(parent, k)) ample.add(k)
      return
    }
    if (search.rejectNext(parent, k)) return
    const idx = store.insert(words, parent, 0, k)
    if (idx >= 0) search.checkNext(idx)
  }
  /** Stores `packed.next` as the successor of `parent` by action k (under POR): is it new? */
  const keep = (k: number): boolean => {
    search.rejectNext(parent, k)
    const idx = store.insert(words, parent, 0, k)
    if (idx >= 0) search.checkNext(idx)
    return idx >= 0
  }

  let head = resumed?.head ?? 0
  let depth = resumed?.depth ?? 0
  let levelEnd = resumed?.levelEnd ?? store.size
  while (head < store.size) {
    if (search.shouldStop(store.size - head, depth)) {
      // Cut short (an interrupt, a bound): the checkpoint to resume from.
      if (ckpt !== null && search.cutShort) ckpt.save({ head, depth, levelEnd }, true)
      break
    }
    if (ckpt !== null && ckpt.due(head)) ckpt.save({ head, depth, levelEnd }, false)
    if (head === levelEnd) {
      depth++
      levelEnd = store.size
    }
    search.maxDepth = depth
    parent = head++
    // Fingerprints: a queued state's words are dropped once every state before it is expanded.
    if ((parent & 0xffff) === 0 && store instanceof FingerprintStore) store.release(parent)
    search.load(parent)
    if (depth >= maxDepth) {
      if (search.expand(parent, noop) > 0) search.cutAtDepth()
      else search.noActions(parent)
      continue
    }
    ample?.begin()
    const count = search.expand(parent, emit)
    search.transitions += ample ? ample.commit(keep) : count
    if (count === 0) search.noActions(parent)
    if (probe && head === PROBE_STATES && ample!.reduced < PROBE_STATES * PROBE_SHARE) {
      throw new PorFallback(`it expanded ${ample!.reduced} of the first ${PROBE_STATES} states by one thread's step alone, too few to pay for itself`)
    }
  }
  if (ample) search.porStats = { reduced: ample.reduced, full: ample.full, restarts: 0, overheadSeconds: 0 }
  could?.(ample?.couldReduce ?? 0)
  return search.finish('bfs')
}

function noop(): void {}
