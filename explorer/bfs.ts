import { Checkpointing } from './checkpoint.js'
import type { Model } from './model.js'
import type { ExploreOptions } from './options.js'
import type { Exploration } from './result.js'
import { FingerprintStore } from './fingerprint-store.js'
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
  const search = new Search(model, options, false)
  const { packed, words } = search
  // Its own store (not a caller's view): one it can insert into.
  const store = search.store as StateStore | FingerprintStore
  const maxDepth = search.limits.maxDepth

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
    if (search.rejectNext(parent, k)) return
    const idx = store.insert(words, parent, 0, k)
    if (idx >= 0) search.checkNext(idx)
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
    const count = search.expand(parent, emit)
    search.transitions += count
    if (count === 0) search.noActions(parent)
  }
  return search.finish('bfs')
}

function noop(): void {}
