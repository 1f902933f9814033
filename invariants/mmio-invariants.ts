/** Invariants of the MSHV MMIO passthrough scenario (seed 004), and the lockset checker over any marked object. */
import type { Invariant } from '../explorer/model.js'
import type { Lockset } from '../model/primitives/lockset.js'
import type { MmioLayout, MmioWorld } from '../model/scenarios/mshv-mmio.js'
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

/** `no-dangling-mmio-mapping`: once the VMA of an MMIO BAR is gone, no SLAT entry maps its pfns. */
export function noDanglingMmioMapping(l: MmioLayout): Invariant<Pick<MmioWorld, 'slat' | 'vmaPresent'>> {
  return {
    id: 'no-dangling-mmio-mapping',
    description: "no SLAT entry maps a BAR pfn whose VMA has been unmapped",
    check(w) {
      for (let g = 0; g < l.gfns; g++) {
        const pfn = w.slat[g]
        for (let r = 0; r < l.regions; r++) {
          if (pfn >= l.barPfn[r] && pfn < l.barPfn[r] + l.gfns && !w.vmaPresent[r]) {
            return `gfn ${g} still maps BAR pfn ${pfn}, whose VMA is gone`
          }
        }
      }
      return null
    },
  }
}
