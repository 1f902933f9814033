/**
 * BFS and DFS agree on what is broken; bounds make a search 'incomplete',
 * never 'ok'; a depth-bounded DFS still covers every state within the bound;
 * deadlocks are reported, terminal states are not deadlocks.
 * Expected values come from the brute force of test/support/brute-force.ts.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { dfs } from '../../explorer/dfs.js'
import type { Model } from '../../explorer/model.js'
import { instantiate } from '../../invariants/scenarios.js'
import { bruteForce, expectedViolations } from '../support/brute-force.js'
import { replayViolation } from '../support/replay.js'
import { allToys, canonical, chain, counterRace, deepBranchBug, grid, lockOrder, modCounter, multiInit } from '../support/toy-models.js'

const searches = [bfs, dfs] as const
const noRetry = (p: Record<string, number>) => instantiate('fault-invalidate', 'no-retry', p).model
const retry = (p: Record<string, number>) => instantiate('fault-invalidate', 'retry', p).model
const small = { P: 2, V: 2, I: 1, K: 1, F: 1 }

function buggyModels(): Model<any, any>[] {
  return [
    ...allToys()
      .filter((t) => t.buggy)
      .map((t) => t.model),
    noRetry(small),
    noRetry({ P: 1, V: 2, I: 1, K: 1, F: 2 }),
  ]
}

describe('DFS and BFS find the same broken invariants', () => {
  for (const model of buggyModels()) {
    it(model.name, () => {
      const want = expectedViolations(bruteForce(model))
      expect(want.length).toBeGreaterThan(0)
      const all = searches.map((f) => f(model, { allViolations: true }))
      for (const r of all) {
        expect(r.verdict).toBe('violation')
        expect(r.violations.map((v) => v.invariant).sort(), `${r.mode} allViolations`).toEqual(want)
      }
      const first = searches.map((f) => f(model))
      for (const r of first) {
        expect(r.verdict).toBe('violation')
        expect(r.violations).toHaveLength(1)
        expect(want).toContain(r.violations[0].invariant)
        replayViolation(model, r.violations[0])
      }
      // Every toy here breaks one kind of property, so both must name the same one.
      if (want.length === 1) expect(first[0].violations[0].invariant).toBe(first[1].violations[0].invariant)
    })
  }

  it('without allViolations BFS stops within one level of the shortest violation', () => {
    const model = noRetry(small)
    const b = bruteForce(model)
    const d = b.violationDepth.get('no-stale-mapping') as number
    const within = [...b.dist.values()].filter((x) => x <= d + 1).length
    expect(within).toBeLessThan(b.states)
    const r = bfs(model)
    expect(r.stats.states).toBeLessThanOrEqual(within)
  })
})

describe('depth bound', () => {
  const cases: { model: Model<any, any>; id: string }[] = [
    { model: grid({ W: 5, H: 4, bug: [3, 4] }), id: 'avoid-cell' },
    { model: counterRace({ locked: false }), id: 'counter-matches-done' },
    { model: deepBranchBug({ B: 3, L: 6, bugBits: 45 }), id: 'no-bad-leaf' },
    { model: multiInit(), id: 'lane2-below-3' },
    { model: noRetry(small), id: 'no-stale-mapping' },
  ]
  for (const { model, id } of cases) {
    it(`${model.name}: a bound below the bug's depth is incomplete, at it finds the bug`, () => {
      const depth = bruteForce(model).violationDepth.get(id) as number
      expect(depth).toBeGreaterThan(0)
      for (const f of searches) {
        for (const allViolations of [false, true]) {
          const below = f(model, { maxDepth: depth - 1, allViolations })
          expect(below.verdict, `${f.name} maxDepth ${depth - 1}`).toBe('incomplete')
          expect(below.violations).toEqual([])
          expect(below.incomplete).toMatch(/max-depth/)
        }
        const at = f(model, { maxDepth: depth })
        expect(at.verdict, `${f.name} maxDepth ${depth}`).toBe('violation')
        expect(at.violations.map((v) => v.invariant)).toEqual([id])
        expect(at.violations[0].actions.length).toBeLessThanOrEqual(depth)
        replayViolation(model, at.violations[0])
      }
    })
  }

  const bounded: { model: Model<any, any>; depths: number[] }[] = [
    { model: modCounter(7), depths: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12] },
    { model: modCounter(11), depths: [3, 6, 9, 20] },
    { model: grid({ W: 5, H: 4 }), depths: [0, 3, 8, 9, 10] },
    { model: counterRace({ locked: true, threads: 3, rounds: 2 }), depths: [5, 17, 29, 30] },
    { model: retry(small), depths: [5, 12, 20, 33] },
    { model: retry({ P: 1, V: 1, I: 1, K: 2, F: 2 }), depths: [7, 25, 40] },
  ]
  for (const { model, depths } of bounded) {
    it(`${model.name}: both searches cover exactly the states within the bound`, () => {
      for (const D of depths) {
        const b = bruteForce(model, { maxDepth: D })
        // A state at the bound with a step left: the bound may hide something, so the search must not say 'ok'.
        const cut = b.order.some((s) => b.dist.get(canonical(s)) === D && model.actions(s).length > 0)
        for (const f of searches) {
          const r = f(model, { maxDepth: D, symmetry: false, por: false })
          expect(r.stats.states, `${f.name} maxDepth ${D}: states`).toBe(b.states)
          expect(r.stats.transitions, `${f.name} maxDepth ${D}: transitions`).toBe(b.edges)
          expect(r.stats.maxDepth).toBeLessThanOrEqual(D)
          if (cut) expect(r.verdict, `${f.name} maxDepth ${D}`).toBe('incomplete')
          else if (f === bfs) expect(r.verdict).toBe('ok')
          else expect(['ok', 'incomplete']).toContain(r.verdict)
        }
        const r = bfs(model, { maxDepth: D, symmetry: false, por: false })
        expect(r.stats.maxDepth).toBe(Math.min(D, b.eccentricity))
      }
    })
  }

  it('DFS honours a depth bound above 65535', () => {
    const model = chain({ N: 100_000, stuckIsTerminal: true })
    const r = dfs(model, { maxDepth: 70_000 })
    expect(r.stats.states).toBe(70_001)
    expect(r.verdict).toBe('incomplete')
    expect(r.stats.maxDepth).toBe(70_000)
  })
})

describe('state and time bounds', () => {
  it('maxStates makes a search incomplete, never ok', () => {
    const model = retry(small)
    const b = bruteForce(model)
    const total = b.states
    // The bound is checked between expansions, so the store may overshoot it by at most one state's successors.
    const maxOut = Math.max(...b.order.map((s) => model.actions(s).length))
    for (const f of searches) {
      for (const maxStates of [1, 100, total - 1]) {
        const r = f(model, { maxStates, symmetry: false, por: false })
        expect(r.verdict, `${f.name} maxStates ${maxStates}`).toBe('incomplete')
        expect(r.incomplete).toMatch(/max-states/)
        expect(r.stats.states).toBeGreaterThanOrEqual(maxStates)
        expect(r.stats.states).toBeLessThanOrEqual(Math.min(total, maxStates + maxOut))
      }
      const r = f(model, { maxStates: total + 1, symmetry: false, por: false })
      expect(r.verdict).toBe('ok')
      expect(r.stats.states).toBe(total)
    }
  })

  it('maxStates hides a bug: incomplete, no violation', () => {
    const model = noRetry(small)
    for (const f of searches) {
      const r = f(model, { maxStates: 20 })
      expect(r.verdict).toBe('incomplete')
      expect(r.violations).toEqual([])
    }
  })

  it('maxSeconds 0 makes a search incomplete', () => {
    const model = retry(small)
    for (const f of searches) {
      const r = f(model, { maxSeconds: 0 })
      expect(r.verdict).toBe('incomplete')
      expect(r.incomplete).toMatch(/max-seconds/)
    }
  })
})

describe('deadlocks', () => {
  it('AB/BA lock order: no-deadlock, with a shortest path to both threads holding one lock', () => {
    const model = lockOrder({ abba: true })
    const b = bruteForce(model)
    expect(b.deadlocks).toBeGreaterThan(0)
    for (const f of searches) {
      const r = f(model)
      expect(r.verdict).toBe('violation')
      expect(r.violations.map((v) => v.invariant)).toEqual(['no-deadlock'])
      const end = replayViolation(model, r.violations[0])
      expect(end.a).not.toBe(0)
      expect(end.b).not.toBe(0)
      expect(end.a).not.toBe(end.b)
      if (f === bfs) expect(r.violations[0].actions.length).toBe(b.deadlockDepth)
    }
  })

  it('terminal states are not deadlocks', () => {
    const models: Model<any, any>[] = [lockOrder({ abba: false }), chain({ N: 5, stuckIsTerminal: true }), counterRace({ locked: true })]
    for (const model of models) {
      const b = bruteForce(model)
      expect(b.terminal).toBeGreaterThan(0)
      expect(b.deadlocks).toBe(0)
      for (const f of searches) expect(f(model).verdict, `${f.name} ${model.name}`).toBe('ok')
    }
  })

  it('a stuck non-terminal state is a deadlock; without terminal() every stuck state is', () => {
    for (const model of [chain({ N: 5, stuckIsTerminal: false }), chain({ N: 5, stuckIsTerminal: true, withTerminal: false })]) {
      for (const f of searches) {
        const r = f(model)
        expect(r.verdict).toBe('violation')
        expect(r.violations.map((v) => v.invariant)).toEqual(['no-deadlock'])
        expect(r.violations[0].actions).toHaveLength(5)
        replayViolation(model, r.violations[0])
      }
    }
  })

  it('a deadlock at exactly maxDepth is reported', () => {
    const model = chain({ N: 3, stuckIsTerminal: false })
    for (const f of searches) {
      const r = f(model, { maxDepth: 3 })
      // The stuck state is at depth 3, within the bound: its invariants are checked, so must its deadlock be.
      expect(r.verdict, `${f.name}`).not.toBe('ok')
      expect(r.violations.map((v) => v.invariant), `${f.name}`).toEqual(['no-deadlock'])
    }
  })

  it('AB/BA deadlock at exactly maxDepth is reported', () => {
    const model = lockOrder({ abba: true })
    const depth = bruteForce(model).deadlockDepth as number
    for (const f of searches) {
      const r = f(model, { maxDepth: depth })
      expect(r.violations.map((v) => v.invariant), `${f.name} maxDepth ${depth}`).toEqual(['no-deadlock'])
    }
  })
})
