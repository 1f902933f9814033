import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { instantiate } from '../../../invariants/scenarios.js'
import { recordTrace } from '../../../traces/record.js'
import { bruteForce, expectedViolations } from '../../support/brute-force.js'

const mmio = (variant: string, params: Record<string, number> = {}) => instantiate('mshv-mmio', variant, params)
const broken = (variant: string, params: Record<string, number> = {}) =>
  bfs(mmio(variant, params).model, { allViolations: true })
    .violations.map((v) => v.invariant)
    .sort()

describe('mshv-mmio: the three bugs of the review, found by exploration', () => {
  it('v0: mmap_read_lock under the spinlock, the unlocked fast-path lookup, the fast path region used after vfree, and the mapping left behind by the BAR teardown', () => {
    expect(broken('v0')).toEqual(['no-dangling-mmio-mapping', 'no-region-use-after-free', 'no-sleep-in-atomic', 'region-list-race-free'])
    const inst = mmio('v0')
    const x = bfs(inst.model)
    expect(x.violations[0].invariant).toBe('no-sleep-in-atomic')
    const labels = recordTrace(inst, x, x.violations[0]).steps.map((s) => s.label)
    expect(labels.indexOf('spin_lock')).toBeLessThan(labels.indexOf('mmap_read_lock'))
    expect(labels).not.toContain('spin_unlock')
  })

  it("no-spinlock (Mukesh's rethink) no longer sleeps in atomic context but keeps the list race, the use-after-free and the dangling mapping", () => {
    expect(broken('no-spinlock')).toEqual(['no-dangling-mmio-mapping', 'no-region-use-after-free', 'region-list-race-free'])
  })

  it('locked-lookup-notifier keeps every invariant, with two VPs and with hv_nofull_mmio too', () => {
    for (const params of [{}, { vps: 2 }, { vps: 2, nofull_mmio: 1 }] as Record<string, number>[]) expect(broken('locked-lookup-notifier', params)).toEqual([])
  })

  it('the region-list race needs the VMM: without region replacement the list is only read', () => {
    expect(broken('v0', { replace: 0, vps: 2 })).not.toContain('region-list-race-free')
  })

  it('agrees with an independent enumerator', () => {
    for (const variant of ['v0', 'locked-lookup-notifier']) {
      const { model } = mmio(variant, { gfns: 1 })
      const b = bruteForce(model)
      const x = bfs(model, { allViolations: true })
      expect([x.stats.states, x.stats.transitions]).toEqual([b.states, b.edges])
      expect(x.violations.map((v) => v.invariant).filter((id) => id !== 'lock-order-consistent').sort()).toEqual(expectedViolations(b))
    }
  })
})
