/**
 * model/drivers/mshv-regions.ts: mshv_region_remap_pages() as torvalds
 * 0eaed89c has it (drivers/hv/mshv_regions.c): mshv_region_process_range()
 * skips non-present pages, mshv_region_process_chunk() folds consecutive
 * same-stride chunks into one hv_call_map_gpa_pages() (never looking at the
 * pages inside a stride), the range stops at the first error; an injected
 * failure at one rep of the whole remap; mshv_region_chunk_unmap.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  chunkStride,
  remapCalls,
  remapPages,
  remapRepAt,
  remapReps,
  remapFailureChoices,
  unmapPages,
  type ChunkStride,
  type MshvRegionWorld,
  type StridePolicy,
} from '../../../model/drivers/mshv-regions.js'
import { FRAME_HUGE, FRAME_SMALL } from '../../../model/primitives/folio.js'
import { layout, type Layout } from '../../../model/primitives/layout.js'
import {
  ACCESS_NO_ACCESS,
  ACCESS_NONE,
  ACCESS_RW,
  EINVAL,
  HV_MAP_GPA_LARGE_PAGE,
  HV_MAP_GPA_NO_ACCESS,
  HV_STATUS_FAILED,
  HV_STATUS_INVALID_PARAMETER,
  HV_STATUS_SUCCESS,
  mapGpaPages,
  type Leaf,
} from '../../../model/primitives/slat.js'

const POSTED: StridePolicy = { pfnAlignedStride: false }
const emptySlat = (l: Layout): Leaf[] => Array.from({ length: l.N }, () => ({ pfn: 0, order: 0, access: ACCESS_NONE }))

/** A world whose pages[] are `pages` (0 = not present); pfns at or above `hugeFrom` are pages of huge folios. */
function world(l: Layout, pages: number[], hugeFrom = 0x40): MshvRegionWorld & { slat: Leaf[] } {
  const frame = Array.from({ length: 256 }, (_, pfn) => (pfn === 0 ? 0 : pfn >= hugeFrom ? FRAME_HUGE : FRAME_SMALL))
  return { frame, nextPfn: 255, pages, slat: emptySlat(l) }
}

describe('mshv_region_process_chunk: one hv_call_map_gpa_pages per run of same-stride chunks', () => {
  const l = layout(1, 8, 0, 0) // gfn 2..9: region page 0 is huge-aligned

  it('two THPs at aligned gfns fold into one LARGE_PAGE call of 4 pages; 4K pages fold into one 4K call', () => {
    const w = world(l, [0x40, 0x41, 0x42, 0x43, 0x10, 0x11, 0x12, 0x13])
    expect(remapCalls(l, w, POSTED, 0, 8)).toEqual([
      { index: 0, count: 4, large: true },
      { index: 4, count: 4, large: false },
    ])
    expect(remapReps(l, w, POSTED, 0, 8)).toBe(2 + 4)
  })

  it('a page not present ends a chunk and is skipped; a change of stride ends it', () => {
    const w = world(l, [0x10, 0, 0x11, 0x12, 0x44, 0x45, 0x13, 0x14])
    expect(remapCalls(l, w, POSTED, 0, 8)).toEqual([
      { index: 0, count: 1, large: false },
      { index: 2, count: 2, large: false },
      { index: 4, count: 2, large: true },
      { index: 6, count: 2, large: false },
    ])
  })

  it('the pages inside a stride are never looked at ("start at stride since the first stride is validated")', () => {
    // Page 1 is a 4K page of another folio: the stride from page 0's THP head covers it all the same.
    const w = world(l, [0x40, 0x11, 0x42, 0x43, 0, 0, 0, 0])
    expect(remapCalls(l, w, POSTED, 0, 4)).toEqual([{ index: 0, count: 4, large: true }])
  })

  it('mshv_chunk_stride is asked with the pages left from that page (page_count - count)', () => {
    const asked: [number, number][] = []
    const spy: ChunkStride = (ll, w, i, remaining) => (asked.push([i, remaining]), chunkStride(ll, w, POSTED, i, remaining))
    remapCalls(l, world(l, [0x40, 0x41, 0x42, 0x43, 0x10, 0, 0, 0]), spy, 0, 6)
    expect(asked).toEqual([
      [0, 6],
      [2, 4],
      [4, 2],
      [4, 2],
    ])
  })

  it('on success the folded calls map exactly what one call per stride mapped (the previous model), for any pages[]', () => {
    const H = 1
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 }), fc.array(fc.constantFrom(0, 0x10, 0x11, 0x12, 0x40, 0x41, 0x42, 0x43, 0x45), { minLength: 8, maxLength: 8 }), fc.boolean(), (g, pages, pfnAligned) => {
        const ll = layout(H, 8, g, 0)
        const pol = { pfnAlignedStride: pfnAligned }
        const folded = world(ll, pages)
        const perStride = world(ll, pages)
        const a = remapPages(ll, folded, pol, 0, 0, 8)
        let b = HV_STATUS_SUCCESS
        for (let i = 0; i < 8 && b === HV_STATUS_SUCCESS; ) {
          if (pages[i] === 0) {
            i++
            continue
          }
          const stride = chunkStride(ll, perStride, pol, i, 8 - i)
          b = mapGpaPages(ll, perStride.slat, i, stride, stride > 1 ? HV_MAP_GPA_LARGE_PAGE : 0, (k) => pages[i + k])
          i += stride
        }
        expect(a === HV_STATUS_SUCCESS).toBe(b === HV_STATUS_SUCCESS)
        if (a === HV_STATUS_SUCCESS) expect(folded.slat).toEqual(perStride.slat)
      }),
    )
  })
})

describe('mshv_region_remap_pages: failures', () => {
  const l = layout(1, 8, 0, 0)

  it('page_offset + page_count past nr_pages is -EINVAL', () => {
    expect(remapPages(l, world(l, [0x10, 0, 0, 0, 0, 0, 0, 0]), POSTED, 0, 4, 5)).toBe(EINVAL)
  })

  it('a misaligned pfn under the as-posted stride fails the LARGE_PAGE call at that large page; the earlier calls stay mapped', () => {
    // Page 2 is the second page of a THP at an aligned gfn: as posted, a huge stride from a mid-folio pfn.
    const w = world(l, [0x10, 0x11, 0x41, 0x42, 0, 0, 0, 0])
    expect(remapCalls(l, w, POSTED, 0, 4)).toEqual([
      { index: 0, count: 2, large: false },
      { index: 2, count: 2, large: true },
    ])
    expect(remapPages(l, w, POSTED, 0, 0, 4)).toBe(HV_STATUS_INVALID_PARAMETER)
    expect(w.slat.slice(0, 4).map((x) => x.access)).toEqual([ACCESS_RW, ACCESS_RW, ACCESS_NONE, ACCESS_NONE])
    // The pfn-aligned stride (0eaed89c) maps it with 4K leaves.
    const u = world(l, [0x10, 0x11, 0x41, 0x42, 0, 0, 0, 0])
    expect(remapPages(l, u, { pfnAlignedStride: true }, 0, 0, 4)).toBe(HV_STATUS_SUCCESS)
  })

  it('an injected failure at rep r of the whole remap: the calls before it succeed, the failing call stops there, the later calls are not made', () => {
    const pages = [0x40, 0x41, 0x42, 0x43, 0x10, 0x11, 0x12, 0]
    const reps = remapReps(l, world(l, pages), POSTED, 0, 8) // LARGE call: 2 reps; 4K call: 3 reps
    expect(reps).toBe(5)
    for (let r = 0; r < reps; r++) {
      const w = world(l, pages)
      for (let i = 0; i < 8; i++) w.slat[i] = { pfn: 0x80 + i, order: 0, access: ACCESS_RW } // mapped before: the callback's case
      expect(remapPages(l, w, POSTED, HV_MAP_GPA_NO_ACCESS, 0, 8, r)).toBe(HV_STATUS_FAILED)
      const at = remapRepAt(l, w, POSTED, 0, 8, r)!
      const access = w.slat.map((x) => x.access)
      // Every page from the failing rep on keeps its old mapping.
      for (let i = at.page; i < 8; i++) expect(access[i]).toBe(ACCESS_RW)
      // Before it: NO_ACCESS, or unmapped (the completed batches of the failing call; batch = 1 rep at H=1).
      for (let i = 0; i < at.page; i++) expect(access[i] === ACCESS_NO_ACCESS || access[i] === ACCESS_NONE).toBe(true)
      if (r === 3) expect(access.slice(0, 5)).toEqual([ACCESS_NO_ACCESS, ACCESS_NO_ACCESS, ACCESS_NO_ACCESS, ACCESS_NO_ACCESS, ACCESS_NONE])
    }
    expect(remapRepAt(l, world(l, pages), POSTED, 0, 8, 1)).toEqual({ call: { index: 0, count: 4, large: true }, page: 2 })
    expect(remapRepAt(l, world(l, pages), POSTED, 0, 8, 5)).toBeNull()
  })

  it('the failure branches: one per rep with map failures on, none without; no present page, no hypercall, nothing to fail', () => {
    const base = { l, mshv_chunk_stride: (ll: Layout, w: MshvRegionWorld, i: number, rem: number) => chunkStride(ll, w, POSTED, i, rem), mshv_region_remap_pages: () => 0 }
    const w = world(l, [0x40, 0x41, 0x10, 0, 0, 0, 0, 0])
    expect(remapFailureChoices({ ...base, map_failures: true }, w, 0, 4)).toBe(1 + 2)
    expect(remapFailureChoices({ ...base, map_failures: false }, w, 0, 4)).toBe(1)
    expect(remapFailureChoices({ ...base, map_failures: true }, w, 3, 5)).toBe(1)
  })
})

describe('mshv_region_chunk_unmap over a range', () => {
  it('one hv_call_unmap_gpa_pages per chunk of present pages (LARGE_PAGE for a huge stride); pages not present keep their leaves', () => {
    const l = layout(1, 8, 0, 0)
    const w = world(l, [0x40, 0x41, 0x10, 0, 0x11, 0, 0, 0])
    expect(remapPages(l, w, POSTED, 0, 0, 8)).toBe(HV_STATUS_SUCCESS)
    w.slat[3] = { pfn: 0, order: 0, access: ACCESS_NO_ACCESS }
    expect(unmapPages(l, w, POSTED, 0, 8)).toBe(HV_STATUS_SUCCESS)
    expect(w.slat.map((x) => x.access)).toEqual([ACCESS_NONE, ACCESS_NONE, ACCESS_NONE, ACCESS_NO_ACCESS, ACCESS_NONE, ACCESS_NONE, ACCESS_NONE, ACCESS_NONE])
    expect(unmapPages(l, w, POSTED, 4, 5)).toBe(EINVAL)
  })
})
