/**
 * The search's early ends: `maxStates` exactly (not one state late), and the
 * `stop` callback (the CLI's memory bound and interrupt) asked once per
 * state, ending the search `incomplete` with its reason, its statistics and
 * the violations found so far.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { dfs } from '../../explorer/dfs.js'
import { randomSearch } from '../../explorer/random.js'
import { instantiate } from '../../invariants/scenarios.js'
import { chain } from '../support/toy-models.js'

const searches = [bfs, dfs] as const

describe('maxStates', () => {
  it('stops at exactly maxStates on a chain (one successor per state: no overshoot to excuse)', () => {
    const model = chain({ N: 100, stuckIsTerminal: true })
    for (const f of searches) {
      for (const maxStates of [1, 2, 10, 100]) {
        const r = f(model, { maxStates })
        expect(r.stats.states, `${f.name} maxStates ${maxStates}`).toBe(maxStates)
        // One expansion per stored state but the last: a search one state late would have expanded it too.
        expect(r.stats.transitions, `${f.name} maxStates ${maxStates}`).toBe(maxStates - 1)
        expect(r.verdict).toBe('incomplete')
      }
      // 101 states stored is not yet 101 expanded (the last could deadlock): the bound must be above the count to be ok.
      expect(f(model, { maxStates: 101 }).verdict).toBe('incomplete')
      expect(f(model, { maxStates: 102 })).toMatchObject({ verdict: 'ok', stats: { states: 101, transitions: 100 } })
    }
  })
})

describe('the stop callback', () => {
  it('is asked once per expanded state, with the states stored, and ends the search incomplete with its reason', () => {
    const model = chain({ N: 100, stuckIsTerminal: true })
    for (const f of searches) {
      const seen: number[] = []
      const r = f(model, { stop: (states) => (seen.push(states), states >= 7 ? 'memory bound reached at 7 states' : null) })
      expect(r.verdict).toBe('incomplete')
      expect(r.incomplete).toBe('memory bound reached at 7 states')
      expect(r.stats.states).toBe(7)
      expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7])
    }
  })

  it('never asked to stop, the search is the same as without it', () => {
    const model = instantiate('fault-invalidate', 'retry', { P: 2 }).model
    for (const f of searches) {
      const plain = f(model)
      const withStop = f(model, { stop: () => null })
      expect(withStop.verdict).toBe('ok')
      expect(withStop.stats.states).toBe(plain.stats.states)
      expect(withStop.stats.transitions).toBe(plain.stats.transitions)
    }
  })

  it('keeps the violations found before it stopped (all-violations), and is not reported over them', () => {
    const model = instantiate('fault-invalidate', 'no-retry', { P: 2 }).model
    const full = bfs(model, { allViolations: true })
    let found = 0
    const r = bfs(model, { allViolations: true, stop: (states) => (states > full.stats.states / 2 ? (found++, 'interrupted') : null) })
    expect(found).toBe(1)
    expect(r.incomplete).toBe('interrupted')
    expect(r.stats.states).toBeLessThan(full.stats.states)
    expect(r.violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
    expect(r.verdict).toBe('violation')
  })

  it('ends random runs too, saying why', () => {
    const model = instantiate('fault-invalidate', 'retry', { P: 2 }).model
    let calls = 0
    const r = randomSearch(model, { seed: 3, runs: 500, stop: () => (++calls > 10 ? 'interrupted' : null) })
    expect(r.verdict).toBe('incomplete')
    expect(r.incomplete).toMatch(/\(interrupted\), not exhaustive$/)
    const plain = randomSearch(model, { seed: 3, runs: 500 })
    expect(r.stats.transitions).toBeLessThan(plain.stats.transitions)
  })
})
