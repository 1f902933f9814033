import { describe, expect, it } from 'vitest'
import {
  homogeneousAttributes,
  mappingContiguous,
  noPoisonedPageMapped,
  noSharedMappedPrivate,
  septHugeCoverage,
  septMappingWithinFolio,
  septNoStaleMapping,
} from '../../invariants/sept-invariants.js'
import { conversionLayout, PRIVATE, SHARED, type ConversionWorld } from '../../model/scenarios/kvm-gmem-conversion/index.js'

const l = conversionLayout(1) // 4 pages, leaves of 1, 2 or 4 pages, pfns 4..7

/** A private world: the whole folio (order 2) mapped by one 4-page private leaf. */
function world(): ConversionWorld {
  return {
    attr: [PRIVATE, PRIVATE, PRIVATE, PRIVATE],
    order: [2, 2, 2, 2],
    hwpoison: [0, 0, 0, 0],
    mcePending: 0,
    ept: [0, 1, 2, 3].map((g) => ({ pfn: l.basePfn + g, pages: 4, priv: PRIVATE })),
  } as unknown as ConversionWorld
}
const all = [septMappingWithinFolio(l), homogeneousAttributes(l), mappingContiguous(l), noPoisonedPageMapped(l), septNoStaleMapping(l), noSharedMappedPrivate(l)]

describe('S-EPT invariants', () => {
  it('all hold on a huge private leaf over its own folio', () => {
    const w = world()
    for (const inv of all) expect(inv.check(w), inv.id).toBeNull()
    expect(septHugeCoverage(l).measure(w)).toBe(1)
  })

  it('mapping-within-folio fails once the folio is split under the leaf; mapping-contiguous still holds', () => {
    const w = world()
    w.order = [0, 0, 0, 0]
    expect(septMappingWithinFolio(l).check(w)).toBe('the 4-page leaf at gfn 0 maps pfn 4 of an order-0 folio')
    expect(mappingContiguous(l).check(w)).toBeNull()
  })

  it('homogeneous-attributes fails for a leaf over a shared page', () => {
    const w = world()
    w.attr[2] = SHARED
    expect(homogeneousAttributes(l).check(w)).toBe('the 4-page leaf at gfn 0 spans private gfn 0 and shared gfn 2')
  })

  it('mapping-contiguous fails for a leaf over non-contiguous or misaligned pfns', () => {
    const w = world()
    w.ept[3].pfn = 12
    expect(mappingContiguous(l).check(w)).toBe('the 4-page leaf at gfn 0 maps pfn 12 at gfn 3, not contiguous')
    const m = world()
    m.ept.forEach((e) => e.pfn++)
    expect(mappingContiguous(l).check(m)).toBe('the 4-page leaf at gfn 0 starts at pfn 5, not 4-aligned')
  })

  it('no-freed-page-mapped fails for a mapped poisoned page once memory failure is handled, not while it is pending', () => {
    const w = world()
    w.hwpoison[1] = 1
    w.mcePending = 1
    expect(noPoisonedPageMapped(l).check(w)).toBeNull()
    w.mcePending = 0
    expect(noPoisonedPageMapped(l).check(w)).toBe('gfn 1 still maps pfn 5 (in a 4-page leaf) after memory failure')
  })

  it('no-stale-mapping fails for a shared mapping of a private page, no-shared-mapped-private for the converse', () => {
    const w = world()
    w.ept[0] = { pfn: l.basePfn, pages: 1, priv: SHARED }
    expect(septNoStaleMapping(l).check(w)).toBe('gfn 0 is private but still mapped shared (pfn 4)')
    const s = world()
    s.attr[3] = SHARED
    expect(noSharedMappedPrivate(l).check(s)).toBe('gfn 3 is shared but still mapped private (pfn 7)')
  })
})
