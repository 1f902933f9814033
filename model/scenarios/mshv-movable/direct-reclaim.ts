/**
 * Direct reclaim from the deposit's allocation (`--param direct_reclaim`):
 * hv_call_deposit_pages() allocates with GFP_KERNEL, and an allocation that
 * finds no free page reclaims in the allocating thread
 * (__alloc_pages_slowpath -> __alloc_pages_direct_reclaim ->
 * try_to_free_pages -> shrink_folio_list -> try_to_unmap, mm/vmscan.c and
 * mm/rmap.c), which may pick a folio of this very region: try_to_unmap_one
 * runs mmu_notifier_invalidate_range_start, so the region's own callback,
 * mshv_region_interval_invalidate, runs in the VP, blockable: it takes
 * region->mutex. A VP that deposits under region->mutex (the fault path
 * upstream) waits for itself; one that deposits with no lock held (the
 * upstream-deposit-unlocked fix) invalidates its own pages and must see the
 * sequence move when it faults again.
 *
 * Abstraction: the callback (mutex_lock, mmu_interval_set_seq, the
 * NO_ACCESS remap, mshv_region_invalidate_pages, mutex_unlock) is one step
 * of the VP, taken only when region->mutex is free; the PTE clear, range
 * end and the folio's free are the next. One reclaim per VP, so that the
 * allocation cannot reclaim forever.
 */
import { folioHead, freeFolio, isFreed } from '../../primitives/folio.js'
import { folioMapped, unmapRange } from '../../primitives/host-page-table.js'
import { invalidateRangeEnd, invalidateRangeStart, setSeq } from '../../primitives/mmu-notifier.js'
import { useRegion } from '../../primitives/region.js'
import { HV_MAP_GPA_NO_ACCESS } from '../../primitives/slat.js'
import type { Step } from '../../process.js'
import { array, u8 } from '../../schema.js'
import type { Layout } from '../../primitives/layout.js'
import { hex, movableLocks, REGION_MUTEX, type MovableContext, type MovableWorld as W, type VpLocals } from './world.js'

/** The VP's locals for a reclaim: the range it unmaps, cur_seq, the pfns to free, where to go after it, and whether it has reclaimed. */
export const reclaimLocals = (l: Layout, oldLen = l.HP, pfnMax = 255) => ({
  rlo: u8(),
  rcnt: u8(),
  rcur: u8(),
  rold: array(oldLen, u8(pfnMax)),
  rback: u8(1),
  reclaimed: u8(1),
})
export type ReclaimLocals = VpLocals & { rlo: number; rcnt: number; rcur: number; rold: number[] | Int16Array; rback: number; reclaimed: number }

/** Where a VP goes back after its reclaim: 0, retry the hypercall (hv_do_map_gpa_hcall after the deposit); 1, fault again (the deposit-unlocked fix). */
export const RECLAIM_BACK = ['mshv_region_remap_pages', 'mmu_interval_read_begin'] as const

/** May the deposit's allocation reclaim from this region now (the parameter on, this VP not yet, some folio mapped)? */
export const mayReclaim = (ctx: MovableContext, w: W, me: VpLocals): boolean =>
  !!ctx.directReclaim && (me as ReclaimLocals).reclaimed === 0 && Array.from(w.pte as ArrayLike<number>).some((pfn) => pfn !== 0)

/** The folio runs reclaim may pick: each mapped folio's run of region pages (shrink_folio_list works on folios). */
function reclaimTargets(ctx: MovableContext, w: W): { lo: number; cnt: number }[] {
  const { l } = ctx
  const out: { lo: number; cnt: number; folio: number }[] = []
  for (let i = 0; i < l.N; i++) {
    if (w.pte[i] === 0) continue
    const folio = folioHead(w, w.pte[i], l.H)
    const last = out[out.length - 1]
    if (last && last.folio === folio && last.lo + last.cnt === i) last.cnt++
    else out.push({ lo: i, cnt: 1, folio })
  }
  return out
}

/** The VP's reclaim steps: direct_reclaim (pick a folio, range_start), reclaim_invalidate (the callback), try_to_unmap (PTEs, range_end, free). */
export function reclaimSteps(ctx: MovableContext): Record<string, Step<W, ReclaimLocals>> {
  const { l } = ctx
  const range = (me: ReclaimLocals) => `uaddr ${hex(l.startUaddr + me.rlo)}..${hex(l.startUaddr + me.rlo + me.rcnt - 1)}`
  return {
    direct_reclaim: {
      choices: (w) => Math.max(reclaimTargets(ctx, w).length, 1),
      targets: ['reclaim_invalidate', 'try_to_unmap', ...RECLAIM_BACK],
      run(w, me, choice) {
        const t = reclaimTargets(ctx, w)[choice]
        me.reclaimed = 1
        // Another thread unmapped the region meanwhile: reclaim finds nothing of it.
        if (!t) return RECLAIM_BACK[me.rback]
        me.rlo = t.lo
        me.rcnt = t.cnt
        me.rcur = invalidateRangeStart(w, true)
        if (me.rcur === 0) return 'try_to_unmap'
        for (let k = 0; k < me.rcnt; k++) w.invalPending[me.rlo + k]++
        return 'reclaim_invalidate'
      },
      text: (w, _me, choice) => {
        const t = reclaimTargets(ctx, w)[choice]
        if (!t) return 'hv_call_deposit_pages: direct reclaim finds no folio of this region'
        return `hv_call_deposit_pages: alloc_page(GFP_KERNEL) -> direct reclaim -> shrink_folio_list -> try_to_unmap(uaddr ${hex(l.startUaddr + t.lo)}..${hex(l.startUaddr + t.lo + t.cnt - 1)}): mmu_notifier_invalidate_range_start`
      },
    },
    /** mshv_region_interval_invalidate in the reclaiming VP: blockable, so mutex_lock(&region->mutex) waits for it to be free. */
    reclaim_invalidate: {
      guard: (w) => movableLocks.free(w, REGION_MUTEX),
      run(w, me) {
        useRegion(w, me.tid)
        movableLocks.lock(w, me, REGION_MUTEX)
        setSeq(w, me.rcur)
        ctx.mshv_region_remap_pages(w, HV_MAP_GPA_NO_ACCESS, me.rlo, me.rcnt)
        for (let k = 0; k < me.rcnt; k++) w.pages[me.rlo + k] = 0
        movableLocks.unlock(w, me, REGION_MUTEX)
        for (let k = 0; k < me.rcnt; k++) w.invalPending[me.rlo + k]--
        return 'try_to_unmap'
      },
      text: (_w, me) => `mshv_region_interval_invalidate(${range(me)}): mutex_lock(&region->mutex), mmu_interval_set_seq(${me.rcur}), NO_ACCESS remap, mshv_region_invalidate_pages, mutex_unlock`,
    },
    try_to_unmap: {
      targets: [...RECLAIM_BACK],
      run(w, me) {
        unmapRange(l, w, me.rlo, me.rcnt).forEach((pfn, k) => (me.rold[k] = pfn))
        invalidateRangeEnd(w)
        me.rcur = 0
        for (let k = 0; k < me.rold.length; k++) {
          if (me.rold[k] !== 0 && !isFreed(w, me.rold[k]) && !folioMapped(l, w, w, me.rold[k])) freeFolio(w, me.rold[k], l.H)
          me.rold[k] = 0
        }
        return RECLAIM_BACK[me.rback]
      },
      text: (_w, me) => `try_to_unmap(${range(me)}): PTEs cleared, mmu_notifier_invalidate_range_end, the folio freed; the allocation goes on`,
    },
  }
}
