/**
 * A VP taking the GPA intercept path of [PATCH v6 5/5]:
 *   mshv_handle_gpa_intercept -> mshv_partition_region_by_gfn ->
 *   mshv_region_handle_gfn_fault -> mshv_region_range_fault ->
 *   mshv_region_hmm_fault_and_lock (read_begin, mmap_read_lock,
 *   hmm_range_fault, mmap_read_unlock, mutex_lock, read_retry) ->
 *   pages[] and large_pages -> mshv_region_remap_pages -> mutex_unlock.
 * hmm_range_fault() walks the range a page at a time (mm/hmm.c), so
 * invalidations that take no mmap_lock (migration, split_folio) run between
 * its steps; it fails with -EFAULT or -EPERM when the VMM has unmapped or
 * write-protected the memory (vmm-mm.ts), and the intercept is then not
 * handled.
 * This is v6 as posted; the variants patch its steps (variants.ts).
 */
import { folioOrder } from '../../primitives/folio.js'
import { faultHuge, faultMthp, faultSmall, hmmVmaError, hmmWalkRead, mthpRange, thpEligible } from '../../primitives/host-page-table.js'
import { alignDown, blockFirstIndex, blockOf, type Layout } from '../../primitives/layout.js'
import { readBeginMustWait, readRetry } from '../../primitives/mmu-notifier.js'
import { REGION_LISTED, useRegion } from '../../primitives/region.js'
import { ACCESS_RW, HV_STATUS_SUCCESS } from '../../primitives/slat.js'
import { DONE, process, type Process } from '../../process.js'
import { strideErrorText } from '../../drivers/mshv-regions.js'
import { mayReclaim, reclaimLocals, reclaimSteps, type ReclaimLocals } from './direct-reclaim.js'
import { depositChoices, depositIfAsked, depositText, EBUSY, EFAULT, EPERM, hex, MMAP_LOCK, movableLocks, oldLen, REGION_MUTEX, vpLocals, type MovableContext, type MovableWorld as W, type VpLocals } from './world.js'

/** The intercept is over (handled or not): the guest touches its next gfn, or the VP is done. */
export function interceptDone(ctx: MovableContext, me: VpLocals): 'touch' | typeof DONE {
  me.off = 0
  me.cnt = 0
  me.ret = 0
  me.walk = 0
  me.gfn = 0
  return me.touched < ctx.touches ? 'touch' : DONE
}

/**
 * In a VP's `ret` during hmm_range_fault(): the walk returned -EBUSY after a
 * fault (hmm_vma_fault), so the do-while loop goes round and tests
 * mmu_interval_check_retry before it walks on; not the call's -EBUSY
 * (`EBUSY`), which sends the VP back to mmu_interval_read_begin.
 */
export const WALK_AGAIN = 4

/** The label of the region reference's put, in the variants that have it (see `interceptFailed`). */
const REGION_PUT = 'mshv_region_put'

/**
 * hmm_range_fault() failed with -EFAULT or -EPERM: mshv_region_range_fault
 * returns it (`if (ret) goto out`), mshv_region_handle_gfn_fault WARN_ONCEs
 * ("GPA intercept failed") and returns false, and mshv_handle_gpa_intercept
 * puts the region reference it holds (upstream: mshv_region_put after
 * mshv_region_handle_gfn_fault). A variant with the reference counts the VP's
 * in regionRefs and has the step mshv_region_put (region-ref, fixed,
 * upstream); v6 takes none (regionRefs stays 0) and the intercept is over.
 * The put is a goto computed from the world into a step only those variants
 * have, so it is typed as v6's labels; the build checks it when it is taken.
 */
export function interceptFailed(ctx: MovableContext, w: W, me: VpLocals): 'touch' | typeof DONE {
  if (w.regionRefs > 0) return REGION_PUT as 'touch'
  return interceptDone(ctx, me)
}

/**
 * What one step of hmm_range_fault()'s walk does (mm/hmm.c), for the VP at
 * range page `me.walk`:
 * - at the top of the do-while loop (the call's first step, or after a fault
 *   made walk_page_range return -EBUSY: `me.ret === WALK_AGAIN`), it first tests
 *   mmu_interval_check_retry(range->notifier, range->notifier_seq) and
 *   returns -EBUSY on a change;
 * - no VMA, or a read-only one asked for write (HMM_PFN_REQ_WRITE, as
 *   mshv_region_range_fault sets): -EFAULT / -EPERM (`hmmVmaError`);
 * - a present page is read (a PMD-mapped block in one go: hmm_vma_handle_pmd);
 * - an empty PTE is faulted (hmm_vma_fault -> handle_mm_fault, a THP if its
 *   block is eligible: do_huge_pmd_anonymous_page), then the walk returns
 *   -EBUSY and the loop re-checks before it reads the page.
 */
type Walk =
  | { readonly kind: 'ebusy' }
  | { readonly kind: 'error'; readonly err: 'EFAULT' | 'EPERM' }
  | { readonly kind: 'read'; readonly end: number }
  | { readonly kind: 'fault'; readonly folios: readonly FaultFolio[] }

/**
 * What a fault may allocate, in choice order: an order-0 page always (an
 * allocation of a larger folio may fail and fall back); a THP when the block
 * is eligible (__handle_mm_fault -> create_huge_pmd ->
 * do_huge_pmd_anonymous_page); an mTHP of the `mthp` order when its aligned
 * range is in the VMA and empty (do_anonymous_page -> alloc_anon_folio).
 */
type FaultFolio = 'small' | 'thp' | 'mthp' | 'pud'

function faultFolios(ctx: MovableContext, w: W, i: number): FaultFolio[] {
  const { l } = ctx
  const out: FaultFolio[] = ['small']
  if (thpEligible(l, w, blockOf(l, i))) out.push('thp')
  if (ctx.mthp && mthpRange(l, w, i, ctx.mthp)) out.push('mthp')
  // --param pud: an order-2H folio over the 2^(2H)-aligned unit, PTE-mapped (the page table has no PUD level).
  if (ctx.pud && mthpRange(l, w, i, 2 * l.H)) out.push('pud')
  return out
}

function walkStep(ctx: MovableContext, w: W, me: VpLocals): Walk {
  const { l } = ctx
  if ((me.walk === 0 || me.ret === WALK_AGAIN) && readRetry(w, me.seq)) return { kind: 'ebusy' }
  const err = hmmVmaError(w, true)
  if (err) return { kind: 'error', err }
  const i = me.off + me.walk
  const end = hmmWalkRead(l, w, i, me.off + me.cnt)
  if (end > i) return { kind: 'read', end }
  return { kind: 'fault', folios: faultFolios(ctx, w, i) }
}

/** How a trace shows mmu_interval_read_retry() (a patch that changes the step keeps it). */
export const readRetryText = (w: W, me: VpLocals): string => `mmu_interval_read_retry(${me.seq})${readRetry(w, me.seq) ? ': -EBUSY, mutex_unlock, retry' : ''}`

export function vp(ctx: MovableContext): Process<W, VpLocals> {
  const { l } = ctx
  return process<W, VpLocals>()({
    name: 'vp',
    locals: { ...vpLocals(l, ctx.frames - 1), ...(ctx.directReclaim ? reclaimLocals(l, oldLen(ctx), ctx.frames - 1) : {}) },
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
      /** One step of hmm_range_fault()'s walk over the range (`walkStep`): a page read or faulted, or the call's return. */
      hmm_range_fault: {
        choices: (w, me) => {
          const s = walkStep(ctx, w, me)
          return s.kind === 'fault' ? s.folios.length : 1
        },
        run(w, me, choice) {
          const s = walkStep(ctx, w, me)
          const i = me.off + me.walk
          switch (s.kind) {
            case 'ebusy':
              me.ret = EBUSY
              return 'mmap_read_unlock'
            case 'error':
              me.ret = s.err === 'EFAULT' ? EFAULT : EPERM
              return 'mmap_read_unlock'
            case 'read':
              for (let k = i; k < s.end; k++) me.pfns[k - me.off] = w.pte[k]
              me.ret = 0
              me.walk = s.end - me.off
              return me.walk === me.cnt ? 'mmap_read_unlock' : 'hmm_range_fault'
            case 'fault':
              // HMM_PFN_REQ_FAULT: handle_mm_fault; a PMD-sized fault may allocate a THP for the whole block, a PTE fault an mTHP.
              if (s.folios[choice] === 'thp') faultHuge(l, w, w, blockOf(l, i))
              else if (s.folios[choice] === 'mthp') faultMthp(l, w, w, i, ctx.mthp!)
              else if (s.folios[choice] === 'pud') faultMthp(l, w, w, i, 2 * l.H)
              else faultSmall(w, w, i)
              me.ret = WALK_AGAIN
              return 'hmm_range_fault'
          }
        },
        text: (w, me, choice) => {
          const range = `gfn ${hex(l.startGfn + me.off)}..${hex(l.startGfn + me.off + me.cnt - 1)}`
          const s = walkStep(ctx, w, me)
          const i = me.off + me.walk
          const ua = hex(l.startUaddr + i)
          switch (s.kind) {
            case 'ebusy':
              return me.ret === WALK_AGAIN ? `hmm_range_fault(${range}): after the fault, mmu_interval_check_retry: -EBUSY` : `hmm_range_fault(${range}) = -EBUSY`
            case 'error':
              return s.err === 'EFAULT' ? `hmm_range_fault(${range}): no VMA at uaddr ${ua} = -EFAULT` : `hmm_range_fault(${range}): uaddr ${ua} in a read-only VMA, HMM_PFN_REQ_WRITE = -EPERM`
            case 'read':
              return s.end - i > 1
                ? `hmm_range_fault(${range}): uaddr ${ua}..${hex(l.startUaddr + s.end - 1)} = pfn ${hex(w.pte[i])}..${hex(w.pte[s.end - 1])} (PMD)`
                : `hmm_range_fault(${range}): uaddr ${ua} = pfn ${hex(w.pte[i])}`
            case 'fault':
              if (s.folios[choice] === 'thp') return `hmm_range_fault(${range}): fault uaddr ${ua}, THP at uaddr ${hex(l.startUaddr + blockFirstIndex(l, blockOf(l, i)))}`
              if (s.folios[choice] === 'mthp') {
                const r = mthpRange(l, w, i, ctx.mthp!)!
                return `hmm_range_fault(${range}): fault uaddr ${ua}, order-${ctx.mthp} mTHP at uaddr ${hex(l.startUaddr + r.first)}..${hex(l.startUaddr + r.first + r.n - 1)}`
              }
              if (s.folios[choice] === 'pud') {
                const r = mthpRange(l, w, i, 2 * l.H)!
                return `hmm_range_fault(${range}): fault uaddr ${ua}, order-${2 * l.H} (1G) folio at uaddr ${hex(l.startUaddr + r.first)}..${hex(l.startUaddr + r.first + r.n - 1)}`
              }
              return `hmm_range_fault(${range}): fault uaddr ${ua}`
          }
        },
      },
      mmap_read_unlock: {
        run(w, me) {
          movableLocks.readUnlock(w, me, MMAP_LOCK)
          me.walk = 0
          if (me.ret === EBUSY) {
            me.ret = 0
            return 'mmu_interval_read_begin'
          }
          if (me.ret !== 0) {
            if (w.faultFailed === 0) w.faultFailed = me.tid + 1
            return interceptFailed(ctx, w, me)
          }
          return 'mutex_lock'
        },
        text: (_w, me) =>
          me.ret === EFAULT || me.ret === EPERM
            ? `mmap_read_unlock; ${me.ret === EFAULT ? '-EFAULT' : '-EPERM'}: mshv_region_handle_gfn_fault WARN_ONCE "GPA intercept failed", returns false`
            : 'mmap_read_unlock',
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
        // With direct_reclaim, a third branch: the deposit's allocation reclaims a folio of this region (direct-reclaim.ts).
        choices: (w, me) => depositChoices(ctx) + (mayReclaim(ctx, w, me) ? 1 : 0),
        targets: ['mutex_unlock', ...(ctx.directReclaim ? ['direct_reclaim' as 'mutex_unlock'] : [])],
        run(w, me, choice) {
          depositIfAsked(w, me, Math.min(choice, 1))
          if (choice === 2) {
            ;(me as ReclaimLocals).rback = 0
            return 'direct_reclaim' as 'mutex_unlock'
          }
          const ret = ctx.mshv_region_remap_pages(w, 0, me.off, me.cnt)
          if (ret !== HV_STATUS_SUCCESS && w.faultMapFailed === 0) w.faultMapFailed = me.tid + 1
          return 'mutex_unlock'
        },
        text: (w, me, choice) =>
          choice === 2
            ? `mshv_region_remap_pages(gfn ${hex(l.startGfn + me.off)}, ${me.cnt} pages)${depositText(1)}: the allocation enters direct reclaim`
            : `mshv_region_remap_pages(gfn ${hex(l.startGfn + me.off)}, ${me.cnt} pages)${depositText(choice)}${strideErrorText(l, w, ctx.mshv_chunk_stride, me.off, me.cnt)}`,
      },
      mutex_unlock: movableLocks.unlockStep(REGION_MUTEX, (_w, me) => interceptDone(ctx, me)),
      ...((ctx.directReclaim ? reclaimSteps(ctx) : {}) as Record<string, never>),
    },
  })
}
