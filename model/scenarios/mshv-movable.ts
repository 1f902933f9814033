/**
 * MSHV movable (unpinned) memory regions: "[PATCH v6 5/5] Drivers: hv: Add
 * support for movable memory regions" as reviewed in seed 001, with the
 * huge-page stride rule of seed 000.
 *
 * VP threads take the GPA intercept path of the patch:
 *   mshv_handle_gpa_intercept -> mshv_partition_region_by_gfn ->
 *   mshv_region_handle_gfn_fault -> mshv_region_range_fault ->
 *   mshv_region_hmm_fault_and_lock (read_begin, mmap_read_lock,
 *   hmm_range_fault, mmap_read_unlock, mutex_lock, read_retry) ->
 *   pages[] and large_pages -> mshv_region_remap_pages -> mutex_unlock.
 * Host mm threads invalidate through the interval notifier (the callback is
 * mshv_region_interval_invalidate as posted, including its `goto out_fail`
 * that returns with region->mutex still held) and change the host page table:
 * MADV_DONTNEED zap, page migration, THP split, khugepaged collapse, and the
 * OOM reaper's non-blockable unmap. A VMM thread destroys the region.
 *
 * Scaled down: a huge page is 2^H small pages (H = 9 on x86-64).
 * MSHV_MAP_FAULT_IN_PAGES = PTRS_PER_PMD = 2^H.
 */
import { match } from 'ts-pattern'
import { BadInput } from '../../explorer/errors.js'
import { allocHuge, allocSmall, folioHead, folioOrder, freeFolio, initMemory, isFreed, memoryFields, splitFolio, type Memory } from '../primitives/folio.js'
import { faultHuge, faultSmall, folioMapped, hostPageTableFields, thpEligible, type HostPageTable } from '../primitives/host-page-table.js'
import { alignDown, blockFirstIndex, blockInVma, blockOf, layout, type Layout } from '../primitives/layout.js'
import { lockFields, lockLocals, Locks, type LockHolder } from '../primitives/locks.js'
import {
  invalidateRangeEnd,
  invalidateRangeStart,
  notifierFields,
  notifierInsert,
  readBeginMustWait,
  readRetry,
  setSeq,
  type Notifier,
} from '../primitives/mmu-notifier.js'
import { REGION_FREED, REGION_LISTED, REGION_MOVABLE, REGION_UNLINKED, regionFields, useRegion, type Region } from '../primitives/region.js'
import { ACCESS_RW, HV_MAP_GPA_NO_ACCESS, HV_STATUS_SUCCESS, slatFields, unmapGpaPages, type Leaf } from '../primitives/slat.js'
import { remapPages } from '../drivers/mshv-regions.js'
import { process, type Process, type Step } from '../process.js'
import type { Params, Scenario } from '../scenario.js'
import { array, u8, type ValueOf } from '../schema.js'

export type MovableVariant = 'v6' | 'no-seq-retry' | 'fixed' | 'pfn-aligned-stride' | 'region-ref' | 'fixed-teardown'

/** What each variant changes, as switches the steps read. */
interface Policy {
  /** mmu_interval_read_retry() under region->mutex after hmm_range_fault(). */
  readonly seqRetry: boolean
  /** The fault chunk aligned in absolute gfn space rather than relative to start_gfn. */
  readonly absoluteChunk: boolean
  /** mshv_chunk_stride() also requires IS_ALIGNED(page_to_pfn(page), PTRS_PER_PMD) (seed 000's fix). */
  readonly pfnAlignedStride: boolean
  /** The fault path holds a region reference (mshv_partition_region_by_gfn_get / mshv_region_put). */
  readonly regionRef: boolean
  /**
   * mapcheck's proposal: destroy unmaps the SLAT under region->mutex before
   * removing the notifier, and the fault path, under the mutex, gives up on a
   * region that is being destroyed.
   */
  readonly teardownUnderMutex: boolean
}

const policies: Record<MovableVariant, Policy> = {
  v6: { seqRetry: true, absoluteChunk: false, pfnAlignedStride: false, regionRef: false, teardownUnderMutex: false },
  'no-seq-retry': { seqRetry: false, absoluteChunk: false, pfnAlignedStride: false, regionRef: false, teardownUnderMutex: false },
  fixed: { seqRetry: true, absoluteChunk: true, pfnAlignedStride: true, regionRef: true, teardownUnderMutex: false },
  'pfn-aligned-stride': { seqRetry: true, absoluteChunk: false, pfnAlignedStride: true, regionRef: false, teardownUnderMutex: false },
  'region-ref': { seqRetry: true, absoluteChunk: false, pfnAlignedStride: false, regionRef: true, teardownUnderMutex: false },
  'fixed-teardown': { seqRetry: true, absoluteChunk: true, pfnAlignedStride: true, regionRef: true, teardownUnderMutex: true },
}

const MMAP_LOCK = 0
const REGION_MUTEX = 1
export const movableLocks = new Locks([
  { name: 'mmap_lock', kind: 'rwsem' },
  { name: 'region->mutex', kind: 'mutex' },
])

const EBUSY = 1

function globals(l: Layout, frames: number) {
  return {
    ...memoryFields(frames),
    ...hostPageTableFields(l),
    ...slatFields(l),
    ...notifierFields(),
    ...lockFields(movableLocks.decls),
    ...regionFields(l),
    /** Ghost: per region page, invalidations started whose callback has not returned. */
    invalPending: array(l.N, u8()),
    /** Ghost: tid + 1 of a VP whose fault-path hypercall failed (the patch's WARN_ONCE: the access is not handled). */
    faultMapFailed: u8(),
  }
}
type G = ReturnType<typeof globals>
export type MovableWorld = ValueOf<G>
type W = MovableWorld & Memory & HostPageTable & Notifier & Region

const vpLocals = (l: Layout) => ({
  ...lockLocals,
  /** Region page the guest touches. */
  gfn: u8(),
  touched: u8(),
  off: u8(),
  cnt: u8(),
  seq: u8(),
  ret: u8(),
  /** range.hmm_pfns */
  pfns: array(l.HP, u8()),
})
type VpLocals = LockHolder & { gfn: number; touched: number; off: number; cnt: number; seq: number; ret: number; pfns: number[] | Int16Array }

const eventLocals = (l: Layout) => ({
  ...lockLocals,
  /** The invalidated range, as region page indices. */
  lo: u8(),
  cnt: u8(),
  /** cur_seq given to the callback, 0 when the interval was not hit. */
  cur: u8(),
  ok: u8(1),
  /** The folio an event works on (migration: the isolated folio's head pfn). */
  folio: u8(),
  /** The folio(s) to free after invalidate_range_end, if no longer mapped. */
  old: array(l.HP, u8()),
})
type EventLocals = LockHolder & { lo: number; cnt: number; cur: number; ok: number; folio: number; old: number[] | Int16Array }

const hex = (n: number): string => `0x${n.toString(16)}`

/** The uaddr blocks a fault of [off, off+cnt) may back with a THP (nondeterministic choice, one bit each). */
function thpCandidates(l: Layout, w: W, off: number, cnt: number): number[] {
  const out: number[] = []
  for (let b = blockOf(l, off); b <= blockOf(l, off + cnt - 1); b++) if (thpEligible(l, w, b)) out.push(b)
  return out
}

function vp(l: Layout, pol: Policy, touches: number): Process<W, VpLocals> {
  const finish = (me: VpLocals): string => {
    me.off = 0
    me.cnt = 0
    me.ret = 0
    me.gfn = 0
    return me.touched < touches ? 'touch' : 'done'
  }
  return process<W, VpLocals>({
    name: 'vp',
    locals: vpLocals(l),
    start: 'touch',
    steps: {
      /** The guest touches a gfn of the region; a missing or no-access SLAT leaf is a GPA intercept. */
      touch: {
        choices: () => l.N,
        run(w, me, i) {
          me.touched++
          if (w.slat[i].access === ACCESS_RW) return finish(me)
          me.gfn = i
          return 'mshv_partition_region_by_gfn'
        },
        text: (w, _me, i) => `guest touches gfn ${hex(l.startGfn + i)}${w.slat[i].access === ACCESS_RW ? ' (mapped)' : ': GPA intercept'}`,
      },
      mshv_partition_region_by_gfn: {
        run(w, me) {
          if (w.regionState !== REGION_LISTED) return finish(me) // not found: the intercept is not handled
          if (pol.regionRef) w.regionRefs++
          return 'mshv_region_handle_gfn_fault'
        },
        text: (w, me) =>
          `mshv_partition_region_by_gfn${pol.regionRef ? '_get' : ''}(gfn ${hex(l.startGfn + me.gfn)})${w.regionState !== REGION_LISTED ? ' = NULL' : ''}`,
      },
      mshv_region_handle_gfn_fault: {
        run(w, me) {
          useRegion(w, me.tid)
          if (pol.absoluteChunk) {
            // Align the chunk in gfn space, so a huge leaf can line up with it.
            const first = Math.max(alignDown(l.startGfn + me.gfn, l.HP) - l.startGfn, 0)
            me.off = first
            me.cnt = Math.min(l.N - first, alignDown(l.startGfn + first, l.HP) + l.HP - (l.startGfn + first))
          } else {
            // As posted: ALIGN_DOWN(gfn - region->start_gfn, MSHV_MAP_FAULT_IN_PAGES).
            me.off = alignDown(me.gfn, l.HP)
            me.cnt = Math.min(l.N - me.off, l.HP)
          }
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
      mutex_lock: movableLocks.lockStep<W, VpLocals>(REGION_MUTEX, (w, me) => {
        useRegion(w, me.tid)
        return pol.seqRetry ? 'mmu_interval_read_retry' : 'pages_update'
      }),
      mmu_interval_read_retry: {
        run(w, me) {
          if (readRetry(w, me.seq)) {
            movableLocks.unlock(w, me, REGION_MUTEX)
            return 'mmu_interval_read_begin'
          }
          // fixed-teardown: under the mutex, a region being destroyed is not mapped into.
          if (pol.teardownUnderMutex && w.regionState !== REGION_LISTED) return 'mutex_unlock'
          return 'pages_update'
        },
        text: (w, me) => `mmu_interval_read_retry(${me.seq})${readRetry(w, me.seq) ? ': -EBUSY, mutex_unlock, retry' : ''}`,
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
        run(w, me) {
          const ret = remapPages(l, w, pol, 0, me.off, me.cnt)
          if (ret !== HV_STATUS_SUCCESS && w.faultMapFailed === 0) w.faultMapFailed = me.tid + 1
          return 'mutex_unlock'
        },
        text: (_w, me) => `mshv_region_remap_pages(gfn ${hex(l.startGfn + me.off)}, ${me.cnt} pages)`,
      },
      mutex_unlock: movableLocks.unlockStep<W, VpLocals>(REGION_MUTEX, (_w, me) => (pol.regionRef ? 'mshv_region_put' : finish(me))),
      mshv_region_put: {
        run(w, me) {
          regionPut(w)
          return finish(me)
        },
      },
    },
  })
}

/** kref_put: the last reference frees the region (only once it is unlinked). */
function regionPut(w: W): void {
  w.regionRefs--
  if (w.regionRefs === 0 && w.regionState === REGION_UNLINKED) w.regionState = REGION_FREED
}

/** How a host mm event takes mmap_lock. */
type Take = 'write' | 'read' | 'read-trylock' | 'none'

interface HostEvent {
  readonly name: string
  /** The entry step's label: what the kernel calls first. */
  readonly entry: string
  readonly take: Take
  /** A non-blockable invalidation (mmu_notifier_invalidate_range_start_nonblock). */
  readonly nonblock: boolean
  /** Candidate targets in this state: each gives the invalidated range [lo, lo + cnt) and the folio it concerns. */
  readonly targets: (w: W) => readonly Target[]
  /** The page-table change made after the callbacks; records in me.old the folios to free. */
  readonly apply: { readonly label: string; readonly run: (w: W, me: EventLocals) => void }
  /** The step that frees me.old. */
  readonly free: string
}

/**
 * A host mm event, as the kernel orders it: take mmap_lock (or not),
 * mmu_notifier_invalidate_range_start -> the interval's callback ->
 * change the page table -> mmu_notifier_invalidate_range_end -> free the
 * old folios -> drop mmap_lock. A non-blockable callback that fails makes
 * the core end the invalidation with -EAGAIN: nothing is changed or freed
 * (__oom_reap_task_mm skips the range).
 */
function hostEvent(l: Layout, pol: Policy, ev: HostEvent): Process<W, EventLocals> {
  const unlockLabel = match(ev.take)
    .with('write', () => 'mmap_write_unlock')
    .with('read', 'read-trylock', () => 'mmap_read_unlock')
    .with('none', () => 'done')
    .exhaustive()
  const range = (me: EventLocals) => `uaddr ${hex(l.startUaddr + me.lo)}..${hex(l.startUaddr + me.lo + me.cnt - 1)}`
  /** Leaving the callback: the invalidation of these pages is no longer pending. */
  const callbackReturns = (w: W, me: EventLocals, ok: boolean): string => {
    for (let k = 0; k < me.cnt; k++) w.invalPending[me.lo + k]--
    me.ok = ok ? 1 : 0
    me.atomic = 0
    // A blockable callback may not fail: the core WARNs and carries on as if it had succeeded.
    return ok || !ev.nonblock ? ev.apply.label : 'mmu_notifier_invalidate_range_end'
  }
  const steps: Record<string, Step<W, EventLocals>> = {
    [ev.entry]: {
      guard: (w) =>
        match(ev.take)
          .with('write', () => movableLocks.free(w, MMAP_LOCK))
          .with('read', () => movableLocks.readable(w, MMAP_LOCK))
          .otherwise(() => true),
      choices: (w) => Math.max(ev.targets(w).length, 1),
      run(w, me, choice) {
        const targets = ev.targets(w)
        if (targets.length === 0) return 'done' // nothing to do in this state
        if (ev.take === 'read-trylock' && !movableLocks.readTrylock(w, me, MMAP_LOCK)) return 'done'
        if (ev.take === 'write') movableLocks.lock(w, me, MMAP_LOCK)
        if (ev.take === 'read') movableLocks.readLock(w, me, MMAP_LOCK)
        me.lo = targets[choice].lo
        me.cnt = targets[choice].cnt
        me.folio = targets[choice].folio
        return 'mmu_notifier_invalidate_range_start'
      },
      text: (w, _me, choice) => {
        const t = ev.targets(w)[choice]
        return t ? `${ev.entry}(uaddr ${hex(l.startUaddr + t.lo)}..${hex(l.startUaddr + t.lo + t.cnt - 1)})` : `${ev.entry}: nothing to do`
      },
    },
    mmu_notifier_invalidate_range_start: {
      run(w, me) {
        me.cur = invalidateRangeStart(w, true)
        me.ok = 1
        if (me.cur === 0) return ev.apply.label
        for (let k = 0; k < me.cnt; k++) w.invalPending[me.lo + k]++
        if (ev.nonblock) me.atomic = 1
        return 'mshv_region_interval_invalidate'
      },
      text: (w, me) => `mmu_notifier_invalidate_range_start${ev.nonblock ? '_nonblock' : ''}(${range(me)}): seq ${w.mmSeq | (w.mniInserted ? 1 : 0)}`,
    },
    mshv_region_interval_invalidate: {
      run(w, me) {
        useRegion(w, me.tid)
        if (!ev.nonblock) return 'mutex_lock'
        return movableLocks.trylock(w, me, REGION_MUTEX) ? 'mmu_interval_set_seq' : callbackReturns(w, me, false)
      },
      text: (w) => (ev.nonblock ? `mshv_region_interval_invalidate: mutex_trylock${movableLocks.free(w, REGION_MUTEX) ? '' : ' fails: return false'}` : 'mshv_region_interval_invalidate'),
    },
    mutex_lock: movableLocks.lockStep(REGION_MUTEX, 'mmu_interval_set_seq'),
    mmu_interval_set_seq: {
      run(w, me) {
        setSeq(w, me.cur)
        return 'remap_no_access'
      },
      text: (_w, me) => `mmu_interval_set_seq(${me.cur})`,
    },
    /** mshv_region_remap_pages(region, HV_MAP_GPA_NO_ACCESS, ...); on failure the patch does `goto out_fail`, still holding the mutex. */
    remap_no_access: {
      run(w, me) {
        if (remapPages(l, w, pol, HV_MAP_GPA_NO_ACCESS, me.lo, me.cnt) !== HV_STATUS_SUCCESS) return callbackReturns(w, me, false)
        return 'mshv_region_invalidate_pages'
      },
      text: (_w, me) => `mshv_region_remap_pages(NO_ACCESS, gfn ${hex(l.startGfn + me.lo)}, ${me.cnt} pages)`,
    },
    mshv_region_invalidate_pages: {
      run(w, me) {
        for (let k = 0; k < me.cnt; k++) w.pages[me.lo + k] = 0
        return 'cb_mutex_unlock'
      },
      text: (_w, me) => `mshv_region_invalidate_pages(${me.lo}, ${me.cnt})`,
    },
    cb_mutex_unlock: {
      run(w, me) {
        movableLocks.unlock(w, me, REGION_MUTEX)
        return callbackReturns(w, me, true)
      },
      text: () => 'mutex_unlock(&region->mutex); return true',
    },
    [ev.apply.label]: {
      run(w, me) {
        ev.apply.run(w, me)
        return 'mmu_notifier_invalidate_range_end'
      },
      text: (_w, me) => `${ev.apply.label}(${range(me)})`,
    },
    mmu_notifier_invalidate_range_end: {
      run(w, me) {
        invalidateRangeEnd(w)
        me.cur = 0
        // -EAGAIN from a failed non-blockable callback: nothing was unmapped, nothing is freed.
        return me.ok || !ev.nonblock ? ev.free : unlockLabel
      },
      text: (_w, me) => `mmu_notifier_invalidate_range_end(${range(me)})${me.ok || !ev.nonblock ? '' : ': -EAGAIN'}`,
    },
    [ev.free]: {
      run(w, me) {
        // folio_put(): a folio goes back to the allocator once nothing maps it.
        for (let k = 0; k < l.HP; k++) {
          if (me.old[k] !== 0 && !isFreed(w, me.old[k]) && !folioMapped(l, w, w, me.old[k])) freeFolio(w, me.old[k], l.H)
          me.old[k] = 0
        }
        me.folio = 0
        return unlockLabel
      },
      text: (_w, me) => `${ev.free}: free pfn ${Array.from(me.old).filter(Boolean).map(hex).join(' ') || '-'}`,
    },
  }
  if (ev.take === 'write') {
    steps.mmap_write_unlock = movableLocks.unlockStep(MMAP_LOCK, 'done')
  } else if (ev.take !== 'none') {
    steps.mmap_read_unlock = {
      run(w, me) {
        if (me.held & (1 << MMAP_LOCK)) movableLocks.readUnlock(w, me, MMAP_LOCK)
        return 'done'
      },
    }
  }
  // The event's own page-table change, the freeing and the unlock are gotos computed from `ev`.
  return process<W, EventLocals>({ name: ev.name, locals: eventLocals(l), start: ev.entry, steps, gotos: [ev.apply.label, ev.free, unlockLabel] })
}

interface Target {
  readonly lo: number
  readonly cnt: number
  readonly folio: number
}

/** The mapped folios, each with the uaddr range that maps it (a PMD-mapped THP: its whole block). */
const mappedFolios = (l: Layout) => (w: W) => {
  const out: Target[] = []
  for (let i = 0; i < l.N; i++) {
    if (w.pte[i] === 0) continue
    const folio = folioHead(w, w.pte[i], l.H)
    const last = out[out.length - 1]
    if (last && last.folio === folio && last.lo + last.cnt === i) out[out.length - 1] = { ...last, cnt: last.cnt + 1 }
    else out.push({ lo: i, cnt: 1, folio })
  }
  return out
}

/**
 * zap_page_range_single (MADV_DONTNEED) / the OOM reaper's unmap_page_range:
 * clear the PTEs of the range; a PMD only partly in the range is split first
 * (split_huge_pmd), leaving the THP mapped by its other PTEs.
 */
function zap(l: Layout) {
  return (w: W, me: EventLocals) => {
    for (let b = blockOf(l, me.lo); b <= blockOf(l, me.lo + me.cnt - 1); b++) w.pmd[b] = 0
    for (let k = 0; k < me.cnt; k++) {
      me.old[k] = w.pte[me.lo + k]
      w.pte[me.lo + k] = 0
    }
  }
}

/**
 * remove_migration_ptes() after migrate_folio(): every PTE that maps the
 * isolated folio now maps the same offset of a new folio of the same order;
 * the old folio is freed. If the folio was zapped meanwhile, nothing maps it
 * and there is nothing to replace.
 */
function migrate(l: Layout) {
  return (w: W, me: EventLocals) => {
    const head = me.folio
    const n = folioOrder(w, head, l.H) === l.H ? l.HP : 1
    let fresh = 0
    for (let i = 0; i < l.N; i++) {
      const pfn = w.pte[i]
      if (pfn < head || pfn >= head + n) continue
      if (fresh === 0) fresh = n > 1 ? allocHuge(w, l.H) : allocSmall(w)
      w.pte[i] = fresh + (pfn - head)
    }
    me.old[0] = fresh ? head : 0
  }
}

function events(l: Layout, pol: Policy, p: Params): { name: string; process: Process<W, EventLocals> }[] {
  const present = mappedFolios(l)
  const kinds: [string, number, HostEvent][] = [
    [
      'zap',
      p.zaps,
      {
        name: 'madvise_dontneed',
        entry: 'madvise_dontneed',
        take: 'read',
        nonblock: false,
        targets: present,
        apply: { label: 'zap_page_range', run: zap(l) },
        free: 'tlb_finish_mmu',
      },
    ],
    [
      'migrate',
      p.migrations,
      {
        name: 'migrate_pages',
        entry: 'migrate_pages',
        take: 'none',
        nonblock: false,
        targets: present,
        apply: { label: 'remove_migration_ptes', run: migrate(l) },
        free: 'folio_put',
      },
    ],
    [
      'split',
      p.splits,
      {
        name: 'split_huge_pmd',
        entry: 'split_huge_pmd',
        take: 'read',
        nonblock: false,
        targets: (w) =>
          Array.from({ length: l.blocks }, (_, b) => b)
            .filter((b) => w.pmd[b] === 1)
            .map((b) => ({ lo: blockFirstIndex(l, b), cnt: l.HP, folio: w.pte[blockFirstIndex(l, b)] })),
        apply: {
          label: '__split_huge_pmd',
          run(w, me) {
            // Only if the THP picked is still PMD-mapped here (it may have been zapped or migrated meanwhile).
            const blk = blockOf(l, me.lo)
            if (w.pmd[blk] !== 1 || folioHead(w, w.pte[me.lo], l.H) !== me.folio) return
            w.pmd[blk] = 0
            splitFolio(w, me.folio, l.H)
          },
        },
        free: 'split_done',
      },
    ],
    [
      'collapse',
      p.collapses,
      {
        name: 'khugepaged',
        entry: 'collapse_huge_page',
        take: 'write',
        nonblock: false,
        targets: (w) =>
          Array.from({ length: l.blocks }, (_, b) => b)
            .filter((b) => blockInVma(l, b) && w.pmd[b] === 0 && Array.from({ length: l.HP }, (_, k) => w.pte[blockFirstIndex(l, b) + k]).some(Boolean))
            .map((b) => ({ lo: blockFirstIndex(l, b), cnt: l.HP, folio: 0 })),
        apply: {
          label: 'set_pmd_at',
          run(w, me) {
            const fresh = allocHuge(w, l.H)
            for (let k = 0; k < l.HP; k++) {
              me.old[k] = w.pte[me.lo + k]
              w.pte[me.lo + k] = fresh + k
            }
            w.pmd[blockOf(l, me.lo)] = 1
          },
        },
        free: 'free_old_pages',
      },
    ],
    [
      'reclaim',
      p.reclaims,
      {
        name: 'oom_reaper',
        entry: '__oom_reap_task_mm',
        take: 'read-trylock',
        nonblock: true,
        targets: present,
        apply: { label: 'unmap_page_range', run: zap(l) },
        free: 'tlb_finish_mmu',
      },
    ],
  ]
  return kinds.flatMap(([short, count, ev]) => {
    const proc = hostEvent(l, pol, ev)
    return Array.from({ length: count }, (_, k) => ({ name: `${short}${k}`, process: proc }))
  })
}

type VmmLocals = LockHolder & { seq: number }

/** The VMM unmapping the region: mshv_partition_destroy_region() as posted (v6), or with reference counting. */
function vmm(l: Layout, pol: Policy): Process<W, VmmLocals> {
  const release = pol.regionRef ? 'mshv_region_put' : 'vfree'
  // As posted the notifier goes first, then the SLAT; fixed-teardown unmaps the SLAT first.
  const afterRemove = pol.teardownUnderMutex ? release : 'hv_call_unmap_gpa_pages'
  return process<W, VmmLocals>({
    name: 'vmm',
    locals: { ...lockLocals, seq: u8() },
    start: 'hlist_del',
    steps: {
      hlist_del: {
        run(w) {
          w.regionState = REGION_UNLINKED
          return pol.teardownUnderMutex ? 'mutex_lock' : 'mmu_interval_notifier_remove'
        },
        text: () => 'mshv_partition_destroy_region: hlist_del(&region->hnode)',
      },
      mutex_lock: movableLocks.lockStep(REGION_MUTEX, 'hv_call_unmap_gpa_pages'),
      mutex_unlock: movableLocks.unlockStep(REGION_MUTEX, 'mmu_interval_notifier_remove'),
      /** Deferred while the mm is invalidating: waits until invalidate_seq moves on. */
      mmu_interval_notifier_remove: {
        run(w, me) {
          if ((w.mmSeq & 1) === 1) {
            me.seq = w.mmSeq
            return 'wait_event'
          }
          w.mniInserted = 0
          return afterRemove
        },
      },
      wait_event: {
        guard: (w, me) => w.mmSeq !== me.seq,
        run(w, me) {
          w.mniInserted = 0
          me.seq = 0
          return afterRemove
        },
        text: () => 'mmu_interval_notifier_remove: woken, removed',
      },
      hv_call_unmap_gpa_pages: {
        run(w) {
          unmapGpaPages(w.slat as Leaf[], 0, l.N)
          return 'mshv_region_invalidate'
        },
        text: () => `hv_call_unmap_gpa_pages(gfn ${hex(l.startGfn)}, ${l.N} pages)`,
      },
      mshv_region_invalidate: {
        run(w) {
          for (let i = 0; i < l.N; i++) w.pages[i] = 0
          return pol.teardownUnderMutex ? 'mutex_unlock' : release
        },
      },
      ...(pol.regionRef
        ? {
            mshv_region_put: {
              run(w: W) {
                regionPut(w)
                return 'done'
              },
            },
          }
        : {
            vfree: {
              run(w: W) {
                w.regionState = REGION_FREED
                return 'done'
              },
              text: () => 'vfree(region)',
            },
          }),
    },
    // The release and the step after the notifier's removal depend on the variant.
    gotos: [release, afterRemove],
  })
}

export const mshvMovable: Scenario<G> = {
  name: 'mshv-movable',
  title: 'MSHV movable regions: GPA intercept vs mmu_interval_notifier (seed 001)',
  description:
    'The fault path of "[PATCH v6 5/5] Drivers: hv: Add support for movable memory regions" (hmm_range_fault, region->mutex, mmu_interval_read_retry, mshv_chunk_stride) against host zaps, migration, THP split, khugepaged collapse, the OOM reaper and region destruction.',
  params: [
    { name: 'H', default: 1, min: 1, max: 3, description: 'huge order: a huge page is 2^H small pages (9 on x86-64)' },
    { name: 'pages', default: 4, min: 1, max: 16, description: 'region size in small pages (nr_pages)' },
    { name: 'gfn_offset', default: 0, min: 0, max: 7, description: 'start_gfn modulo 2^H' },
    { name: 'uaddr_offset', default: 0, min: 0, max: 7, description: 'start_uaddr modulo 2^H (in small pages)' },
    { name: 'vps', default: 2, min: 1, max: 4, description: 'VP threads' },
    { name: 'touches', default: 1, min: 1, max: 3, description: 'gfns each VP touches' },
    { name: 'zaps', default: 1, min: 0, max: 3, description: 'MADV_DONTNEED zaps' },
    { name: 'migrations', default: 0, min: 0, max: 2, description: 'page migrations' },
    { name: 'splits', default: 0, min: 0, max: 2, description: 'THP splits (split_huge_pmd)' },
    { name: 'collapses', default: 0, min: 0, max: 2, description: 'khugepaged collapses' },
    { name: 'reclaims', default: 0, min: 0, max: 2, description: 'OOM-reaper unmaps (non-blockable invalidation)' },
    { name: 'destroy', default: 0, min: 0, max: 1, description: 'the VMM destroys the region' },
  ],
  variants: [
    { name: 'v6', description: 'as posted in [PATCH v6 5/5]' },
    { name: 'no-seq-retry', description: 'v6 without mmu_interval_read_retry() under the mutex' },
    { name: 'fixed', description: 'v6 + gfn-aligned fault chunk + pfn-aligned stride (seed 000) + region reference (seed 004)' },
    { name: 'pfn-aligned-stride', description: 'v6 + only seed 000\'s fix: mshv_chunk_stride also requires a huge-aligned pfn' },
    { name: 'region-ref', description: 'v6 + only the region reference across the fault path (mshv_partition_region_by_gfn_get)' },
    {
      name: 'fixed-teardown',
      description: 'fixed + (mapcheck) destroy unmaps the SLAT under region->mutex before removing the notifier; the fault path gives up on a dying region',
    },
  ],
  build(p: Params, variant: string) {
    const pol = policies[variant as MovableVariant]
    const HP = 1 << p.H
    if (p.gfn_offset >= HP || p.uaddr_offset >= HP) {
      throw new BadInput(`gfn_offset and uaddr_offset must be below 2^H = ${HP}`)
    }
    const l = layout(p.H, p.pages, p.gfn_offset, p.uaddr_offset)
    // Frames for every allocation the bounds allow: faults (each event can make pages fault again) and new folios.
    const eventCount = p.zaps + p.migrations + p.collapses + p.reclaims
    const frames = 2 + 2 * HP + 2 * (l.N + HP) * (1 + eventCount) + HP * (p.migrations + p.collapses)
    if (frames > 255) throw new BadInput(`these bounds need ${frames} frames; at most 255 fit a byte: lower pages, H or the event counts`)
    const threads = [
      ...Array.from({ length: p.vps }, (_, k) => ({ name: `vp${k}`, process: vp(l, pol, p.touches) })),
      ...events(l, pol, p),
      ...(p.destroy ? [{ name: 'vmm', process: vmm(l, pol) }] : []),
    ].map((t, tid) => ({ ...t, locals: { tid } }))
    return {
      globals: globals(l, frames),
      init(w: MovableWorld) {
        initMemory(w as unknown as Memory)
        notifierInsert(w)
        w.regionKind = REGION_MOVABLE
        w.regionState = REGION_LISTED
        w.regionRefs = pol.regionRef ? 1 : 0
      },
      threads,
    }
  },
}

/** The layout a parameter set gives, for invariants and tests. */
export function movableLayout(p: Params): Layout {
  return layout(p.H, p.pages, p.gfn_offset, p.uaddr_offset)
}
