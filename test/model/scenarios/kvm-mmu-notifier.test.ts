import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { instantiate } from '../../../invariants/scenarios.js'
import { recordTrace } from '../../../traces/record.js'
import { expectBackendsAgree } from '../../support/backends.js'
import { bruteForce, expectedViolations } from '../../support/brute-force.js'

const kvm = (variant: string, params: Record<string, number> = {}) => instantiate('kvm-mmu-notifier', variant, params)
const explore = (variant: string, params: Record<string, number> = {}) => bfs(kvm(variant, params).model, { allViolations: true })
const broken = (variant: string, params: Record<string, number> = {}) =>
  explore(variant, params)
    .violations.map((v) => v.invariant)
    .sort()
function trace(variant: string, params: Record<string, number>, invariant: string) {
  const inst = kvm(variant, params)
  const x = bfs(inst.model, { allViolations: true })
  const v = x.violations.find((q) => q.invariant === invariant)
  if (!v) throw new Error(`${variant} keeps ${invariant}`)
  const t = recordTrace(inst, x, v)
  return { steps: t.steps.map((s) => `${s.thread} ${s.label}`), message: t.violation.message }
}

const STALE = ['mapping-within-folio', 'no-freed-page-mapped', 'no-stale-mapping']

describe('kvm-mmu-notifier: verdicts', () => {
  it('upstream holds every invariant at the defaults, with two memslots, with every host event, and with two zaps', () => {
    for (const params of [{}, { slots: 2 }, { zaps: 0, splits: 1 }, { zaps: 0, folio_splits: 1 }, { zaps: 0, migrations: 1 }, { zaps: 2 }, { pages: 2, vcpus: 2 }] as Record<string, number>[]) {
      expect(broken('upstream', params)).toEqual([])
    }
  })

  it('upstream runs every step and never has an invalidation in progress at rest', () => {
    const x = explore('upstream')
    expect(x.violations).toEqual([])
    expect(x.stats.states).toBeGreaterThan(1000)
  })

  it('no-stale-check maps a pfn the zap took away, which is then freed', () => {
    expect(broken('no-stale-check')).toEqual(STALE)
    const t = trace('no-stale-check', {}, 'no-stale-mapping')
    expect(t.steps).toContain('vcpu0 kvm_tdp_mmu_map')
    expect(t.steps[t.steps.length - 1]).toBe('zap0 zap_page_range_single')
    expect(t.message).toMatch(/^gfn 0x2 maps pfn 0x1 but the host maps nothing at hva 0x2$/)
  })

  it('no-in-progress-check maps the pfn while the zap is between range_start and range_end', () => {
    expect(broken('no-in-progress-check')).toEqual(STALE)
    const t = trace('no-in-progress-check', {}, 'no-stale-mapping')
    // The invalidation began before the fault took mmu_lock, and the sequence had not moved yet.
    expect(t.steps.indexOf('zap0 kvm_mmu_unmap_gfn_range')).toBeLessThan(t.steps.indexOf('vcpu0 is_page_fault_stale'))
    expect(t.steps).not.toContain('zap0 kvm_mmu_invalidate_end')
  })

  it('range-overwrite holds with one memslot and breaks with two (the zap of the whole VMA leaves the first slot outside the range)', () => {
    expect(broken('range-overwrite')).toEqual([])
    expect(broken('range-overwrite', { slots: 2 })).toEqual(STALE)
  })

  it('memslot updates: upstream holds while the VMM deletes and re-creates a slot (one or two slots, two vCPUs)', () => {
    for (const params of [{ memslot_ops: 1 }, { memslot_ops: 2 }, { memslot_ops: 2, slots: 2 }, { memslot_ops: 1, pages: 2, vcpus: 2 }] as Record<string, number>[]) {
      expect(broken('upstream', params)).toEqual([])
    }
  })

  it("memslot-swap-no-mn-wait: a slot swapped out between a zap's range_start and range_end leaves mmu_invalidate_in_progress raised", () => {
    expect(broken('memslot-swap-no-mn-wait')).toEqual([])
    expect(broken('memslot-swap-no-mn-wait', { memslot_ops: 1 })).toEqual(['in-progress-balanced'])
    const t = trace('memslot-swap-no-mn-wait', { memslot_ops: 1 }, 'in-progress-balanced')
    const swap = t.steps.lastIndexOf('vmm kvm_swap_active_memslots')
    expect(t.steps.indexOf('zap0 kvm_mmu_unmap_gfn_range')).toBeLessThan(swap)
    expect(swap).toBeLessThan(t.steps.indexOf('zap0 kvm_mmu_invalidate_end'))
    expect(t.message).toBe('mmu_invalidate_in_progress is 1 with 0 invalidations between range_start and range_end')
    expect(broken('memslot-swap-no-mn-wait', { memslot_ops: 2 })).toEqual(['in-progress-balanced'])
  })

  it('memslot-no-synchronize-srcu: a fault that looked the slot up before the INVALID swap maps after the flush, and the SPTE outlives the slot', () => {
    expect(broken('memslot-no-synchronize-srcu')).toEqual([])
    expect(broken('memslot-no-synchronize-srcu', { memslot_ops: 1, zaps: 0 })).toEqual(['no-stale-mapping'])
    const t = trace('memslot-no-synchronize-srcu', { memslot_ops: 1, zaps: 0 }, 'no-stale-mapping')
    expect(t.steps.indexOf('vmm kvm_arch_flush_shadow_memslot')).toBeLessThan(t.steps.indexOf('vcpu0 kvm_tdp_mmu_map'))
    expect(t.message).toMatch(/^gfn 0x\d maps pfn 0x\d+ but memslot 0 was deleted$/)
    expect(broken('memslot-no-synchronize-srcu', { memslot_ops: 1 })).toEqual(STALE)
  })

  it('the OOM reaper: upstream holds with KVM alone and with another subscriber before or after it; both the -EAGAIN path (with KVM\'s compensating end) and the reap are taken', () => {
    for (const subscribers of [1, 2, 3]) expect(broken('upstream', { oom_reaps: 1, subscribers })).toEqual([])
    const x = explore('upstream', { oom_reaps: 1, subscribers: 2, zaps: 0 })
    expect(x.coverage.oom_reaper.oom_reap_eagain).toBeGreaterThan(0)
    expect(x.coverage.oom_reaper.unmap_page_range).toBeGreaterThan(0)
    // KVM's end runs on both paths: after range_end, and called by the core after the other subscriber's -EAGAIN.
    expect(x.coverage.oom_reaper.mn_active_invalidate_count).toBeGreaterThan(x.coverage.oom_reaper.unmap_page_range)
    // KVM alone never fails its start: the -EAGAIN path is unreachable.
    expect(explore('upstream', { oom_reaps: 1, zaps: 0 }).coverage.oom_reaper.oom_reap_eagain ?? 0).toBe(0)
  })

  it('hlist-no-end-after-eagain: another subscriber fails the OOM reaper\'s non-blockable start and KVM\'s start is never paired', () => {
    expect(broken('hlist-no-end-after-eagain')).toEqual([])
    expect(broken('hlist-no-end-after-eagain', { oom_reaps: 1 })).toEqual([])
    for (const subscribers of [2, 3]) expect(broken('hlist-no-end-after-eagain', { oom_reaps: 1, subscribers })).toEqual(['in-progress-balanced'])
    const t = trace('hlist-no-end-after-eagain', { oom_reaps: 1, subscribers: 2, zaps: 0 }, 'in-progress-balanced')
    expect(t.steps.slice(-5)).toEqual([
      'oom0 kvm_mmu_notifier_invalidate_range_start',
      'oom0 start_write_lock',
      'oom0 kvm_mmu_unmap_gfn_range',
      'oom0 start_write_unlock',
      'oom0 other_invalidate_range_start',
    ])
    expect(t.message).toBe('mmu_invalidate_in_progress is 1 with 0 invalidations between range_start and range_end')
  })

  it('khugepaged: upstream holds with a collapse (also of a THP whose PMD was split); without KVM\'s in-progress test a collapse alone leaves a stale SPTE', () => {
    for (const params of [{ collapses: 1 }, { zaps: 0, splits: 1, collapses: 1 }, { zaps: 0, collapses: 1, oom_reaps: 1, subscribers: 2 }] as Record<string, number>[]) {
      expect(broken('upstream', params)).toEqual([])
    }
    const x = explore('upstream', { zaps: 0, collapses: 1 })
    expect(x.coverage.khugepaged.pmdp_collapse_flush).toBeGreaterThan(0)
    expect(broken('no-in-progress-check', { zaps: 0, collapses: 1 })).toEqual(['no-freed-page-mapped', 'no-stale-mapping'])
    const t = trace('no-in-progress-check', { zaps: 0, collapses: 1 }, 'no-stale-mapping')
    expect(t.steps[t.steps.length - 1]).toBe('collapse0 pmdp_collapse_flush')
    expect(t.message).toMatch(/^gfn 0x2 maps pfn 0x1 but the host maps pfn 0x2 at hva 0x2$/)
  })

  it('a zap and a collapse of the same VMA in one run: upstream holds and both invalidations are taken (mmap_lock keeps them apart)', () => {
    // Without the exclusion (collapse under mmap_write_lock, MADV_DONTNEED under mmap_read_lock) a zap aimed at a
    // PTE-mapped page lands on the collapsed PMD after a neighbour's 2M fault: a state the kernel cannot reach.
    const inst = kvm('upstream', { collapses: 1, pages: 2 })
    const x = bfs(inst.model, { allViolations: true })
    expect(x.violations).toEqual([])
    expect(x.coverage.khugepaged.pmdp_collapse_flush).toBeGreaterThan(0)
    expect(x.coverage.madvise_dontneed.zap_page_range_single).toBeGreaterThan(0)
  })

  it('the example review file is the no-stale-check patch', async () => {
    const { loadScenarios } = await import('../../../cli/api.js')
    const [s] = await loadScenarios('./examples/kvm-drop-stale-check.ts')
    const inst = instantiate(s, 'drop-stale-check')
    const x = bfs(inst.model, { allViolations: true })
    expect(x.violations.map((v) => v.invariant).sort()).toEqual(STALE)
  })
})

describe('kvm-mmu-notifier: the model', () => {
  it('the packed and object backends agree', () => {
    expectBackendsAgree(kvm('upstream', { vcpus: 2, migrations: 1, splits: 1 }).model, { runs: 40, seed: 11, maxLength: 40 })
    expectBackendsAgree(kvm('no-in-progress-check', { slots: 2, folio_splits: 1 }).model, { runs: 30, seed: 5, maxLength: 40 })
    expectBackendsAgree(kvm('upstream', { slots: 2, memslot_ops: 2, oom_reaps: 1, subscribers: 2, collapses: 1 }).model, { runs: 30, seed: 7, maxLength: 40 })
  })

  it('agrees with an independent enumerator', () => {
    for (const [variant, params] of [
      ['upstream', { pages: 2 }],
      ['no-stale-check', { pages: 2 }],
      ['no-in-progress-check', { pages: 2 }],
      ['range-overwrite', { pages: 2, slots: 2 }],
      ['memslot-swap-no-mn-wait', { pages: 2, memslot_ops: 2 }],
      ['hlist-no-end-after-eagain', { pages: 2, zaps: 0, oom_reaps: 1, subscribers: 2 }],
      ['upstream', { pages: 2, zaps: 0, collapses: 1, oom_reaps: 1, subscribers: 3 }],
    ] as [string, Record<string, number>][]) {
      const { model } = kvm(variant, params)
      const b = bruteForce(model)
      const x = bfs(model, { allViolations: true })
      expect([x.stats.states, x.stats.transitions]).toEqual([b.states, b.edges])
      expect(x.violations.map((v) => v.invariant).filter((id) => id !== 'lock-order-consistent').sort()).toEqual(expectedViolations(b))
    }
  })
})
