/**
 * The variants of mshv-mmio, each the patch it stands for, applied to
 * upstream (vp.ts, vmm.ts, vfio.ts) or to another variant: the steps it
 * replaces, adds or removes (by process and label), and what it sets in the
 * initial world.
 */
import { access } from '../../primitives/lockset.js'
import { notifierInsert, readBeginMustWait, readRetry } from '../../primitives/mmu-notifier.js'
import { REGION_FREED, REGION_UNLINKED } from '../../primitives/region.js'
import type { DONE, Step } from '../../process.js'
import { mergePatches, type BuildContext, type Patch, type StepPatch, type VariantSpec } from '../../scenario.js'
import { intervalCallback, invalidateEnd, lockedCallback, unmapVma, zapBars } from './vfio.js'
import { fixupSteps, followPfnmap, mmapReadLock, mmapReadUnlock, regionByGfnGet, vpRegionPut } from './vp.js'
import { mapUserMemory } from './vmm.js'
import {
  listed,
  mapMmioPages,
  MEMORY_LOCK,
  MMAP_LOCK,
  mmioLocks,
  MREG_MUTEX,
  PT_LOCK,
  unmapRegionGpas,
  use,
  vpDone,
  type MmioContext,
  type VfioLabel,
  type VfioStep,
  type VmmLabel,
  type VmmLocals,
  type VmmStep,
  type VpLabel,
  type VpLocals,
  type VpStep,
  type W,
} from './world.js'

type Piece = Patch<MmioContext>
type B = BuildContext<MmioContext>

/** A patch's VP steps, their gotos checked by tsc against every VP label. */
const vpPatch = (steps: { readonly [k in VpLabel]?: VpStep | null }): StepPatch[string] => steps
/** The VMM runs only with `replace`, VFIO's munmap with `bar_unmap`, its reset with `bar_reset`: without them there is nothing to patch. */
const vmmPatch = ({ params }: B, steps: { readonly [k in VmmLabel]?: VmmStep | null }): StepPatch => (params.replace ? { vmm: steps } : {})
const vfioPatch = ({ params }: B, steps: { readonly [k in VfioLabel]?: VfioStep | null }): StepPatch => (params.bar_unmap ? { vfio: steps } : {})
const resetPatch = ({ params }: B, steps: { readonly [k in VfioLabel]?: VfioStep | null }): StepPatch => (params.bar_reset ? { vfio_reset: steps } : {})

// ---- shared steps ---------------------------------------------------------------

/** HVMSG_UNMAPPED_GPA for a gfn of the MMIO range, handled by mshv_handle_unmapped_gpa(). */
const unmappedGpa = <K extends VpLabel>(ctx: MmioContext, then: K): VpStep => ({
  targets: [then],
  choices: () => ctx.l.gfns,
  run(_w, me, gfn) {
    me.gfn = gfn
    return then
  },
  text: (_w, _me, gfn) => `HVMSG_UNMAPPED_GPA(gfn ${gfn}): mshv_handle_unmapped_gpa`,
})

/** v0's "fast check": mshv_partition_region_by_gfn() with no lock held; the region found is the one the map uses. */
const unmappedGpaFastPath = <K extends VpLabel>(ctx: MmioContext, then: K): VpStep => ({
  targets: [then],
  choices: () => ctx.l.gfns,
  run(w, me, gfn) {
    me.gfn = gfn
    access(w.regionList, me, false)
    const r = listed(ctx.l, w, gfn)
    if (r < 0) return vpDone(me)
    me.fast = r + 1
    return then
  },
  text: (_w, _me, gfn) => `HVMSG_UNMAPPED_GPA(gfn ${gfn}): mshv_handle_unmapped_gpa: mshv_partition_region_by_gfn, no lock`,
})

/**
 * hv_call_map_mmio_pages() from the intercept, for the region `regionOf`.
 * By default (!hv_nofull_mmio) the whole region: v0 does
 *     gfn = mreg->start_gfn;
 *     mmio_spa = mmio_spa - (gfn - mreg->start_gfn);
 * so the subtraction is 0 and the faulting page's pfn lands on start_gfn
 * (`v0Spa`); [PATCH V3 10/11] swaps the two lines. With hv_nofull_mmio, the
 * faulting gfn alone.
 */
function mapFromIntercept<K extends VpLabel | typeof DONE>(ctx: MmioContext, regionOf: (me: VpLocals) => number, v0Spa: boolean, then: (me: VpLocals) => K): VpStep {
  const { l } = ctx
  const spa = (me: VpLocals): number => (v0Spa ? me.pfn : me.pfn - me.gfn) // start_gfn is 0
  return {
    targets: [then],
    run(w, me) {
      use(w, regionOf(me), me)
      if (ctx.full) mapMmioPages(w, 0, spa(me), l.gfns)
      else mapMmioPages(w, me.gfn, me.pfn, 1)
      return then(me)
    },
    text: (_w, me) =>
      ctx.full
        ? `hv_call_map_mmio_pages(gfn 0, pfn ${spa(me)}, ${l.gfns} pages)${v0Spa && me.gfn !== 0 ? `: gfn = start_gfn before mmio_spa -= gfn - start_gfn, so gfn ${me.gfn}'s pfn lands on gfn 0` : ''}`
        : `hv_call_map_mmio_pages(gfn ${me.gfn}, pfn ${me.pfn}, 1 page)`,
  }
}

// ---- the pieces ---------------------------------------------------------------

/** The MMIO GPAs are no longer mapped in MSHV_SET_GUEST_MEMORY (v0 14/15, V3 10/11: "mmio mappings are handled later during intercepts"). */
const mapOnIntercept: Piece = {
  init: ({ ctx }) => (w: W) => {
    for (let g = 0; g < ctx.l.gfns; g++) w.slat[g] = 0
  },
  steps: (b) =>
    vmmPatch(b, {
      mshv_map_user_memory: {
        guard: (w) => mmioLocks.readable(w, MMAP_LOCK),
        run(w, me) {
          mmioLocks.readLock(w, me, MMAP_LOCK)
          mmioLocks.readUnlock(w, me, MMAP_LOCK)
          return 'spin_lock'
        },
        text: () => 'mshv_map_user_memory(region 1): mmap_read_lock, vma_lookup: VM_IO | VM_PFNMAP, mmap_read_unlock (GPAs mapped on intercept)',
      },
      hv_call_map_mmio_pages: null,
    }),
}

/** mapcheck: the smallest fix of upstream's pfn, read from the page table rather than vm_pgoff. */
const pfnmap: Piece = {
  init: ({ ctx }) => (w: W) => {
    for (let g = 0; g < ctx.l.gfns; g++) w.slat[g] = ctx.l.barPfn[0] + g
  },
  steps: (b) =>
    vmmPatch(b, {
      // Region 1's VMA is never torn down: follow_pfnmap_start (after fixup_user_fault if no PTE) gives its BAR's pfn.
      mshv_map_user_memory: mapUserMemory((_w) => b.ctx.l.barPfn[1], 'mmio_pfn = follow_pfnmap_start(start_uaddr)', 'hv_call_map_mmio_pages'),
    }),
}

/** [PATCH v0 15/15] as posted. */
const v0Intercept: Piece = {
  steps: ({ ctx }) => ({
    vp: vpPatch({
      mshv_vp_handle_intercept: unmappedGpaFastPath(ctx, 'spin_lock'),
      spin_lock: mmioLocks.lockStep(PT_LOCK, 'mshv_partition_region_by_gfn'),
      mshv_partition_region_by_gfn: {
        run(w, me) {
          access(w.regionList, me, false)
          const r = listed(ctx.l, w, me.gfn)
          if (r < 0) return 'spin_unlock'
          me.mreg = r + 1
          return 'mmap_read_lock'
        },
        text: () => 'mshv_chk_get_mmio_start_pfn: mshv_partition_region_by_gfn (again, locked)',
      },
      mmap_read_lock: mmapReadLock('follow_pfnmap_start'),
      follow_pfnmap_start: followPfnmap(ctx, 'mmap_read_unlock', 'mmap_read_unlock'),
      ...fixupSteps(ctx, 'mmap_read_unlock'),
      mmap_read_unlock: mmapReadUnlock('spin_unlock'),
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me: VpLocals) => (me.pfn ? 'hv_call_map_mmio_pages' : vpDone(me))),
      hv_call_map_mmio_pages: mapFromIntercept(ctx, (me) => me.fast - 1, true, vpDone),
      mshv_region_put: null,
    }),
  }),
}

/** Mukesh's rethink: no pt_mem_regions_lock in mshv_chk_get_mmio_start_pfn, the lookup again under mmap_read_lock. */
const noSpinlock: Piece = {
  steps: ({ ctx }) => ({
    vp: vpPatch({
      mshv_vp_handle_intercept: unmappedGpaFastPath(ctx, 'mmap_read_lock'),
      mmap_read_lock: mmapReadLock('mshv_partition_region_by_gfn'),
      mshv_partition_region_by_gfn: {
        run(w, me) {
          access(w.regionList, me, false)
          const r = listed(ctx.l, w, me.gfn)
          if (r < 0) return 'mmap_read_unlock'
          me.mreg = r + 1
          return 'follow_pfnmap_start'
        },
        text: () => 'mshv_chk_get_mmio_start_pfn: mshv_partition_region_by_gfn (again, under mmap_read_lock only)',
      },
      mmap_read_unlock: mmapReadUnlock((_w, me) => (me.pfn ? 'hv_call_map_mmio_pages' : vpDone(me))),
      spin_lock: null,
      spin_unlock: null,
    }),
  }),
}

/**
 * Stanislav's review: the lookup under the lock with a reference, no
 * sleeping lock under the spinlock, the map under mmap_read_lock, and an
 * MMU notifier that unmaps the region's GPAs when its VMA is invalidated
 * (the SPA computation and the release are v0's and upstream's).
 */
const lockedLookupNotifier: Piece = {
  steps: (b) => ({
    vp: vpPatch({
      mshv_vp_handle_intercept: unmappedGpa(b.ctx, 'spin_lock'),
      mshv_partition_region_by_gfn: regionByGfnGet(b.ctx, 'spin_unlock'),
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me: VpLocals) => (me.mreg ? 'mmap_read_lock' : vpDone(me))),
      follow_pfnmap_start: followPfnmap(b.ctx, 'hv_call_map_mmio_pages', 'mmap_read_unlock'),
      ...fixupSteps(b.ctx, 'hv_call_map_mmio_pages'),
      hv_call_map_mmio_pages: mapFromIntercept(b.ctx, (me) => me.mreg - 1, true, () => 'mmap_read_unlock'),
      mmap_read_unlock: mmapReadUnlock('mshv_region_put'),
      mshv_region_put: vpRegionPut(),
    }),
    ...vfioPatch(b, { mmap_write_lock: mmioLocks.lockStep(MMAP_LOCK, 'spin_lock'), ...lockedCallback(b.ctx, 'unmap_vma') }),
    ...resetPatch(b, { down_write: mmioLocks.lockStep(MEMORY_LOCK, 'spin_lock'), ...lockedCallback(b.ctx, 'unmap_mapping_range') }),
  }),
}

/** [PATCH V3 10/11] "mshv: Populate mmio mappings for PCI passthru" (2026-05-12), on upstream. */
const v3Intercept: Piece = {
  steps: ({ ctx }) => ({
    vp: vpPatch({
      mshv_vp_handle_intercept: unmappedGpa(ctx, 'spin_lock'),
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me: VpLocals) => (me.mreg ? 'mmap_read_lock' : vpDone(me))),
      mmap_read_lock: mmapReadLock('follow_pfnmap_start'),
      follow_pfnmap_start: followPfnmap(ctx, 'mmap_read_unlock', 'mmap_read_unlock'),
      ...fixupSteps(ctx, 'mmap_read_unlock'),
      mmap_read_unlock: mmapReadUnlock((_w, me) => (me.pfn ? 'hv_call_map_mmio_pages' : 'mshv_region_put')),
      hv_call_map_mmio_pages: mapFromIntercept(ctx, (me) => me.mreg - 1, false, () => 'mshv_region_put'),
    }),
  }),
}

/**
 * The release with the notifier: mmu_interval_notifier_remove() (it waits
 * for a running invalidation), mshv_region_unmap() skips every page,
 * vfree(); with `unmap`, the MMIO GPAs are unmapped by gfn range first.
 */
const destroyWithNotifier = <L, K extends string>(ctx: MmioContext, unmap: boolean, regionOf: (me: L) => number, then: (me: L) => K): Step<W, L, K> => ({
  targets: [then],
  guard: (w) => (w.mmSeq & 1) === 0,
  run(w, me) {
    if (unmap) unmapRegionGpas(ctx.l, w)
    w.mniInserted = 0
    w.region[regionOf(me)].state = REGION_FREED
    return then(me)
  },
  text: () =>
    unmap
      ? `mshv_region_destroy: hv_call_unmap_gpa_pages(gfn 0, ${ctx.l.gfns} pages), mmu_interval_notifier_remove, vfree`
      : 'mshv_region_destroy: mmu_interval_notifier_remove, mshv_region_unmap skips every page, vfree',
})

/** kref_put without the release: the last reference goes on to mshv_region_destroy. */
const lastPut = (w: W, r: number): boolean => {
  w.region[r].refs--
  return w.region[r].refs === 0 && w.region[r].state === REGION_UNLINKED
}

/**
 * mapcheck: an mmu_interval_notifier on each MMIO region, as movable
 * regions have: inserted at creation, its callback
 * (mshv_region_interval_invalidate) unmaps the region's GPAs under
 * region->mreg_mutex; the intercept takes mmu_interval_read_begin() before
 * the pfn lookup and maps under the mutex only if mmu_interval_read_retry()
 * says no invalidation came in between; the release removes the notifier.
 */
const notifier = (alsoDead: boolean): Piece => ({
  init: () => (w: W) => notifierInsert(w),
  steps: (b) => ({
    vp: vpPatch({
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me: VpLocals) => (me.mreg ? 'mmu_interval_read_begin' : vpDone(me))),
      mmu_interval_read_begin: {
        guard: (w) => !readBeginMustWait(w),
        run(w, me) {
          me.seq = w.mniSeq
          return 'mmap_read_lock'
        },
        text: (w) => `mmu_interval_read_begin = ${w.mniSeq}`,
      },
      mmap_read_unlock: mmapReadUnlock((_w, me) => (me.pfn ? 'mutex_lock' : 'mshv_region_put')),
      mutex_lock: mmioLocks.lockStep(MREG_MUTEX, 'mmu_interval_read_retry'),
      mmu_interval_read_retry: {
        run(w, me) {
          if (readRetry(w, me.seq)) {
            mmioLocks.unlock(w, me, MREG_MUTEX)
            me.pfn = 0
            return 'mmu_interval_read_begin'
          }
          if (alsoDead && w.region[me.mreg - 1].dead) return 'mutex_unlock'
          return 'hv_call_map_mmio_pages'
        },
        text: (w, me) =>
          `mmu_interval_read_retry(${me.seq})${readRetry(w, me.seq) ? ': invalidated, mutex_unlock, retry' : alsoDead && w.region[me.mreg - 1].dead ? ': the region is unmapped, give up' : ''}`,
      },
      hv_call_map_mmio_pages: mapFromIntercept(b.ctx, (me) => me.mreg - 1, false, () => 'mutex_unlock'),
      mutex_unlock: mmioLocks.unlockStep(MREG_MUTEX, 'mshv_region_put'),
      mshv_region_put: {
        run(w, me) {
          use(w, me.mreg - 1, me)
          return lastPut(w, me.mreg - 1) ? 'mshv_region_destroy' : vpDone(me)
        },
        text: (w, me) => `mshv_region_put(region ${me.mreg - 1})${w.region[me.mreg - 1].refs === 1 ? ': last reference' : ''}`,
      },
      mshv_region_destroy: destroyWithNotifier(b.ctx, false, (me: VpLocals) => me.mreg - 1, vpDone),
    }),
    ...vmmPatch(b, {
      mshv_region_put: {
        run(w, me) {
          me.step = 1
          return lastPut(w, 0) ? 'mshv_region_destroy' : 'mshv_map_user_memory'
        },
        text: (w) => `mshv_region_put(region 0)${w.region[0].refs === 1 ? ': last reference' : ''}`,
      },
      mshv_region_destroy: destroyWithNotifier(b.ctx, false, (_me: VmmLocals) => 0, () => 'mshv_map_user_memory' as const),
    }),
    ...vfioPatch(b, {
      mmap_write_lock: mmioLocks.lockStep(MMAP_LOCK, 'mmu_notifier_invalidate_range_start'),
      ...intervalCallback(b.ctx, 'unmap_vma'),
      unmap_vma: unmapVma('mmu_notifier_invalidate_range_end'),
      mmu_notifier_invalidate_range_end: invalidateEnd('mmap_write_unlock'),
    }),
    ...resetPatch(b, {
      down_write: mmioLocks.lockStep(MEMORY_LOCK, 'mmu_notifier_invalidate_range_start'),
      ...intervalCallback(b.ctx, 'unmap_mapping_range'),
      unmap_mapping_range: zapBars('mmu_notifier_invalidate_range_end'),
      mmu_notifier_invalidate_range_end: invalidateEnd('up_write'),
    }),
  }),
})

/** The obvious fix of the release: mshv_region_destroy() unmaps an MMIO region's GPAs by gfn range, before removing the notifier. */
const releaseUnmap: Piece = {
  steps: (b) => ({
    vp: vpPatch({ mshv_region_destroy: destroyWithNotifier(b.ctx, true, (me: VpLocals) => me.mreg - 1, vpDone) }),
    ...vmmPatch(b, { mshv_region_destroy: destroyWithNotifier(b.ctx, true, (_me: VmmLocals) => 0, () => 'mshv_map_user_memory' as const) }),
  }),
}

/**
 * mapcheck: mshv_unmap_user_memory() unmaps an MMIO region's GPAs itself,
 * under region->mreg_mutex after hlist_del and before the put, and marks
 * the region so (`dead`); the intercept, under the mutex, gives up on it.
 */
const teardownUnmap: Piece = {
  steps: (b) =>
    vmmPatch(b, {
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me: VmmLocals) => (me.step === 0 ? 'mutex_lock' : 'done')),
      mutex_lock: mmioLocks.lockStep(MREG_MUTEX, 'mshv_mmio_region_unmap'),
      mshv_mmio_region_unmap: {
        run(w) {
          unmapRegionGpas(b.ctx.l, w)
          w.region[0].dead = 1
          return 'mutex_unlock'
        },
        text: () => `hv_call_unmap_gpa_pages(gfn 0, ${b.ctx.l.gfns} pages) under region->mreg_mutex; the region is marked unmapped`,
      },
      mutex_unlock: mmioLocks.unlockStep(MREG_MUTEX, 'mshv_region_put'),
    }),
}

// ---- the variants -------------------------------------------------------------

export const mmioPatches: readonly VariantSpec<MmioContext>[] = [
  {
    name: 'upstream-pfnmap',
    description: "upstream + (mapcheck) mshv_map_user_memory reads the pfn with follow_pfnmap_start, not vm_pgoff: the smallest fix of upstream's SPA",
    expect: { violates: ['no-dangling-mmio-mapping'] },
    from: 'upstream',
    ...pfnmap,
  },
  { name: 'v0', description: 'as posted: [PATCH v0 15/15] on upstream (GPAs mapped on HVMSG_UNMAPPED_GPA)', expect: { violates: ['no-sleep-in-atomic', 'region-list-race-free', 'no-region-use-after-free', 'no-dangling-mmio-mapping', 'mmio-mapping-correct'] }, from: 'upstream', ...mergePatches([mapOnIntercept, v0Intercept]) },
  { name: 'no-spinlock', description: "v0 + Mukesh's rethink: no pt_mem_regions_lock in mshv_chk_get_mmio_start_pfn, rely on mmap_lock", expect: { violates: ['region-list-race-free', 'no-region-use-after-free', 'no-dangling-mmio-mapping', 'mmio-mapping-correct'] }, from: 'v0', ...noSpinlock },
  {
    name: 'locked-lookup-notifier',
    description: "v0 + Stanislav's suggestion: lookup under the lock with a reference, no sleeping lock under the spinlock, teardown by an MMU notifier on VMA detach",
    expect: { violates: ['no-dangling-mmio-mapping', 'mmio-mapping-correct'] },
    from: 'v0',
    ...lockedLookupNotifier,
  },
  {
    name: 'v3',
    description: '[PATCH V3 10/11] on upstream: mshv_partition_region_by_gfn_get, the pfn under mmap_read_lock only, the SPA fixed, GPAs mapped on intercept',
    expect: { violates: ['no-dangling-mmio-mapping', 'mmio-mapping-correct'] },
    from: 'upstream',
    ...mergePatches([mapOnIntercept, v3Intercept]),
  },
  {
    name: 'v3-notifier',
    description: 'v3 + (mapcheck) an mmu_interval_notifier on MMIO regions: the callback unmaps the GPAs, the intercept maps under mreg_mutex after mmu_interval_read_retry',
    expect: { violates: ['no-dangling-mmio-mapping', 'mmio-mapping-correct'] },
    from: 'v3',
    ...notifier(false),
  },
  {
    name: 'v3-release-unmap',
    description: "v3-notifier + (mapcheck) mshv_region_destroy unmaps an MMIO region's GPAs by gfn range before removing the notifier",
    expect: { violates: ['mmio-mapping-correct'] },
    from: 'v3-notifier',
    ...releaseUnmap,
  },
  {
    name: 'v3-fixed',
    description: "v3-notifier + (mapcheck) mshv_unmap_user_memory unmaps an MMIO region's GPAs under mreg_mutex before the put; the intercept gives up on such a region",
    expect: { violates: [] },
    from: 'v3',
    ...mergePatches([notifier(true), teardownUnmap]),
  },
]
