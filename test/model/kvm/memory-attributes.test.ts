import { describe, expect, it } from 'vitest'
import { INVALID_GPA, kvmInvalidationInit, mmuInvalidateBegin, mmuInvalidateRangeAdd, type KvmInvalidation } from '../../../model/kvm/invalidation.js'
import {
  hugepageTestMixed,
  kvmArchPostSetMemoryAttributes,
  kvmArchPreSetHugepageRanges,
  kvmMmuInitMemslotMemoryAttributes,
  lpageMaxMapping,
  type AttributeWorld,
  type LpageLevels,
} from '../../../model/kvm/memory-attributes.js'

// 16 gfns, huge levels of 4 and 16 pages: flags 0..3 for the 4-page blocks, 4 for the 16-page one.
const l: LpageLevels = { levels: [1, 4, 16], mixedOffset: [0, 0, 4], pages: 16 }
const P = 1
const S = 0

function world(): AttributeWorld & KvmInvalidation {
  const w = { attr: Array(16).fill(P), lpageMixed: Array(5).fill(0) } as AttributeWorld & KvmInvalidation
  kvmInvalidationInit(w)
  kvmMmuInitMemslotMemoryAttributes(l, w)
  return w
}

describe('lpage_info mixed flags (kvm_arch_post_set_memory_attributes)', () => {
  it('lag the attributes until post_set runs, then mark every block the range touches', () => {
    const w = world()
    w.attr[5] = S
    // The attribute changed; lpage_info still allows a 16-page leaf at gfn 4 (a fault reads the flag, not the attributes).
    expect(lpageMaxMapping(l, w, 4, 16)).toBe(16)
    kvmArchPostSetMemoryAttributes(l, w, 5, 6)
    expect(hugepageTestMixed(l, w, 1, 5)).toBe(true)
    expect(hugepageTestMixed(l, w, 2, 5)).toBe(true)
    expect(hugepageTestMixed(l, w, 1, 0)).toBe(false)
    expect(lpageMaxMapping(l, w, 4, 16)).toBe(1)
    expect(lpageMaxMapping(l, w, 0, 16)).toBe(4)
  })

  it('clear the flag when a block becomes homogeneous again', () => {
    const w = world()
    w.attr[5] = S
    kvmArchPostSetMemoryAttributes(l, w, 5, 6)
    for (const g of [4, 6, 7]) w.attr[g] = S
    kvmArchPostSetMemoryAttributes(l, w, 4, 8)
    expect(hugepageTestMixed(l, w, 1, 4)).toBe(false)
    expect(hugepageTestMixed(l, w, 2, 4)).toBe(true)
    expect(lpageMaxMapping(l, w, 5, 16)).toBe(4)
  })

  it('never allow a leaf beyond max_order', () => {
    expect(lpageMaxMapping(l, world(), 3, 4)).toBe(4)
    expect(lpageMaxMapping(l, world(), 3, 2)).toBe(1)
  })
})

describe('kvm_arch_pre_set_memory_attributes: the straddling hugepages', () => {
  /** A world whose gfn `g` was made shared, with its flags updated (post_set). */
  const sharedAt = (g: number) => {
    const w = world()
    w.attr[g] = S
    kvmArchPostSetMemoryAttributes(l, w, g, g + 1)
    return w
  }
  /** kvm_pre_set_memory_attributes on [start, end) in a fresh invalidation: the range it leaves. */
  const preSet = (w: AttributeWorld & KvmInvalidation, start: number, end: number): number[] => {
    mmuInvalidateBegin(w)
    expect(w.mmuInvalidateRangeStart).toBe(INVALID_GPA)
    mmuInvalidateRangeAdd(w, start, end)
    kvmArchPreSetHugepageRanges(l, w, start, end)
    return [w.mmuInvalidateRangeStart, w.mmuInvalidateRangeEnd]
  }

  it('adds the head and tail hugepages of a range that only partly covers them, at every level', () => {
    expect(preSet(world(), 5, 6)).toEqual([0, 16])
  })

  it('skips a hugepage that is already mixed (no hugepage can be created there anyway)', () => {
    expect(preSet(sharedAt(15), 5, 6)).toEqual([4, 8])
  })

  it('adds nothing for a range that is exactly a hugepage, and both ends of a range spanning two', () => {
    // gfn 0 shared: the 16-page block is mixed, so only the 4-page level counts.
    expect(preSet(sharedAt(0), 4, 8)).toEqual([4, 8])
    expect(preSet(sharedAt(0), 6, 10)).toEqual([4, 12])
  })
})
