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
  it('adds the head and tail hugepages of a range that only partly covers them, at every level', () => {
    const w = world()
    mmuInvalidateBegin(w)
    mmuInvalidateRangeAdd(w, 5, 6)
    kvmArchPreSetHugepageRanges(l, w, 5, 6)
    expect([w.mmuInvalidateRangeStart, w.mmuInvalidateRangeEnd]).toEqual([0, 16])
  })

  it('skips a hugepage that is already mixed (no hugepage can be created there anyway)', () => {
    const w = world()
    w.attr[15] = S
    kvmArchPostSetMemoryAttributes(l, w, 15, 16)
    mmuInvalidateBegin(w)
    mmuInvalidateRangeAdd(w, 5, 6)
    kvmArchPreSetHugepageRanges(l, w, 5, 6)
    expect([w.mmuInvalidateRangeStart, w.mmuInvalidateRangeEnd]).toEqual([4, 8])
  })

  it('adds nothing for a range that is exactly a hugepage, and both ends of a range spanning two', () => {
    const w = world()
    w.attr[0] = S
    kvmArchPostSetMemoryAttributes(l, w, 0, 1) // the 16-page block is mixed: only the 4-page level counts
    mmuInvalidateBegin(w)
    expect(w.mmuInvalidateRangeStart).toBe(INVALID_GPA)
    mmuInvalidateRangeAdd(w, 4, 8)
    kvmArchPreSetHugepageRanges(l, w, 4, 8)
    expect([w.mmuInvalidateRangeStart, w.mmuInvalidateRangeEnd]).toEqual([4, 8])
    const v = world()
    v.attr[0] = S
    kvmArchPostSetMemoryAttributes(l, v, 0, 1)
    mmuInvalidateBegin(v)
    mmuInvalidateRangeAdd(v, 6, 10)
    kvmArchPreSetHugepageRanges(l, v, 6, 10)
    expect([v.mmuInvalidateRangeStart, v.mmuInvalidateRangeEnd]).toEqual([4, 12])
  })
})
