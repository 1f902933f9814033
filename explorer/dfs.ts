import type { Model } from './model.js'
import type { ExploreOptions } from './options.js'
import type { Exploration } from './result.js'
import { Search } from './search.js'
import { IntList } from './int-list.js'
import { NO_PARENT, type StateStore } from './state-store.js'

/**
 * Depth-first search with a depth bound. The stack holds store indices; each
 * state keeps the smallest depth it was reached at, and a state reached again
 * by a shorter path is re-expanded, so a depth bound never hides a state
 * that is within it (the classic pitfall of bounded DFS with a visited set).
 */
export function dfs<S, A>(model: Model<S, A>, options: ExploreOptions = {}): Exploration<A> {
  const search = new Search(model, options, true)
  const { packed, words } = search
  // Fingerprints are BFS-only (Search refuses them with trackDepth).
  const store = search.store as StateStore
  const maxDepth = search.limits.maxDepth
  const bounded = options.maxDepth !== undefined
  // Store indices stay below 2^31 (the store's capacity), so an Int32 list holds them.
  const stack = new IntList()

  packed.initial(() => {
    search.rejectNext(NO_PARENT, 0)
    const idx = store.insert(words, NO_PARENT, 0)
    if (idx >= 0) {
      search.checkNext(idx)
      stack.push(idx)
    }
  })

  let parent = 0
  let childDepth = 0
  // Successors are pushed in reverse action order so that the first action is explored first.
  const fresh: number[] = []
  const covered = search.coverage.counts
  let counting = true
  const emit = (k: number, c: number): void => {
    if (counting && covered.length > 0) covered[c]++
    if (search.rejectNext(parent, k)) return
    const idx = store.insert(words, parent, childDepth)
    if (idx >= 0) {
      search.checkNext(idx)
      fresh.push(idx)
    } else if (bounded) {
      const old = -idx - 1
      if (store.depth(old) > childDepth) {
        store.reparent(old, parent, childDepth)
        fresh.push(old)
      }
    }
  }

  const expanded = new Set<number>()
  while (stack.length > 0) {
    if (search.shouldStop(stack.length, childDepth)) break
    parent = stack.pop()
    const depth = store.depth(parent)
    if (depth > search.maxDepth) search.maxDepth = depth
    search.load(parent)
    if (depth >= maxDepth) {
      if (search.expand(parent, noop) > 0) search.cutAtDepth()
      else search.noActions(parent)
      continue
    }
    childDepth = depth + 1
    fresh.length = 0
    // A state re-expanded from a shorter path adds no new edges to the counts.
    counting = !bounded || !expanded.has(parent)
    const count = search.expand(parent, emit)
    if (counting) {
      search.transitions += count
      if (bounded) expanded.add(parent)
    }
    if (count === 0) search.noActions(parent)
    for (let i = fresh.length - 1; i >= 0; i--) stack.push(fresh[i])
  }
  return search.finish('dfs')
}

function noop(): void {}
