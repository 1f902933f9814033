import { match } from 'ts-pattern'
import { bfs } from './bfs.js'
import { dfs } from './dfs.js'
import { BadInput } from './errors.js'
import type { Model } from './model.js'
import { findLivelock } from './livelock.js'
import { DEFAULT_BOUNDS, type ExploreOptions } from './options.js'
import { parallelBfs } from './parallel-bfs.js'
import { randomSearch } from './random.js'
import { reorderSuccessors } from './swarm.js'
import type { Exploration } from './result.js'

/** Explores `model` in the given mode (BFS by default). */
export function explore<S, A>(given: Model<S, A>, options: ExploreOptions = {}): Exploration<A> {
  const model = options.successorSeed === undefined ? given : reorderSuccessors(given, options.successorSeed)
  if (options.store === 'fingerprint' && (options.mode ?? 'bfs') !== 'bfs') {
    throw new BadInput(`--store fingerprint: only a BFS search can rebuild traces from fingerprints, not --mode ${options.mode}`)
  }
  if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 1)) throw new BadInput(`--workers ${options.workers}: expected a whole number of threads, at least 1`)
  if (options.checkpoint && (options.mode ?? 'bfs') !== 'bfs') throw new BadInput(`--checkpoint/--resume: only a BFS search is checkpointed, not --mode ${options.mode}`)
  if (options.checkpoint && options.livelock) throw new BadInput('--checkpoint/--resume: the livelock search (--livelock) is not checkpointed; run it without')
  if (options.livelock && options.mode === 'random') throw new BadInput('--livelock needs the whole state graph: use --mode bfs or dfs, not random')
  const found = match(options.mode ?? 'bfs')
    .with('bfs', () => ((options.workers ?? 1) > 1 ? parallelBfs(model, options) : bfs(model, options)))
    .with('dfs', () => dfs(model, options))
    .with('random', () => randomSearch(model, options))
    .exhaustive()
  return options.livelock ? withLivelock(model, options, found) : found
}

/** Adds the livelock search's verdict to a safety search's: a non-progress cycle is a violation; a cut graph leaves an `ok` incomplete. */
function withLivelock<S, A>(model: Model<S, A>, options: ExploreOptions, found: Exploration<A>): Exploration<A> {
  const started = performance.now()
  // --max-seconds bounds the whole run: the cycle search gets what the safety search left.
  const maxSeconds = options.maxSeconds ?? DEFAULT_BOUNDS.maxSeconds
  const deadline = started + (maxSeconds - found.stats.seconds) * 1000
  const stop = (states: number): string | null =>
    options.stop?.(states) ?? (performance.now() > deadline ? `max-seconds ${maxSeconds} reached in the livelock search` : null)
  const live = findLivelock(model, { maxStates: options.maxStates ?? DEFAULT_BOUNDS.maxStates, stop })
  const seconds = (performance.now() - started) / 1000
  const violations = live.violation ? [...found.violations, live.violation] : found.violations
  const incomplete = found.incomplete ?? live.incomplete
  const stats = { ...found.stats, livelock: { states: live.states, seconds } }
  return { ...found, stats, violations, incomplete, verdict: violations.length > 0 ? 'violation' : incomplete ? 'incomplete' : 'ok' }
}
