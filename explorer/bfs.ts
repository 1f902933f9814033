import type { Model } from './model.js'
import type { ExploreOptions } from './options.js'
import type { Exploration } from './result.js'
import { FingerprintStore } from './fingerprint-store.js'
import { AmpleSets, PorFallback, porApplies } from './por.js'
import { Search } from './search.js'
import { NO_PARENT } from './state-store.js'

/**
 * Exhaustive breadth-first search. States are stored in discovery order, so
 * the queue is the index range [head, size) of the store and a violation's
 * parent chain is a shortest counterexample.
 */
export function bfs<S, A>(model: Model<S, A>, options: ExploreOptions = {}): Exploration<A> {
  try {
    return breadthFirst(model, options)
  } catch (e) {
    if (!(e instanceof PorFallback)) throw e
    const found = breadthFirst(model, { ...options, por: false })
    return { ...found, stats: { ...found.stats, por: { off: e.reason } } }
  }
}

/**
 * With partial-order reduction (where the model reports footprints, unless
 * `por: false`), each state's successors are kept until the expansion ends
 * and only an ample set of them is stored (see por.ts).
 */
function breadthFirst<S, A>(model: Model<S, A>, options: ExploreOptions): Exploration<A> {
  const search = new Search(model, options, false)
  const { packed, store, words } = search
  const maxDepth = search.limits.maxDepth
  const ample = porApplies(packed, options) ? new AmpleSets(packed) : null
  if (ample) search.watchVisibility()

  let init = 0
  packed.initial(() => {
    search.rejectNext(NO_PARENT, init)
    const idx = store.insert(words, NO_PARENT, 0, init++)
    if (idx >= 0) search.checkNext(idx)
  })

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

  let head = 0
  let depth = 0
  let levelEnd = store.size
  while (head < store.size) {
    if (search.shouldStop(store.size - head, depth)) break
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
  }
  if (ample) search.porStats = { reduced: ample.reduced, full: ample.full }
  return search.finish('bfs')
}

function noop(): void {}
