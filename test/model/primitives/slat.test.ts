/**
 * model/primitives/slat.ts: HVCALL_MAP_GPA_PAGES / HVCALL_UNMAP_GPA_PAGES
 * as hv_do_map_gpa_hcall() and the hypervisor treat them: 4K maps, the
 * LARGE_PAGE count rule (-EINVAL before any hypercall), the alignment rule
 * (HV_STATUS_INVALID_PARAMETER at the failing rep), silent replacement, the
 * NO_ACCESS flag, the rep-by-rep progress inside one call (batches, `done`,
 * the unmap of the completed batches, LARGE_PAGE's `done` in the wrong unit),
 * and a fast-check property against an independent reading of
 * hv_do_map_gpa_hcall: every call leaves exactly the leaves that code
 * leaves, and every leaf consistent with the hardware rule that
 * `huge-mapping-aligned` checks.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { hugeMappingAligned } from '../../../invariants/slat-invariants.js'
import { isAligned, type Layout, layout } from '../../../model/primitives/layout.js'
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
  HV_UNMAP_GPA_LARGE_PAGE,
  type Leaf,
  mapGpaBatch,
  mapGpaPages,
  unmapGpaPages,
  unmapGpaPagesHcall,
} from '../../../model/primitives/slat.js'

const emptySlat = (l: Layout): Leaf[] => Array.from({ length: l.N }, () => ({ pfn: 0, order: 0, access: ACCESS_NONE }))
const clone = (s: Leaf[]): Leaf[] => s.map((x) => ({ ...x }))
/** The first region index whose gfn is huge-aligned. */
const firstAlignedIndex = (l: Layout): number => (l.HP - (l.startGfn % l.HP)) % l.HP
/** A pfn list k -> base + k. */
const run = (base: number) => (k: number) => base + k

describe('mapGpaPages: 4K', () => {
  it('maps each gfn to its own pfn, order 0, RW; other leaves untouched', () => {
    const l = layout(2, 8, 1, 0)
    const slat = emptySlat(l)
    const pfns = [0x11, 0x2f, 0x05]
    const index = 2
    const ret = mapGpaPages(l, slat, index, pfns.length, 0, (k) => pfns[k])
    expect(ret).toBe(HV_STATUS_SUCCESS)
    for (let i = 0; i < l.N; i++) {
      const k = i - index
      if (k >= 0 && k < pfns.length) expect(slat[i]).toEqual({ pfn: pfns[k], order: 0, access: ACCESS_RW })
      else expect(slat[i]).toEqual({ pfn: 0, order: 0, access: ACCESS_NONE })
    }
  })

  it('needs no alignment at all: any gfn, any pfn, any count', () => {
    const l = layout(3, 11, 5, 0)
    const slat = emptySlat(l)
    expect(isAligned(l.startGfn + 1, l.HP)).toBe(false)
    expect(mapGpaPages(l, slat, 1, 3, 0, run(0x33))).toBe(HV_STATUS_SUCCESS)
    expect(slat.slice(1, 4).map((x) => x.pfn)).toEqual([0x33, 0x34, 0x35])
  })

  it('mapping an already-mapped gfn silently succeeds and replaces the leaf', () => {
    const l = layout(1, 4, 0, 0)
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 1, 1, 0, () => 0x21)).toBe(HV_STATUS_SUCCESS)
    expect(mapGpaPages(l, slat, 1, 1, 0, () => 0x42)).toBe(HV_STATUS_SUCCESS)
    expect(slat[1]).toEqual({ pfn: 0x42, order: 0, access: ACCESS_RW })
    // A large page over it, then a 4K page over part of the large page: each replaces.
    const idx = firstAlignedIndex(l)
    expect(mapGpaPages(l, slat, idx, l.HP, HV_MAP_GPA_LARGE_PAGE, run(0x40))).toBe(HV_STATUS_SUCCESS)
    expect(slat[idx]).toEqual({ pfn: 0x40, order: l.H, access: ACCESS_RW })
    expect(mapGpaPages(l, slat, idx + 1, 1, 0, () => 0x77)).toBe(HV_STATUS_SUCCESS)
    expect(slat[idx + 1]).toEqual({ pfn: 0x77, order: 0, access: ACCESS_RW })
  })
})

describe('mapGpaPages: HV_MAP_GPA_LARGE_PAGE', () => {
  for (const H of [1, 2, 3]) {
    const HP = 1 << H
    for (const g of [...new Set([0, 1, HP - 1])]) {
      const l = layout(H, 3 * HP, g, 0)
      const idx = firstAlignedIndex(l)

      it(`H=${H} gfn_offset=${g}: a count that is not a multiple of ${HP} is -EINVAL and changes nothing`, () => {
        const slat = emptySlat(l)
        mapGpaPages(l, slat, 0, 1, 0, () => 0x9) // something already there
        const before = clone(slat)
        for (const count of [1, HP - 1, HP + 1, 2 * HP - 1].filter((c) => c > 0 && !isAligned(c, HP) && idx + c <= l.N)) {
          expect(mapGpaPages(l, slat, idx, count, HV_MAP_GPA_LARGE_PAGE, run(4 * HP)), `count ${count}`).toBe(EINVAL)
          expect(slat).toEqual(before)
        }
      })

      it(`H=${H} gfn_offset=${g}: a misaligned gfn is HV_STATUS_INVALID_PARAMETER and changes nothing`, () => {
        const slat = emptySlat(l)
        const before = clone(slat)
        for (let i = 0; i + HP <= l.N; i++) {
          if (isAligned(l.startGfn + i, HP)) continue
          expect(mapGpaPages(l, slat, i, HP, HV_MAP_GPA_LARGE_PAGE, run(4 * HP)), `index ${i}`).toBe(HV_STATUS_INVALID_PARAMETER)
          expect(slat).toEqual(before)
        }
      })

      it(`H=${H} gfn_offset=${g}: a misaligned pfn is HV_STATUS_INVALID_PARAMETER and changes nothing`, () => {
        const slat = emptySlat(l)
        const before = clone(slat)
        for (let off = 1; off < HP; off++) {
          expect(mapGpaPages(l, slat, idx, HP, HV_MAP_GPA_LARGE_PAGE, run(4 * HP + off)), `pfn offset ${off}`).toBe(HV_STATUS_INVALID_PARAMETER)
          expect(slat).toEqual(before)
        }
        // Rep by rep, not all-or-nothing: the first large page is fine and stays mapped, the second one's pfn is not.
        // (H=1: one rep per batch, so `done` = 1 large page, and hv_call_unmap_gpa_pages(gfn, 1, LARGE_PAGE) is -EINVAL:
        // 1 is not a 4K count of whole large pages. H>1: both reps in one batch, `done` = 0, nothing is unmapped.)
        const pfns = [4 * HP, 8 * HP + 1]
        expect(mapGpaPages(l, slat, idx, 2 * HP, HV_MAP_GPA_LARGE_PAGE, (k) => pfns[Math.floor(k / HP)] + (k % HP))).toBe(
          HV_STATUS_INVALID_PARAMETER,
        )
        for (let k = 0; k < HP; k++) expect(slat[idx + k]).toEqual({ pfn: 4 * HP + k, order: H, access: ACCESS_RW })
        for (let k = HP; k < 2 * HP; k++) expect(slat[idx + k]).toEqual(before[idx + k])
      })

      it(`H=${H} gfn_offset=${g}: aligned, it maps ${HP} consecutive pfns per large page, order ${H}, from one pfn each`, () => {
        const slat = emptySlat(l)
        const heads = [4 * HP, 9 * HP]
        const asked: number[] = []
        // The pfn list the driver holds has garbage between large-page heads: only heads may be used.
        const pfnAt = (k: number) => {
          asked.push(k)
          return k % HP === 0 ? heads[k / HP] : 0xff
        }
        expect(mapGpaPages(l, slat, idx, 2 * HP, HV_MAP_GPA_LARGE_PAGE, pfnAt)).toBe(HV_STATUS_SUCCESS)
        expect(asked.every((k) => k % HP === 0)).toBe(true)
        for (let i = 0; i < l.N; i++) {
          const k = i - idx
          if (k >= 0 && k < 2 * HP) expect(slat[i]).toEqual({ pfn: heads[Math.floor(k / HP)] + (k % HP), order: H, access: ACCESS_RW })
          else expect(slat[i]).toEqual({ pfn: 0, order: 0, access: ACCESS_NONE })
        }
        expect(hugeMappingAligned(l).check({ slat })).toBeNull()
      })
    }
  }
})

describe('mapGpaPages: HV_MAP_GPA_NO_ACCESS', () => {
  it('4K: ACCESS_NO_ACCESS and no pfn (the driver sends pfn 0)', () => {
    const l = layout(1, 4, 0, 0)
    const slat = emptySlat(l)
    mapGpaPages(l, slat, 0, 2, 0, run(0x30))
    expect(mapGpaPages(l, slat, 0, 2, HV_MAP_GPA_NO_ACCESS, run(0x30))).toBe(HV_STATUS_SUCCESS)
    expect(slat.slice(0, 2)).toEqual([
      { pfn: 0, order: 0, access: ACCESS_NO_ACCESS },
      { pfn: 0, order: 0, access: ACCESS_NO_ACCESS },
    ])
    expect(slat[2].access).toBe(ACCESS_NONE)
  })

  it('large: order H, ACCESS_NO_ACCESS, no pfn', () => {
    const l = layout(2, 8, 0, 0)
    const slat = emptySlat(l)
    const head = 3 * l.HP
    expect(mapGpaPages(l, slat, 0, l.HP, HV_MAP_GPA_LARGE_PAGE | HV_MAP_GPA_NO_ACCESS, run(head))).toBe(HV_STATUS_SUCCESS)
    for (let k = 0; k < l.HP; k++) expect(slat[k]).toEqual({ pfn: 0, order: l.H, access: ACCESS_NO_ACCESS })
  })

  it('large with a misaligned gfn still fails (the hypervisor checks the gfn whatever the access)', () => {
    const l = layout(2, 8, 1, 0)
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, l.HP, HV_MAP_GPA_LARGE_PAGE | HV_MAP_GPA_NO_ACCESS, run(3 * l.HP))).toBe(HV_STATUS_INVALID_PARAMETER)
    expect(slat).toEqual(emptySlat(l))
  })

  // hv_do_map_gpa_hcall() (drivers/hv/mshv_root_hv_call.c) fills the pfn list with
  // `if (flags & HV_MAP_GPA_NO_ACCESS) pfnlist[i] = 0;`: the hypervisor never sees the
  // page's pfn, so it cannot reject it as misaligned, and neither does mapGpaPages.
  it('LARGE_PAGE|NO_ACCESS with an aligned gfn succeeds whatever the pfn, since the kernel passes pfn 0 for NO_ACCESS', () => {
    const l = layout(2, 8, 0, 0)
    const slat = emptySlat(l)
    const ret = mapGpaPages(l, slat, 0, l.HP, HV_MAP_GPA_LARGE_PAGE | HV_MAP_GPA_NO_ACCESS, run(3 * l.HP + 1))
    expect(ret).toBe(HV_STATUS_SUCCESS)
    for (let k = 0; k < l.HP; k++) expect(slat[k].access).toBe(ACCESS_NO_ACCESS)
  })
})

describe('mapGpaPages: a zero page count', () => {
  // hv_do_map_gpa_hcall(): `if (page_count == 0 || (pages && mmio_spa)) return -EINVAL;`
  // No caller in the scenarios passes 0 today (strides are >= 1), so this only matters for new callers.
  it('count 0 is -EINVAL', () => {
    const l = layout(1, 4, 0, 0)
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, 0, 0, run(1))).toBe(EINVAL)
    expect(mapGpaPages(l, slat, 0, 0, HV_MAP_GPA_LARGE_PAGE, run(2))).toBe(EINVAL)
    expect(slat).toEqual(emptySlat(l))
  })
})

describe('unmapGpaPages', () => {
  it('clears pfn, order and access on the range only, 4K or large leaves alike', () => {
    const l = layout(2, 12, 0, 0)
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, 2 * l.HP, HV_MAP_GPA_LARGE_PAGE, run(4 * l.HP))).toBe(HV_STATUS_SUCCESS)
    expect(mapGpaPages(l, slat, 2 * l.HP, l.HP, 0, run(0x60))).toBe(HV_STATUS_SUCCESS)
    const before = clone(slat)
    const lo = l.HP - 1
    const cnt = l.HP + 2
    unmapGpaPages(slat, lo, cnt)
    for (let i = 0; i < l.N; i++) {
      if (i >= lo && i < lo + cnt) expect(slat[i]).toEqual({ pfn: 0, order: 0, access: ACCESS_NONE })
      else expect(slat[i]).toEqual(before[i])
    }
    unmapGpaPages(slat, 0, l.N)
    expect(slat).toEqual(emptySlat(l))
  })
})

/**
 * An independent reading of hv_do_map_gpa_hcall() (drivers/hv/mshv_root_hv_call.c)
 * over the hypervisor's per-rep rules: the rep that fails first (an injected
 * error at `failAt`, or a large page whose gfn or, unless NO_ACCESS, pfn is
 * misaligned), every rep before it applied, then `done` (the reps of the
 * batches completed before the failing batch) unmapped by
 * hv_call_unmap_gpa_pages(gfn, done, ...), which under LARGE_PAGE takes
 * `done` as a 4K count and is -EINVAL unless it is a multiple of 2^H.
 */
function expectedMap(l: Layout, before: Leaf[], index: number, count: number, flags: number, pfnAt: (k: number) => number, failAt: number) {
  const out = clone(before)
  const large = (flags & HV_MAP_GPA_LARGE_PAGE) !== 0
  const noAccess = (flags & HV_MAP_GPA_NO_ACCESS) !== 0
  if (count === 0 || (large && count % l.HP !== 0)) return { ret: EINVAL, slat: out }
  const size = large ? l.HP : 1
  const reps = count / size
  const misaligned = (r: number) => large && ((l.startGfn + index + r * size) % l.HP !== 0 || (!noAccess && pfnAt(r * size) % l.HP !== 0))
  let failing = -1
  for (let r = 0; r < reps && failing < 0; r++) if (r === failAt || misaligned(r)) failing = r
  const splitAt = (i: number) => {
    if (out[i].order !== l.H) return
    const first = i - ((l.startGfn + i) % l.HP)
    for (let j = Math.max(first, 0); j < Math.min(first + l.HP, l.N); j++) if (out[j].order === l.H) out[j] = { ...out[j], order: 0 }
  }
  for (let r = 0; r < (failing < 0 ? reps : failing); r++) {
    for (let k = r * size; k < (r + 1) * size; k++) {
      if (!large) splitAt(index + k)
      out[index + k] = { pfn: noAccess ? 0 : large ? pfnAt(r * size) + (k - r * size) : pfnAt(k), order: large ? l.H : 0, access: noAccess ? ACCESS_NO_ACCESS : ACCESS_RW }
    }
  }
  if (failing < 0) return { ret: HV_STATUS_SUCCESS, slat: out }
  const batch = Math.max(1, l.HP - 1)
  const done = failing - (failing % batch)
  if (done > 0 && (!large || done % l.HP === 0)) {
    for (let k = 0; k < done; k++) if (!large) splitAt(index + k)
    for (let k = 0; k < done; k++) out[index + k] = { pfn: 0, order: 0, access: ACCESS_NONE }
  }
  return { ret: failing === failAt ? HV_STATUS_FAILED : HV_STATUS_INVALID_PARAMETER, slat: out }
}

describe('property: every call leaves what hv_do_map_gpa_hcall leaves, every leaf consistent with the hardware rule', () => {
  interface Call {
    index: number
    count: number
    flags: number
    pfns: number[]
    failAt: number
  }
  const flagsArb = fc.constantFrom(0, HV_MAP_GPA_LARGE_PAGE, HV_MAP_GPA_NO_ACCESS, HV_MAP_GPA_LARGE_PAGE | HV_MAP_GPA_NO_ACCESS)
  const world = fc
    .record({ H: fc.integer({ min: 1, max: 3 }), pages: fc.integer({ min: 1, max: 3 }) })
    .chain(({ H, pages }) => {
      const HP = 1 << H
      return fc.record({
        H: fc.constant(H),
        g: fc.integer({ min: 0, max: HP - 1 }),
        N: fc.integer({ min: 1, max: pages * HP + HP - 1 }),
        calls: fc.array(
          fc.record({
            index: fc.nat(),
            count: fc.nat(),
            flags: flagsArb,
            // Either a run base + k (huge-aligned base half the time) or arbitrary pfns.
            pfns: fc.oneof(
              fc.tuple(fc.integer({ min: 1, max: 16 }), fc.boolean()).map(([b, aligned]) => {
                const base = aligned ? b * HP : b * HP + 1 + (b % (HP - 1 || 1))
                return Array.from({ length: 4 * HP }, (_, k) => base + k)
              }),
              fc.array(fc.integer({ min: 1, max: 255 }), { minLength: 4 * HP, maxLength: 4 * HP }),
            ),
            // An injected hypervisor error at that rep, or none.
            failAt: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 3 * HP })),
          }),
          { minLength: 1, maxLength: 8 },
        ),
      })
    })

  it('random (H, gfn offset, pfn, count, flags, failing rep)', () => {
    fc.assert(
      fc.property(world, ({ H, g, N, calls }) => {
        const l = layout(H, N, g, 0)
        const inv = hugeMappingAligned(l)
        const slat = emptySlat(l)
        for (const c of calls as Call[]) {
          const index = c.index % l.N
          const count = 1 + (c.count % (l.N - index))
          const want = expectedMap(l, slat, index, count, c.flags, (k) => c.pfns[k], c.failAt)
          const ret = mapGpaPages(l, slat, index, count, c.flags, (k) => c.pfns[k], c.failAt)
          expect(ret).toBe(want.ret)
          expect(slat).toEqual(want.slat)
          // The hardware rule, restated: a huge leaf's gfn range is inside the region and its gfn and pfn share their offset.
          for (let i = 0; i < l.N; i++) {
            const leaf = slat[i]
            if (leaf.access === ACCESS_NONE || leaf.order === 0) continue
            const off = (l.startGfn + i) % l.HP
            if (leaf.access === ACCESS_RW) expect(isAligned(leaf.pfn - off, l.HP)).toBe(true)
            expect(i - off).toBeGreaterThanOrEqual(0)
            expect(i - off + l.HP).toBeLessThanOrEqual(l.N)
          }
          expect(inv.check({ slat })).toBeNull()
        }
      }),
      { numRuns: 1000 },
    )
  })
})

describe('hv_do_map_gpa_hcall: rep by rep inside one call, and the unmap of the completed batches', () => {
  it('HV_MAP_GPA_BATCH_SIZE is 509 = PTRS_PER_PMD - 3 reps in the kernel; scaled, 2^H - 1 (at least 1)', () => {
    expect(mapGpaBatch(layout(1, 4, 0, 0))).toBe(1)
    expect(mapGpaBatch(layout(2, 4, 0, 0))).toBe(3)
    expect(mapGpaBatch(layout(3, 8, 0, 0))).toBe(7)
  })

  it('an error at a rep of the first batch: the reps before it stay mapped with the new mapping (done = 0: no unmap), the rest unchanged', () => {
    const l = layout(2, 8, 0, 0) // batch 3
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, 4, 0, run(0x10))).toBe(HV_STATUS_SUCCESS)
    expect(mapGpaPages(l, slat, 0, 4, HV_MAP_GPA_NO_ACCESS, () => 0, 2)).toBe(HV_STATUS_FAILED)
    expect(slat.slice(0, 4).map((x) => x.access)).toEqual([ACCESS_NO_ACCESS, ACCESS_NO_ACCESS, ACCESS_RW, ACCESS_RW])
    expect(slat.slice(2, 4).map((x) => x.pfn)).toEqual([0x12, 0x13])
  })

  it('an error in a later batch: the completed batches are unmapped (not restored), the failing batch keeps its completed reps', () => {
    const l = layout(2, 8, 0, 0) // batch 3: reps 0..2, then 3..5
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, 6, 0, run(0x10))).toBe(HV_STATUS_SUCCESS)
    expect(mapGpaPages(l, slat, 0, 6, HV_MAP_GPA_NO_ACCESS, () => 0, 4)).toBe(HV_STATUS_FAILED)
    // done = 3: hv_call_unmap_gpa_pages(gfn, 3, 0); rep 3 completed in the failing batch; reps 4, 5 never ran.
    expect(slat.slice(0, 6).map((x) => x.access)).toEqual([ACCESS_NONE, ACCESS_NONE, ACCESS_NONE, ACCESS_NO_ACCESS, ACCESS_RW, ACCESS_RW])
    // H=1 (batch 1): every rep before the failing one is a completed batch, so all of them are unmapped.
    const l1 = layout(1, 4, 0, 0)
    const s1 = emptySlat(l1)
    expect(mapGpaPages(l1, s1, 0, 3, 0, run(0x10), 2)).toBe(HV_STATUS_FAILED)
    expect(s1.slice(0, 3).map((x) => x.access)).toEqual([ACCESS_NONE, ACCESS_NONE, ACCESS_NONE])
  })

  it('LARGE_PAGE: `done` counts large pages but hv_call_unmap_gpa_pages takes a 4K count, so the completed prefix mostly stays mapped', () => {
    const l = layout(1, 8, 0, 0) // batch 1: every large page its own batch
    const slat = emptySlat(l)
    // Fails at the second large page: done = 1, not a multiple of 2^H: -EINVAL, the first large page stays mapped.
    expect(mapGpaPages(l, slat, 0, 6, HV_MAP_GPA_LARGE_PAGE, run(0x20), 1)).toBe(HV_STATUS_FAILED)
    expect(slat.slice(0, 2)).toEqual([
      { pfn: 0x20, order: 1, access: ACCESS_RW },
      { pfn: 0x21, order: 1, access: ACCESS_RW },
    ])
    expect(slat.slice(2, 6).every((x) => x.access === ACCESS_NONE)).toBe(true)
    // Fails at the third: done = 2, a "4K count" of one large page: the first is unmapped, the second stays.
    const s2 = emptySlat(l)
    expect(mapGpaPages(l, s2, 0, 6, HV_MAP_GPA_LARGE_PAGE, run(0x20), 2)).toBe(HV_STATUS_FAILED)
    expect(s2.slice(0, 4).map((x) => x.access)).toEqual([ACCESS_NONE, ACCESS_NONE, ACCESS_RW, ACCESS_RW])
  })

  it('a failing 4K rep over a large leaf: the reps before it split the leaf, the failing one leaves its page as it was (4K)', () => {
    const l = layout(2, 4, 0, 0)
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, 4, HV_MAP_GPA_LARGE_PAGE, run(0x40))).toBe(HV_STATUS_SUCCESS)
    expect(mapGpaPages(l, slat, 0, 4, HV_MAP_GPA_NO_ACCESS, () => 0, 1)).toBe(HV_STATUS_FAILED)
    expect(slat).toEqual([
      { pfn: 0, order: 0, access: ACCESS_NO_ACCESS },
      { pfn: 0x41, order: 0, access: ACCESS_RW },
      { pfn: 0x42, order: 0, access: ACCESS_RW },
      { pfn: 0x43, order: 0, access: ACCESS_RW },
    ])
    expect(hugeMappingAligned(l).check({ slat })).toBeNull()
  })

  it('no failure: failAt past the last rep changes nothing', () => {
    const l = layout(1, 4, 0, 0)
    const a = emptySlat(l)
    const b = emptySlat(l)
    expect(mapGpaPages(l, a, 0, 4, HV_MAP_GPA_LARGE_PAGE, run(0x20), 2)).toBe(HV_STATUS_SUCCESS)
    expect(mapGpaPages(l, b, 0, 4, HV_MAP_GPA_LARGE_PAGE, run(0x20))).toBe(HV_STATUS_SUCCESS)
    expect(a).toEqual(b)
  })
})

describe('hv_call_unmap_gpa_pages', () => {
  it('HV_UNMAP_GPA_LARGE_PAGE with a count that is not a multiple of 2^H is -EINVAL and unmaps nothing; aligned, it unmaps whole large pages', () => {
    const l = layout(2, 8, 0, 0)
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, 8, HV_MAP_GPA_LARGE_PAGE, run(0x40))).toBe(HV_STATUS_SUCCESS)
    const before = clone(slat)
    for (const n of [1, 2, 3, 5]) {
      expect(unmapGpaPagesHcall(l, slat, 0, n, HV_UNMAP_GPA_LARGE_PAGE)).toBe(EINVAL)
      expect(slat).toEqual(before)
    }
    expect(unmapGpaPagesHcall(l, slat, 0, 4, HV_UNMAP_GPA_LARGE_PAGE)).toBe(HV_STATUS_SUCCESS)
    expect(slat.slice(0, 4).every((x) => x.access === ACCESS_NONE)).toBe(true)
    expect(slat.slice(4)).toEqual(before.slice(4))
  })

  it('a 4K unmap over part of a large leaf splits it: the rest of its 2M stays mapped as 4K leaves; count 0 is -EINVAL', () => {
    const l = layout(1, 4, 0, 0)
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, 2, HV_MAP_GPA_LARGE_PAGE, () => 8)).toBe(HV_STATUS_SUCCESS)
    expect(unmapGpaPagesHcall(l, slat, 1, 0, 0)).toBe(EINVAL)
    expect(unmapGpaPagesHcall(l, slat, 1, 1, 0)).toBe(HV_STATUS_SUCCESS)
    expect(slat.slice(0, 2)).toEqual([
      { pfn: 8, order: 0, access: ACCESS_RW },
      { pfn: 0, order: 0, access: ACCESS_NONE },
    ])
    expect(hugeMappingAligned(l).check({ slat })).toBeNull()
  })
})

describe('a map over part of a large leaf', () => {
  it('splits it: the other pages of the 2M stay mapped, as 4K leaves; a map of the whole 2M does not', () => {
    const l = layout(1, 4, 0, 0)
    const slat = emptySlat(l)
    expect(mapGpaPages(l, slat, 0, 2, HV_MAP_GPA_LARGE_PAGE, () => 8)).toBe(HV_STATUS_SUCCESS)
    expect(slat.slice(0, 2)).toEqual([
      { pfn: 8, order: 1, access: ACCESS_RW },
      { pfn: 9, order: 1, access: ACCESS_RW },
    ])
    expect(mapGpaPages(l, slat, 1, 1, HV_MAP_GPA_NO_ACCESS, () => 0)).toBe(HV_STATUS_SUCCESS)
    expect(slat.slice(0, 2)).toEqual([
      { pfn: 8, order: 0, access: ACCESS_RW },
      { pfn: 0, order: 0, access: ACCESS_NO_ACCESS },
    ])
    expect(mapGpaPages(l, slat, 0, 2, HV_MAP_GPA_LARGE_PAGE | HV_MAP_GPA_NO_ACCESS, () => 0)).toBe(HV_STATUS_SUCCESS)
    expect(slat.slice(0, 2).map((x) => x.order)).toEqual([1, 1])
  })
})
