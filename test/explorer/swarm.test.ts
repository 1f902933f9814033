/**
 * Swarm shards (explorer/swarm.ts): each shard's plan is a function of
 * (k, n) alone; shuffling the successor order never changes what a
 * complete search finds (counts, broken invariants, BFS trace lengths);
 * shards explore differently; and bounded shards together find a bug that
 * the one natural search within the same bound does not.
 */
import { describe, expect, it } from 'vitest'
import { explore } from '../../explorer/explore.js'
import type { Model } from '../../explorer/model.js'
import { DEPTH_LADDER, shardOptions, shardPlan } from '../../explorer/swarm.js'
import { instantiate } from '../../invariants/scenarios.js'
import { replayViolation } from '../support/replay.js'
import { allToys, canonical, deepBranchBug, grid } from '../support/toy-models.js'

const small = { P: 2, V: 2, I: 1, K: 1, F: 1 }

describe('shardPlan', () => {
  it('is a function of (k, n, base): the same plan every time, shard 0 the search as asked', () => {
    for (let k = 0; k < 8; k++) expect(shardPlan(k, 8)).toEqual(shardPlan(k, 8))
    expect(shardPlan(0, 8)).toMatchObject({ mode: 'bfs', order: 'natural', maxDepth: null, hashSeed: null })
    expect(shardPlan(0, 8, { mode: 'dfs' })).toMatchObject({ mode: 'dfs', order: 'natural' })
  })

  it('gives 8 shards 8 different configurations: modes, seeds and depth limits', () => {
    const plans = Array.from({ length: 8 }, (_, k) => shardPlan(k, 8))
    expect(new Set(plans.map((p) => JSON.stringify([p.mode, p.order, p.seed, p.maxDepth]))).size).toBe(8)
    expect(new Set(plans.map((p) => p.seed)).size).toBe(8)
    expect(new Set(plans.map((p) => p.mode))).toEqual(new Set(['bfs', 'dfs', 'random']))
    expect(plans.filter((p) => p.maxDepth !== null).map((p) => p.maxDepth)).toEqual([DEPTH_LADDER[0], DEPTH_LADDER[1]])
    // Another base seed, another swarm: every shard but the plain one reseeded.
    const again = Array.from({ length: 8 }, (_, k) => shardPlan(k, 8, { seed: 7 }))
    for (let k = 1; k < 8; k++) expect(again[k].seed).not.toBe(plans[k].seed)
  })

  it('keeps a mode the user fixed, stays within the depth bound, and varies the hash only of a fingerprint store', () => {
    for (let k = 0; k < 8; k++) {
      expect(shardPlan(k, 8, { mode: 'random' }).mode).toBe('random')
      expect(shardPlan(k, 8, { mode: 'dfs', maxDepth: 20 }).maxDepth ?? 0).toBeLessThanOrEqual(20)
      expect(shardPlan(k, 8).hashSeed).toBeNull()
      const fp = shardPlan(k, 8, { store: 'fingerprint' })
      expect(fp.mode).toBe('bfs')
      expect(fp.hashSeed).toBe(k === 0 ? null : fp.seed)
      // A DFS the user asked for stays one (and the search refuses it with fingerprints, as check does).
      expect(shardPlan(k, 8, { store: 'fingerprint', mode: 'dfs' }).mode).toBe('dfs')
    }
  })

  it('refuses a shard outside 0..n-1', () => {
    for (const [k, n] of [[8, 8], [0, 0], [-1, 4], [1.5, 4]]) expect(() => shardPlan(k, n)).toThrow(RangeError)
  })
})

const models = (): Model<any, any>[] => [
  ...allToys().map((t) => t.model),
  instantiate('fault-invalidate', 'retry', small).model,
  instantiate('fault-invalidate', 'no-retry', small).model,
]

describe('a shuffled successor order changes the order of the work, never its result', () => {
  for (const model of models()) {
    it(model.name, () => {
      for (const mode of ['bfs', 'dfs'] as const) {
        const plain = explore(model, { mode, allViolations: true })
        const plainFirst = explore(model, { mode })
        for (const successorSeed of [1, 2, 0xdeadbeef]) {
          const r = explore(model, { mode, allViolations: true, successorSeed })
          expect(r.verdict).toBe(plain.verdict)
          expect(r.stats.states).toBe(plain.stats.states)
          expect(r.stats.transitions).toBe(plain.stats.transitions)
          expect(r.violations.map((v) => v.invariant).sort()).toEqual(plain.violations.map((v) => v.invariant).sort())
          const first = explore(model, { mode, successorSeed })
          expect(first.verdict).toBe(plainFirst.verdict)
          for (const v of first.violations) replayViolation(model, v)
          // BFS keeps shortest traces whatever the order within a level.
          if (mode === 'bfs') expect(first.violations.map((v) => v.actions.length)).toEqual(plainFirst.violations.map((v) => v.actions.length))
        }
      }
    })
  }

  it('with a seeded fingerprint hash, the same counts (no collision at this size)', () => {
    const model = instantiate('fault-invalidate', 'retry', { ...small, P: 3 }).model
    const plain = explore(model, {})
    for (const hashSeed of [1, 99, 0xffffffff]) {
      const r = explore(model, { store: 'fingerprint', hashSeed })
      expect([r.verdict, r.stats.states, r.stats.transitions]).toEqual([plain.verdict, plain.stats.states, plain.stats.transitions])
    }
  })
})

describe('shards explore differently', () => {
  /** The states in the order a search first stores them: an invariant sees each new state once. */
  function discovery(successorSeed: number | undefined, mode: 'bfs' | 'dfs'): string[] {
    const seen: string[] = []
    const base = grid({ W: 5, H: 4 })
    const model: Model<any, any> = {
      ...base,
      invariants: [{ id: 'log', description: 'records the order', check: (s) => (seen.push(canonical(s)), null) }],
    }
    explore(model, { mode, successorSeed })
    return seen
  }

  it('the same states, first reached in a different order', () => {
    for (const mode of ['bfs', 'dfs'] as const) {
      const natural = discovery(undefined, mode)
      const a = discovery(shardPlan(1, 8).seed, mode)
      const b = discovery(shardPlan(2, 8).seed, mode)
      expect(new Set(a)).toEqual(new Set(natural))
      expect(new Set(b)).toEqual(new Set(natural))
      expect(a).not.toEqual(natural)
      expect(b).not.toEqual(a)
      expect(discovery(shardPlan(1, 8).seed, mode)).toEqual(a)
    }
  })
})

describe('a swarm of bounded shards finds what one bounded search does not', () => {
  it('deep-branch bug: 8 shards of 500 states each', () => {
    const model = deepBranchBug({ B: 8, L: 8, bugBits: 100 })
    // The whole space is larger than the bound: one exhaustive run would need all of it.
    const whole = explore(model, { allViolations: true })
    expect(whole.verdict).toBe('violation')
    expect(whole.stats.states).toBeGreaterThan(4 * 500)
    for (const mode of ['bfs', 'dfs'] as const) expect(explore(model, { mode, maxStates: 500 }).verdict).toBe('incomplete')
    const shards = Array.from({ length: 8 }, (_, k) => explore(model, shardOptions(shardPlan(k, 8), { maxStates: 500, runs: 200 })))
    const found = shards.filter((r) => r.verdict === 'violation')
    expect(found.length).toBeGreaterThan(0)
    for (const r of found) {
      expect(r.violations[0].invariant).toBe('no-bad-leaf')
      replayViolation(model, r.violations[0])
    }
    // No shard claims an exhaustive verdict it did not earn.
    expect(shards.every((r) => r.verdict !== 'ok')).toBe(true)
  })
})
