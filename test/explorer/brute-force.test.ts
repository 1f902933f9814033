/**
 * The engine (bfs, dfs, the packed backend and the interning adapter)
 * against an independent brute-force enumerator (test/support/brute-force.ts:
 * a plain worklist over the object backend, states keyed by canonical JSON).
 * Counts (states, transitions, BFS eccentricity) must agree exactly, and
 * BFS's counterexamples must be as short as the brute force's shortest.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { dfs } from '../../explorer/dfs.js'
import type { Model } from '../../explorer/model.js'
import { instantiate } from '../../invariants/scenarios.js'
import { bruteForce, expectedViolations } from '../support/brute-force.js'
import { replayViolation } from '../support/replay.js'
import { allToys } from '../support/toy-models.js'

const sizes = [
  { P: 2, V: 1, I: 1, K: 1, F: 1 },
  { P: 2, V: 2, I: 1, K: 1, F: 1 },
  { P: 1, V: 2, I: 1, K: 1, F: 2 },
  { P: 1, V: 1, I: 2, K: 1, F: 1 },
  { P: 1, V: 1, I: 1, K: 2, F: 2 },
]
const tag = (p: Record<string, number>) => Object.entries(p).map(([k, v]) => `${k}=${v}`).join(' ')

/** The same model without its packed fast path: the engine then interns object states. */
function withoutPacked<S, A>(m: Model<S, A>): Model<S, A> {
  const { packed: _packed, ...rest } = m
  return rest
}

describe('toys: engine counts equal brute-force counts', () => {
  for (const { model, buggy } of allToys()) {
    it(`${model.name}${buggy ? ' (buggy, allViolations)' : ''}`, () => {
      const b = bruteForce(model)
      const opts = { allViolations: true }
      const r = bfs(model, opts)
      const d = dfs(model, opts)
      const f = bfs(model, { ...opts, store: 'fingerprint' })
      expect(f.stats.collisionProbability).toBeGreaterThanOrEqual(0)
      expect(f.stats.collisionProbability).toBeLessThan(1e-9)
      for (const x of [r, d, f]) {
        expect(x.stats.states, `${x.mode} states`).toBe(b.states)
        expect(x.stats.transitions, `${x.mode} transitions`).toBe(b.edges)
        expect(x.incomplete).toBeNull()
        expect(x.verdict).toBe(buggy ? 'violation' : 'ok')
        expect(x.violations.map((v) => v.invariant).sort()).toEqual(expectedViolations(b))
      }
      expect(r.stats.maxDepth, 'bfs maxDepth = eccentricity').toBe(b.eccentricity)
      expect(expectedViolations(b).length > 0).toBe(buggy)
    })
  }
})

describe('toys: BFS counterexamples are shortest and replay', () => {
  for (const { model, buggy } of allToys().filter((t) => t.buggy)) {
    it(`${model.name}${buggy ? '' : ''}`, () => {
      const b = bruteForce(model)
      for (const [allViolations, store] of [[false, 'full'], [true, 'full'], [false, 'fingerprint'], [true, 'fingerprint']] as const) {
        const r = bfs(model, { allViolations, store })
        expect(r.verdict).toBe('violation')
        if (!allViolations) expect(r.violations).toHaveLength(1)
        for (const v of r.violations) {
          const want = v.invariant === 'no-deadlock' ? b.deadlockDepth : b.violationDepth.get(v.invariant)
          expect(want, `brute force also breaks ${v.invariant}`).not.toBeUndefined()
          expect(want).not.toBeNull()
          expect(v.actions.length, `${v.invariant}: shortest length`).toBe(want)
          replayViolation(model, v)
        }
      }
      // DFS paths need not be shortest, but must replay and be at least as long.
      for (const v of dfs(model, { allViolations: true }).violations) {
        const want = v.invariant === 'no-deadlock' ? b.deadlockDepth : b.violationDepth.get(v.invariant)
        expect(v.actions.length).toBeGreaterThanOrEqual(want as number)
        replayViolation(model, v)
      }
    })
  }
})

describe('fault-invalidate/retry: packed engine vs brute force on the object backend', () => {
  for (const p of sizes) {
    it(tag(p), () => {
      const model = instantiate('fault-invalidate', 'retry', p).model
      const b = bruteForce(model, { fingerprints: true })
      expect(b.fingerprints, 'fingerprint is injective on reachable states').toBe(b.states)
      expect(b.deadlocks, 'the correct variant is deadlock-free').toBe(0)
      expect([...b.violationDepth.keys()]).toEqual([])
      const r = bfs(model, { symmetry: false, por: false })
      const d = dfs(model, { symmetry: false, por: false })
      const interned = bfs(withoutPacked(model))
      const fingerprints = bfs(model, { store: 'fingerprint', symmetry: false, por: false })
      for (const x of [r, d, interned, fingerprints]) {
        expect(x.verdict).toBe('ok')
        expect(x.stats.states).toBe(b.states)
        expect(x.stats.transitions).toBe(b.edges)
      }
      // Reduced by the symmetry of the fault threads (and invalidators): the orbits add up to the same count.
      for (const x of [bfs(model), dfs(model), bfs(model, { store: 'fingerprint' })]) {
        expect(x.verdict).toBe('ok')
        expect(x.stats.symmetry?.orbitStates ?? x.stats.states).toBe(b.states)
      }
      expect(r.stats.maxDepth).toBe(b.eccentricity)
      expect(interned.stats.maxDepth).toBe(b.eccentricity)
    })
  }
})

describe('fault-invalidate/no-retry: BFS counterexample is shortest and replays', () => {
  for (const p of sizes.slice(0, 3)) {
    it(tag(p), () => {
      const model = instantiate('fault-invalidate', 'no-retry', p).model
      const b = bruteForce(model)
      const want = b.violationDepth.get('no-stale-mapping')
      expect(want, 'brute force finds the stale mapping').toBeDefined()
      const r = bfs(model, { symmetry: false, por: false })
      expect(r.verdict).toBe('violation')
      expect(r.violations).toHaveLength(1)
      const [v] = r.violations
      expect(v.invariant).toBe('no-stale-mapping')
      expect(v.actions.length).toBe(want)
      replayViolation(model, v)
      // Fingerprints only: the trace is rebuilt by re-execution, as short.
      const f = bfs(model, { store: 'fingerprint' })
      expect(f.violations.map((x) => [x.invariant, x.actions.length])).toEqual([['no-stale-mapping', want]])
      replayViolation(model, f.violations[0])
      // With allViolations, the search covers everything: full counts again.
      const all = bfs(model, { allViolations: true, symmetry: false, por: false })
      expect(all.stats.states).toBe(b.states)
      expect(all.stats.transitions).toBe(b.edges)
      expect(all.violations.map((x) => x.invariant).sort()).toEqual(expectedViolations(b))
      for (const x of all.violations) replayViolation(model, x)
    })
  }
})
