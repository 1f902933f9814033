import { describe, expect, it } from 'vitest'
import { eptHugeCoverage, eptHugeMappingAligned, eptMappingWithinFolio, eptNoStaleMapping, mappingWithinSlot } from '../../invariants/ept-invariants.js'
import { gmemLayout, SLOT_NONE, SLOT_VALID, type GmemWorld } from '../../model/scenarios/kvm-gmem-binding.js'

// Layout: H=1 (leaves of 1, 2 or 4 pages), 8 gfns; slot ids [0, 5].
const l = gmemLayout({ H: 1, ram: 4, low: 1, offset_shift: 0, vcpus: 1, faults: 1 })

/** Slot 5 over gfns 2..7 at file index = gfn; an order-1 folio at index 2..3 (pfns 2, 3). */
function world(): GmemWorld {
  const w = {
    slot: [
      { state: SLOT_NONE, base: 0, npages: 0, pgoff: 0, ua: 0 },
      { state: SLOT_VALID, base: 2, npages: 6, pgoff: 2, ua: 0 },
    ],
    filePfn: Array(8).fill(0),
    fileOrder: Array(8).fill(0),
    nextPfn: 4,
    ept: Array.from({ length: 8 }, () => ({ pfn: 0, pages: 0, slot: 0 })),
    memslotsGen: 0,
    srcuReader: [0],
  }
  w.filePfn[2] = 2
  w.filePfn[3] = 3
  w.fileOrder[2] = 1
  w.fileOrder[3] = 1
  return w as GmemWorld
}
const leaf = (w: GmemWorld, gfn: number, pfn: number, pages: number, slot = 2) => {
  for (let k = 0; k < pages; k++) w.ept[gfn + k] = { pfn: pfn + k, pages, slot }
}

describe('EPT invariants', () => {
  it('all hold on a correct huge leaf', () => {
    const w = world()
    leaf(w, 2, 2, 2)
    for (const inv of [eptHugeMappingAligned(l), eptMappingWithinFolio(l), mappingWithinSlot(l), eptNoStaleMapping(l)]) expect(inv.check(w)).toBeNull()
    expect(eptHugeCoverage(l).measure(w)).toBe(2 / 8)
  })

  it('huge-mapping-aligned fails for a misaligned pfn', () => {
    const w = world()
    leaf(w, 2, 3, 2)
    expect(eptHugeMappingAligned(l).check(w)).toBe('the 2-page leaf at gfn 2 maps pfn 3, not a 2-aligned run')
  })

  it('mapping-within-folio fails for a leaf larger than the folio or at the wrong offset', () => {
    const big = world()
    leaf(big, 0, 0, 4)
    big.slot[1] = { state: SLOT_VALID, base: 0, npages: 8, pgoff: 0, ua: 0 }
    big.ept.forEach((e, g) => (e.pfn = g))
    big.filePfn[0] = 0
    expect(eptMappingWithinFolio(l).check(big)).toMatch(/^gfn 0 \(file index 0\) is in a 4-page leaf mapping pfn 0, but index 0 is not in the file/)
    const shifted = world()
    shifted.slot[1] = { state: SLOT_VALID, base: 3, npages: 4, pgoff: 2, ua: 0 }
    leaf(shifted, 4, 2, 2)
    expect(eptMappingWithinFolio(l).check(shifted)).toBe('gfn 4 (file index 3) is in a 2-page leaf mapping pfn 2, but index 3 is pfn 3 in an order-1 folio')
  })

  it('mapping-within-slot fails for a leaf outside its slot', () => {
    const w = world()
    leaf(w, 0, 2, 2)
    expect(mappingWithinSlot(l).check(w)).toBe('gfn 0 is mapped by a 2-page leaf of slot 5, which covers gfns 2..7')
  })

  it('no-stale-mapping fails once the slot is deleted and its leaf remains', () => {
    const w = world()
    leaf(w, 2, 2, 2)
    w.slot[1].state = SLOT_NONE
    expect(eptNoStaleMapping(l).check(w)).toBe('gfn 2 still maps pfn 2 through slot 5, which was deleted')
    expect(eptMappingWithinFolio(l).check(w)).toBeNull()
  })
})
