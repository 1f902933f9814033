/**
 * The VMM replacing MMIO region 0 by region 1 with MSHV_SET_GUEST_MEMORY,
 * as upstream does it. The stored torvalds copies of mshv_root_main.c
 * (ed83d364) predate the region refcount, so this follows the code the
 * list patches apply to: the context of "[PATCH V3 10/11] mshv: Populate
 * mmio mappings for PCI passthru" (2026-05-12, mshv_root_main.c index
 * 6ceb5f608589) and of "mshv: Add refcount and locking to mem regions"
 * (c39dda08), with drivers/hv/mshv_regions.c read at torvalds 0eaed89c:
 *
 *  - mshv_unmap_user_memory(): spin_lock(&pt_mem_regions_lock),
 *    mshv_partition_region_by_gfn() + the paranoia check, hlist_del(),
 *    spin_unlock, mshv_region_put() (the list's reference; the last one runs
 *    mshv_region_destroy(), which for an MMIO region unmaps nothing: see
 *    regionPut in world.ts);
 *  - mshv_map_user_memory(): mmap_read_lock, vma_lookup() (VM_IO |
 *    VM_PFNMAP: an MMIO region), mmio_pfn = vma->vm_pgoff, mmap_read_unlock,
 *    the region created (mshv_partition_create_region: its overlap check
 *    under the spinlock cannot fail here, the old region being unlinked
 *    already, and is left out), hv_call_map_mmio_pages(start_gfn, mmio_pfn,
 *    nr_pages), then spin_lock, hlist_add_head(), spin_unlock.
 */
import { access } from '../../primitives/lockset.js'
import { REGION_LISTED, REGION_UNLINKED } from '../../primitives/region.js'
import { process, type Process, type Step } from '../../process.js'
import { mapMmioPages, MMAP_LOCK, mmioLocks, PT_LOCK, putText, regionPut, vmmLocals, type MmioContext, type VmmLocals, type W } from './world.js'

type VmmStepTo<K extends string> = Step<W, VmmLocals, K>

/** mshv_region_put() of the list's reference to region 0; the VMM goes on to map the replacement. */
export const vmmRegionPut = <K extends string>(then: K): VmmStepTo<K> => ({
  targets: [then],
  run(w, me) {
    regionPut(w, 0)
    me.step = 1
    return then
  },
  text: (w) => putText(w, 0),
})

/**
 * mshv_map_user_memory() up to the map: mmap_read_lock, vma_lookup, the
 * pfn to map (`pfnOf`: mainline reads vma->vm_pgoff), mmap_read_unlock. One
 * step: region 1's VMA is never torn down in this scenario, so nothing can
 * interleave with it that matters.
 */
export const mapUserMemory = <K extends string>(pfnOf: (w: W) => number, how: string, then: K): VmmStepTo<K> => ({
  targets: [then],
  guard: (w) => mmioLocks.readable(w, MMAP_LOCK),
  run(w, me) {
    mmioLocks.readLock(w, me, MMAP_LOCK)
    me.pfn = pfnOf(w)
    mmioLocks.readUnlock(w, me, MMAP_LOCK)
    return then
  },
  text: (w) => `mshv_map_user_memory(region 1): mmap_read_lock, vma_lookup: VM_IO | VM_PFNMAP, ${how} = ${pfnOf(w)}, mmap_read_unlock`,
})

export function vmm(ctx: MmioContext): Process<W, VmmLocals> {
  const { l } = ctx
  return process<W, VmmLocals>()({
    name: 'vmm',
    locals: vmmLocals,
    start: 'spin_lock',
    steps: {
      spin_lock: mmioLocks.lockStep(PT_LOCK, (_w, me: VmmLocals) => (me.step === 0 ? 'mshv_unmap_user_memory' : 'hlist_add_head')),
      mshv_unmap_user_memory: {
        run(w, me) {
          access(w.regionList, me, true)
          w.region[0].state = REGION_UNLINKED
          return 'spin_unlock'
        },
        text: () => 'mshv_unmap_user_memory: mshv_partition_region_by_gfn, hlist_del(region 0)',
      },
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me: VmmLocals) => (me.step === 0 ? 'mshv_region_put' : 'done')),
      mshv_region_put: vmmRegionPut('mshv_map_user_memory'),
      mshv_map_user_memory: mapUserMemory((w) => l.vmPgoff[1], 'mmio_pfn = vma->vm_pgoff', 'hv_call_map_mmio_pages'),
      hv_call_map_mmio_pages: {
        run(w, me) {
          mapMmioPages(w, 0, me.pfn, l.gfns)
          return 'spin_lock'
        },
        text: (_w, me) => `hv_call_map_mmio_pages(gfn 0, pfn ${me.pfn}, ${l.gfns} pages)`,
      },
      hlist_add_head: {
        run(w, me) {
          access(w.regionList, me, true)
          w.region[1].state = REGION_LISTED
          w.region[1].refs = 1
          return 'spin_unlock'
        },
        text: () => 'mshv_map_user_memory: hlist_add_head(region 1)',
      },
    },
  })
}
