/**
 * The host mm side: events that invalidate through the interval notifier
 * and change the host page table. The callback is
 * mshv_region_interval_invalidate as posted in v6, including its
 * `goto out_fail` that returns with region->mutex still held. Events:
 * MADV_DONTNEED zap, page migration, THP split, khugepaged collapse, and
 * the OOM reaper's non-blockable unmap.
 */
import { match } from 'ts-pattern'
import { allocHuge, folioHead, folioOrder, folioPages, freeFolio, isFreed, splitFolio } from '../../primitives/folio.js'
import { folioMapped, outsideIndices, pteAt, removeMigrationPtes, setPteAt } from '../../primitives/host-page-table.js'
import { blockFirstIndex, blockInVma, blockOf, type Layout } from '../../primitives/layout.js'
import { invalidateRangeEnd, invalidateRangeStart, setSeq } from '../../primitives/mmu-notifier.js'
import { useRegion } from '../../primitives/region.js'
import { HV_MAP_GPA_NO_ACCESS, HV_STATUS_SUCCESS } from '../../primitives/slat.js'
import { process, type Process, type Step } from '../../process.js'
import type { Params } from '../../scenario.js'
import { remapFailureChoices, remapFailureText, strideErrorText, withRemapFailures } from '../../drivers/mshv-regions.js'
import { depositChoices, depositIfAsked, depositText, eventLocals, hex, MMAP_LOCK, oldLen, movableLocks, REGION_MUTEX, type EventLocals, type MovableContext, type MovableWorld as W } from './world.js'

/** How a host mm event takes mmap_lock. */
export type Take = 'write' | 'read' | 'read-trylock' | 'none'

export interface HostEvent {
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
  /**
   * For take 'write': the step after mmap_write_lock that re-checks the
   * target under the lock (khugepaged's hugepage_vma_revalidate and its
   * re-check of the PMD) and gives up when it is gone.
   */
  readonly revalidate?: string
  /** How many pfns `old` may have to hold (default: one folio's pages, `oldLen`). */
  readonly oldLen?: number
}

/**
 * A host mm event, as the kernel orders it: take mmap_lock (or not),
 * mmu_notifier_invalidate_range_start -> the interval's callback ->
 * change the page table -> mmu_notifier_invalidate_range_end -> free the
 * old folios -> drop mmap_lock. A non-blockable callback that fails makes
 * the core end the invalidation with -EAGAIN: nothing is changed or freed
 * (__oom_reap_task_mm skips the range).
 */
export function hostEvent(ctx: MovableContext, ev: HostEvent): Process<W, EventLocals> {
  const { l } = ctx
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
    if (ev.nonblock) movableLocks.leaveNonblock(me)
    // A blockable callback may not fail: the core WARNs and carries on as if it had succeeded.
    return ok || !ev.nonblock ? ev.apply.label : 'mmu_notifier_invalidate_range_end'
  }
  /** What the core does with a callback's false (mn_itree_invalidate): -EAGAIN when non-blockable, else WARN_ON and go on. */
  const coreOnFalse = ev.nonblock ? ' (-EAGAIN: the range is skipped)' : ' (blockable: mn_itree_invalidate WARN_ON()s and the invalidation goes on)'
  // A writer takes mmap_lock as the rwsem does, in its own steps: it may wait, and new readers queue behind it (Locks.writeLockSteps).
  const afterEntry = ev.take === 'write' ? 'mmap_write_lock' : 'mmu_notifier_invalidate_range_start'
  const steps: Record<string, Step<W, EventLocals>> = {
    [ev.entry]: {
      guard: (w) =>
        match(ev.take)
          .with('read', () => movableLocks.readable(w, MMAP_LOCK))
          .otherwise(() => true),
      choices: (w) => Math.max(ev.targets(w).length, 1),
      run(w, me, choice) {
        const targets = ev.targets(w)
        if (targets.length === 0) return 'done' // nothing to do in this state
        if (ev.take === 'read-trylock' && !movableLocks.readTrylock(w, me, MMAP_LOCK)) return 'done'
        if (ev.take === 'read') movableLocks.readLock(w, me, MMAP_LOCK)
        me.lo = targets[choice].lo
        me.cnt = targets[choice].cnt
        me.folio = targets[choice].folio
        return afterEntry
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
        // A non-blockable range's callback must not sleep. mn_hlist_invalidate_range_start brackets classic
        // subscribers with non_block_start()/non_block_end(); mn_itree_invalidate does not check, so the kernel
        // would not warn, but a sleep there still stalls the OOM reaper: the model checks it as that context.
        if (ev.nonblock) movableLocks.enterNonblock(me)
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
    /**
     * mshv_region_remap_pages(region, HV_MAP_GPA_NO_ACCESS, ...); on failure v6 does `goto out_fail`: WARN_ONCE and
     * return false, still holding the mutex (upstream's `out_unlock` is a patch: variants.ts).
     */
    remap_no_access: remapNoAccess(ctx, (w, me) => callbackReturns(w, me, false), () => `: goto out_fail, return false with region->mutex still held${coreOnFalse}`),
    mshv_region_invalidate_pages: {
      run(w, me) {
        for (let k = 0; k < me.cnt; k++) w.pages[me.lo + k] = 0
        return 'cb_mutex_unlock'
      },
      text: (_w, me) => `mshv_region_invalidate_pages(${me.lo}, ${me.cnt})`,
    },
    /** mutex_unlock; return true, or (upstream's out_unlock, after a failed remap: me.ok = 0) WARN_ONCE and return false. */
    cb_mutex_unlock: {
      run(w, me) {
        movableLocks.unlock(w, me, REGION_MUTEX)
        return callbackReturns(w, me, me.ok === 1)
      },
      text: (_w, me) => (me.ok ? 'mutex_unlock(&region->mutex); return true' : `out_unlock: mutex_unlock(&region->mutex); WARN_ONCE; return false${coreOnFalse}`),
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
        for (let k = 0; k < me.old.length; k++) {
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
    const revalidate = ev.revalidate ?? 'revalidate'
    const still = (w: W, me: EventLocals): boolean => ev.targets(w).some((t) => t.lo === me.lo && t.cnt === me.cnt)
    Object.assign(steps, movableLocks.writeLockSteps<W, EventLocals, 'mmap_write_lock'>(MMAP_LOCK, 'mmap_write_lock', revalidate))
    steps[revalidate] = {
      run(w, me) {
        // The target was chosen before the lock: under it, the event goes on only if the target is still there.
        if (still(w, me)) return 'mmu_notifier_invalidate_range_start'
        me.lo = 0
        me.cnt = 0
        me.folio = 0
        return 'mmap_write_unlock'
      },
      text: (w, me) => `${revalidate}(${range(me)})${still(w, me) ? '' : ': the target is gone (SCAN_FAIL), mmap_write_unlock'}`,
    }
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
  return process<W, EventLocals>({ name: ev.name, locals: eventLocals(l, ev.oldLen ?? oldLen(ctx), ctx.frames - 1), start: ev.entry, steps, gotos: [ev.apply.label, ev.free, unlockLabel, afterEntry] })
}

/**
 * mshv_region_interval_invalidate's mshv_region_remap_pages(region,
 * HV_MAP_GPA_NO_ACCESS, page_offset, page_count), with a deposit (branch
 * bit `deposits`) and, with `map_failures`, a hypervisor error at any of
 * its reps (0eaed89c mshv_region_process_range -> hv_do_map_gpa_hcall: the
 * pages before it are NO_ACCESS or unmapped, the rest keep their mapping).
 * `failed` is where a failed remap goes (v6: out_fail; upstream:
 * out_unlock), `failText` how the trace shows it.
 */
export function remapNoAccess(ctx: MovableContext, failed: (w: W, me: EventLocals) => string, failText: (me: EventLocals) => string): Step<W, EventLocals> {
  const { l } = ctx
  const c = withRemapFailures(ctx)
  const split = (choice: number) => ({ deposit: choice % depositChoices(ctx), failure: Math.floor(choice / depositChoices(ctx)) })
  return {
    choices: (w, me) => depositChoices(ctx) * remapFailureChoices(c, w, me.lo, me.cnt),
    targets: ['mshv_region_invalidate_pages', failed],
    run(w, me, choice) {
      const { deposit, failure } = split(choice)
      depositIfAsked(w, me, deposit)
      if (c.mshv_region_remap_pages(w, HV_MAP_GPA_NO_ACCESS, me.lo, me.cnt, failure - 1) !== HV_STATUS_SUCCESS) return failed(w, me)
      return 'mshv_region_invalidate_pages'
    },
    text: (w, me, choice) => {
      const { deposit, failure } = split(choice)
      const strideError = strideErrorText(l, w, ctx.mshv_chunk_stride, me.lo, me.cnt)
      return `mshv_region_remap_pages(NO_ACCESS, gfn ${hex(l.startGfn + me.lo)}, ${me.cnt} pages)${depositText(deposit)}${remapFailureText(c, w, me.lo, me.cnt, failure)}${strideError}${failure || strideError ? failText(me) : ''}`
    },
  }
}

export interface Target {
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
 * Every sub-range of at least one page of each mapped folio's run: what
 * MADV_DONTNEED (zap_page_range_single), a MAP_FIXED replacement (its
 * munmap) and the OOM reaper may unmap. The kernel's range is any range of
 * the VMA; within one folio's run is where a THP ends up partly unmapped
 * (the state of the Sashiko finding on mshv_chunk_stride), and a range over
 * several folios is several of these in a row.
 */
const subRanges = (l: Layout) => {
  const runs = mappedFolios(l)
  return (w: W) =>
    runs(w).flatMap((r) => {
      const out: Target[] = []
      for (let lo = r.lo; lo < r.lo + r.cnt; lo++) for (let end = lo + 1; end <= r.lo + r.cnt; end++) out.push({ lo, cnt: end - lo, folio: r.folio })
      return out
    })
}

/**
 * The large folios mapped in the region (a THP, or an mTHP), each with the
 * uaddr span it covers (its head's position to its end, clipped to the
 * region): what split_folio() unmaps (unmap_folio -> try_to_migrate, one
 * invalidation of the folio's span), mapped by a PMD or, after
 * __split_huge_pmd or a partial zap, by PTEs.
 */
const mappedHugeFolios = (l: Layout) => {
  const spans = mappedFolioSpans(l)
  return (w: W) => spans(w).filter((t) => folioOrder(w, t.folio, l.H) !== 0)
}

/**
 * Every mapped folio with its whole span in the region (not one run of it:
 * a partial zap may leave a large folio mapped in several runs). What
 * migration's try_to_migrate invalidates (try_to_migrate_one: the range
 * from the folio's first page's address over folio_size, clipped to the
 * VMA), since remove_migration_ptes then replaces every PTE of the folio.
 */
const mappedFolioSpans = (l: Layout) => (w: W) => {
  const out: Target[] = []
  for (let i = 0; i < l.N; i++) {
    const pfn = w.pte[i]
    if (pfn === 0) continue
    const folio = folioHead(w, pfn, l.H)
    if (out.some((t) => t.folio === folio)) continue
    const first = Math.max(i - (pfn - folio), 0)
    out.push({ lo: first, cnt: Math.min(i - (pfn - folio) + folioPages(w, pfn, l.H), l.N) - first, folio })
  }
  return out
}

/** Block b's region pages: [lo, lo + cnt), clipped to the region (an edge block may start before it or end after it). */
const blockSpan = (l: Layout, b: number): { lo: number; cnt: number } => {
  const first = blockFirstIndex(l, b)
  const lo = Math.max(first, 0)
  return { lo, cnt: Math.min(first + l.HP, l.N) - lo }
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
 * The OOM reaper's target: the whole VMA (__oom_reap_task_mm passes
 * vma->vm_start..vm_end to mmu_notifier_range_init and unmap_page_range),
 * as region pages [0, N), while the VMA is there (munmap removes it). It
 * invalidates and walks the VMA whether or not anything is mapped.
 */
const wholeVma = (l: Layout) => (w: W): Target[] => (w.vmaPresent ? [{ lo: 0, cnt: l.N, folio: 0 }] : [])

/**
 * unmap_page_range() over the whole VMA: every PTE of the region (`zap`)
 * and, with a VMA margin, the pages of an edge THP outside the region,
 * which are in the VMA too; all recorded in me.old to be freed.
 */
function reap(l: Layout) {
  const clear = zap(l)
  return (w: W, me: EventLocals) => {
    clear(w, me)
    if (!w.outPte) return
    for (let k = 0; k < w.outPte.length; k++) {
      me.old[l.N + k] = w.outPte[k]
      w.outPte[k] = 0
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
    me.old[0] = removeMigrationPtes(l, w, w, head) ? head : 0
  }
}

/** The host mm threads the parameters ask for: zap0.., migrate0.., split0.., fsplit0.., collapse0.., mapfixed0.., reclaim0... */
export function hostEvents(ctx: MovableContext, p: Params): { name: string; process: Process<W, EventLocals> }[] {
  const { l } = ctx
  const anyRange = subRanges(l)
  const kinds: [string, number, HostEvent][] = [
    [
      'zap',
      p.zaps,
      {
        name: 'madvise_dontneed',
        entry: 'madvise_dontneed',
        take: 'read',
        nonblock: false,
        targets: anyRange,
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
        targets: mappedFolioSpans(l),
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
            .map((b) => ({ ...blockSpan(l, b), folio: folioHead(w, w.pte[blockSpan(l, b).lo], l.H) })),
        apply: {
          label: '__split_huge_pmd',
          run(w, me) {
            // The PMD becomes a table of PTEs mapping the same pages; the folio stays whole, now PTE-mapped
            // (__split_huge_pmd_locked). Splitting the folio is split_folio's, a separate event.
            const blk = blockOf(l, me.lo)
            if (w.pmd[blk] !== 1 || folioHead(w, w.pte[me.lo], l.H) !== me.folio) return
            w.pmd[blk] = 0
          },
        },
        free: 'split_done',
      },
    ],
    [
      'fsplit',
      p.folio_splits,
      {
        name: 'split_folio',
        entry: 'split_folio',
        take: 'none',
        nonblock: false,
        targets: mappedHugeFolios(l),
        apply: {
          label: '__split_huge_page',
          run(w, me) {
            // split_huge_page_to_list_to_order(): unmap_folio (try_to_migrate, which also splits a PMD mapping),
            // split into order-0 folios, remap_page() back to the same pfns. Deferred split then frees the
            // pages no longer mapped (deferred_split_scan): they are recorded in `old` for the free step.
            const n = folioPages(w, me.folio, l.H)
            if (n === 1) return
            for (let b = blockOf(l, me.lo); b <= blockOf(l, me.lo + me.cnt - 1); b++) if (w.pmd[b] === 1 && folioHead(w, w.pte[blockSpan(l, b).lo], l.H) === me.folio) w.pmd[b] = 0
            splitFolio(w, me.folio, l.H)
            for (let k = 0; k < n; k++) me.old[k] = me.folio + k
          },
        },
        free: 'deferred_split_scan',
      },
    ],
    [
      'collapse',
      p.collapses,
      {
        name: 'khugepaged',
        entry: 'collapse_huge_page',
        take: 'write',
        // mm/khugepaged.c collapse_huge_page: mmap_write_lock(mm), then hugepage_vma_revalidate and the PMD re-check.
        revalidate: 'hugepage_vma_revalidate',
        nonblock: false,
        targets: (w) =>
          Array.from({ length: l.blocks }, (_, b) => b)
            .filter((b) => blockInVma(l, b) && w.pmd[b] === 0 && Array.from({ length: blockSpan(l, b).cnt }, (_, k) => w.pte[blockSpan(l, b).lo + k]).some(Boolean))
            .map((b) => ({ ...blockSpan(l, b), folio: 0 })),
        apply: {
          label: 'set_pmd_at',
          run(w, me) {
            // The whole block is copied into a fresh THP: with a VMA margin, an edge block's pages outside the region too.
            const b = blockOf(l, me.lo)
            const first = blockFirstIndex(l, b)
            const fresh = allocHuge(w, l.H)
            for (let k = 0; k < l.HP; k++) {
              me.old[k] = pteAt(l, w, first + k)
              setPteAt(l, w, first + k, fresh + k)
            }
            w.pmd[b] = 1
          },
        },
        free: 'free_old_pages',
      },
    ],
    [
      'mapfixed',
      p.map_fixed,
      {
        // mmap(MAP_FIXED) over part of the region (mm/vma.c __mmap_region, under mmap_write_lock from
        // vm_mmap_pgoff): vms_gather_munmap_vmas detaches the old range, vms_clear_ptes unmaps it inside
        // mmu_notifier_invalidate_range_start/end, the new anonymous VMA goes in (merged with its neighbours:
        // the model has no VMA boundary), vms_complete_munmap_vmas frees the old pages; all under the write lock.
        name: 'mmap_fixed',
        entry: 'mmap_region',
        take: 'write',
        revalidate: 'vms_gather_munmap_vmas',
        nonblock: false,
        targets: anyRange,
        apply: { label: 'vms_clear_ptes', run: zap(l) },
        free: 'vms_complete_munmap_vmas',
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
        targets: wholeVma(l),
        apply: { label: 'unmap_page_range', run: reap(l) },
        // The region's pages and, with a VMA margin, the edge blocks' pages outside it (fewer than 2^H at each edge).
        oldLen: Math.max(oldLen(ctx), l.N + outsideIndices(l).length),
        free: 'tlb_finish_mmu',
      },
    ],
  ]
  return kinds.flatMap(([short, count, ev]) => {
    const proc = hostEvent(ctx, ev)
    return Array.from({ length: count }, (_, k) => ({ name: `${short}${k}`, process: proc }))
  })
}
