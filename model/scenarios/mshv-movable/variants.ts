/**
 * The variants of mshv-movable, each the patch it stands for, applied to
 * v6 as posted (vp.ts, host-events.ts, vmm.ts): the steps it replaces, adds
 * or removes (by process and label), the context helpers it replaces, and
 * what it sets in the initial world. `fixed` is made of the pieces that
 * are also variants on their own.
 */
import { ModelError } from '../../../explorer/errors.js'
import { alignDown, isAligned } from '../../primitives/layout.js'
import { notifierRemove as removeInterval, readRetry } from '../../primitives/mmu-notifier.js'
import { REGION_FREED, REGION_LISTED, REGION_UNLINKED, useRegion } from '../../primitives/region.js'
import type { Step } from '../../process.js'
import { mergePatches, type BuildContext, type Patch, type StepPatch, type VariantSpec } from '../../scenario.js'
import { HV_STATUS_SUCCESS, unmapGpaPages, type Leaf } from '../../primitives/slat.js'
import { chunkStride, unmapPages } from '../../drivers/mshv-regions.js'
import { hostEvents, remapNoAccess } from './host-events.js'
import { vmmMm } from './vmm-mm.js'
import { mayReclaim, type ReclaimLocals } from './direct-reclaim.js'
import { hlistDel, notifierRemove, notifierRemoveWoken, regionInvalidate } from './vmm.js'
import { interceptDone, readRetryText } from './vp.js'
import {
  depositChoices,
  hex,
  movableLocks,
  REGION_MUTEX,
  type EventLocals,
  type MovableContext,
  type MovableWorld as W,
  type VmmLabel,
  type VmmStep,
  type VpLabel,
  type VpLocals,
  type VpStep,
} from './world.js'

/** What a patch changes (a variant without its name); pieces merge into one patch. */
type Piece = Patch<MovableContext>

/** A patch's VP steps, their gotos checked by tsc against every VP label. */
const vpPatch = (steps: { readonly [k in VpLabel]?: VpStep | null }): StepPatch[string] => steps
/** A patch's VMM steps; the VMM runs only with `destroy`, so without it there is nothing to patch. */
const vmmPatch = ({ params }: BuildContext<MovableContext>, steps: { readonly [k in VmmLabel]?: VmmStep | null }): StepPatch =>
  params.destroy ? { vmm: steps } : {}

/** kref_put(&region->refcount, mshv_region_destroy): the last reference frees the region (only once it is unlinked). */
function mshvRegionPut(w: W): void {
  w.regionRefs--
  if (w.regionRefs === 0 && w.regionState === REGION_UNLINKED) w.regionState = REGION_FREED
}

// ---- the pieces ---------------------------------------------------------------

/** mmu_interval_read_retry() dropped: under the mutex the VP stores hmm_range_fault()'s pfns, whatever was invalidated since. */
const noSeqRetry: Piece = {
  steps: {
    vp: vpPatch({
      mutex_lock: movableLocks.lockStep(REGION_MUTEX, (w, me) => {
        useRegion(w, me.tid)
        return 'pages_update'
      }),
      mmu_interval_read_retry: null,
    }),
  },
}

/** Seed 000's fix: mshv_chunk_stride() also requires IS_ALIGNED(page_to_pfn(page), PTRS_PER_PMD) (its -EINVAL for other folio orders stays). */
const pfnAlignedStride: Piece = {
  context: ({ ctx }) => {
    const posted = ctx.mshv_chunk_stride
    return {
      mshv_chunk_stride(l, w, i, remaining) {
        const stride = posted(l, w, i, remaining)
        return stride > 1 && !isAligned(w.pages[i], l.HP) ? 1 : stride
      },
    }
  },
}

/** mshv_chunk_stride() as torvalds 0eaed89c has it (mshv-regions.ts StrideVersion `upstream`: mTHPs stride 1, no -EINVAL). */
const upstreamStride: Piece = {
  context: () => ({ mshv_chunk_stride: (l, w, i, remaining) => chunkStride(l, w, { pfnAlignedStride: true, version: 'upstream' }, i, remaining) }),
}

/** mshv_chunk_stride() as torvalds d3b402c5 had it (StrideVersion `page-head`: PageHead, -EINVAL for a compound head of another order). */
const pageHeadStride: Piece = {
  context: () => ({ mshv_chunk_stride: (l, w, i, remaining) => chunkStride(l, w, { pfnAlignedStride: false, version: 'page-head' }, i, remaining) }),
}

/** The fault chunk aligned in gfn space rather than relative to start_gfn, so that a huge SLAT leaf can line up with it. */
const absoluteChunk: Piece = {
  steps: ({ ctx: { l } }) => ({
    vp: vpPatch({
      mshv_region_handle_gfn_fault: {
        run(w, me) {
          useRegion(w, me.tid)
          const first = Math.max(alignDown(l.startGfn + me.gfn, l.HP) - l.startGfn, 0)
          me.off = first
          me.cnt = Math.min(l.N - first, alignDown(l.startGfn + first, l.HP) + l.HP - (l.startGfn + first))
          return 'mmu_interval_read_begin'
        },
        text: (_w, me) => `mshv_region_handle_gfn_fault(gfn ${hex(l.startGfn + me.gfn)})`,
      },
    }),
  }),
}

/**
 * Seed 004's region reference: the partition's list holds one, the fault
 * path takes one (mshv_partition_region_by_gfn_get) and puts it after
 * mutex_unlock, and destroy puts the list's instead of vfree().
 */
const regionRef: Piece = {
  init: () => (w: W) => {
    w.regionRefs = 1
  },
  steps: (b) => ({
    vp: vpPatch({
      mshv_partition_region_by_gfn: {
        run(w, me) {
          if (w.regionState !== REGION_LISTED) return interceptDone(b.ctx, me) // not found: the intercept is not handled
          w.regionRefs++
          return 'mshv_region_handle_gfn_fault'
        },
        text: (w, me) => `mshv_partition_region_by_gfn_get(gfn ${hex(b.ctx.l.startGfn + me.gfn)})${w.regionState !== REGION_LISTED ? ' = NULL' : ''}`,
      },
      mutex_unlock: movableLocks.unlockStep(REGION_MUTEX, 'mshv_region_put'),
      mshv_region_put: {
        run(w, me) {
          mshvRegionPut(w)
          return interceptDone(b.ctx, me)
        },
      },
    }),
    ...vmmPatch(b, {
      mshv_region_invalidate: regionInvalidate(b.ctx, 'mshv_region_put'),
      vfree: null,
      mshv_region_put: {
        run(w) {
          mshvRegionPut(w)
          return 'done'
        },
      },
    }),
  }),
}

/**
 * mapcheck's proposal: destroy unmaps the SLAT under region->mutex before
 * removing the notifier, and the fault path, under the mutex, gives up on
 * a region that is being destroyed. On top of the region reference (the
 * release is mshv_region_put).
 */
const teardownUnderMutex: Piece = {
  steps: (b) => ({
    vp: vpPatch({
      mmu_interval_read_retry: {
        run(w, me) {
          if (readRetry(w, me.seq)) {
            movableLocks.unlock(w, me, REGION_MUTEX)
            return 'mmu_interval_read_begin'
          }
          if (w.regionState !== REGION_LISTED) return 'mutex_unlock'
          return 'pages_update'
        },
        text: readRetryText,
      },
    }),
    ...vmmPatch(b, {
      hlist_del: hlistDel('mutex_lock'),
      mutex_lock: movableLocks.lockStep(REGION_MUTEX, 'hv_call_unmap_gpa_pages'),
      mshv_region_invalidate: regionInvalidate(b.ctx, 'mutex_unlock'),
      mutex_unlock: movableLocks.unlockStep(REGION_MUTEX, 'mmu_interval_notifier_remove'),
      mmu_interval_notifier_remove: notifierRemove('mshv_region_put'),
      wait_event: notifierRemoveWoken('mshv_region_put'),
    }),
  }),
}

/**
 * The region's release as upstream has it (torvalds 0eaed89c,
 * drivers/hv/mshv_regions.c mshv_region_destroy, run by kref_put in
 * whichever thread drops the last reference, a VP included):
 * mmu_interval_notifier_remove, mshv_region_unmap (the runs of present
 * pages[] only), mshv_region_invalidate, vfree. `then` is where the thread
 * goes afterwards.
 */
function regionDestroy(ctx: MovableContext, then: (me: any) => string): Record<string, Step<W, any>> {
  return {
    mshv_region_destroy: {
      run(w, me) {
        const seq = removeInterval(w)
        if (seq !== 0) {
          me.seq = seq
          return 'mmu_interval_notifier_remove_wait'
        }
        return 'mshv_region_unmap'
      },
      text: (w) => `mshv_region_destroy: mmu_interval_notifier_remove${(w.mmSeq & 1) === 1 ? ': the mm is invalidating, waits' : ''}`,
    },
    mmu_interval_notifier_remove_wait: {
      guard: (w, me) => w.mmSeq !== me.seq,
      run(_w, me) {
        me.seq = 0
        return 'mshv_region_unmap'
      },
      text: () => 'mmu_interval_notifier_remove: woken, removed',
    },
    mshv_region_unmap: {
      run(w) {
        // mshv_region_process_range over pages[]: only present pages are unmapped.
        for (let i = 0; i < ctx.l.N; i++) if (w.pages[i] !== 0) unmapGpaPages(w.slat as Leaf[], i, 1)
        return 'mshv_region_invalidate'
      },
      text: () => 'mshv_region_unmap: hv_call_unmap_gpa_pages over the present pages[]',
    },
    mshv_region_invalidate: regionInvalidate(ctx, 'vfree'),
    vfree: {
      targets: [then],
      run(w, me) {
        w.regionState = REGION_FREED
        return then(me)
      },
      text: () => 'vfree(region)',
    },
  }
}

/**
 * Upstream's region lifetime: the partition's list holds a reference, the
 * fault path takes one (mshv_partition_region_by_gfn_get: spinlock +
 * kref_get_unless_zero) and puts it after mutex_unlock; removal is
 * mshv_unmap_user_memory (hlist_del, then mshv_region_put), and the last
 * put runs mshv_region_destroy in its own thread.
 */
const upstreamLifetime: Piece = {
  init: () => (w: W) => {
    w.regionRefs = 1
  },
  steps: (b) => ({
    vp: {
      mshv_partition_region_by_gfn: {
        run(w: W, me: VpLocals) {
          if (w.regionState !== REGION_LISTED || w.regionRefs === 0) return interceptDone(b.ctx, me) // not found, or kref_get_unless_zero fails
          w.regionRefs++
          return 'mshv_region_handle_gfn_fault'
        },
        text: (w: W, me: VpLocals) => `mshv_partition_region_by_gfn_get(gfn ${hex(b.ctx.l.startGfn + me.gfn)})${w.regionState !== REGION_LISTED ? ' = NULL' : ''}`,
      },
      mutex_unlock: movableLocks.unlockStep(REGION_MUTEX, 'mshv_region_put'),
      mshv_region_put: {
        run(w: W, me: VpLocals) {
          w.regionRefs--
          return w.regionRefs === 0 ? 'mshv_region_destroy' : interceptDone(b.ctx, me)
        },
        text: (w: W) => `mshv_region_put${w.regionRefs === 1 ? ': last reference, mshv_region_destroy' : ''}`,
      },
      ...regionDestroy(b.ctx, (me) => interceptDone(b.ctx, me)),
    },
    ...(b.params.destroy
      ? {
          vmm: {
            hlist_del: { ...hlistDel('mshv_region_put'), text: () => 'mshv_unmap_user_memory: spin_lock; hlist_del(&region->hnode); spin_unlock' },
            mmu_interval_notifier_remove: null,
            wait_event: null,
            hv_call_unmap_gpa_pages: null,
            mshv_region_put: {
              run(w: W) {
                w.regionRefs--
                return w.regionRefs === 0 ? 'mshv_region_destroy' : 'done'
              },
              text: (w: W) => `mshv_region_put${w.regionRefs === 1 ? ': last reference, mshv_region_destroy' : ''}`,
            },
            ...regionDestroy(b.ctx, () => 'done'),
          },
        }
      : {}),
  }),
}

/**
 * mapcheck's fix for the stride finding (docs/findings/mshv-movable-stride-partial-thp.md):
 * a huge stride also needs every page of the stride to be the next page of
 * the same folio, as hmm_range_fault reported them (pages[i + k] ==
 * pages[i] + k), so a THP that is partly unmapped and refaulted is mapped
 * with 4K leaves.
 */
const contiguousStride: Piece = {
  context: ({ ctx }) => {
    const before = ctx.mshv_chunk_stride
    return {
      mshv_chunk_stride(l, w, i, remaining) {
        const stride = before(l, w, i, remaining)
        for (let k = 1; k < stride; k++) if (w.pages[i + k] !== w.pages[i] + k) return 1
        return stride
      },
    }
  },
}

/**
 * mapcheck's fix for the release finding (docs/findings/mshv-movable-destroy-notifier-first.md):
 * mshv_region_destroy unmaps the SLAT and clears pages[] before it removes
 * the interval notifier, so no invalidation can free a page the guest still
 * maps in between.
 */
const unmapBeforeNotifierRemove: Piece = {
  steps: (b) => {
    const reorder = (then: (me: any) => string) => {
      const steps = regionDestroy(b.ctx, then)
      return {
        mshv_region_destroy: { ...steps.mshv_region_unmap, run: steps.mshv_region_unmap.run, text: () => 'mshv_region_destroy: mshv_region_unmap first (hv_call_unmap_gpa_pages over the present pages[])' },
        mshv_region_unmap: null,
        mshv_region_invalidate: regionInvalidate(b.ctx, 'mmu_interval_notifier_remove_last'),
        mmu_interval_notifier_remove_last: {
          run(w: W, me: any) {
            const seq = removeInterval(w)
            if (seq !== 0) {
              me.seq = seq
              return 'mmu_interval_notifier_remove_wait'
            }
            return 'vfree'
          },
          text: () => 'mmu_interval_notifier_remove',
        },
        mmu_interval_notifier_remove_wait: { ...steps.mmu_interval_notifier_remove_wait, targets: ['vfree'], run: (_w: W, me: any) => ((me.seq = 0), 'vfree') },
      }
    }
    return {
      vp: reorder((me) => interceptDone(b.ctx, me)),
      ...(b.params.destroy ? { vmm: reorder(() => 'done') } : {}),
    }
  },
}

/**
 * mapcheck's fix for the fault-path half of the deposit finding
 * (docs/findings/mshv-movable-deposit-under-mutex.md): on
 * HV_STATUS_INSUFFICIENT_MEMORY under region->mutex, drop the mutex, deposit
 * with no lock held, and restart the fault (as on -EBUSY), so that no
 * GFP_KERNEL allocation happens under a lock the invalidate callback takes.
 */
const depositUnlocked: Piece = {
  steps: ({ ctx }) => ({
    vp: {
      mshv_region_remap_pages: {
        choices: () => depositChoices(ctx),
        run(w: W, me: VpLocals, choice: number) {
          if (choice === 1) {
            movableLocks.unlock(w, me, REGION_MUTEX)
            return 'hv_call_deposit_pages'
          }
          const ret = ctx.mshv_region_remap_pages(w, 0, me.off, me.cnt)
          if (ret !== HV_STATUS_SUCCESS && w.faultMapFailed === 0) w.faultMapFailed = me.tid + 1
          return 'mutex_unlock'
        },
        text: (_w: W, me: VpLocals, choice: number) =>
          `mshv_region_remap_pages(gfn ${hex(ctx.l.startGfn + me.off)}, ${me.cnt} pages)${choice === 1 ? ': HV_STATUS_INSUFFICIENT_MEMORY, mutex_unlock' : ''}`,
      },
      hv_call_deposit_pages: {
        // With direct_reclaim, the allocation may reclaim a folio of this region, here with no lock held (direct-reclaim.ts).
        choices: (w: W, me: VpLocals) => (mayReclaim(ctx, w, me) ? 2 : 1),
        targets: ['mmu_interval_read_begin', ...(ctx.directReclaim ? ['direct_reclaim'] : [])],
        run(w: W, me: VpLocals, choice: number) {
          movableLocks.allocate(w, me, 'hv_call_deposit_pages')
          if (choice === 1) {
            ;(me as ReclaimLocals).rback = 1
            return 'direct_reclaim'
          }
          return 'mmu_interval_read_begin'
        },
        text: (_w: W, _me: VpLocals, choice: number) => `hv_call_deposit_pages(GFP_KERNEL), no lock held${choice === 1 ? ': the allocation enters direct reclaim' : '; fault again'}`,
      },
    },
  }),
}

/** The same steps patched into every host mm process this parameter set runs (as hostEvents names them). */
const hostPatch = ({ ctx, params }: BuildContext<MovableContext>, steps: Record<string, Step<W, EventLocals> | null>): StepPatch =>
  // The VMM's munmap and mprotect invalidate through the same callback (vmm-mm.ts): patched with the host events.
  Object.fromEntries([...new Set([...hostEvents(ctx, params), ...vmmMm(ctx, params)].map((t) => t.process.name))].map((name) => [name, steps]))

/**
 * Upstream's failure path of the invalidate callback (torvalds 0eaed89c,
 * drivers/hv/mshv_regions.c mshv_region_interval_invalidate): a failed
 * NO_ACCESS remap does `goto out_unlock` (mutex_unlock, WARN_ONCE, return
 * false), where v6 did `goto out_fail` with region->mutex still held. A
 * blockable callback's false is WARNed and ignored by the core
 * (mn_itree_invalidate: `if (WARN_ON(mmu_notifier_range_blockable(range)))
 * continue;`), so the host frees pages the SLAT may still map: the driver's
 * own comment calls it "a serious error, as the pages will be considered
 * freed while they are still mapped by the hypervisor". With
 * `map_failures`, no-stale-mapping and no-freed-page-mapped break on this
 * path: the kernel's documented behaviour, not a modelling error.
 */
const outUnlock: Piece = {
  steps: (b) =>
    hostPatch(b, {
      remap_no_access: remapNoAccess(
        b.ctx,
        (_w, me) => {
          me.ok = 0
          return 'cb_mutex_unlock'
        },
        () => ': goto out_unlock',
      ),
    }),
}

/**
 * mapcheck's proposal for the map-failure finding (docs/findings/mshv-movable-map-failure.md):
 * when the NO_ACCESS remap fails, mshv_region_interval_invalidate unmaps the
 * invalidated range (mshv_region_process_range with mshv_region_chunk_unmap,
 * as mshv_region_unmap does for the whole region) and, that done, clears
 * pages[] and returns true: the pages are no longer mapped when the core
 * frees them. (Only map hypercalls fail in the model: the unmap is assumed
 * to succeed.)
 */
const unmapOnRemapFailure: Piece = {
  steps: (b) =>
    hostPatch(b, {
      remap_no_access: remapNoAccess(b.ctx, () => 'hv_call_unmap_gpa_pages', () => ': mshv_region_chunk_unmap over the range instead'),
      hv_call_unmap_gpa_pages: {
        run(w, me) {
          unmapPages(b.ctx.l, w, b.ctx.mshv_chunk_stride, me.lo, me.cnt)
          return 'mshv_region_invalidate_pages'
        },
        text: (_w, me) => `mshv_region_process_range(gfn ${hex(b.ctx.l.startGfn + me.lo)}, ${me.cnt} pages, mshv_region_chunk_unmap): hv_call_unmap_gpa_pages`,
      },
    }),
}

// ---- the variants -------------------------------------------------------------

export const movablePatches: readonly VariantSpec<MovableContext>[] = [
  {
    name: 'upstream',
    description:
      "the newest kernel (torvalds 0eaed89c): v6 + 0eaed89c's mshv_chunk_stride (pfn-aligned; mTHPs stride 1, no -EINVAL) + the kref region lifetime, released by the last putter + the callback's out_unlock (a failed NO_ACCESS remap unlocks and returns false, which a blockable invalidation WARNs and ignores: with map_failures the pages are freed still mapped, the kernel's documented behaviour)",
    expect: { violates: ['no-stale-mapping'] },
    from: 'v6',
    ...mergePatches([upstreamStride, upstreamLifetime, outUnlock], { exclusive: 'mshv-movable' }),
  },
  {
    name: 'upstream-page-head',
    description:
      'upstream with the mshv_chunk_stride of torvalds d3b402c5 (Jan 2026, before 0eaed89c): a huge stride only from a compound head, -EINVAL for a head whose order is not PMD_ORDER (an mTHP: --param H=2 --param mthp=1)',
    from: 'upstream',
    ...pageHeadStride,
    expect: { violates: ['no-stale-mapping'] },
  },
  {
    name: 'upstream-unmap-first',
    description: 'upstream + (mapcheck) mshv_region_destroy unmaps the SLAT before it removes the interval notifier',
    expect: { violates: ['no-stale-mapping'] },
    from: 'upstream',
    ...unmapBeforeNotifierRemove,
  },
  {
    name: 'upstream-fixed',
    description: 'upstream + both of mapcheck\'s fixes (consecutive-page stride, unmap before notifier removal)',
    expect: { violates: [] },
    from: 'upstream',
    ...mergePatches([contiguousStride, unmapBeforeNotifierRemove], { exclusive: 'mshv-movable' }),
  },
  {
    name: 'upstream-deposit-unlocked',
    description: 'upstream-fixed + (mapcheck) the fault path deposits with region->mutex dropped, then faults again',
    expect: { violates: [] },
    from: 'upstream-fixed',
    ...depositUnlocked,
  },
  {
    name: 'upstream-unmap-on-map-failure',
    description: 'upstream-fixed + (mapcheck) a failed NO_ACCESS remap in the invalidate callback unmaps the range instead (mshv_region_chunk_unmap), so no page is freed while mapped',
    expect: { violates: [] },
    from: 'upstream-fixed',
    ...unmapOnRemapFailure,
  },
  {
    name: 'upstream-contiguous-stride',
    description: "upstream + (mapcheck) mshv_chunk_stride also requires the stride's pages to be consecutive pages of one folio",
    expect: { violates: [] },
    from: 'upstream',
    ...contiguousStride,
  },
  { name: 'no-seq-retry', description: 'v6 without mmu_interval_read_retry() under the mutex', expect: { violates: ['no-stale-mapping', 'no-freed-page-mapped'] }, from: 'v6', ...noSeqRetry },
  {
    name: 'fixed',
    description: 'v6 + gfn-aligned fault chunk + pfn-aligned stride (seed 000) + region reference (seed 004)',
    expect: { violates: ['no-stale-mapping'] },
    from: 'v6',
    ...mergePatches([absoluteChunk, pfnAlignedStride, regionRef], { exclusive: 'mshv-movable' }),
  },
  { name: 'pfn-aligned-stride', description: "v6 + only seed 000's fix: mshv_chunk_stride also requires a huge-aligned pfn", expect: { violates: ['no-stale-mapping'] }, from: 'v6', ...pfnAlignedStride },
  { name: 'region-ref', description: 'v6 + only the region reference across the fault path (mshv_partition_region_by_gfn_get)', expect: { violates: ['no-stale-mapping'] }, from: 'v6', ...regionRef },
  {
    name: 'fixed-teardown',
    description: 'fixed + (mapcheck) destroy unmaps the SLAT under region->mutex before removing the notifier; the fault path gives up on a dying region',
    expect: { violates: ['no-stale-mapping'] },
    from: 'fixed',
    ...teardownUnderMutex,
  },
]
