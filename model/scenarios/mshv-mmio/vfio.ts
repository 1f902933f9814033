/**
 * VFIO tearing down the host's mapping of BAR 0, in two ways:
 *
 *  - `vfio` (bar_unmap): the VMM munmaps the BAR's VMA: mmap_write_lock,
 *    unmap_region() (mmu_notifier_invalidate_range_start, the PTEs zapped,
 *    invalidate_range_end, the VMA freed), mmap_write_unlock;
 *  - `vfio_reset` (bar_reset): a device reset or a memory disable, e.g.
 *    vfio_pci_ioctl_reset(): vfio_pci_zap_and_down_write_memory_lock() =
 *    down_write(&vdev->memory_lock) + vfio_pci_zap_bars() ->
 *    unmap_mapping_range(vdev's inode mapping, BARs) (mm/memory.c:
 *    unmap_mapping_range_tree() -> zap_page_range_single() for each VMA of
 *    the file, under i_mmap_lock_read and not mmap_lock:
 *    mmu_notifier_invalidate_range_start(MMU_NOTIFY_CLEAR), the PTEs
 *    zapped, invalidate_range_end), then pci_try_reset_function() and
 *    up_write. The VMA stays; a later access faults into
 *    vfio_pci_mmap_huge_fault(), which waits for memory_lock and refaults the
 *    pfn (or SIGBUSes while the memory is disabled). This is the zap that
 *    fixed CVE-2020-12888 (user access to a BAR whose memory is disabled).
 *
 * (A vfio series under review, "vfio/pci: Clean up BAR zap and revocation",
 * May 2026, moves the zap into the BAR DMABUF's revoke; PTEs still go
 * through the MMU notifiers.) Upstream registers no MMU notifier for an MMIO
 * region, so neither reaches the SLAT. The notifier steps the variants add
 * are built here.
 */
import { invalidateRangeEnd, invalidateRangeStart, setSeq } from '../../primitives/mmu-notifier.js'
import { REGION_FREED } from '../../primitives/region.js'
import { process, type Process, type Step } from '../../process.js'
import { MEMORY_LOCK, MMAP_LOCK, mmioLocks, MREG_MUTEX, PT_LOCK, unmapBar, unmapRegionGpas, vfioLocals, type MmioContext, type VfioLocals, type W } from './world.js'

type VfioStepTo<K extends string> = Step<W, VfioLocals, K>

/** unmap_region() of the BAR's VMA: PTEs and VMA gone. */
export const unmapVma = <K extends string>(then: K): VfioStepTo<K> => ({
  targets: [then],
  run(w) {
    w.vmaPresent[0] = 0
    w.pte[0] = 0
    return then
  },
  text: () => 'munmap(BAR 0 VMA): PTEs zapped, VMA freed',
})

/** vfio_pci_zap_bars() -> unmap_mapping_range(): the BAR's PTEs zapped, the VMA kept. */
export const zapBars = <K extends string>(then: K): VfioStepTo<K> => ({
  targets: [then],
  run(w) {
    w.pte[0] = 0
    return then
  },
  text: () => 'vfio_pci_zap_bars -> unmap_mapping_range(BAR 0): PTEs zapped, the VMA stays',
})

/**
 * locked-lookup-notifier's callback (Stanislav's "MMU notifiers to destroy
 * memory regions if VMA is detached"): under pt_mem_regions_lock, the GPAs
 * of region 0 that map its BAR are unmapped, while the region exists.
 */
export function lockedCallback<K extends string>(ctx: MmioContext, then: K) {
  return {
    spin_lock: mmioLocks.lockStep<W, VfioLocals, 'mshv_mmio_region_invalidate'>(PT_LOCK, 'mshv_mmio_region_invalidate'),
    mshv_mmio_region_invalidate: {
      targets: ['spin_unlock'],
      run(w: W) {
        if (w.region[0].state !== REGION_FREED) unmapBar(ctx.l, w, 0)
        return 'spin_unlock' as const
      },
      text: (w: W) => (w.region[0].state !== REGION_FREED ? "MMU notifier: unmap the region's GPAs" : 'MMU notifier: none (it went with the freed region)'),
    } satisfies VfioStepTo<'spin_unlock'>,
    spin_unlock: mmioLocks.unlockStep<W, VfioLocals, K>(PT_LOCK, then),
  }
}

/**
 * The notifier fix's callback, mshv_region_interval_invalidate() as for a
 * movable region: mmu_notifier_invalidate_range_start() finds the
 * interval (mn_itree_inv_start_range: the seq goes odd), the callback takes
 * region->mreg_mutex, mmu_interval_set_seq(), unmaps the region's GPAs in
 * the range, unlocks; `then` is the zap itself (which goes on to
 * mmu_notifier_invalidate_range_end: `invalidateEnd`).
 */
export function intervalCallback<K extends string>(ctx: MmioContext, then: K) {
  return {
    mmu_notifier_invalidate_range_start: {
      targets: ['mutex_lock', then],
      run(w: W, me: VfioLocals) {
        me.cur = invalidateRangeStart(w, true)
        return me.cur ? 'mutex_lock' : then
      },
      text: (w: W) => `mmu_notifier_invalidate_range_start${w.mniInserted ? '' : ': no interval registered'}`,
    } satisfies VfioStepTo<'mutex_lock' | K>,
    mutex_lock: mmioLocks.lockStep<W, VfioLocals, 'mshv_mmio_region_invalidate'>(MREG_MUTEX, 'mshv_mmio_region_invalidate'),
    mshv_mmio_region_invalidate: {
      targets: ['mutex_unlock'],
      run(w: W, me: VfioLocals) {
        setSeq(w, me.cur)
        unmapRegionGpas(ctx.l, w)
        return 'mutex_unlock' as const
      },
      text: (_w: W, me: VfioLocals) => `mshv_region_interval_invalidate: mmu_interval_set_seq(${me.cur}), hv_call_unmap_gpa_pages(gfn 0, ${ctx.l.gfns} pages)`,
    } satisfies VfioStepTo<'mutex_unlock'>,
    mutex_unlock: mmioLocks.unlockStep<W, VfioLocals, K>(MREG_MUTEX, then),
  }
}

/** mmu_notifier_invalidate_range_end(): the seq is even again, read_begin sleepers wake. */
export const invalidateEnd = <K extends string>(then: K): VfioStepTo<K> => ({
  targets: [then],
  run(w, me) {
    invalidateRangeEnd(w)
    me.cur = 0
    return then
  },
})

/** The VMM munmaps BAR 0's VMA (upstream: no notifier is called for it). */
export function vfio(): Process<W, VfioLocals> {
  return process<W, VfioLocals>()({
    name: 'vfio',
    locals: vfioLocals,
    start: 'mmap_write_lock',
    steps: {
      mmap_write_lock: mmioLocks.lockStep(MMAP_LOCK, 'unmap_vma'),
      unmap_vma: unmapVma('mmap_write_unlock'),
      mmap_write_unlock: mmioLocks.unlockStep(MMAP_LOCK, 'done'),
    },
  })
}

/** VFIO resets the device: BAR 0's PTEs are zapped under vdev->memory_lock, the VMA stays. */
export function vfioReset(): Process<W, VfioLocals> {
  return process<W, VfioLocals>()({
    name: 'vfio_reset',
    locals: vfioLocals,
    start: 'down_write',
    steps: {
      down_write: mmioLocks.lockStep(MEMORY_LOCK, 'unmap_mapping_range'),
      unmap_mapping_range: zapBars('up_write'),
      up_write: { ...mmioLocks.unlockStep(MEMORY_LOCK, 'done'), text: () => 'pci_try_reset_function; up_write(&vdev->memory_lock)' },
    },
  })
}
