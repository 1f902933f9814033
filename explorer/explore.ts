import { match } from 'ts-pattern'
import { bfs } from './bfs.js'
import { dfs } from './dfs.js'
import { BadInput } from './errors.js'
import type { Model } from './model.js'
import type { ExploreOptions } from './options.js'
import { randomSearch } from './random.js'
import type { Exploration } from './result.js'

/** Explores `model` in the given mode (BFS by default). */
export function explore<S, A>(model: Model<S, A>, options: ExploreOptions = {}): Exploration<A> {
  if (options.store === 'fingerprint' && (options.mode ?? 'bfs') !== 'bfs') {
    throw new BadInput(`--store fingerprint: only a BFS search can rebuild traces from fingerprints, not --mode ${options.mode}`)
  }
  return match(options.mode ?? 'bfs')
    .with('bfs', () => bfs(model, options))
    .with('dfs', () => dfs(model, options))
    .with('random', () => randomSearch(model, options))
    .exhaustive()
}
