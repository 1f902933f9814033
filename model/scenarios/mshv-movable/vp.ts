/**
 * A VP taking the GPA intercept path of [PATCH v6 5/5]:
 *   mshv_handle_gpa_intercept -> mshv_partition_region_by_gfn ->
 *   mshv_region_handle_gfn_fault -> mshv_region_range_fault ->
 *   mshv_region_hmm_fault_and_lock (read_begin, mmap_read_lock,
 *   hmm_range_fault, mmap_read_unlock, mutex_lock, read_retry) ->
 *   pages[] and large_pages -> mshv_region_remap_pages -> mutex_unlock.
 * This is v6 as posted; the variants patch its steps (variants.ts).
 */
import { folioOrder } from '../../primitives/folio.js'
import { faultHuge, faultSmall, thpEligible } from '../../primitives/host-page-table.js'
import { alignDown, blockFirstIndex, blockOf, type Layout } from '../../primitives/layout.js'
import { readBeginMustWait, readRetry } from '../../primitives/mmu-notifier.js'
import { REGION_LISTED, useRegion } from '../../primitives/region.js'
import { ACCESS_RW, HV_STATUS_SUCCESS } from '../../primitives/slat.js'
import { DONE, process, type Process } from '../../process.js'
import { depositChoices, depositIfAsked, depositText, EBUSY, hex, MMAP_LOCK, movableLocks, REGION_MUTEX, vpLocals, type MovableContext, type MovableWorld as W, type VpLocals } from './world.js'

/** The intercept is over (handled or not): the guest touches its next gfn, or the VP is done. */
export function interceptDone(ctx: MovableContext, me: VpLocals): 'touch' | typeof DONE {
  me.off = 0
  me.cnt = 0
  me.ret = 0
  me.gfn = 0
  return me.touched < ctx.touches ? 'touch' : DONE
}

/** The uaddr blocks a fault of [off, off+cnt) may back with a THP (nondeterministic choice, one bit each). */
function thpCandidates(l: Layout, w: W, off: number, cnt: number): number[] {
  const out: number[] = []
  for (let b = blockOf(l, off); b <= blockOf(l, off + cnt - 1); b++) if (thpEligible(l, w, b)) out.push(b)
  return out
}

/** How a trace shows mmu_interval_read_retry() (a patch that changes the step keeps it). */
export const readRetryText = (w: W, me: VpLocals): string => `mmu_interval_read_retry(${me.seq})${readRetry(w, me.seq) ? ': -EBUSY, mutex_unlock, retry' : ''}`

export function vp(ctx: MovableContext): Process<W, VpLocals> {
  const { l } = ctx
  return process<W, VpLocals>()({
    name: 'vp',
    locals: vpLocals(l),
    start: 'touch',
    steps: {
      /** The guest touches a gfn of the region; a missing or no-access SLAT leaf is a GPA intercept. */
      touch: {
        choices: () => l.N,
        run(w, me, i) {
          me.touched++
          if (w.slat[i].access === ACCESS_RW) return interceptDone(ctx, me)
          me.gfn = i
          return 'mshv_partition_region_by_gfn'
        },
        text: (w, _me, i) => `guest touches gfn ${hex(l.startGfn + i)}${w.slat[i].access === ACCESS_RW ? ' (mapped)' : ': GPA intercept'}`,
      },
      mshv_partition_region_by_gfn: {
        run(w, me) {
          if (w.regionState !== REGION_LISTED) return interceptDone(ctx, me) // not found: the intercept is not handled
          return 'mshv_region_handle_gfn_fault'
        },
        text: (w, me) => `mshv_partition_region_by_gfn(gfn ${hex(l.startGfn + me.gfn)})${w.regionState !== REGION_LISTED ? ' = NULL' : ''}`,
      },
      mshv_region_handle_gfn_fault: {
        run(w, me) {
          useRegion(w, me.tid)
          // ALIGN_DOWN(gfn - region->start_gfn, MSHV_MAP_FAULT_IN_PAGES): the chunk is aligned relative to start_gfn.
          me.off = alignDown(me.gfn, l.HP)
          me.cnt = Math.min(l.N - me.off, l.HP)
          return 'mmu_interval_read_begin'
        },
        text: (_w, me) => `mshv_region_handle_gfn_fault(gfn ${hex(l.startGfn + me.gfn)})`,
      },
      mmu_interval_read_begin: {
        run(w, me) {
          useRegion(w, me.tid)
          me.seq = w.mniSeq
          return readBeginMustWait(w) ? 'wait_event' : 'mmap_read_lock'
        },
        text: (w, me) =>
          `mmu_interval_read_begin(gfn ${hex(l.startGfn + me.off)}..${hex(l.startGfn + me.off + me.cnt - 1)}) = ${w.mniSeq}${readBeginMustWait(w) ? ', sleeps' : ''}`,
      },
      /** mmu_interval_read_begin() sleeps until the invalidation covering the interval ends. */
      wait_event: {
        guard: (w, me) => w.mmSeq !== me.seq,
        run: () => 'mmap_read_lock',
        text: () => 'woken: invalidate_seq moved on',
      },
      mmap_read_lock: {
        guard: (w) => movableLocks.readable(w, MMAP_LOCK),
        run(w, me) {
          movableLocks.readLock(w, me, MMAP_LOCK)
          return 'hmm_range_fault'
        },
      },
      hmm_range_fault: {
        choices: (w, me) => (readRetry(w, me.seq) ? 1 : 1 << thpCandidates(l, w, me.off, me.cnt).length),
        run(w, me, choice) {
          if (readRetry(w, me.seq)) {
            me.ret = EBUSY
            return 'mmap_read_unlock'
          }
          // HMM_PFN_REQ_FAULT: fault in every missing page; a PMD-sized fault may pick a THP (do_huge_pmd_anonymous_page).
          const thp = thpCandidates(l, w, me.off, me.cnt).filter((_, k) => (choice >> k) & 1)
          for (const b of thp) faultHuge(l, w, w, b)
          for (let k = 0; k < me.cnt; k++) {
            faultSmall(w, w, me.off + k)
            me.pfns[k] = w.pte[me.off + k]
          }
          me.ret = 0
          return 'mmap_read_unlock'
        },
        text: (w, me, choice) => {
          const range = `gfn ${hex(l.startGfn + me.off)}..${hex(l.startGfn + me.off + me.cnt - 1)}`
          if (readRetry(w, me.seq)) return `hmm_range_fault(${range}) = -EBUSY`
          const thp = thpCandidates(l, w, me.off, me.cnt).filter((_, k) => (choice >> k) & 1)
          return `hmm_range_fault(${range})${thp.length ? `: THP at uaddr ${thp.map((b) => hex(l.startUaddr + blockFirstIndex(l, b))).join(', ')}` : ''}`
        },
      },
      mmap_read_unlock: {
        run(w, me) {
          movableLocks.readUnlock(w, me, MMAP_LOCK)
          if (me.ret === EBUSY) {
            me.ret = 0
            return 'mmu_interval_read_begin'
          }
          return 'mutex_lock'
        },
      },
      mutex_lock: movableLocks.lockStep(REGION_MUTEX, (w, me) => {
        useRegion(w, me.tid)
        return 'mmu_interval_read_retry' as const
      }),
      mmu_interval_read_retry: {
        run(w, me) {
          if (readRetry(w, me.seq)) {
            movableLocks.unlock(w, me, REGION_MUTEX)
            return 'mmu_interval_read_begin'
          }
          return 'pages_update'
        },
        text: readRetryText,
      },
      /** region->pages[page_offset + i] = hmm_pfn_to_page(pfns[i]); large_pages from the first page. */
      pages_update: {
        run(w, me) {
          useRegion(w, me.tid)
          for (let k = 0; k < me.cnt; k++) w.pages[me.off + k] = me.pfns[k]
          if (folioOrder(w, w.pages[me.off], l.H) === l.H) w.largePages = 1
          return 'mshv_region_remap_pages'
        },
        text: (_w, me) => `region->pages[${me.off}..${me.off + me.cnt - 1}] = ${Array.from(me.pfns.slice(0, me.cnt), hex).join(' ')}`,
      },
      mshv_region_remap_pages: {
        choices: () => depositChoices(ctx),
        run(w, me, choice) {
          depositIfAsked(w, me, choice)
          const ret = ctx.mshv_region_remap_pages(w, 0, me.off, me.cnt)
          if (ret !== HV_STATUS_SUCCESS && w.faultMapFailed === 0) w.faultMapFailed = me.tid + 1
          return 'mutex_unlock'
        },
        text: (_w, me, choice) => `mshv_region_remap_pages(gfn ${hex(l.startGfn + me.off)}, ${me.cnt} pages)${depositText(choice)}`,
      },
      mutex_unlock: movableLocks.unlockStep(REGION_MUTEX, (_w, me) => interceptDone(ctx, me)),
    },
  })
}
