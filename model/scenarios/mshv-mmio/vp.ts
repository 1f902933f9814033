/**
 * VP threads: the steps every variant's intercept path is made of, and the
 * upstream VP the other variants patch (variants.ts).
 *
 * Upstream (mainline, as the list patches against it show it: the stored
 * torvalds copies of mshv_root_main.c predate the region refcount) maps an
 * MMIO region's GPAs once, in MSHV_SET_GUEST_MEMORY (vmm.ts), and has no
 * HVMSG_UNMAPPED_GPA case in mshv_vp_handle_intercept(). The only VP code
 * that touches an MMIO region is mshv_handle_gpa_intercept() (and
 * mshv_vp_ioctl_translate_gva()): mshv_partition_region_by_gfn_get()
 * (pt_mem_regions_lock + kref_get_unless_zero), "only movable regions are
 * handled", mshv_region_put(), which runs the release when it drops the
 * last reference.
 */
import { ModelError } from '../../../explorer/errors.js'
import { access } from '../../primitives/lockset.js'
import { process, type DONE, type Process, type Step } from '../../process.js'
import {
  MEMORY_LOCK,
  MMAP_LOCK,
  mmioLocks,
  PT_LOCK,
  listed,
  putText,
  regionPut,
  use,
  vpDone,
  vpLocals,
  type MmioContext,
  type VpLocals,
  type W,
} from './world.js'

type VpStepTo<K extends string> = Step<W, VpLocals, K>

/** mshv_partition_region_by_gfn_get(): the lookup under pt_mem_regions_lock with kref_get_unless_zero (a listed region has the list's reference). */
export const regionByGfnGet = <K extends string>(ctx: MmioContext, then: K): VpStepTo<K> => ({
  targets: [then],
  run(w, me) {
    access(w.regionList, me, false)
    const r = listed(ctx.l, w, me.gfn)
    if (r >= 0) {
      w.region[r].refs++
      me.mreg = r + 1
    }
    return then
  },
  text: (w, me) => `mshv_partition_region_by_gfn_get(gfn ${me.gfn})${listed(ctx.l, w, me.gfn) < 0 ? ' = NULL' : `: region ${listed(ctx.l, w, me.gfn)}, kref_get_unless_zero`}`,
})

/** mmap_read_lock(current->mm). */
export const mmapReadLock = <K extends string>(then: K): VpStepTo<K> => ({
  targets: [then],
  guard: (w) => mmioLocks.readable(w, MMAP_LOCK),
  run(w, me) {
    mmioLocks.readLock(w, me, MMAP_LOCK)
    return then
  },
  text: () => 'mmap_read_lock(current->mm)',
})

/**
 * vma_lookup() + follow_pfnmap_start() at the region's uaddr for the gfn
 * (region: `me.mreg`): the pfn the host page table maps there; with the VMA
 * gone the lookup fails (`fail`); with the PTE zapped, fixup_user_fault()
 * (a step only with `bar_reset`, `fixupSteps`).
 */
export const followPfnmap = <K1 extends string, K2 extends string>(ctx: MmioContext, then: K1, fail: K2): VpStepTo<K1 | K2 | 'fixup_user_fault'> => ({
  // Only a reset zaps a PTE the VMA keeps: without `bar_reset` the step has no fixup_user_fault to go to.
  targets: ctx.zaps ? [then, fail, 'fixup_user_fault'] : [then, fail],
  run(w, me) {
    const r = me.mreg - 1
    use(w, r, me)
    if (!w.vmaPresent[r]) {
      me.pfn = 0
      return fail
    }
    if (!(w.pte[r] & (1 << me.gfn))) {
      if (!ctx.zaps) throw new ModelError('a BAR PTE is missing under its VMA with no reset to zap it')
      return 'fixup_user_fault'
    }
    me.pfn = ctx.l.barPfn[r] + me.gfn
    return then
  },
  text(w, me) {
    const r = me.mreg - 1
    const head = `vma_lookup + follow_pfnmap_start(gfn ${me.gfn})`
    if (!w.vmaPresent[r]) return `${head}: no VMA, fail`
    if (!(w.pte[r] & (1 << me.gfn))) return `${head}: no PTE (zapped)`
    return `${head} = pfn ${ctx.l.barPfn[r] + me.gfn}`
  },
})

/**
 * fixup_user_fault() -> handle_mm_fault() -> vfio_pci_mmap_huge_fault():
 * down_read(&vdev->memory_lock) (so it waits while a reset holds it for
 * write), vmf_insert_pfn(), up_read; then follow_pfnmap_start() again. The
 * VMA cannot go: mmap_lock is held.
 */
export const fixupUserFault = <K extends string>(ctx: MmioContext, then: K): VpStepTo<K> => ({
  targets: [then],
  guard: (w) => mmioLocks.readable(w, MEMORY_LOCK),
  run(w, me) {
    const r = me.mreg - 1
    mmioLocks.readLock(w, me, MEMORY_LOCK)
    w.pte[r] |= 1 << me.gfn
    mmioLocks.readUnlock(w, me, MEMORY_LOCK)
    me.pfn = ctx.l.barPfn[r] + me.gfn
    return then
  },
  text: (_w, me) =>
    `fixup_user_fault -> vfio_pci_mmap_huge_fault: down_read(&vdev->memory_lock), vmf_insert_pfn(pfn ${ctx.l.barPfn[me.mreg - 1] + me.gfn}); follow_pfnmap_start = pfn ${ctx.l.barPfn[me.mreg - 1] + me.gfn}`,
})

/** fixup_user_fault, as a patch adds it: only with `bar_reset` (see followPfnmap). */
export const fixupSteps = <K extends string>(ctx: MmioContext, then: K): { fixup_user_fault?: VpStepTo<K> } =>
  ctx.zaps ? { fixup_user_fault: fixupUserFault(ctx, then) } : {}

/** mmap_read_unlock(current->mm). */
export const mmapReadUnlock = <K extends string>(then: K | ((w: W, me: VpLocals) => K)): VpStepTo<K> => ({
  targets: [then],
  run(w, me) {
    mmioLocks.readUnlock(w, me, MMAP_LOCK)
    return typeof then === 'string' ? then : then(w, me)
  },
  text: () => 'mmap_read_unlock(current->mm)',
})

/** mshv_region_put() of the region the VP holds (`me.mreg`): the last reference frees it (regionPut). */
export const vpRegionPut = (): VpStepTo<typeof DONE> => ({
  run(w, me) {
    const r = me.mreg - 1
    use(w, r, me)
    regionPut(w, r)
    return vpDone(me)
  },
  text: (w, me) => putText(w, me.mreg - 1),
})

/** The upstream VP: the GPA intercept path for a gfn of the MMIO region, which only takes and drops a reference. */
export function vp(ctx: MmioContext): Process<W, VpLocals> {
  return process<W, VpLocals>()({
    name: 'vp',
    locals: vpLocals,
    start: 'mshv_vp_handle_intercept',
    steps: {
      mshv_vp_handle_intercept: {
        choices: () => ctx.l.gfns,
        run(_w, me, gfn) {
          me.gfn = gfn
          return 'spin_lock'
        },
        text: (_w, _me, gfn) => `HVMSG_GPA_INTERCEPT(gfn ${gfn}): mshv_handle_gpa_intercept`,
      },
      spin_lock: mmioLocks.lockStep(PT_LOCK, 'mshv_partition_region_by_gfn'),
      mshv_partition_region_by_gfn: regionByGfnGet(ctx, 'spin_unlock'),
      // Not a movable region: the intercept is not handled; the reference is dropped.
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me) => (me.mreg ? 'mshv_region_put' : vpDone(me))),
      mshv_region_put: vpRegionPut(),
    },
  })
}
