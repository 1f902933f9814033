/**
 * The VMM's own mm calls on the memory it gave the guest: munmap() and
 * mprotect(PROT_READ) of the region's uaddr range. Each is an invalidation
 * through the region's interval notifier (the callback is the host events'
 * one, host-events.ts), and each leaves the VMA so that the fault path's
 * hmm_range_fault() fails: -EFAULT once the VMA is gone, -EPERM once it is
 * read-only (mshv_region_range_fault asks for HMM_PFN_REQ_WRITE). The
 * intercept is then not handled (mshv_region_handle_gfn_fault WARNs and
 * returns false: the VP's `faultFailed` ghost).
 *
 * - munmap (mm/vma.c do_vmi_align_munmap): under mmap_write_lock the VMA
 *   leaves the mm's tree (vms_gather_munmap_vmas, vma_iter_clear_gfp); then
 *   vms_complete_munmap_vmas downgrades to the read lock
 *   (mmap_write_downgrade) and unmaps: mmu_notifier_invalidate_range_start
 *   over the range, unmap_vmas clears the PTEs and PMDs,
 *   mmu_notifier_invalidate_range_end, tlb_finish_mmu frees the pages;
 *   mmap_read_unlock.
 * - mprotect(PROT_READ) (mm/mprotect.c do_mprotect_pkey -> mprotect_fixup):
 *   under mmap_write_lock, vm_flags_reset drops VM_WRITE, then
 *   change_protection write-protects the PTEs inside
 *   mmu_notifier_invalidate_range_start / _end (MMU_NOTIFY_PROTECTION_VMA);
 *   no page is freed. PTE write bits are not modelled: a read-only VMA is
 *   enough for hmm_range_fault's -EPERM, and the VP never sees the VMA
 *   read-only with writable PTEs (it walks under mmap_read_lock).
 */
import { ModelError } from '../../../explorer/errors.js'
import { folioMapped, unmapRange } from '../../primitives/host-page-table.js'
import type { Layout } from '../../primitives/layout.js'
import { freeFolio, isFreed } from '../../primitives/folio.js'
import type { Process, Step } from '../../process.js'
import type { Params } from '../../scenario.js'
import { array, u8 } from '../../schema.js'
import { hostEvent } from './host-events.js'
import { eventLocals, hex, MMAP_LOCK, movableLocks, type EventLocals, type MovableContext, type MovableWorld as W } from './world.js'

/** munmap's locals: an event's, and the pfns unmap_vmas cleared (the whole region, more than an event's `old` holds). */
export const munmapLocals = (l: Layout) => ({ ...eventLocals(l), unmapped: array(l.N, u8()) })
export type MunmapLocals = EventLocals & { unmapped: number[] | Int16Array }

/**
 * mmap_write_downgrade(): the writer becomes a reader without letting a
 * writer in between (locks.ts has no downgrade; the cells are the rwsem's).
 */
function writeDowngrade(w: W, me: EventLocals): void {
  if (w.lockOwner[MMAP_LOCK] !== me.tid + 1) throw new ModelError('mmap_write_downgrade without the write lock')
  w.lockOwner[MMAP_LOCK] = 0
  w.lockReaders[MMAP_LOCK]++
}

/** munmap(start_uaddr, nr_pages): the VMA detached under the write lock, then unmapped under the read lock. */
export function munmap(ctx: MovableContext): Process<W, MunmapLocals> {
  const { l } = ctx
  const base = hostEvent(ctx, {
    name: 'munmap',
    entry: 'munmap',
    take: 'read',
    nonblock: false,
    targets: () => [{ lo: 0, cnt: l.N, folio: 0 }],
    apply: {
      label: 'unmap_vmas',
      run(w, me) {
        const m = me as MunmapLocals
        unmapRange(l, w, me.lo, me.cnt).forEach((pfn, k) => (m.unmapped[k] = pfn))
      },
    },
    free: 'tlb_finish_mmu',
  })
  const steps: Record<string, Step<W, MunmapLocals>> = {
    ...base.steps,
    // mmap_write_lock_killable(mm) in __vm_munmap: a waiting writer holds back new readers.
    ...movableLocks.writeLockSteps<W, MunmapLocals, 'munmap', 'do_vmi_align_munmap'>(MMAP_LOCK, 'munmap', 'do_vmi_align_munmap'),
    do_vmi_align_munmap: {
      run(w, me) {
        // vms_gather_munmap_vmas + vma_iter_clear_gfp: the VMA is no longer in the mm's tree.
        w.vmaPresent = 0
        me.lo = 0
        me.cnt = l.N
        return 'mmap_write_downgrade'
      },
      text: () => `do_vmi_align_munmap(uaddr ${hex(l.startUaddr)}..${hex(l.startUaddr + l.N - 1)}): the VMA leaves the mm`,
    },
    mmap_write_downgrade: {
      run(w, me) {
        writeDowngrade(w, me)
        return 'mmu_notifier_invalidate_range_start'
      },
      text: () => 'vms_complete_munmap_vmas: mmap_write_downgrade',
    },
    tlb_finish_mmu: {
      run(w, me) {
        // tlb_finish_mmu -> free_pages_and_swap_cache: a folio goes back to the allocator once nothing maps it.
        for (let k = 0; k < l.N; k++) {
          const pfn = me.unmapped[k]
          if (pfn !== 0 && !isFreed(w, pfn) && !folioMapped(l, w, w, pfn)) freeFolio(w, pfn, l.H)
          me.unmapped[k] = 0
        }
        return 'mmap_read_unlock'
      },
      text: (_w, me) => `tlb_finish_mmu: free pfn ${Array.from(me.unmapped).filter(Boolean).map(hex).join(' ') || '-'}`,
    },
  }
  return { ...base, locals: munmapLocals(l), steps }
}

/** mprotect(start_uaddr, nr_pages, PROT_READ): VM_WRITE dropped and the PTEs write-protected, under the write lock. */
export function mprotect(ctx: MovableContext): Process<W, EventLocals> {
  const { l } = ctx
  const base = hostEvent(ctx, {
    name: 'mprotect',
    entry: 'mprotect',
    take: 'write',
    nonblock: false,
    targets: () => [{ lo: 0, cnt: l.N, folio: 0 }],
    // change_protection -> change_pte_range: the PTEs stay, read-only (not modelled beyond the VMA's VM_WRITE).
    apply: { label: 'change_protection', run: () => {} },
    free: 'tlb_finish_mmu',
  })
  const steps: Record<string, Step<W, EventLocals>> = {
    ...base.steps,
    // do_mprotect_pkey: mmap_write_lock_killable.
    ...movableLocks.writeLockSteps<W, EventLocals, 'mprotect', 'mprotect_fixup'>(MMAP_LOCK, 'mprotect', 'mprotect_fixup'),
    mprotect_fixup: {
      run(w, me) {
        // vm_flags_reset(vma, newflags): VM_WRITE cleared before change_protection.
        w.vmaWritable = 0
        me.lo = 0
        me.cnt = l.N
        return 'mmu_notifier_invalidate_range_start'
      },
      text: () => `mprotect_fixup(uaddr ${hex(l.startUaddr)}..${hex(l.startUaddr + l.N - 1)}, PROT_READ): VM_WRITE cleared`,
    },
  }
  // The generic writer's lock and re-check steps: mprotect's own lock steps above replace them.
  for (const k of ['mmap_write_lock', 'mmap_write_lock_wait', 'revalidate']) delete steps[k]
  return { ...base, steps }
}

/** The VMM mm-call threads the parameters ask for: munmap0 (munmap=1), mprotect0 (mprotect=1). */
export function vmmMm(ctx: MovableContext, p: Params): { name: string; process: Process<W, any> }[] {
  return [...(p.mprotect ? [{ name: 'mprotect0', process: mprotect(ctx) }] : []), ...(p.munmap ? [{ name: 'munmap0', process: munmap(ctx) }] : [])]
}
