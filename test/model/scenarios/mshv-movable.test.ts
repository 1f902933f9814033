import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { dfs } from '../../../explorer/dfs.js'
import { instantiate, mshvMovable as catalogMovable } from '../../../invariants/scenarios.js'
import { chunkStride } from '../../../model/drivers/mshv-regions.js'
import { folioHead, folioOrder, FRAME_FREED, FRAME_HUGE, FRAME_SMALL } from '../../../model/primitives/folio.js'
import { EBUSY, mshvMovable, movableLocks, MMAP_LOCK, REGION_MUTEX, type MovableContext } from '../../../model/scenarios/mshv-movable/index.js'
import { resolveParams, type Scenario } from '../../../model/scenario.js'
import { recordTrace } from '../../../traces/record.js'
import { bruteForce, expectedViolations } from '../../support/brute-force.js'
import { expectBackendsAgree } from '../../support/backends.js'
import { canonical } from '../../support/toy-models.js'

const movable = (variant: string, params: Record<string, number> = {}) => instantiate('mshv-movable', variant, params)
const VARIANTS = mshvMovable.variants.map((v) => v.name)

/** First index of a step by `thread` whose label is `label`, at or after `from`. */
const stepIndex = (steps: readonly { thread: string; label: string }[], thread: RegExp, label: string, from = 0): number =>
  steps.findIndex((s, i) => i >= from && thread.test(s.thread) && s.label === label)

describe('mshv-movable: the two backends agree', () => {
  // Every event kind and a misaligned region, so every step function runs on both backends.
  const settings: [string, Record<string, number>][] = [
    ['v6', { uaddr_offset: 1, zaps: 1, migrations: 1, splits: 1, collapses: 1, reclaims: 1, destroy: 1 }],
    ['fixed-teardown', { gfn_offset: 1, zaps: 1, migrations: 1, collapses: 1, destroy: 1 }],
    ['no-seq-retry', { H: 2, pages: 6, uaddr_offset: 3, zaps: 1, splits: 1, reclaims: 1 }],
  ]
  for (const [variant, params] of settings) {
    it(`${variant} ${canonical(params)}: packed successors equal immer successors along random walks`, () => {
      expectBackendsAgree(movable(variant, params).model, { runs: 40, seed: 42, maxLength: 60 })
    })
  }
})

describe('mshv-movable: exploration against brute force', () => {
  it('bfs and dfs count the same states and edges as an independent enumerator, and find the same violations', () => {
    for (const variant of ['v6', 'no-seq-retry']) {
      const { model } = movable(variant, { vps: 1, pages: 2, zaps: 1 })
      const b = bruteForce(model)
      const x = bfs(model, { allViolations: true })
      const d = dfs(model, { allViolations: true })
      expect(x.stats.states).toBe(b.states)
      expect(x.stats.transitions).toBe(b.edges)
      expect(x.stats.maxDepth).toBe(b.eccentricity)
      expect(d.stats.states).toBe(b.states)
      expect(x.violations.map((v) => v.invariant).sort()).toEqual(expectedViolations(b))
      expect(d.violations.map((v) => v.invariant).sort()).toEqual(expectedViolations(b))
      for (const v of x.violations) expect(v.actions.length).toBe(v.invariant === 'no-deadlock' ? b.deadlockDepth : b.violationDepth.get(v.invariant))
    }
  })
})

describe('mshv-movable: what the review argues', () => {
  it('no-seq-retry breaks no-stale-mapping: the invalidation lands between hmm_range_fault and the mutex', () => {
    const inst = movable('no-seq-retry')
    const x = bfs(inst.model)
    expect(x.violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
    const { steps } = recordTrace(inst, x, x.violations[0])
    const fault = stepIndex(steps, /^vp/, 'hmm_range_fault')
    const setSeq = stepIndex(steps, /^zap/, 'mmu_interval_set_seq', fault)
    const lock = stepIndex(steps, /^vp/, 'mutex_lock', fault)
    const map = stepIndex(steps, /^vp/, 'mshv_region_remap_pages', lock)
    expect(fault).toBeGreaterThanOrEqual(0)
    expect(setSeq).toBeGreaterThan(fault)
    expect(lock).toBeGreaterThan(setSeq)
    expect(map).toBeGreaterThan(lock)
  })

  it('v6 with read_retry survives that race, but not a THP partly unmapped and refaulted: its stride maps the old 2M (the Sashiko finding)', () => {
    const inst = movable('v6')
    const x = bfs(inst.model)
    expect(x.violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
    const { steps } = recordTrace(inst, x, x.violations[0])
    // The VP faults a THP; a MADV_DONTNEED of one of its pages; the VP refaults that page (a new order-0 folio)
    // and maps the range with one large page from the THP's head.
    const thp = steps.findIndex((s) => s.label === 'hmm_range_fault' && /THP/.test(s.text ?? ''))
    const zap = stepIndex(steps, /^zap/, 'madvise_dontneed', thp)
    expect(thp).toBeGreaterThanOrEqual(0)
    expect(steps[zap].text).toMatch(/madvise_dontneed\(uaddr (0x\w+)\.\.\1\)/)
    const refault = stepIndex(steps, /^vp/, 'hmm_range_fault', zap)
    expect(refault).toBeGreaterThan(zap)
    expect(steps.at(-1)!.label).toBe('mshv_region_remap_pages')
    // The stride fix the seeds discussed (a huge-aligned pfn) does not help: the head is aligned.
    expect(bfs(movable('pfn-aligned-stride').model).violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
    expect(bfs(movable('upstream').model).violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
  })

  it('the consecutive-page stride keeps every invariant at the defaults, exhaustively', () => {
    const x = bfs(movable('upstream-contiguous-stride').model, { allViolations: true })
    expect(x.verdict).toBe('ok')
    expect(x.incomplete).toBeNull()
  })

  it("a misaligned uaddr breaks the fault path's map hypercall under v6 (against seed 000's 'does not happen with a movable region'); the pfn-aligned stride keeps it", () => {
    const params = { uaddr_offset: 1 }
    const inst = movable('v6', params)
    const x = bfs(inst.model)
    expect(x.violations.map((v) => v.invariant)).toEqual(['map-hypercall-succeeds'])
    // The THP comes from the fault of the neighbouring, fully covered PMD, not from khugepaged.
    const { steps } = recordTrace(inst, x, x.violations[0])
    expect(steps.some((s) => s.label === 'hmm_range_fault' && /THP/.test(s.text ?? ''))).toBe(true)
    expect(steps.some((s) => /^collapse/.test(s.thread))).toBe(false)
    for (const v of ['pfn-aligned-stride', 'fixed', 'upstream']) {
      expect(bfs(movable(v, { ...params, vps: 1 }).model, { allViolations: true }).violations.map((x) => x.invariant)).not.toContain('map-hypercall-succeeds')
    }
  })

  it('destroying the region: v6 uses it after vfree; the region reference stops that; upstream frees pages the guest maps while mshv_region_destroy runs; both fixes keep every invariant', () => {
    const params = { destroy: 1, vps: 1 }
    const v6 = bfs(movable('v6', params).model, { allViolations: true })
    expect(v6.violations.map((v) => v.invariant)).toContain('no-region-use-after-free')
    for (const v of ['fixed', 'upstream']) {
      expect(bfs(movable(v, params).model, { allViolations: true }).violations.map((x) => x.invariant)).not.toContain('no-region-use-after-free')
    }
    // upstream with the stride fixed still breaks no-stale-mapping: the notifier is removed before the SLAT is unmapped.
    const inst = movable('upstream-contiguous-stride', params)
    const x = bfs(inst.model)
    expect(x.violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
    const { steps } = recordTrace(inst, x, x.violations[0])
    const remove = steps.findIndex((s) => s.label === 'mshv_region_destroy')
    expect(remove).toBeGreaterThanOrEqual(0)
    expect(stepIndex(steps, /^zap/, 'zap_page_range', remove)).toBeGreaterThan(remove)
    expect(steps.some((s, i) => i > remove && s.label === 'mshv_region_unmap')).toBe(false)
    expect(bfs(movable('upstream-fixed', params).model, { allViolations: true }).verdict).toBe('ok')
  })

  it('split_folio under a huge SLAT leaf breaks mapping-within-folio only without read_retry; a PMD split alone breaks nothing', () => {
    const params = { zaps: 0, folio_splits: 1 }
    expect(bfs(movable('no-seq-retry', params).model).violations.map((v) => v.invariant)).toEqual(['mapping-within-folio'])
    expect(bfs(movable('v6', params).model, { allViolations: true }).verdict).toBe('ok')
    expect(bfs(movable('no-seq-retry', { zaps: 0, splits: 1 }).model, { allViolations: true }).verdict).toBe('ok')
  })

  it('every variant is explorable and no variant deadlocks at the defaults', () => {
    for (const variant of VARIANTS) {
      const x = bfs(movable(variant, { vps: 1 }).model, { allViolations: true })
      expect(x.incomplete).toBeNull()
      expect(x.violations.map((v) => v.invariant)).not.toContain('no-deadlock')
    }
  })
})

describe('mshv-movable: each variant is the patch it stands for', () => {
  const stepsOf = (variant: string, params: Record<string, number> = {}) => (movable(variant, params).model.stepClasses ?? []).map((c) => `${c.group}.${c.name}`)
  const patched = (variant: string, params: Record<string, number> = {}) => [...movable(variant, params).patched].sort()

  it('the lock ids name their locks', () => {
    expect(movableLocks.decls[MMAP_LOCK].name).toBe('mmap_lock')
    expect(movableLocks.decls[REGION_MUTEX].name).toBe('region->mutex')
  })

  it('v6 has only the steps it reaches: no region reference, no teardown under the mutex', () => {
    const steps = stepsOf('v6', { destroy: 1 })
    expect(steps).toContain('vp.mmu_interval_read_retry')
    expect(steps).toContain('vmm.vfree')
    for (const s of ['vp.mshv_region_put', 'vmm.mshv_region_put', 'vmm.mutex_lock', 'vmm.mutex_unlock']) expect(steps).not.toContain(s)
    expect(patched('v6', { destroy: 1 })).toEqual([])
  })

  it('no-seq-retry: mutex_lock goes straight to pages_update, and mmu_interval_read_retry is gone', () => {
    expect(patched('no-seq-retry')).toContain('vp.mutex_lock')
    expect(stepsOf('no-seq-retry')).not.toContain('vp.mmu_interval_read_retry')
  })

  it('pfn-aligned-stride replaces only mshv_chunk_stride, which then agrees with the driver rule mshv-pinned uses', () => {
    expect(patched('pfn-aligned-stride')).toEqual([])
    const spec = mshvMovable.variants.find((v) => v.name === 'pfn-aligned-stride')!
    const H = 2
    const HP = 1 << H
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: HP - 1 }),
        fc.array(fc.constantFrom(FRAME_SMALL, FRAME_HUGE), { minLength: 16, maxLength: 16 }),
        fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 1, max: 8 }),
        (gfn_offset, frame, pages, i, remaining) => {
          const params = resolveParams(mshvMovable, { H, pages: 8, gfn_offset })
          const ctx: MovableContext = mshvMovable.context!(params)
          const fixed = { ...ctx, ...spec.context!({ params, ctx }) }
          const w = { frame, nextPfn: 16, pages, slat: [] }
          expect(fixed.mshv_chunk_stride(ctx.l, w, i, remaining)).toBe(chunkStride(ctx.l, w, { pfnAlignedStride: true }, i, remaining))
          expect(ctx.mshv_chunk_stride(ctx.l, w, i, remaining)).toBe(chunkStride(ctx.l, w, { pfnAlignedStride: false }, i, remaining))
        },
      ),
    )
  })

  it('region-ref: mshv_partition_region_by_gfn_get, mshv_region_put after mutex_unlock, and destroy puts instead of vfree()', () => {
    expect(patched('region-ref')).toEqual(['vp.mshv_partition_region_by_gfn', 'vp.mshv_region_put', 'vp.mutex_unlock'])
    expect(patched('region-ref', { destroy: 1 })).toEqual(expect.arrayContaining(['vmm.mshv_region_invalidate', 'vmm.mshv_region_put', 'vp.mutex_unlock']))
    expect(stepsOf('region-ref', { destroy: 1 })).not.toContain('vmm.vfree')
    expect(movable('region-ref').model.initialStates()[0].regionRefs).toBe(1)
    expect(movable('v6').model.initialStates()[0].regionRefs).toBe(0)
  })

  it('fixed is the gfn-aligned chunk, the pfn-aligned stride and the region reference; fixed-teardown adds the teardown under the mutex', () => {
    expect(patched('fixed')).toEqual(['vp.mshv_partition_region_by_gfn', 'vp.mshv_region_handle_gfn_fault', 'vp.mshv_region_put', 'vp.mutex_unlock'])
    const teardown = patched('fixed-teardown', { destroy: 1 })
    for (const s of ['vp.mmu_interval_read_retry', 'vmm.hlist_del', 'vmm.mutex_lock', 'vmm.mutex_unlock', 'vmm.mmu_interval_notifier_remove', 'vmm.wait_event']) expect(teardown).toContain(s)
    expect(stepsOf('fixed-teardown', { destroy: 1 })).toContain('vmm.mutex_lock')
    expect(stepsOf('fixed', { destroy: 1 })).not.toContain('vmm.mutex_lock')
  })
})

describe('mshv-movable: the host states the fidelity review found unreachable are reached', () => {
  /** Explores `variant` with one probe invariant that breaks exactly in the states sought: reached iff violated. */
  const reaches = (variant: string, params: Record<string, number>, id: string, sought: (w: any) => boolean) => {
    const probe = { id, description: 'a probe', check: (w: any) => (sought(w) ? 'reached' : null) }
    const withProbe = { ...mshvMovable, properties: () => ({ invariants: [probe] }) }
    const x = bfs(instantiate(withProbe, variant, params).model)
    return x.violations.some((v) => v.invariant === id)
  }
  const huge = (w: any, pfn: number) => pfn !== 0 && w.frame[pfn] === FRAME_HUGE

  it('a PTE-mapped THP (a page of a huge folio mapped by a PTE while its block has no PMD), after __split_huge_pmd or a partial zap', () => {
    const pteMappedThp = (w: any) => Array.from(w.pte as ArrayLike<number>).some((pfn, i) => huge(w, pfn) && w.pmd[Math.floor(i / 2)] === 0)
    expect(reaches('v6', { vps: 1, zaps: 0, splits: 1 }, 'pte-mapped-thp', pteMappedThp)).toBe(true)
    expect(reaches('v6', { vps: 1, zaps: 1 }, 'pte-mapped-thp', pteMappedThp)).toBe(true)
    // Without any event that splits a PMD, none exists: the probe can fail.
    expect(reaches('v6', { vps: 1, zaps: 0 }, 'pte-mapped-thp', pteMappedThp)).toBe(false)
  })

  it("pages[] holding a huge folio's head at an aligned gfn followed by a page of another folio", () => {
    const mixed = (w: any) => {
      for (let i = 0; i + 1 < w.pages.length; i += 2) {
        const head = w.pages[i]
        if (huge(w, head) && (head & 1) === 0 && w.pages[i + 1] !== 0 && w.pages[i + 1] !== head + 1) return true
      }
      return false
    }
    expect(reaches('v6', { vps: 1 }, 'mixed-pages', mixed)).toBe(true)
    expect(reaches('v6', { vps: 1, zaps: 0 }, 'mixed-pages', mixed)).toBe(false)
  })
})

describe('mshv-movable: deposits (hv_do_map_gpa_hcall on HV_STATUS_INSUFFICIENT_MEMORY)', () => {
  const broken = (variant: string, params: Record<string, number>) =>
    bfs(movable(variant, { vps: 1, deposits: 1, ...params }).model, { allViolations: true }).violations.map((v) => v.invariant)

  it("a deposit under region->mutex is reached, and lockdep's fs_reclaim priming makes it a cycle; depositing with the mutex dropped is not", () => {
    expect(broken('upstream', { zaps: 0 })).toEqual(['lock-order-consistent'])
    expect(broken('upstream-deposit-unlocked', { zaps: 0 })).toEqual([])
    // Without deposits nothing allocates: the priming alone is no cycle.
    expect(bfs(movable('upstream', { vps: 1, zaps: 0 }).model, { allViolations: true }).verdict).toBe('ok')
  })

  it("the OOM reaper's non-blockable callback may deposit: a GFP_KERNEL allocation where sleeping is not allowed", () => {
    const x = bfs(movable('upstream', { vps: 1, deposits: 1, zaps: 0, reclaims: 1 }).model, { allViolations: true })
    const sleep = x.violations.find((v) => v.invariant === 'no-sleep-in-atomic')!
    expect(sleep.message).toBe('reclaim0 may sleep in atomic context: GFP_KERNEL allocation (hv_call_deposit_pages) in a non-blockable invalidation')
    // The fault-path fix leaves the callback's deposits as they were: still reported.
    expect(broken('upstream-deposit-unlocked', { zaps: 0, reclaims: 1 })).toContain('no-sleep-in-atomic')
  })
})

describe('mshv-movable: map_failures (hv_do_map_gpa_hcall failing in the invalidate callback; fidelity review MB-7)', () => {
  const check = (variant: string, params: Record<string, number>) => bfs(movable(variant, { vps: 1, map_failures: 1, ...params }).model, { allViolations: true })
  const broken = (variant: string, params: Record<string, number> = {}) => check(variant, params).violations.map((v) => v.invariant).sort()

  it("upstream's out_unlock: the callback unlocks and returns false, the core WARNs and frees the pages the SLAT still maps (the driver's 'serious error')", () => {
    const inst = movable('upstream', { vps: 1, map_failures: 1 })
    const x = bfs(inst.model, { allViolations: true })
    expect(x.violations.map((v) => v.invariant).sort()).toEqual(['no-freed-page-mapped', 'no-stale-mapping'])
    for (const v of x.violations) {
      const { steps } = recordTrace(inst, x, v)
      const fail = steps.findIndex((s) => s.label === 'remap_no_access' && /fails at gfn .*goto out_unlock/.test(s.text ?? ''))
      expect(fail).toBeGreaterThanOrEqual(0)
      expect(steps[fail + 1].label).toBe('cb_mutex_unlock')
      expect(steps[fail + 1].text).toMatch(/^out_unlock: mutex_unlock\(&region->mutex\); WARN_ONCE; return false/)
      expect(steps[fail + 2].label).toBe('zap_page_range')
      // Not the stride finding (which needs a refault after the zap): from the failed remap on, only the zap runs.
      expect(steps.slice(fail).every((s) => s.thread === steps[fail].thread)).toBe(true)
    }
    // Without map failures the same bounds hold but for the stride finding (a THP partly unmapped and refaulted).
    const without = bfs(movable('upstream', { vps: 1 }).model, { allViolations: true })
    expect(without.violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
  })

  it("v6's out_fail returns with region->mutex held: the next fault deadlocks, where upstream's out_unlock does not", () => {
    const inst = movable('v6', { vps: 1, touches: 2, map_failures: 1 })
    const x = bfs(inst.model, { allViolations: true })
    const dl = x.violations.find((v) => v.invariant === 'no-deadlock')!
    expect(dl.message).toMatch(/vp\d is at mutex_lock, blocked/)
    const { steps } = recordTrace(inst, x, dl)
    expect(steps.some((s) => s.label === 'remap_no_access' && /goto out_fail, return false with region->mutex still held/.test(s.text ?? ''))).toBe(true)
    expect(broken('upstream', { touches: 2 })).not.toContain('no-deadlock')
    // The v6-based proposals keep out_fail (the review's prediction); the upstream-based ones inherit out_unlock.
    for (const v of ['fixed', 'fixed-teardown']) expect(broken(v, { touches: 2 })).toContain('no-deadlock')
    for (const v of ['upstream-fixed', 'upstream-deposit-unlocked']) expect(broken(v, { touches: 2 })).not.toContain('no-deadlock')
  })

  it("the OOM reaper's non-blockable callback: a false is -EAGAIN and the range is skipped, so out_unlock holds; v6 still keeps the mutex", () => {
    // upstream-fixed: upstream's callback without the stride finding, which the reaper's partial unmap also reaches.
    expect(broken('upstream-fixed', { zaps: 0, reclaims: 1 })).toEqual([])
    expect(broken('v6', { zaps: 0, reclaims: 1, touches: 2 })).toContain('no-deadlock')
  })

  it('without map_failures the failure path is never taken, and the callback has no more branches than before', () => {
    const x = bfs(movable('upstream-fixed', { vps: 1 }).model, { allViolations: true })
    expect(x.verdict).toBe('ok')
    const branches = (params: Record<string, number>) => bfs(movable('upstream-unmap-on-map-failure', { vps: 1, ...params }).model, { allViolations: true }).stats.transitions
    expect(branches({ map_failures: 1 })).toBeGreaterThan(branches({}))
  })

  it('the fix, upstream-unmap-on-map-failure (unmap the range when the NO_ACCESS remap fails), keeps every invariant, its new step taken', () => {
    const bounds: Record<string, number>[] = [{ touches: 2 }, { zaps: 0, reclaims: 1 }, { zaps: 2 }]
    for (const params of bounds) {
      const x = check('upstream-unmap-on-map-failure', params)
      expect(x.verdict, JSON.stringify(params)).toBe('ok')
      expect(x.incomplete).toBeNull()
    }
    const inst = movable('upstream-unmap-on-map-failure', { vps: 1, map_failures: 1 })
    expect([...inst.patched].sort()).toEqual(['madvise_dontneed.hv_call_unmap_gpa_pages', 'madvise_dontneed.remap_no_access'])
    const x = bfs(inst.model, { allViolations: true })
    expect(x.verdict).toBe('ok')
    expect(x.coverage['madvise_dontneed']?.['hv_call_unmap_gpa_pages']).toBeGreaterThan(0)
  })

  it('the failure branches (with deposits, H=2 batches, large pages) give the same successors on both backends', () => {
    const settings: [string, Record<string, number>][] = [
      ['v6', { H: 2, pages: 6, uaddr_offset: 0, zaps: 2, reclaims: 1, deposits: 1 }],
      ['upstream', { H: 2, pages: 4, zaps: 1, folio_splits: 1 }],
      ['upstream-unmap-on-map-failure', { zaps: 2, reclaims: 1, deposits: 1 }],
    ]
    for (const [variant, params] of settings) expectBackendsAgree(movable(variant, { vps: 1, map_failures: 1, ...params }).model, { runs: 40, seed: 7, maxLength: 60 })
  })

  it('out_unlock is patched into every host mm process the parameters run, and only those', () => {
    const all = { zaps: 1, migrations: 1, splits: 1, folio_splits: 1, collapses: 1, reclaims: 1, pages: 2 }
    const names = ['madvise_dontneed', 'migrate_pages', 'split_huge_pmd', 'split_folio', 'khugepaged', 'oom_reaper']
    expect(movable('upstream', all).patched.filter((s) => s.endsWith('.remap_no_access')).sort()).toEqual(names.map((n) => `${n}.remap_no_access`).sort())
    expect(movable('upstream', { zaps: 1, reclaims: 1 }).patched.filter((s) => s.endsWith('.remap_no_access')).sort()).toEqual([
      'madvise_dontneed.remap_no_access',
      'oom_reaper.remap_no_access',
    ])
    expect(movable('upstream', { zaps: 0 }).patched.some((s) => s.endsWith('.remap_no_access'))).toBe(false)
  })
})

describe('mshv-movable: hmm_range_fault walks page by page; the VMM munmaps or mprotects its memory (fidelity review FV-3, §3)', () => {
  /**
   * `gpa-intercept-handled`, as the catalogue's mshv-movable checks it (or will: invariants/scenarios.ts), over the
   * `faultFailed` ghost: the catalogue's invariants plus this one, whichever the catalogue has.
   */
  const gpaInterceptHandled = (thread: (tid: number) => string) => ({
    id: 'gpa-intercept-handled',
    description: 'no GPA intercept fails in hmm_range_fault (-EFAULT: the VMA is gone; -EPERM: it is read-only), after which mshv_region_handle_gfn_fault WARNs and returns false',
    check: (w: any) => (w.faultFailed ? `hmm_range_fault failed in ${thread(w.faultFailed - 1)}'s fault path: GPA intercept not handled (WARN_ONCE)` : null),
  })
  const withHandled: Scenario = {
    ...catalogMovable,
    properties(p, v, ctx, program) {
      const set = catalogMovable.properties!(p, v, ctx, program)
      const handled = gpaInterceptHandled((tid) => program.threads[tid]?.name ?? `thread ${tid}`)
      return { ...set, invariants: [...(set.invariants ?? []).filter((i) => i.id !== handled.id), handled] }
    },
  }
  const checked = (variant: string, params: Record<string, number>) => instantiate(withHandled, variant, params)

  /** Explores `variant` with probe invariants added (each breaks exactly in the states sought): which were reached. */
  const reached = (variant: string, params: Record<string, number>, probes: Record<string, (w: any) => boolean>) => {
    const invariants = Object.entries(probes).map(([id, sought]) => ({ id, description: 'a probe', check: (w: any) => (sought(w) ? 'reached' : null) }))
    const withProbes = { ...mshvMovable, properties: () => ({ invariants }) }
    const x = bfs(instantiate(withProbes, variant, params).model, { allViolations: true })
    expect(x.incomplete).toBeNull()
    return x.violations.map((v) => v.invariant).sort()
  }
  const vp = (w: any) => w.threads[0]
  // The packed backend gives invariants the locals, not the pcs: `walk` is past the range's first page and short of its
  // end only inside hmm_range_fault's walk, or at the mmap_read_unlock right after it returned from there.
  const midWalk = (w: any) => vp(w).walk > 0 && vp(w).walk < vp(w).cnt
  /** An invalidation of the region is running: started, not ended. */
  const invalidating = (w: any) => w.activeRanges > 0

  it('one step per page: an invalidation that takes no mmap_lock (migration, split_folio) runs between two pages of the walk; khugepaged (mmap_write_lock) never does', () => {
    /** The event thread `name` is inside an invalidation that hit the region (its cur_seq is set), while the VP is mid-walk. */
    const eventMidWalk = (variant: string, params: Record<string, number>, name: string) => {
      const t = movable(variant, params).model.threadNames.indexOf(name)
      expect(t).toBeGreaterThan(0)
      return reached(variant, params, { [`${name}-mid-walk`]: (w) => midWalk(w) && w.threads[t].cur > 0, 'mid-walk': midWalk })
    }
    expect(eventMidWalk('v6', { vps: 1, zaps: 0, migrations: 1 }, 'migrate0')).toEqual(['mid-walk', 'migrate0-mid-walk'])
    // A PMD-mapped THP is read in one go (hmm_vma_handle_pmd); split_huge_pmd (mmap_read_lock) leaves it PTE-mapped, a page a step.
    expect(eventMidWalk('v6', { vps: 1, zaps: 0, splits: 1, folio_splits: 1 }, 'fsplit0')).toEqual(['fsplit0-mid-walk', 'mid-walk'])
    expect(eventMidWalk('v6', { vps: 1, zaps: 0, collapses: 1 }, 'collapse0')).toEqual(['mid-walk'])
    expect(invalidating({ activeRanges: 1 })).toBe(true)
  })

  it('-EBUSY mid-walk: after a fault the loop re-checks mmu_interval_check_retry, and the VP goes back to read_begin; without an invalidation it never does', () => {
    // The call's -EBUSY (EBUSY, not the walk's WALK_AGAIN) with `walk` past page 0: returned from the middle of the walk.
    const busyMidWalk = (w: any) => vp(w).ret === EBUSY && midWalk(w)
    expect(reached('v6', { vps: 1, zaps: 0, migrations: 1 }, { 'ebusy-mid-walk': busyMidWalk })).toEqual(['ebusy-mid-walk'])
    expect(reached('v6', { vps: 1, zaps: 0 }, { 'ebusy-mid-walk': busyMidWalk, 'mid-walk': midWalk })).toEqual(['mid-walk'])
    // The shortest way there, as a trace.
    const probe = { id: 'ebusy-mid-walk', description: 'a probe', check: (w: any) => (busyMidWalk(w) ? 'reached' : null) }
    const probed = instantiate({ ...mshvMovable, properties: () => ({ invariants: [probe] }) }, 'v6', { vps: 1, zaps: 0, migrations: 1 })
    const x = bfs(probed.model)
    const { steps } = recordTrace(probed, x, x.violations[0])
    expect(steps.at(-1)!.text).toMatch(/^hmm_range_fault\(gfn 0x2\.\.0x3\): after the fault, mmu_interval_check_retry: -EBUSY$/)
    expect(steps.some((s) => /^hmm_range_fault\(gfn 0x2\.\.0x3\): fault uaddr 0x3$/.test(s.text ?? ''))).toBe(true)
    expect(steps.some((s) => s.thread === 'migrate0' && s.label === 'mmu_interval_set_seq')).toBe(true)
    // The finer walk keeps v6's verdicts with a migration: read_retry under the mutex still catches what the walk misses.
    expect(bfs(movable('v6', { vps: 1, zaps: 0, migrations: 1 }).model, { allViolations: true }).verdict).toBe('ok')
  })

  it('mid-walk, a migration can free a page the walk has already read: the walk goes on with it, and only the re-check after a fault or read_retry under the mutex catches it', () => {
    // The VP has read page 0 and is still walking while the folio it read is freed (migrated away).
    const readThenFreed = (w: any) => midWalk(w) && vp(w).pfns[0] !== 0 && w.frame[vp(w).pfns[0]] === FRAME_FREED
    expect(reached('v6', { vps: 1, zaps: 0, migrations: 1 }, { 'read-then-freed': readThenFreed })).toEqual(['read-then-freed'])
    // Without the migration nothing is freed under the walk.
    expect(reached('v6', { vps: 1, zaps: 0 }, { 'read-then-freed': readThenFreed })).toEqual([])
  })

  it('munmap: the VMA gone, hmm_range_fault returns -EFAULT, the fault path WARNs and the intercept is not handled; upstream then puts its region reference', () => {
    const inst = checked('upstream', { munmap: 1, vps: 1, zaps: 0 })
    const x = bfs(inst.model, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual(['gpa-intercept-handled'])
    expect(x.violations[0].message).toBe("hmm_range_fault failed in vp0's fault path: GPA intercept not handled (WARN_ONCE)")
    const { steps } = recordTrace(inst, x, x.violations[0])
    expect(steps.some((s) => s.label === 'do_vmi_align_munmap')).toBe(true)
    expect(steps.find((s) => s.label === 'hmm_range_fault')!.text).toBe('hmm_range_fault(gfn 0x2..0x3): no VMA at uaddr 0x2 = -EFAULT')
    let s = inst.model.initialStates()[0]
    for (const a of x.violations[0].actions) s = inst.model.next(s, a)
    expect(s.threads[0].pc).toBe('mshv_region_put')
    // v6 takes no reference: the intercept is simply over.
    const v6 = bfs(checked('v6', { munmap: 1, vps: 1, zaps: 0 }).model, { allViolations: true })
    expect(v6.violations.map((v) => v.invariant)).toEqual(['gpa-intercept-handled'])
  })

  it("munmap's invalidation (PTEs cleared, pages freed) goes through the notifier: upstream-fixed maps nothing stale or freed", () => {
    const x = bfs(checked('upstream-fixed', { munmap: 1, vps: 1 }).model, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual(['gpa-intercept-handled'])
    // The pages are freed: a probe on a frame freed while the VMA is gone.
    expect(reached('upstream-fixed', { munmap: 1, vps: 1, zaps: 0 }, { 'freed-after-munmap': (w) => w.vmaPresent === 0 && Array.from(w.frame as ArrayLike<number>).includes(3) })).toEqual(['freed-after-munmap'])
  })

  it('mprotect(PROT_READ): hmm_range_fault with HMM_PFN_REQ_WRITE returns -EPERM, the intercept is not handled; the SLAT was made NO_ACCESS first', () => {
    const inst = checked('upstream-fixed', { mprotect: 1, vps: 1 })
    const x = bfs(inst.model, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual(['gpa-intercept-handled'])
    const { steps } = recordTrace(inst, x, x.violations[0])
    const fixup = stepIndex(steps, /^mprotect/, 'mprotect_fixup')
    const perm = steps.findIndex((s) => / = -EPERM$/.test(s.text ?? ''))
    expect(fixup).toBeGreaterThanOrEqual(0)
    expect(perm).toBeGreaterThan(fixup)
    expect(steps[perm].text).toBe('hmm_range_fault(gfn 0x2..0x3): uaddr 0x2 in a read-only VMA, HMM_PFN_REQ_WRITE = -EPERM')
    // Without either call the ghost is never set.
    expect(bfs(checked('upstream-fixed', { vps: 1 }).model, { allViolations: true }).verdict).toBe('ok')
  })

  it('every variant runs munmap and mprotect (the failure path reaches each variant\'s put or the end of the intercept) without a deadlock or a model error', () => {
    for (const variant of VARIANTS) {
      const x = bfs(checked(variant, { vps: 1, zaps: 0, munmap: 1, mprotect: 1 }).model, { allViolations: true })
      expect(x.incomplete).toBeNull()
      expect(x.violations.map((v) => v.invariant)).toContain('gpa-intercept-handled')
      expect(x.violations.map((v) => v.invariant)).not.toContain('no-deadlock')
    }
  })

  it('the two backends agree with munmap, mprotect and a migration', () => {
    expectBackendsAgree(movable('upstream', { munmap: 1, mprotect: 1, migrations: 1, folio_splits: 1 }).model, { runs: 40, seed: 7, maxLength: 70 })
  })
})

describe('mshv-movable: the interval leaves the tree at mn_itree_inv_end, not when its remover wakes', () => {
  it('a second invalidation after the remove no longer calls back into a freed region (upstream-fixed, destroy, two zaps)', () => {
    const x = bfs(movable('upstream-fixed', { destroy: 1, zaps: 2, vps: 1 }).model, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual([])
  })
})

describe('mshv-movable: mTHPs (--param mthp, fidelity review MB-5)', () => {
  const broken = (variant: string, params: Record<string, number>) => bfs(movable(variant, params).model, { allViolations: true })
  const mthp = { H: 2, mthp: 1 }

  it('a fault may map an order-1 mTHP, PTE-mapped, and pages[] then holds it (the state is reached only with the parameter)', () => {
    const probe = (w: any) => Array.from(w.pages as ArrayLike<number>).some((pfn) => pfn !== 0 && folioOrder(w, pfn, 2) === 1)
    const reached = (params: Record<string, number>) => {
      const withProbe = { ...mshvMovable, properties: () => ({ invariants: [{ id: 'mthp-in-pages', description: 'a probe', check: (w: any) => (probe(w) ? 'reached' : null) }] }) }
      return bfs(instantiate(withProbe, 'upstream', params).model).violations.length > 0
    }
    expect(reached(mthp)).toBe(true)
    expect(reached({ H: 2, mthp: 0 })).toBe(false)
  })

  it('the posted stride (v6) and the PageHead stride (d3b402c5) fail the fault-path map with -EINVAL on an mTHP; upstream (0eaed89c) maps it 4K', () => {
    for (const variant of ['v6', 'pfn-aligned-stride', 'upstream-page-head']) {
      const x = broken(variant, mthp)
      expect(x.violations.map((v) => v.invariant), variant).toContain('map-hypercall-succeeds')
      const inst = movable(variant, mthp)
      const { steps } = recordTrace(inst, x, x.violations.find((v) => v.invariant === 'map-hypercall-succeeds')!)
      expect(steps.at(-1)!.text).toMatch(/an order-1 folio, gfn 0x[0-9a-f]+\) = -EINVAL$/)
    }
    expect(broken('upstream', mthp).violations.map((v) => v.invariant)).not.toContain('map-hypercall-succeeds')
    // Without mTHPs the same variants map every fault at these bounds.
    for (const variant of ['v6', 'upstream-page-head']) expect(broken(variant, { H: 2 }).violations.map((v) => v.invariant)).not.toContain('map-hypercall-succeeds')
  })

  it('no head at an aligned gfn with an aligned count left: at gfn_offset=2 the PageHead stride maps an mTHP 4K where the posted one still fails', () => {
    expect(broken('upstream-page-head', { ...mthp, gfn_offset: 2 }).violations.map((v) => v.invariant)).not.toContain('map-hypercall-succeeds')
    expect(broken('v6', { ...mthp, gfn_offset: 2 }).violations.map((v) => v.invariant)).toContain('map-hypercall-succeeds')
  })

  it('mthp must be below H (one line of bad input)', () => {
    expect(() => movable('v6', { H: 1, mthp: 1 })).toThrow(/mthp=1 must be below H=1/)
  })

  it('the two backends agree with mTHPs, a split_folio and a migration', () => {
    expectBackendsAgree(movable('upstream', { ...mthp, migrations: 1, folio_splits: 1 }).model, { runs: 40, seed: 3, maxLength: 70 })
  })
})

describe('mshv-movable: 1G folios (--param pud, issue 11)', () => {
  const found = (variant: string, params: Record<string, number>) => bfs(movable(variant, params).model, { allViolations: true }).violations.map((v) => v.invariant)
  /** Does some reachable state of `upstream` satisfy the probe? (It is reported as a violation of a probe invariant.) */
  const reached = (probe: (w: any) => boolean, params: Record<string, number>) => {
    const withProbe = { ...mshvMovable, properties: () => ({ invariants: [{ id: 'probe', description: 'a probe', check: (w: any) => (probe(w) ? 'reached' : null) }] }) }
    return bfs(instantiate(withProbe, 'upstream', params).model).violations.length > 0
  }

  it("pages[] holds an order-2H folio's pages only with the parameter (H=1: an order-2 folio over a 4-page unit)", () => {
    const inPages = (w: any) => Array.from(w.pages as ArrayLike<number>).some((pfn) => pfn !== 0 && folioOrder(w, pfn, 1) === 2)
    expect(reached(inPages, { pud: 1 })).toBe(true)
    expect(reached(inPages, { pud: 0 })).toBe(false)
  })

  it("upstream's mshv_chunk_stride maps a 1G folio as 2M leaves (0eaed89c: order >= PMD_ORDER and an aligned pfn stride PTRS_PER_PMD)", () => {
    const leaf2MOf1G = (w: any) => Array.from(w.slat as ArrayLike<any>).some((e) => e.access === 2 && e.order === 1 && folioOrder(w, e.pfn, 1) === 2)
    expect(reached(leaf2MOf1G, { pud: 1 })).toBe(true)
    expect(reached(leaf2MOf1G, { pud: 0 })).toBe(false)
  })

  it('the posted stride and the PageHead stride fail the fault-path map with -EINVAL on a 1G folio; upstream and its fixes map it', () => {
    const failing = ['v6', 'no-seq-retry', 'fixed', 'pfn-aligned-stride', 'region-ref', 'fixed-teardown', 'upstream-page-head']
    for (const variant of catalogMovable.variants.map((v) => v.name)) {
      const inv = found(variant, { pud: 1 })
      if (failing.includes(variant)) expect(inv, variant).toContain('map-hypercall-succeeds')
      else expect(inv, variant).not.toContain('map-hypercall-succeeds')
      // At the defaults no variant fails a map: the 1G folio is what makes them fail.
      expect(found(variant, {}), variant).not.toContain('map-hypercall-succeeds')
    }
    const x = bfs(movable('v6', { pud: 1 }).model, { allViolations: true })
    const { steps } = recordTrace(movable('v6', { pud: 1 }), x, x.violations.find((v) => v.invariant === 'map-hypercall-succeeds')!)
    expect(steps.some((s) => /order-2 \(1G\) folio/.test(s.text ?? ''))).toBe(true)
    expect(steps.at(-1)!.text).toMatch(/an order-2 folio, gfn 0x[0-9a-f]+\) = -EINVAL$/)
  })

  it("migration invalidates a partly zapped folio's whole span (try_to_migrate_one), not one run of it: upstream-fixed holds with a 1G folio, a zap and a migration", () => {
    // Before, migrate_pages invalidated only the run it picked while remove_migration_ptes moved every PTE of the folio:
    // a gfn of the other run kept mapping the old pfn (no-stale-mapping at 32 steps).
    expect(found('upstream-fixed', { pud: 1, migrations: 1 })).toEqual([])
    expect(found('upstream', { pud: 1, migrations: 1 })).toContain('no-stale-mapping')
  })

  it('the two backends agree with 1G folios, a split_folio and a migration', () => {
    expectBackendsAgree(movable('upstream', { pud: 1, migrations: 1, folio_splits: 1 }).model, { runs: 40, seed: 3, maxLength: 70 })
  })
})

describe("mshv-movable: the OOM reaper unmaps the whole VMA (__oom_reap_task_mm: vma->vm_start..vm_end)", () => {
  const found = (variant: string, params: Record<string, number>) => bfs(movable(variant, params).model, { allViolations: true }).violations.map((v) => v.invariant)
  const withProbe = (probe: (w: any) => boolean) => ({ ...mshvMovable, properties: () => ({ invariants: [{ id: 'probe', description: 'a probe', check: (w: any) => (probe(w) ? 'reached' : null) }] }) })

  it('every reaper that gets past the trylock invalidates the whole region, mapped or not (its range_start is over pages 0..N-1)', () => {
    // A reaper in its callback with pages [0, N) pending and nothing else pending: reached only by a reaper over the whole VMA.
    const wholePending = (w: any) => Array.from(w.invalPending as ArrayLike<number>).every((n) => n === 1) && Array.from(w.pte as ArrayLike<number>).some((p) => p !== 0) && Array.from(w.pte as ArrayLike<number>).some((p) => p === 0)
    expect(bfs(instantiate(withProbe(wholePending), 'upstream', { zaps: 0, reclaims: 1 }).model).violations.length).toBeGreaterThan(0)
    // A reaper over a part of the region (the old model) is never reached: a state with some but not all pages pending.
    const partPending = (w: any) => new Set(Array.from(w.invalPending as ArrayLike<number>)).size > 1
    expect(bfs(instantiate(withProbe(partPending), 'upstream', { zaps: 0, reclaims: 1 }).model).violations.length).toBe(0)
  })

  it('verdicts: a reaper no longer leaves a THP partly mapped, so no-freed-page-mapped holds at reclaims=1; its non-blockable callback is reached before anything is mapped', () => {
    for (const variant of ['v6', 'upstream', 'fixed']) {
      const inv = found(variant, { reclaims: 1 })
      expect(inv, variant).toContain('no-stale-mapping')
      expect(inv, variant).not.toContain('no-freed-page-mapped')
    }
    const x = bfs(movable('upstream', { reclaims: 1, deposits: 1 }).model, { allViolations: true })
    const v = x.violations.find((v) => v.invariant === 'no-sleep-in-atomic')!
    const { steps } = recordTrace(movable('upstream', { reclaims: 1, deposits: 1 }), x, v)
    expect(steps[0].text).toMatch(/^__oom_reap_task_mm\(uaddr 0x2\.\.0x5\)/)
  })
})

describe('mshv-movable: khugepaged takes mmap_lock for write as an rwsem writer does (the review\'s FV-3 note on rwsem fairness)', () => {
  /** A VP that takes mmap_read_lock again while holding it (a nested down_read / up_read), as a driver calling into code that read-locks the mm would. */
  const nested = {
    ...catalogMovable,
    variants: [
      ...catalogMovable.variants,
      {
        name: 'nested-mmap-read',
        description: 'v6 with a nested mmap_read_lock / mmap_read_unlock under the first',
        from: 'v6',
        steps: {
          vp: {
            mmap_read_lock: {
              targets: ['mmap_read_lock_again'],
              guard: (w: any) => movableLocks.readable(w, MMAP_LOCK),
              run(w: any, me: any) {
                movableLocks.readLock(w, me, MMAP_LOCK)
                return 'mmap_read_lock_again'
              },
            },
            mmap_read_lock_again: { targets: ['hmm_range_fault'], guard: (w: any) => movableLocks.readable(w, MMAP_LOCK), run: () => 'hmm_range_fault' },
          },
        },
      },
    ],
  } as Scenario
  const found = (variant: string, params: Record<string, number>) => bfs(instantiate(variant === 'nested-mmap-read' ? nested : catalogMovable, variant, params).model, { allViolations: true }).violations.map((v) => v.invariant)

  it('a reader queued behind a waiting writer: the nested read deadlocks once khugepaged waits for the write lock, and never without khugepaged', () => {
    // A second intercept (touches=2) takes the read lock while khugepaged has small pages of the first to collapse.
    expect(found('nested-mmap-read', { vps: 1, touches: 2, zaps: 0, collapses: 1 })).toContain('no-deadlock')
    expect(found('nested-mmap-read', { vps: 1, touches: 2, zaps: 0, collapses: 0 })).not.toContain('no-deadlock')
  })

  it('the write lock is taken in its own step, after the target is chosen, and the target is re-checked under it (hugepage_vma_revalidate)', () => {
    const probe = { id: 'writer-waits-behind-reader', description: 'a probe', check: (w: any) => (w.lockWaiters[MMAP_LOCK] > 0 && w.lockReaders[MMAP_LOCK] > 0 ? 'reached' : null) }
    const inst = instantiate({ ...mshvMovable, properties: () => ({ invariants: [probe] }) }, 'upstream', { vps: 1, touches: 2, zaps: 0, collapses: 1 })
    const x = bfs(inst.model)
    expect(x.violations.map((v) => v.invariant)).toEqual(['writer-waits-behind-reader'])
    const { steps } = recordTrace(inst, x, x.violations[0])
    expect(steps.at(-1)!.text).toBe('down_write(&mmap_lock): contended, waits (new readers queue behind)')
    // Every variant still explores without a deadlock with khugepaged in it.
    for (const variant of ['v6', 'upstream', 'upstream-fixed']) expect(found(variant, { vps: 1, touches: 2, zaps: 0, collapses: 1 }), variant).not.toContain('no-deadlock')
  })
})

describe("mshv-movable: the VMM's munmap invalidates through the variant's callback", () => {
  it("a variant's callback patch reaches munmap's callback too: upstream-unmap-on-map-failure keeps no-stale-mapping when munmap's NO_ACCESS remap fails, upstream does not", () => {
    const params = { vps: 1, zaps: 0, munmap: 1, map_failures: 1 }
    const broken = (variant: string) => bfs(movable(variant, params).model, { allViolations: true }).violations.map((v) => v.invariant)
    expect(broken('upstream')).toEqual(expect.arrayContaining(['no-stale-mapping', 'no-freed-page-mapped']))
    expect(broken('upstream-unmap-on-map-failure')).not.toContain('no-stale-mapping')
    expect(broken('upstream-unmap-on-map-failure')).not.toContain('no-freed-page-mapped')
  })
})

describe('mshv-movable: a VMA larger than the region (--param vma_margin, fidelity review MB-6)', () => {
  // The review's sweep row: uaddr_offset=1, gfn_offset=0, pages=2 (region page 0 is a block's second page, at an aligned gfn).
  const row = { pages: 2, uaddr_offset: 1, gfn_offset: 0 }
  const broken = (variant: string, params: Record<string, number>) => bfs(movable(variant, params).model, { allViolations: true }).violations.map((v) => v.invariant)

  it('the region edge inside a THP is reached (region page 0 maps a THP tail) only with the margin', () => {
    const tail = (w: any) => w.pte[0] !== 0 && w.frame[w.pte[0]] === FRAME_HUGE && (w.pte[0] & 1) === 1
    const reached = (margin: number) => {
      const withProbe = { ...mshvMovable, properties: () => ({ invariants: [{ id: 'edge-in-thp', description: 'a probe', check: (w: any) => (tail(w) ? 'reached' : null) }] }) }
      return bfs(instantiate(withProbe, 'v6', { ...row, vma_margin: margin }).model).violations.length > 0
    }
    expect(reached(1)).toBe(true)
    expect(reached(0)).toBe(false)
  })

  it('the posted stride maps the straddling THP\'s tail as a large page and the hypercall fails; the pfn-aligned and upstream strides map it 4K', () => {
    expect(broken('v6', { ...row, vma_margin: 0 })).not.toContain('map-hypercall-succeeds')
    expect(broken('v6', { ...row, vma_margin: 1 })).toContain('map-hypercall-succeeds')
    for (const variant of ['pfn-aligned-stride', 'upstream', 'upstream-page-head']) expect(broken(variant, { ...row, vma_margin: 1 }), variant).not.toContain('map-hypercall-succeeds')
  })

  it('zapping the region part of a straddling THP does not free it (its page outside the region is still mapped); every event runs without a model error or a new violation on upstream-fixed', () => {
    const params = { ...row, vma_margin: 1 }
    const events: Record<string, number>[] = [{ zaps: 1 }, { zaps: 0, migrations: 1 }, { zaps: 0, splits: 1 }, { zaps: 0, folio_splits: 1 }, { zaps: 0, collapses: 1, touches: 2 }, { zaps: 0, reclaims: 1 }]
    for (const ev of events) {
      expect(broken('upstream-fixed', { ...params, ...ev }), JSON.stringify(ev)).toEqual([])
    }
    // A probe: after the zap has freed what it freed, the THP's head (outside the region) is never freed while its outside PTE maps it.
    const freedWhileOutside = (w: any) => w.outPte && Array.from(w.outPte as ArrayLike<number>).some((pfn: number) => pfn !== 0 && w.frame[pfn] === FRAME_FREED)
    const withProbe = { ...mshvMovable, properties: () => ({ invariants: [{ id: 'outside-freed', description: 'a probe', check: (w: any) => (freedWhileOutside(w) ? 'freed' : null) }] }) }
    expect(bfs(instantiate(withProbe, 'upstream-fixed', { ...params, zaps: 1 }).model).violations).toEqual([])
  })

  it("an mTHP straddling either edge is reached only with the margin: region page 0 maps an mTHP's tail whose head is outside, page N - 1 an mTHP's head whose tail is outside", () => {
    // H=2, order-1 mTHPs, 2 pages at uaddr offset 1: page 0's mTHP range is pages -1..0, page 1's is 1..2.
    const params = { H: 2, mthp: 1, pages: 2, uaddr_offset: 1, zaps: 0 }
    const small = (w: any, pfn: number) => pfn !== 0 && w.frame[pfn] !== FRAME_HUGE && folioOrder(w, pfn, 2) === 1
    const probes = {
      'left-tail': (w: any) => small(w, w.pte[0]) && folioHead(w, w.pte[0], 2) !== w.pte[0] && w.outPte[0] === folioHead(w, w.pte[0], 2),
      'right-head': (w: any) => small(w, w.pte[1]) && folioHead(w, w.pte[1], 2) === w.pte[1] && w.outPte[1] === w.pte[1] + 1,
    }
    const reached = (margin: number) => {
      const withProbe = {
        ...mshvMovable,
        properties: () => ({ invariants: Object.entries(probes).map(([id, p]) => ({ id, description: 'a probe', check: (w: any) => (w.outPte && p(w) ? 'reached' : null) })) }),
      }
      return bfs(instantiate(withProbe, 'upstream', { ...params, vma_margin: margin }).model, { allViolations: true }).violations.map((v) => v.invariant).sort()
    }
    expect(reached(1)).toEqual(['left-tail', 'right-head'])
    expect(reached(0)).toEqual([])
  })

  it('with straddling mTHPs, every host event keeps upstream and upstream-fixed whole, and the posted stride still fails on an in-region mTHP as without the margin', () => {
    const params = { H: 2, mthp: 1, pages: 2, uaddr_offset: 1, vma_margin: 1 }
    const events: Record<string, number>[] = [{ zaps: 1 }, { zaps: 0, migrations: 1 }, { zaps: 0, folio_splits: 1 }, { zaps: 0, collapses: 1, touches: 2 }, { zaps: 0, reclaims: 1 }]
    for (const ev of events) for (const v of ['upstream', 'upstream-fixed']) expect(broken(v, { ...params, ...ev }), `${v} ${JSON.stringify(ev)}`).toEqual([])
    const three = { H: 2, mthp: 1, pages: 3, uaddr_offset: 1 }
    expect(broken('v6', { ...three, vma_margin: 1 })).toEqual(broken('v6', { ...three, vma_margin: 0 }))
  })

  it('the two backends agree with a margin and host events', () => {
    expectBackendsAgree(movable('upstream', { pages: 3, uaddr_offset: 1, vma_margin: 1, migrations: 1, folio_splits: 1, collapses: 1 }).model, { runs: 40, seed: 5, maxLength: 70 })
  })
})

describe("mshv-movable: direct reclaim from the deposit's allocation (--param direct_reclaim)", () => {
  const params = { vps: 1, zaps: 0, deposits: 1, direct_reclaim: 1 }
  const run = (variant: string, p: Record<string, number>) => bfs(movable(variant, p).model, { allViolations: true })

  it("upstream deposits under region->mutex: reclaim runs the region's own callback in the VP, which waits for the mutex the VP holds (the lockdep report made a real deadlock)", () => {
    const x = run('upstream', params)
    expect(x.violations.map((v) => v.invariant)).toContain('no-deadlock')
    const dl = x.violations.find((v) => v.invariant === 'no-deadlock')!
    expect(dl.message).toMatch(/vp0 is at reclaim_invalidate, blocked/)
    const { steps } = recordTrace(movable('upstream', params), x, dl)
    expect(steps.at(-1)!.label).toBe('direct_reclaim')
    // Without direct reclaim, only lockdep's order report: no deadlock is reached.
    expect(run('upstream', { ...params, direct_reclaim: 0 }).violations.map((v) => v.invariant)).not.toContain('no-deadlock')
  })

  it('the fix (deposit with no lock held, then fault again) survives a reclaim that unmaps its own pages: the reclaim steps are taken and every invariant holds', () => {
    const x = run('upstream-deposit-unlocked', params)
    expect(x.violations).toEqual([])
    expect(x.coverage.vp.reclaim_invalidate).toBeGreaterThan(0)
    expect(x.coverage.vp.try_to_unmap).toBeGreaterThan(0)
  })

  it('direct_reclaim changes nothing without deposits (the model is the same program)', () => {
    expect(movable('upstream', { vps: 1, direct_reclaim: 1 }).hash).toBe(movable('upstream', { vps: 1 }).hash)
  })

  it('the two backends agree through a reclaim', () => {
    expectBackendsAgree(movable('upstream-deposit-unlocked', { ...params, zaps: 1 }).model, { runs: 40, seed: 11, maxLength: 70 })
  })
})

describe('mshv-movable: a MAP_FIXED replacement as its own host event (--param map_fixed)', () => {
  const params = { vps: 1, zaps: 0, map_fixed: 1 }
  const broken = (variant: string) => bfs(movable(variant, params).model, { allViolations: true })

  it("unmaps part of a THP under the mmap write lock: upstream's stride finding shows through it as through MADV_DONTNEED, and upstream-fixed holds", () => {
    const x = broken('upstream')
    expect(x.violations.map((v) => v.invariant)).toContain('no-stale-mapping')
    const { steps } = recordTrace(movable('upstream', params), x, x.violations.find((v) => v.invariant === 'no-stale-mapping')!)
    const fixed = steps.filter((s) => /^mapfixed/.test(s.thread)).map((s) => s.label)
    expect(fixed.slice(0, 3)).toEqual(['mmap_region', 'mmap_write_lock', 'vms_gather_munmap_vmas'])
    expect(fixed).toContain('vms_clear_ptes')
    expect(broken('upstream-fixed').violations).toEqual([])
    // Without it (and without zaps) nothing unmaps: upstream holds.
    expect(bfs(movable('upstream', { vps: 1, zaps: 0 }).model, { allViolations: true }).violations).toEqual([])
  })

  it('the seq re-check is what protects against it: no-seq-retry breaks no-stale-mapping through a MAP_FIXED alone', () => {
    expect(broken('no-seq-retry').violations.map((v) => v.invariant)).toContain('no-stale-mapping')
  })

  it('the two backends agree with MAP_FIXED and khugepaged (the writers of mmap_lock)', () => {
    expectBackendsAgree(movable('upstream', { vps: 1, touches: 2, zaps: 0, map_fixed: 1, collapses: 1 }).model, { runs: 40, seed: 13, maxLength: 80 })
  })
})
