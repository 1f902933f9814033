/**
 * Partial-order reduction on the built-in scenarios: every scenario and
 * variant at its defaults, and larger sets, explored with the reduction
 * forced on (`por: true`, whatever it saves) and off: the same invariants
 * broken, the same steps never taken, the same outcomes and metric ranges,
 * and the reduced traces replay on the object backend. The reference
 * model runs with symmetry off, which the reduction is not combined with.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import type { Exploration } from '../../explorer/result.js'
import type { Model } from '../../explorer/model.js'
import { catalog, instantiate } from '../../invariants/scenarios.js'
import { replayViolation } from '../support/replay.js'

const never = (r: Exploration<unknown>): string[] =>
  Object.entries(r.coverage).flatMap(([g, steps]) => Object.entries(steps).flatMap(([name, n]) => (n === 0 ? [`${g}.${name}`] : [])))

function onVsOff(model: Model<any, any>): { off: number; on: number; reduced: number } {
  const off = bfs(model, { por: false, symmetry: false, allViolations: true })
  const on = bfs(model, { por: true, symmetry: false, allViolations: true })
  expect(on.incomplete).toBeNull()
  expect(on.violations.map((v) => v.invariant)).toEqual(off.violations.map((v) => v.invariant))
  expect(never(on)).toEqual(never(off))
  expect(on.outcomes).toEqual(off.outcomes)
  expect(on.metrics).toEqual(off.metrics)
  expect(on.metricsAll).toEqual(off.metricsAll)
  expect(on.stats.states).toBeLessThanOrEqual(off.stats.states)
  // Outcome and evidence properties have runs of their own, compared above by invariant.
  for (const v of on.violations) if (v.invariant === 'no-deadlock' || model.invariants.some((i) => i.id === v.invariant)) replayViolation(model, v)
  const por = on.stats.por
  expect(por, 'the reduction ran').toBeDefined()
  return { off: off.stats.states, on: on.stats.states, reduced: por && 'reduced' in por ? por.reduced : 0 }
}

describe('every scenario and variant at its defaults: the same verdicts with the reduction on and off', () => {
  for (const s of catalog) {
    it(`${s.name}: every variant`, () => {
      for (const v of s.variants) onVsOff(instantiate(s.name, v.name, {}).model)
    })
  }
})

describe('larger sets', () => {
  it('mshv-movable/fixed splits=1 and v6 migrations=1: the same verdicts, and some states are expanded by one step alone', () => {
    for (const [variant, params] of [
      ['fixed', { splits: 1 }],
      ['v6', { migrations: 1 }],
    ] as const) {
      const r = onVsOff(instantiate('mshv-movable', variant, params).model)
      expect(r.reduced).toBeGreaterThan(0)
      expect(r.on).toBeLessThan(r.off)
    }
  })

  it('fault-invalidate 3,2,1,1,2 both variants (symmetry off): the same verdicts; the seeded bug (an invalidation between hmm_range_fault and the map) is found', () => {
    for (const variant of ['retry', 'no-retry']) {
      const model = instantiate('fault-invalidate', variant, { P: 3, V: 2, I: 1, K: 1, F: 2 }).model
      onVsOff(model)
      const first = bfs(model, { por: true, symmetry: false })
      expect(first.violations.map((v) => v.invariant)).toEqual(variant === 'no-retry' ? ['no-stale-mapping'] : [])
    }
  })
})
