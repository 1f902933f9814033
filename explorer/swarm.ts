/**
 * Swarm verification (Holzmann, Joshi, Groce: "Swarm Verification
 * Techniques", IEEE TSE 2011; SPIN's `swarm`): a state space too large for
 * one machine is searched by n independent, bounded, *diversified* searches
 * whose union covers more than any one of them. Each shard k of n gets its
 * own configuration, derived from (k, n) alone so that every launcher (a
 * loop, GNU parallel, a Kubernetes Indexed Job, a Slurm array) reproduces it,
 * and varying only what changes the part of the space a bounded search
 * reaches:
 *
 * - the search mode (BFS, DFS, depth-limited DFS, random runs);
 * - the successor order, shuffled per state from the shard's seed (a
 *   shuffled search is still exhaustive when it completes: only the order
 *   of the work changes, never the set of states);
 * - the depth limit of depth-limited DFS shards (a ladder: 16, 32, ...);
 * - the fingerprint store's hash function (`--store fingerprint`): there a
 *   collision can hide a state, and different hash functions hide different
 *   ones. The full store keeps every state exactly, so its hash only places
 *   states in the table and varying it would change nothing: it is not varied.
 *
 * Shard 0 is the search as asked (BFS unless a mode is given, the model's
 * own order): when the bounds suffice it is the exhaustive run, and its
 * traces are shortest.
 */
import type { Cells, Model, PackedModel } from './model.js'
import type { ExploreOptions, StoreKind } from './options.js'
import { packedOf } from './packing.js'
import type { Mode } from './result.js'
import { hashWords } from './state-store.js'

export interface ShardPlan {
  readonly k: number
  readonly n: number
  readonly mode: Mode
  /** The model's successor order, or one shuffled per state from `seed`. */
  readonly order: 'natural' | 'shuffled'
  /** This shard's seed: the successor shuffle's and, in random mode, fast-check's. */
  readonly seed: number
  /** A depth limit this shard searches under (depth-limited DFS), or null for the run's own. */
  readonly maxDepth: number | null
  /** The fingerprint store's hash seed, or null for the default hash (and always with the full store). */
  readonly hashSeed: number | null
}

/** Depth limits of the depth-limited DFS shards, in turn. */
export const DEPTH_LADDER = [16, 32, 64, 128, 256] as const

/** A 32-bit mix (murmur3's finaliser on x + the golden ratio): neighbouring inputs give unrelated outputs. */
export function mix32(x: number): number {
  let h = (x + 0x9e3779b9) | 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

export interface SwarmBase {
  /** A mode the user fixed: every shard searches in it (only the rest is varied). */
  readonly mode?: Mode
  /** The user's depth bound: depth-limited shards stay within it. */
  readonly maxDepth?: number
  readonly store?: StoreKind
  /** Seeds a whole swarm: a second swarm with another base seed explores differently again. */
  readonly seed?: number
}

/** Shard k of n's configuration: a function of (k, n, base) only. */
export function shardPlan(k: number, n: number, base: SwarmBase = {}): ShardPlan {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(k) || k < 0 || k >= n) throw new RangeError(`shardPlan: shard ${k} of ${n}`)
  const seed = mix32(mix32(base.seed ?? 0) + k)
  const fingerprint = base.store === 'fingerprint'
  if (k === 0) return { k, n, mode: base.mode ?? 'bfs', order: 'natural', seed, maxDepth: null, hashSeed: null }
  // Fingerprints rebuild traces by BFS only: a fingerprint swarm varies order and hash function (a mode the user fixed is kept, and refused by the search as in check).
  const kinds = base.mode === 'bfs' || (fingerprint && base.mode === undefined) ? ['bfs'] : base.mode === 'random' ? ['random'] : base.mode === 'dfs' ? ['dfs', 'dfs-limited'] : ['dfs', 'dfs-limited', 'random']
  const kind = kinds[(k - 1) % kinds.length]
  const rung = DEPTH_LADDER[Math.floor((k - 1) / kinds.length) % DEPTH_LADDER.length]
  const maxDepth = kind === 'dfs-limited' ? Math.min(rung, base.maxDepth ?? rung) : null
  const mode: Mode = kind === 'dfs-limited' ? 'dfs' : (kind as Mode)
  return { k, n, mode, order: 'shuffled', seed, maxDepth, hashSeed: fingerprint ? seed : null }
}

/**
 * `model` with each state's successors emitted in an order shuffled from
 * `seed` and the state itself (so a state always expands the same way in
 * one shard, and differently in another). Successor k is still the model's
 * k-th action: traces and counts are unchanged, only the order of the work.
 */
export function reorderSuccessors<S, A>(model: Model<S, A>, seed: number): Model<S, A> {
  const inner = packedOf(model)
  const n = inner.stateBytes
  let cells: Cells = new Int16Array(n * 16)
  let classes = new Int32Array(16)
  let order = new Int32Array(16)
  const keep = (k: number, c: number): void => {
    if (k >= classes.length) {
      const size = Math.max(k + 1, classes.length * 2)
      const more = new Int16Array(n * size)
      more.set(cells)
      cells = more
      const c2 = new Int32Array(size)
      c2.set(classes)
      classes = c2
      order = new Int32Array(size)
    }
    cells.set(inner.next, k * n)
    classes[k] = c
  }
  const expand = (emit: (k: number, c: number) => void): number => {
    const total = inner.expand(keep)
    for (let i = 0; i < total; i++) order[i] = i
    // Fisher-Yates on xorshift32, seeded by the state and the shard.
    let r = hashWords(inner.cur, 0, n, seed) || 1
    for (let i = total - 1; i > 0; i--) {
      r ^= r << 13
      r ^= r >>> 17
      r ^= r << 5
      const j = (r >>> 0) % (i + 1)
      const t = order[i]
      order[i] = order[j]
      order[j] = t
    }
    for (let i = 0; i < total; i++) {
      const k = order[i]
      inner.next.set(cells.subarray(k * n, k * n + n))
      emit(k, classes[k])
    }
    return total
  }
  const packed: PackedModel<S> = Object.create(inner, { expand: { value: expand } })
  return Object.create(model, { packed: { value: packed, enumerable: true } })
}

/** The explore options of a shard: the run's own, with what the plan varies. */
export function shardOptions(plan: ShardPlan, options: ExploreOptions): ExploreOptions {
  const { seed: _base, successorSeed: _s, hashSeed: _h, ...rest } = options
  return {
    ...rest,
    mode: plan.mode,
    ...(plan.order === 'shuffled' ? { successorSeed: plan.seed } : {}),
    ...(plan.maxDepth !== null ? { maxDepth: plan.maxDepth } : {}),
    ...(plan.hashSeed !== null ? { hashSeed: plan.hashSeed } : {}),
    ...(plan.mode === 'random' ? { seed: plan.seed } : {}),
  }
}
