/** Invariants of the MSHV MMIO passthrough scenario (seed 004), and the lockset checker over any marked object. */
import type { Invariant } from '../explorer/model.js'
import type { Lockset } from '../model/primitives/lockset.js'
import { REGION_LISTED } from '../model/primitives/region.js'
import type { MmioLayout, MmioWorld } from '../model/scenarios/mshv-mmio/index.js'
import type { ThreadName } from './slat-invariants.js'

/**
 * `region-list-race-free` (Eraser's lockset rule on the partition's region
 * list): once two threads touch the list and one writes, every access must
 * hold a common lock.
 */
export function regionListRaceFree(thread: ThreadName): Invariant<{ regionList: Lockset }> {
  return {
    id: 'region-list-race-free',
    description: 'the region list is written and read under a common lock (Eraser lockset)',
    check: (w) =>
      w.regionList.race ? `${thread(w.regionList.race - 1)} accessed the region list, which another thread writes, with no lock in common` : null,
  }
}

/** The BAR a pfn belongs to, or null. */
function barPage(l: MmioLayout, pfn: number): { r: number } | null {
  for (let r = 0; r < l.regions; r++) if (pfn >= l.barPfn[r] && pfn < l.barPfn[r] + l.gfns) return { r }
  return null
}

/**
 * `no-dangling-mmio-mapping` (the MMU notifier contract: the SLAT maps only
 * what the host maps): no SLAT entry maps a BAR pfn the host no longer
 * maps, because the BAR's VMA is gone (munmap), or vfio_pci_zap_bars zapped
 * the BAR's PTEs (a reset or a memory disable, the VMA kept) and no access
 * has faulted the BAR back in since. The BAR is the unit: VFIO zaps all of
 * it and its fault handler refaults any page of it once the device's memory
 * is enabled again, so the intercept's whole-region map after one refault
 * (!hv_nofull_mmio) is not counted.
 */
export function noDanglingMmioMapping(l: MmioLayout): Invariant<Pick<MmioWorld, 'slat' | 'vmaPresent' | 'pte'>> {
  return {
    id: 'no-dangling-mmio-mapping',
    description: 'no SLAT entry maps a BAR pfn the host no longer maps (VMA unmapped, or BAR zapped and not faulted back in)',
    check(w) {
      for (let g = 0; g < l.gfns; g++) {
        const pfn = w.slat[g]
        const b = barPage(l, pfn)
        if (!b) continue
        if (!w.vmaPresent[b.r]) return `gfn ${g} still maps BAR pfn ${pfn}, whose VMA is gone`
        if (w.pte[b.r] === 0) return `gfn ${g} still maps BAR pfn ${pfn}, whose PTEs vfio_pci_zap_bars zapped (the VMA stays)`
      }
      return null
    },
  }
}

/**
 * `mmio-mapping-correct`: every SLAT entry of a listed MMIO region maps the
 * BAR pfn that the region's VMA maps at that address:
 * slat[g] == barPfn[r] + (g - start_gfn) for the listed region r backing g,
 * where its VMA maps that page (an entry where the host maps nothing is
 * `no-dangling-mmio-mapping`'s business, one of no listed region nobody's).
 */
export function mmioMappingCorrect(l: MmioLayout): Invariant<Pick<MmioWorld, 'slat' | 'vmaPresent' | 'pte' | 'region'>> {
  return {
    id: 'mmio-mapping-correct',
    description: "every SLAT entry of a listed MMIO region maps the BAR pfn its VMA maps at that address",
    check(w) {
      for (let g = 0; g < l.gfns; g++) {
        const pfn = w.slat[g]
        if (pfn === 0) continue
        for (let r = 0; r < l.regions; r++) {
          // Region r covers gfns 0..gfns-1 from start_gfn 0 and its VMA's page g maps barPfn[r] + g.
          if (w.region[r].state !== REGION_LISTED || !w.vmaPresent[r] || !(w.pte[r] & (1 << g))) continue
          const want = l.barPfn[r] + g
          if (pfn !== want) return `gfn ${g} maps pfn ${pfn}, but region ${r}'s VMA maps BAR pfn ${want} there`
        }
      }
      return null
    },
  }
}
