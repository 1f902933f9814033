import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { instantiate } from '../../../invariants/scenarios.js'
import { mmioMappingCorrect, noDanglingMmioMapping } from '../../../invariants/mmio-invariants.js'
import { REGION_FREED, REGION_LISTED, REGION_UNLINKED } from '../../../model/primitives/region.js'
import { mmioLayout } from '../../../model/scenarios/mshv-mmio/index.js'
import { recordTrace } from '../../../traces/record.js'
import { bruteForce, expectedViolations } from '../../support/brute-force.js'

const mmio = (variant: string, params: Record<string, number> = {}) => instantiate('mshv-mmio', variant, params)
const explore = (variant: string, params: Record<string, number> = {}) => bfs(mmio(variant, params).model, { allViolations: true })
const broken = (variant: string, params: Record<string, number> = {}) =>
  explore(variant, params)
    .violations.map((v) => v.invariant)
    .sort()
/** The shortest trace of `invariant`: its steps as `thread label` and its message. */
function trace(variant: string, params: Record<string, number>, invariant: string) {
  const inst = mmio(variant, params)
  const x = bfs(inst.model, { allViolations: true })
  const v = x.violations.find((q) => q.invariant === invariant)
  if (!v) throw new Error(`${variant} keeps ${invariant}`)
  const t = recordTrace(inst, x, v)
  return { steps: t.steps.map((s) => `${s.thread} ${s.label}`), texts: t.steps.map((s) => s.text), message: t.violation.message }
}
/** Only the VMM's replacement, or only VFIO's munmap, or only its reset zap. */
const REPLACE_ONLY = { bar_unmap: 0 }
const MUNMAP_ONLY = { replace: 0 }
const RESET_ONLY = { replace: 0, bar_unmap: 0, bar_reset: 1 }

describe('mshv-mmio: upstream', () => {
  it("maps vma->vm_pgoff, which vfio-pci leaves as the file offset since aac6db75: wrong from MSHV_SET_GUEST_MEMORY on, whatever else runs", () => {
    for (const params of [{}, { bar_reset: 1 }, { vps: 2 }, { gfns: 1, nofull_mmio: 1 }] as Record<string, number>[]) expect(broken('upstream', params)).toEqual(['mmio-mapping-correct'])
    const t = trace('upstream', {}, 'mmio-mapping-correct')
    expect(t.steps).toEqual([])
    expect(t.message).toBe("gfn 0 maps pfn 48, but region 0's VMA maps BAR pfn 16 there")
  })

  it('the replacement is mapped from vm_pgoff too', () => {
    const { model } = mmio('upstream', { bar_unmap: 0 })
    const vmm = model.threadNames.indexOf('vmm')
    let s = model.initialStates()[0]
    for (let a = model.actions(s).find((x) => x.thread === vmm); a; a = model.actions(s).find((x) => x.thread === vmm)) s = model.next(s, a)
    expect(s.slat).toEqual([64, 65])
    expect(s.region[1].state).toBe(REGION_LISTED)
    expect(model.invariants.find((i) => i.id === 'mmio-mapping-correct')!.check(s)).toBe("gfn 0 maps pfn 64, but region 1's VMA maps BAR pfn 32 there")
  })

  it('upstream-pfnmap, the pfn read from the page table, keeps mmio-mapping-correct; the munmap and the reset zap then leave the SLAT on the BAR', () => {
    expect(broken('upstream-pfnmap', REPLACE_ONLY)).toEqual([])
    expect(trace('upstream-pfnmap', MUNMAP_ONLY, 'no-dangling-mmio-mapping')).toEqual({
      steps: ['vfio mmap_write_lock', 'vfio unmap_vma'],
      texts: ['down_write(&mmap_lock)', 'munmap(BAR 0 VMA): PTEs zapped, VMA freed'],
      message: 'gfn 0 still maps BAR pfn 16, whose VMA is gone',
    })
    const reset = trace('upstream-pfnmap', RESET_ONLY, 'no-dangling-mmio-mapping')
    expect(reset.steps).toEqual(['vfio_reset down_write', 'vfio_reset unmap_mapping_range'])
    expect(reset.message).toBe('gfn 0 still maps BAR pfn 16, whose PTEs vfio_pci_zap_bars zapped (the VMA stays)')
  })
})

describe("mshv-mmio: seed 004's versions", () => {
  it('v0: mmap_read_lock under the spinlock, the unlocked fast-path lookup, the fast path region used after vfree, the mapping left behind by the BAR teardown, and the whole region mapped from the wrong start', () => {
    expect(broken('v0')).toEqual(['mmio-mapping-correct', 'no-dangling-mmio-mapping', 'no-region-use-after-free', 'no-sleep-in-atomic', 'region-list-race-free'])
    const inst = mmio('v0')
    const x = bfs(inst.model)
    expect(x.violations[0].invariant).toBe('no-sleep-in-atomic')
    const labels = recordTrace(inst, x, x.violations[0]).steps.map((s) => s.label)
    expect(labels.indexOf('spin_lock')).toBeLessThan(labels.indexOf('mmap_read_lock'))
    expect(labels).not.toContain('spin_unlock')
  })

  it("v0's SPA: gfn = mreg->start_gfn before mmio_spa -= gfn - start_gfn, so an intercept at gfn 1 maps gfn 1's pfn at gfn 0", () => {
    const t = trace('v0', {}, 'mmio-mapping-correct')
    expect(t.texts[0]).toBe('HVMSG_UNMAPPED_GPA(gfn 1): mshv_handle_unmapped_gpa: mshv_partition_region_by_gfn, no lock')
    expect(t.texts.at(-1)).toMatch(/^hv_call_map_mmio_pages\(gfn 0, pfn 17, 2 pages\)/)
    expect(t.message).toBe("gfn 0 maps pfn 17, but region 0's VMA maps BAR pfn 16 there")
    // One page per intercept (hv_nofull_mmio), or one gfn, maps right: without the replacement the mapping holds.
    for (const params of [{ nofull_mmio: 1 }, { gfns: 1 }] as Record<string, number>[]) expect(broken('v0', { ...params, replace: 0, bar_unmap: 0 })).toEqual(['no-sleep-in-atomic'])
  })

  it("no-spinlock (Mukesh's rethink) no longer sleeps in atomic context but keeps the list race, the use-after-free, the dangling mapping and v0's SPA", () => {
    expect(broken('no-spinlock')).toEqual(['mmio-mapping-correct', 'no-dangling-mmio-mapping', 'no-region-use-after-free', 'region-list-race-free'])
  })

  it('locked-lookup-notifier holds without the replacement, one page per intercept, with two VPs', () => {
    for (const params of [MUNMAP_ONLY, { ...MUNMAP_ONLY, vps: 2 }]) expect(broken('locked-lookup-notifier', { ...params, nofull_mmio: 1 })).toEqual([])
  })

  it("locked-lookup-notifier: the release leaves the GPAs mapped (mshv_region_destroy skips an MMIO region), so a munmap after the replacement finds no notifier", () => {
    const t = trace('locked-lookup-notifier', { nofull_mmio: 1 }, 'no-dangling-mmio-mapping')
    expect(t.texts).toContain('mshv_region_put(region 0): last reference, mshv_region_destroy: mshv_region_unmap skips every page (an MMIO region has no mreg_pages[]), vfree')
    expect(t.texts.at(-3)).toBe('MMU notifier: none (it went with the freed region)')
    expect(t.message).toBe('gfn 0 still maps BAR pfn 16, whose VMA is gone')
  })

  it("locked-lookup-notifier: the reset's zap takes no mmap_lock, so it slips between follow_pfnmap_start and the map", () => {
    const t = trace('locked-lookup-notifier', { ...RESET_ONLY, nofull_mmio: 1 }, 'no-dangling-mmio-mapping')
    expect(t.steps).toEqual([
      'vp0 mshv_vp_handle_intercept',
      'vp0 spin_lock',
      'vp0 mshv_partition_region_by_gfn',
      'vp0 spin_unlock',
      'vp0 mmap_read_lock',
      'vp0 follow_pfnmap_start',
      'vfio_reset down_write',
      'vfio_reset spin_lock',
      'vfio_reset mshv_mmio_region_invalidate',
      'vp0 hv_call_map_mmio_pages',
      'vfio_reset spin_unlock',
      'vfio_reset unmap_mapping_range',
    ])
  })

  it('the region-list race needs the VMM: without region replacement the list is only read', () => {
    expect(broken('v0', { replace: 0, vps: 2 })).not.toContain('region-list-race-free')
  })
})

describe('mshv-mmio: V3 and the fix', () => {
  it('v3 computes the SPA right and maps the pfn the intercept looked up, but its GPAs outlive the munmap, the reset zap and the region', () => {
    expect(broken('v3', { replace: 0, bar_unmap: 0 })).toEqual([])
    expect(broken('v3', MUNMAP_ONLY)).toEqual(['no-dangling-mmio-mapping'])
    expect(broken('v3', RESET_ONLY)).toEqual(['no-dangling-mmio-mapping'])
    // The replacement: region 1 is listed over gfns that still map BAR 0, so the guest never faults region 1 in.
    const t = trace('v3', REPLACE_ONLY, 'mmio-mapping-correct')
    expect(t.steps.at(-1)).toBe('vmm hlist_add_head')
    expect(t.message).toBe("gfn 0 maps pfn 16, but region 1's VMA maps BAR pfn 32 there")
  })

  it('v3-notifier follows the munmap and the reset zap, and refaults the BAR after the reset through fixup_user_fault', () => {
    for (const params of [MUNMAP_ONLY, RESET_ONLY, { ...RESET_ONLY, bar_unmap: 1 }, { ...RESET_ONLY, vps: 2 }]) expect(broken('v3-notifier', params)).toEqual([])
    const x = explore('v3-notifier', RESET_ONLY)
    expect(x.coverage.vp.fixup_user_fault).toBeGreaterThan(0)
  })

  it('v3-notifier: the region removed, its GPAs stay mapped and its notifier goes with the release', () => {
    const t = trace('v3-notifier', {}, 'no-dangling-mmio-mapping')
    expect(t.steps.slice(-5)).toEqual(['vmm mshv_region_put', 'vmm mshv_region_destroy', 'vfio mmap_write_lock', 'vfio mmu_notifier_invalidate_range_start', 'vfio unmap_vma'])
    expect(broken('v3-notifier', REPLACE_ONLY)).toEqual(['mmio-mapping-correct'])
  })

  it("v3-release-unmap: the release unmapping the GPAs keeps them off a gone BAR, but a VP's reference delays it past the replacement", () => {
    for (const params of [{}, { bar_reset: 1 }, MUNMAP_ONLY] as Record<string, number>[]) expect(broken('v3-release-unmap', params)).not.toContain('no-dangling-mmio-mapping')
    const t = trace('v3-release-unmap', REPLACE_ONLY, 'mmio-mapping-correct')
    expect(t.steps.slice(8, 11)).toEqual(['vp0 mutex_lock', 'vp0 mmu_interval_read_retry', 'vp0 hv_call_map_mmio_pages'])
    expect(t.steps.at(-1)).toBe('vmm hlist_add_head')
    expect(t.message).toBe("gfn 0 maps pfn 16, but region 1's VMA maps BAR pfn 32 there")
  })

  it('v3-fixed (the notifier, and the GPAs unmapped when the region is removed) keeps every invariant', () => {
    for (const params of [{}, { bar_reset: 1 }, { vps: 2 }, { nofull_mmio: 1, bar_reset: 1 }, { gfns: 1, vps: 2, bar_unmap: 0, bar_reset: 1 }] as Record<string, number>[]) {
      expect(broken('v3-fixed', params)).toEqual([])
    }
  })
})

describe('mshv-mmio: the model', () => {
  it('agrees with an independent enumerator', () => {
    for (const [variant, params] of [
      ['upstream', { gfns: 1 }],
      ['v0', { gfns: 1 }],
      ['locked-lookup-notifier', { gfns: 1 }],
      ['v3', { gfns: 1, bar_reset: 1 }],
      ['v3-fixed', { gfns: 1, replace: 0, bar_reset: 1 }],
    ] as [string, Record<string, number>][]) {
      const { model } = mmio(variant, params)
      const b = bruteForce(model)
      const x = bfs(model, { allViolations: true })
      expect([x.stats.states, x.stats.transitions]).toEqual([b.states, b.edges])
      expect(x.violations.map((v) => v.invariant).filter((id) => id !== 'lock-order-consistent').sort()).toEqual(expectedViolations(b))
    }
  })

  it('bar_reset adds the vfio_reset thread only', () => {
    const names = (params: Record<string, number>) => mmio('upstream', params).model.threadNames
    expect(names({ bar_reset: 1 })).toEqual([...names({}), 'vfio_reset'])
  })
})

describe('mmio-mapping-correct', () => {
  const l = mmioLayout(2)
  const inv = mmioMappingCorrect(l)
  const listedRegion0 = [{ state: REGION_LISTED, refs: 1, dead: 0 }, { state: REGION_FREED, refs: 0, dead: 0 }]
  const world = (slat: number[], over: Partial<{ vmaPresent: number[]; pte: number[]; region: typeof listedRegion0 }> = {}) => ({
    slat,
    vmaPresent: [1, 1],
    pte: [3, 3],
    region: listedRegion0,
    ...over,
  })

  it("holds when each entry maps the BAR page the region's VMA maps there, and for unmapped gfns", () => {
    expect(inv.check(world([16, 17]))).toBeNull()
    expect(inv.check(world([0, 17]))).toBeNull()
    expect(inv.check(world([0, 0]))).toBeNull()
  })

  it('fails on a shifted or foreign pfn', () => {
    expect(inv.check(world([17, 18]))).toBe("gfn 0 maps pfn 17, but region 0's VMA maps BAR pfn 16 there")
    expect(inv.check(world([16, 48]))).toBe("gfn 1 maps pfn 48, but region 0's VMA maps BAR pfn 17 there")
    expect(inv.check(world([32, 33]))).toBe("gfn 0 maps pfn 32, but region 0's VMA maps BAR pfn 16 there")
  })

  it("says nothing where no listed region's VMA maps the page (no-dangling-mmio-mapping's business)", () => {
    expect(inv.check(world([17, 18], { region: [{ state: REGION_UNLINKED, refs: 1, dead: 0 }, listedRegion0[1]] }))).toBeNull()
    expect(inv.check(world([17, 18], { vmaPresent: [0, 1] }))).toBeNull()
    expect(inv.check(world([17, 18], { pte: [2, 3] }))).toBe("gfn 1 maps pfn 18, but region 0's VMA maps BAR pfn 17 there")
    expect(inv.check(world([17, 0], { pte: [2, 3] }))).toBeNull()
  })
})

describe('no-dangling-mmio-mapping', () => {
  const inv = noDanglingMmioMapping(mmioLayout(2))

  it('fails when the VMA is gone or the BAR zapped, with the entry still there', () => {
    expect(inv.check({ slat: [16, 17], vmaPresent: [0, 1], pte: [0, 3] })).toBe('gfn 0 still maps BAR pfn 16, whose VMA is gone')
    expect(inv.check({ slat: [0, 17], vmaPresent: [1, 1], pte: [0, 3] })).toBe('gfn 1 still maps BAR pfn 17, whose PTEs vfio_pci_zap_bars zapped (the VMA stays)')
  })

  it('holds while the host maps the BAR (a refault of any of its pages counts), and ignores pfns of no BAR', () => {
    expect(inv.check({ slat: [16, 17], vmaPresent: [1, 1], pte: [3, 3] })).toBeNull()
    expect(inv.check({ slat: [16, 17], vmaPresent: [1, 1], pte: [1, 3] })).toBeNull()
    expect(inv.check({ slat: [16, 17], vmaPresent: [1, 0], pte: [3, 0] })).toBeNull()
    expect(inv.check({ slat: [48, 49], vmaPresent: [0, 1], pte: [0, 3] })).toBeNull()
  })
})
