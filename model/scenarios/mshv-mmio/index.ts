/**
 * MSHV MMIO passthrough (seed 004: "[PATCH v0 15/15] mshv: Populate mmio
 * mappings for PCI passthru", and its review).
 *
 * Upstream (the first variant, `build`): the VMM's MSHV_SET_GUEST_MEMORY
 * maps an MMIO region's GPAs at once with mmio_pfn = vma->vm_pgoff
 * (mshv_map_user_memory), replaces region 0 by region 1 (mshv_unmap_user_memory:
 * hlist_del under pt_mem_regions_lock, mshv_region_put, whose last
 * reference runs mshv_region_destroy, which leaves an MMIO region's GPAs
 * mapped), VPs only take and drop region references, and VFIO tears BAR 0
 * down by munmap of its VMA (`bar_unmap`) or zaps its PTEs on a device
 * reset with the VMA kept (`bar_reset`). No MMU notifier covers an MMIO
 * region. The hypervisor silently accepts a map of an already-mapped GPA.
 *
 * The seed's versions (v0: the intercept path with an unlocked fast-path
 * lookup, mmap_read_lock under the spinlock and the whole region mapped
 * from the wrong start; Mukesh's no-spinlock; Stanislav's
 * locked-lookup-notifier), the posted V3 and mapcheck's fixes are patches
 * (variants.ts). World and helpers: world.ts; processes: vp.ts, vmm.ts,
 * vfio.ts.
 */
import { REGION_LISTED } from '../../primitives/region.js'
import type { Params, Scenario } from '../../scenario.js'
import { mmioPatches } from './variants.js'
import { vfio, vfioReset } from './vfio.js'
import { vmm } from './vmm.js'
import { vp } from './vp.js'
import { allPages, mmioGlobals, mmioLayout, type MmioContext, type MmioWorld, type W } from './world.js'

export { MEMORY_LOCK, MMAP_LOCK, MREG_MUTEX, PT_LOCK, allPages, mmioGlobals, mmioLayout, mmioLocks } from './world.js'
export type { MmioContext, MmioGlobals, MmioLayout, MmioWorld, VfioLabel, VfioLocals, VmmLabel, VmmLocals, VpLabel, VpLocals } from './world.js'

export type MmioVariant = 'upstream' | 'upstream-pfnmap' | 'v0' | 'no-spinlock' | 'locked-lookup-notifier' | 'v3' | 'v3-notifier' | 'v3-release-unmap' | 'v3-fixed'

export const mshvMmio: Scenario<MmioContext> = {
  name: 'mshv-mmio',
  title: 'MSHV MMIO passthrough: region-list races, sleeping in atomic context, wrong and dangling mappings (seed 004)',
  description:
    "MMIO regions of a partition (upstream's MSHV_SET_GUEST_MEMORY, seed 004's intercept path and its revisions) against the VMM replacing the region and VFIO tearing the BAR's mapping down (munmap of the VMA, or the PTE zap of a device reset).",
  params: [
    { name: 'gfns', default: 2, min: 1, max: 4, description: 'pages of the MMIO region' },
    { name: 'vps', default: 1, min: 1, max: 2, description: 'VP threads' },
    { name: 'replace', default: 1, min: 0, max: 1, description: 'the VMM replaces the region' },
    { name: 'bar_unmap', default: 1, min: 0, max: 1, description: "the VMM munmaps the region's BAR (VMA gone)" },
    { name: 'bar_reset', default: 0, min: 0, max: 1, description: "VFIO resets the device: vfio_pci_zap_bars zaps the BAR's PTEs, the VMA stays" },
    { name: 'nofull_mmio', default: 0, min: 0, max: 1, description: 'hv_nofull_mmio: map one page per intercept, not the whole region' },
  ],
  variants: [
    {
      name: 'upstream',
      description: 'mainline: GPAs mapped at MSHV_SET_GUEST_MEMORY with mmio_pfn = vma->vm_pgoff; the release leaves them mapped; no MMU notifier',
      expect: { violates: ['mmio-mapping-correct'] },
    },
    ...mmioPatches,
  ],
  processes: ['vp', 'vmm', 'vfio', 'vfio_reset'],
  context: (p: Params): MmioContext => ({ l: mmioLayout(p.gfns), full: !p.nofull_mmio, zaps: p.bar_reset === 1 }),
  /** upstream (every other variant is a patch of it). */
  // Rows are the MMIO gfns; the host side is BAR pages (a bitmask per BAR in `pte`), drawn per region.
  memoryMap: (p: Params) => {
    const l = mmioLayout(p.gfns)
    return {
      rows: l.gfns,
      lanes: [
        { kind: 'leaf', label: 'SLAT', field: 'slat' },
        ...Array.from({ length: l.regions }, (_, r) => ({
          kind: 'value' as const,
          label: `BAR ${r} (VMA ${r})`,
          cell: (w: MmioWorld, row: number) =>
            !w.vmaPresent[r]
              ? { text: 'VMA gone', kind: 'freed' as const }
              : w.pte[r] & (1 << row)
                ? { text: `PTE pfn 0x${(l.barPfn[r] + row).toString(16)}`, kind: 'small' as const, pfns: [l.barPfn[r] + row] }
                : { text: 'PTE zapped', kind: 'none' as const },
        })),
        { kind: 'range', label: 'region', field: 'region', live: 'state', liveNames: ['', 'listed', 'unlinked', 'FREED'] },
      ],
    }
  },
  build(p: Params, _variant: string, ctx: MmioContext) {
    const { l } = ctx
    const threads = [
      ...Array.from({ length: p.vps }, (_, k) => ({ name: `vp${k}`, process: vp(ctx) })),
      ...(p.replace ? [{ name: 'vmm', process: vmm(ctx) }] : []),
      ...(p.bar_unmap ? [{ name: 'vfio', process: vfio() }] : []),
      ...(p.bar_reset ? [{ name: 'vfio_reset', process: vfioReset() }] : []),
    ].map((t, tid) => ({ ...t, locals: { tid } }))
    return {
      globals: mmioGlobals(l),
      init(world: MmioWorld) {
        const w = world as W
        w.region[0].state = REGION_LISTED
        w.region[0].refs = 1 // the partition's list holds one (kref_init)
        for (let r = 0; r < l.regions; r++) {
          w.vmaPresent[r] = 1
          w.pte[r] = allPages(l)
        }
        // Region 0's MSHV_SET_GUEST_MEMORY is done: hv_call_map_mmio_pages(start_gfn, vma->vm_pgoff, nr_pages).
        for (let g = 0; g < l.gfns; g++) w.slat[g] = l.vmPgoff[0] + g
      },
      threads,
    }
  },
}
