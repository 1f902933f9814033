/**
 * The host mm side: events on the VMA that invalidate through the mm's
 * classic subscriber list (mm/mmu_notifier.c, mn_hlist_invalidate_range_*:
 * model/primitives/mmu-notifier-hlist.ts) into KVM's mmu_notifier
 * (virt/kvm/kvm_main.c), and another subscriber's when `subscribers` > 1,
 * and then change the host page table:
 *
 *   kvm_mmu_notifier_invalidate_range_start:
 *     mn_active_invalidate_count++ (under mn_invalidate_lock)
 *     kvm_handle_hva_range: KVM_MMU_LOCK (write_lock), on_lock =
 *       kvm_mmu_invalidate_begin, handler = kvm_mmu_unmap_gfn_range per
 *       memslot hit (kvm_mmu_invalidate_range_add + kvm_unmap_gfn_range),
 *       KVM_MMU_UNLOCK
 *   <the page-table change>
 *   kvm_mmu_notifier_invalidate_range_end:
 *     kvm_handle_hva_range: KVM_MMU_LOCK, on_lock = kvm_mmu_invalidate_end
 *       (seq++, in_progress--), KVM_MMU_UNLOCK
 *     mn_active_invalidate_count-- (wake a memslot swap at 0)
 *   <put the old folios>
 *
 * Events: MADV_DONTNEED (zap_page_range_single), migration (migrate_pages:
 * fails with -EAGAIN on a folio KVM holds a reference to, leaving the
 * PTEs as they were), __split_huge_pmd (the THP stays whole, PTE-mapped)
 * split_folio (fails on a folio KVM holds a reference to; else the
 * pages stay mapped as order-0 folios), khugepaged's collapse_huge_page,
 * and the OOM reaper (__oom_reap_task_mm: non-blockable; after -EAGAIN
 * no range_end). mm->mmap_lock: MADV_DONTNEED holds it for read, the OOM
 * reaper trylocks it for read, the collapse holds it for write; migration
 * and the splits walk the rmap without it.
 */
import { allocHuge, allocSmall, folioHead, folioOrder, FRAME_HUGE, freeFolio, isFreed, splitFolio } from '../../primitives/folio.js'
import { folioMapped, removeMigrationPtes } from '../../primitives/host-page-table.js'
import { blockFirstIndex, blockInVma, blockOf, type Layout } from '../../primitives/layout.js'
import { mmuInvalidateBegin, mmuInvalidateEnd, mnActiveInvalidateDec, mnActiveInvalidateInc } from '../../kvm/invalidation.js'
import { hvaRangeToGfnRanges } from '../../kvm/memslots.js'
import { activeMemslots } from '../../kvm/memslot-update.js'
import { kvmUnmapGfnRange } from '../../kvm/tdp-fault.js'
import { process, type Process, type Step } from '../../process.js'
import type { Params } from '../../scenario.js'
import { hlistBegin, hlistEndNext, hlistStartNext, hlistStartReturned, hlistTargets, type HlistCore, type HlistSubscriber } from '../../primitives/mmu-notifier-hlist.js'
import { eventLocals, hex, kvmLocks, MMAP_LOCK, mmuLock, refHeld, type EventLocals, type KvmMmuContext, type KvmMmuWorld as W } from './world.js'

export interface Target {
  readonly lo: number
  readonly cnt: number
  readonly folio: number
}

export interface HostEvent {
  readonly name: string
  /** The entry step: what the kernel calls first. */
  readonly entry: string
  readonly targets: (w: W) => readonly Target[]
  /** The page-table change between range_start and range_end; records in me.old the folios to put. */
  readonly apply: { readonly label: string; readonly run: (w: W, me: EventLocals) => void }
  /** The step that puts me.old. */
  readonly free: string
  /** mmu_notifier_range_blockable (default true); false: mmu_notifier_invalidate_range_start_nonblock, which may fail with -EAGAIN. */
  readonly blockable?: boolean
  /** When range_start returned -EAGAIN: the step the event ends with instead (the OOM reaper's tlb_finish_mmu). */
  readonly eagain?: string
  /** How the event holds mm->mmap_lock from its entry to its end: not at all (rmap walks: migration, splits), down_read, mmap_read_trylock (the OOM reaper: skip the mm if it fails), down_write. */
  readonly mmapLock?: 'read' | 'read-trylock' | 'write'
}

/** KVM's place on the mm's subscriber list, and another subscriber's, per the `subscribers` parameter. */
export function kvmSubscribers(ctx: KvmMmuContext): HlistSubscriber[] {
  const kvm: HlistSubscriber = { name: 'kvm', start: 'kvm_mmu_notifier_invalidate_range_start', end: 'kvm_mmu_notifier_invalidate_range_end' }
  // A classic subscriber whose non-blockable invalidate_range_start may fail, so (the core's rule) with no invalidate_range_end.
  const other: HlistSubscriber = { name: 'other', start: 'other_invalidate_range_start' }
  return ctx.subscribers === 1 ? [kvm] : ctx.subscribers === 2 ? [kvm, other] : [other, kvm]
}

export function hostEvent(ctx: KvmMmuContext, ev: HostEvent): Process<W, EventLocals> {
  const { l } = ctx
  const eagain = ev.eagain ?? 'mmu_notifier_eagain'
  const core: HlistCore = {
    subscribers: kvmSubscribers(ctx),
    blockable: ev.blockable ?? true,
    apply: ev.apply.label,
    done: ev.free,
    fail: eagain,
    endAfterEagain: ctx.mn_hlist_end_after_eagain,
    locks: kvmLocks,
  }
  // The ghost `invalidating` counts the host's invalidations from mmu_notifier_invalidate_range_start until range_end has returned (or range_start has failed).
  const startNext = (w: W, me: EventLocals): string => {
    const next = hlistStartNext(core, me)
    if (next === core.fail) w.invalidating--
    return next
  }
  const endNext = (w: W, me: EventLocals): string => {
    const next = hlistEndNext(core, me)
    if (next === core.done || next === core.fail) w.invalidating--
    return next
  }
  const hits = (w: W, me: EventLocals) => hvaRangeToGfnRanges(activeMemslots(ctx.slots, w), l.startUaddr + me.lo, l.startUaddr + me.lo + me.cnt)
  const range = (me: EventLocals) => `hva ${hex(l.startUaddr + me.lo)}..${hex(l.startUaddr + me.lo + me.cnt - 1)}`
  const mmapUnlock = (w: W, me: EventLocals) => {
    if (!ev.mmapLock || !kvmLocks.holds(me, MMAP_LOCK)) return
    if (ev.mmapLock === 'write') kvmLocks.unlock(w, me, MMAP_LOCK)
    else kvmLocks.readUnlock(w, me, MMAP_LOCK)
  }
  const steps: Record<string, Step<W, EventLocals>> = {
    [ev.entry]: {
      guard: (w) => (ev.mmapLock === 'read' ? kvmLocks.readable(w, MMAP_LOCK) : ev.mmapLock === 'write' ? kvmLocks.free(w, MMAP_LOCK) : true),
      choices: (w) => Math.max(ev.targets(w).length, 1),
      run(w, me, choice) {
        const t = ev.targets(w)[choice]
        if (!t) return 'done' // nothing mapped that this event applies to
        if (ev.mmapLock === 'read-trylock') {
          if (!kvmLocks.readTrylock(w, me, MMAP_LOCK)) return 'done' // oom_reap_task_mm: mmap_read_trylock failed, try later
        } else if (ev.mmapLock === 'read') kvmLocks.readLock(w, me, MMAP_LOCK)
        else if (ev.mmapLock === 'write') kvmLocks.lock(w, me, MMAP_LOCK)
        me.lo = t.lo
        me.cnt = t.cnt
        me.folio = t.folio
        // mmu_notifier_invalidate_range_start(_nonblock) -> mn_hlist_invalidate_range_start.
        w.invalidating++
        hlistBegin(me)
        return startNext(w, me)
      },
      text: (w, _me, choice) => {
        const t = ev.targets(w)[choice]
        if (t && ev.mmapLock === 'read-trylock' && !kvmLocks.readable(w, MMAP_LOCK)) return `${ev.entry}: mmap_read_trylock failed`
        return t ? `${ev.mmapLock ? `${ev.mmapLock === 'write' ? 'mmap_write_lock' : 'mmap_read_lock'}; ` : ''}${ev.entry}(hva ${hex(l.startUaddr + t.lo)}..${hex(l.startUaddr + t.lo + t.cnt - 1)})` : `${ev.entry}: nothing to do`
      },
    },
    /** kvm_mmu_notifier_invalidate_range_start: spin_lock(&kvm->mn_invalidate_lock); mn_active_invalidate_count++. */
    kvm_mmu_notifier_invalidate_range_start: {
      run(w) {
        mnActiveInvalidateInc(w)
        return 'start_write_lock'
      },
      text: (_w, me) => `kvm_mmu_notifier_invalidate_range_start(${range(me)}${core.blockable ? '' : ', non-blockable'}): mn_active_invalidate_count++`,
    },
    /** kvm_handle_hva_range: KVM_MMU_LOCK. */
    start_write_lock: mmuLock.writeLockStep('kvm_mmu_unmap_gfn_range'),
    /** on_lock = kvm_mmu_invalidate_begin; handler = kvm_mmu_unmap_gfn_range for each memslot the range hits. */
    kvm_mmu_unmap_gfn_range: {
      run(w, me) {
        const hs = hits(w, me)
        if (hs.length > 0) mmuInvalidateBegin(w)
        for (const h of hs) {
          ctx.kvm_mmu_invalidate_range_add(w, h.start, h.end)
          kvmUnmapGfnRange(l, w, h.start - l.startGfn, h.end - l.startGfn)
        }
        return 'start_write_unlock'
      },
      text: (w, me) => {
        const hs = hits(w, me)
        if (hs.length === 0) return 'kvm_handle_hva_range: no memslot in the range, no kvm_mmu_invalidate_begin'
        return `kvm_mmu_invalidate_begin; ${hs.map((h) => `kvm_mmu_unmap_gfn_range(slot ${h.slot.id}, gfn ${hex(h.start)}..${hex(h.end - 1)})`).join('; ')}`
      },
    },
    /** KVM_MMU_UNLOCK; KVM's start returns 0 and the core walks on. */
    start_write_unlock: mmuLock.writeUnlockStep((w: W, me: EventLocals) => startNext(w, me)),
    /** Another subscriber's start: in a non-blockable range it only trylocks its lock, and may fail with -EAGAIN. */
    other_invalidate_range_start: {
      choices: () => (core.blockable ? 1 : 2),
      run(w, me, choice) {
        hlistStartReturned(core, me, choice === 1 ? -11 : 0)
        return startNext(w, me)
      },
      text: (_w, _me, choice) => `other subscriber's invalidate_range_start${choice === 1 ? ': mutex_trylock failed, -EAGAIN' : ': 0'}`,
    },
    [ev.apply.label]: {
      run(w, me) {
        ev.apply.run(w, me)
        // mmu_notifier_invalidate_range_end -> mn_hlist_invalidate_end.
        me.sub = 0
        return endNext(w, me)
      },
      text: (_w, me) => `${ev.apply.label}(${range(me)})`,
    },
    /** kvm_mmu_notifier_invalidate_range_end -> kvm_handle_hva_range: KVM_MMU_LOCK. */
    kvm_mmu_notifier_invalidate_range_end: mmuLock.writeLockStep('kvm_mmu_invalidate_end'),
    kvm_mmu_invalidate_end: {
      // The invalidation ends (check --livelock): mmu_invalidate_in_progress comes down.
      progress: true,
      run(w, me) {
        if (hits(w, me).length > 0) mmuInvalidateEnd(w)
        return 'end_write_unlock'
      },
      text: (w, me) =>
        hits(w, me).length > 0
          ? `kvm_mmu_invalidate_end: mmu_invalidate_seq ${w.mmuInvalidateSeq} -> ${w.mmuInvalidateSeq + 1}, in_progress--`
          : 'kvm_handle_hva_range: no memslot in the range, no kvm_mmu_invalidate_end',
    },
    end_write_unlock: mmuLock.writeUnlockStep('mn_active_invalidate_count'),
    /** kvm_mmu_notifier_invalidate_range_end: mn_active_invalidate_count-- under mn_invalidate_lock; rcuwait_wake_up at 0. */
    mn_active_invalidate_count: {
      run(w, me) {
        mnActiveInvalidateDec(w)
        return endNext(w, me)
      },
      text: (_w, me) => `kvm_mmu_notifier_invalidate_range_end${me.err ? ' (called by the core after a failed start)' : ''}: mn_active_invalidate_count--`,
    },
    /** range_start returned -EAGAIN: the caller must not call range_end (the OOM reaper: tlb_finish_mmu, ret = false, the VMA is not reaped). */
    [eagain]: {
      run(w, me) {
        me.folio = 0
        mmapUnlock(w, me)
        return 'done'
      },
      text: () => `${eagain}: mmu_notifier_invalidate_range_start_nonblock returned -EAGAIN, nothing unmapped`,
    },
    [ev.free]: {
      run(w, me) {
        // folio_put(): a folio goes back to the allocator once nothing maps it and KVM holds no reference.
        for (let k = 0; k < l.HP; k++) {
          const p = me.old[k]
          me.old[k] = 0
          if (p === 0 || isFreed(w, p)) continue
          const n = w.frame[p] === FRAME_HUGE ? l.HP : 1
          if (!folioMapped(l, w, w, p) && !refHeld(w, folioHead(w, p, l.H), n)) freeFolio(w, p, l.H)
        }
        me.folio = 0
        mmapUnlock(w, me)
        return 'done'
      },
      text: (w, me) => {
        const ps = Array.from(me.old).filter((p) => p !== 0 && !isFreed(w, p))
        return `${ev.free}: put pfn ${ps.map(hex).join(' ') || '-'}`
      },
    },
  }
  // Drop what this list does not call (a blockable event never fails; no other subscriber: no steps of its own).
  const labels = new Set(hlistTargets(core).concat(ev.entry))
  if (!labels.has('other_invalidate_range_start')) delete steps.other_invalidate_range_start
  if (core.blockable) delete steps[eagain]
  return process<W, EventLocals>({ name: ev.name, locals: eventLocals(l), start: ev.entry, steps, gotos: [...hlistTargets(core).filter((t) => t in steps), ev.apply.label, ev.free] })
}

/** The mapped folios, each with the run of region pages that maps it. */
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

/** PMD-mapped blocks. */
const pmdBlocks = (l: Layout) => (w: W) => {
  const out: Target[] = []
  for (let b = 0; b < l.blocks; b++) if (w.pmd[b] === 1) out.push({ lo: blockFirstIndex(l, b), cnt: l.HP, folio: w.pte[blockFirstIndex(l, b)] })
  return out
}

/**
 * What MADV_DONTNEED may zap: a PMD-mapped block whole, one PTE-mapped
 * page, or the whole VMA. (A range that covers part of a PMD makes
 * zap_pmd_range call __split_huge_pmd, a nested invalidation of the whole
 * block: not modelled; the split event and then a one-page zap reach that
 * state.)
 */
const zapTargets = (l: Layout) => (w: W) => {
  const out: Target[] = [...pmdBlocks(l)(w)]
  for (let i = 0; i < l.N; i++) if (w.pte[i] !== 0 && w.pmd[blockOf(l, i)] === 0) out.push({ lo: i, cnt: 1, folio: w.pte[i] })
  if (out.length > 0) out.push({ lo: 0, cnt: l.N, folio: 0 })
  return out
}

/** The OOM reaper's range: the whole VMA (vma->vm_start..vm_end), when anything is mapped there. */
const wholeVma = (l: Layout) => (w: W) => {
  for (let i = 0; i < l.N; i++) if (w.pte[i] !== 0) return [{ lo: 0, cnt: l.N, folio: 0 }]
  return []
}

/** Huge folios mapped, with the span of the region the folio covers. */
const hugeFolios = (l: Layout) => (w: W) => mappedFolios(l)(w).filter((t) => folioOrder(w, t.folio, l.H) === l.H)

/** zap_page_range_single: clear the PMDs and PTEs of the range; the folios are put after range_end (tlb_finish_mmu). */
function zap(l: Layout) {
  return (w: W, me: EventLocals) => {
    for (let b = blockOf(l, me.lo); b <= blockOf(l, me.lo + me.cnt - 1); b++) w.pmd[b] = 0
    let k = 0
    for (let i = me.lo; i < me.lo + me.cnt; i++) {
      const p = w.pte[i]
      w.pte[i] = 0
      if (p === 0) continue
      const head = folioHead(w, p, l.H)
      if (!Array.from(me.old).includes(head) && k < l.HP) me.old[k++] = head
    }
  }
}

/**
 * migrate_pages on the folio: try_to_migrate, then folio_migrate_mapping,
 * which fails (-EAGAIN) while KVM holds a reference from kvm_faultin_pfn:
 * remove_migration_ptes then restores the old PTEs. Else every PTE of the
 * folio maps the same offset of a new folio of the same order (a PMD stays
 * a PMD), and the old folio is put.
 */
function migrate(l: Layout) {
  return (w: W, me: EventLocals) => {
    const head = me.folio
    if (isFreed(w, head)) return
    const n = folioOrder(w, head, l.H) === l.H ? l.HP : 1
    if (refHeld(w, head, n)) return
    me.old[0] = removeMigrationPtes(l, w, w, head) ? head : 0
  }
}

/** What khugepaged may collapse: a huge-aligned block inside the VMA that PTEs map (small folios, or a THP whose PMD was split), at least one page present (max_ptes_none). */
const collapseTargets = (l: Layout) => (w: W) => {
  const out: Target[] = []
  for (let b = 0; b < l.blocks; b++) {
    if (w.pmd[b] === 1 || !blockInVma(l, b)) continue
    const first = blockFirstIndex(l, b)
    for (let k = 0; k < l.HP; k++) {
      if (w.pte[first + k] !== 0) {
        out.push({ lo: first, cnt: l.HP, folio: 0 })
        break
      }
    }
  }
  return out
}

/**
 * collapse_huge_page (mm/khugepaged.c), under mmap_write_lock: after
 * range_start, pmdp_collapse_flush detaches the PTE table;
 * __collapse_huge_page_isolate fails (SCAN_PAGE_COUNT) on a page with a
 * reference beyond its mappings, KVM's from kvm_faultin_pfn, and
 * pmd_populate puts the table back; else the pages are copied into a new
 * THP that set_pmd_at maps, and the old ones are released. The kernel
 * calls range_end right after the flush and isolates, copies and maps
 * after it; a KVM fault meanwhile finds the PMD none (GUP-fast backs off)
 * and waits for mmap_lock in get_user_pages until the new PMD is there, so
 * doing all of it in one step before range_end shows KVM the same states.
 */
function collapse(l: Layout) {
  return (w: W, me: EventLocals) => {
    for (let i = me.lo; i < me.lo + me.cnt; i++) {
      const p = w.pte[i]
      if (p === 0) continue
      const head = folioHead(w, p, l.H)
      if (refHeld(w, head, w.frame[p] === FRAME_HUGE ? l.HP : 1)) return
    }
    const fresh = allocHuge(w, l.H)
    let k = 0
    for (let i = me.lo; i < me.lo + me.cnt; i++) {
      const p = w.pte[i]
      w.pte[i] = fresh + (i - me.lo)
      if (p === 0) continue
      const head = folioHead(w, p, l.H)
      if (!Array.from(me.old).includes(head) && k < l.HP) me.old[k++] = head
    }
    w.pmd[blockOf(l, me.lo)] = 1
  }
}

/** The host mm threads the parameters ask for: zap0.., oom0, migrate0.., split0.., collapse0.., fsplit0... */
export function hostEvents(ctx: KvmMmuContext, p: Params): { name: string; process: Process<W, EventLocals> }[] {
  const { l } = ctx
  const kinds: [string, number, HostEvent][] = [
    ['zap', p.zaps, { name: 'madvise_dontneed', mmapLock: 'read', entry: 'madvise_dontneed', targets: zapTargets(l), apply: { label: 'zap_page_range_single', run: zap(l) }, free: 'tlb_finish_mmu' }],
    [
      'oom',
      p.oom_reaps,
      {
        name: 'oom_reaper',
        entry: '__oom_reap_task_mm',
        targets: wholeVma(l),
        apply: { label: 'unmap_page_range', run: zap(l) },
        free: 'tlb_finish_mmu',
        blockable: false,
        eagain: 'oom_reap_eagain',
        mmapLock: 'read-trylock',
      },
    ],
    ['migrate', p.migrations, { name: 'migrate_pages', entry: 'migrate_pages', targets: mappedFolios(l), apply: { label: 'remove_migration_ptes', run: migrate(l) }, free: 'folio_put' }],
    [
      'split',
      p.splits,
      {
        name: 'split_huge_pmd',
        entry: 'split_huge_pmd',
        targets: pmdBlocks(l),
        apply: {
          label: '__split_huge_pmd',
          run(w, me) {
            // __split_huge_pmd_locked: the PMD becomes a table of PTEs mapping the same pages; the THP stays whole.
            w.pmd[blockOf(l, me.lo)] = 0
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
        targets: collapseTargets(l),
        apply: { label: 'pmdp_collapse_flush', run: collapse(l) },
        free: '__collapse_huge_page_copy_succeeded',
        mmapLock: 'write',
      },
    ],
    [
      'fsplit',
      p.folio_splits,
      {
        name: 'split_folio',
        entry: 'split_folio',
        targets: hugeFolios(l),
        apply: {
          label: '__split_huge_page',
          run(w, me) {
            // split_huge_page_to_list_to_order: can_split_folio fails (-EAGAIN) on KVM's extra reference. Else
            // unmap_folio (which splits a PMD mapping), split into order-0 folios, remap_page to the same pfns;
            // pages no longer mapped are put (deferred split).
            if (folioOrder(w, me.folio, l.H) !== l.H || refHeld(w, me.folio, l.HP)) return
            for (let b = blockOf(l, me.lo); b <= blockOf(l, me.lo + me.cnt - 1); b++) w.pmd[b] = 0
            splitFolio(w, me.folio, l.H)
            for (let k = 0; k < l.HP; k++) me.old[k] = me.folio + k
          },
        },
        free: 'deferred_split_scan',
      },
    ],
  ]
  return kinds.flatMap(([short, count, ev]) => {
    const proc = hostEvent(ctx, ev)
    return Array.from({ length: count }, (_, k) => ({ name: `${short}${k}`, process: proc }))
  })
}
