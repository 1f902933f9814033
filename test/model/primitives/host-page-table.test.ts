/**
 * model/primitives/layout.ts and host-page-table.ts: the region's geometry
 * checked against a direct computation from uaddr arithmetic (which
 * huge-aligned uaddr blocks the region's pages fall in), THP eligibility
 * (do_huge_pmd_anonymous_page: aligned block wholly in the VMA, nothing
 * mapped), faultHuge / faultSmall, and the PMD well-formedness rule.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { allocHuge, allocSmall, folioHead, folioOrder, FRAME_HUGE, initMemory, type Memory, splitFolio } from '../../../model/primitives/folio.js'
import { faultHuge, faultMthp, faultSmall, folioMapped, type HostPageTable, mthpRange, outsideIndices, outsidePfns, pmdWellFormed, pteAt, removeMigrationPtes, setPteAt, thpEligible, unmapRange } from '../../../model/primitives/host-page-table.js'
import { blockFirstIndex, blockInVma, blockOf, edgeBlocks, type Layout, layout } from '../../../model/primitives/layout.js'

const memory = (frames: number): Memory => {
  const m: Memory = { frame: new Array(frames).fill(0), nextPfn: 0 }
  initMemory(m)
  return m
}
const table = (l: Layout): HostPageTable => ({ pte: new Array(l.N).fill(0), pmd: new Array(l.blocks).fill(0) })

/** The geometry straight from uaddrs: page i is at uaddr startUaddr + i, its block is floor(uaddr / HP). */
function direct(l: Layout) {
  const uaddrs = Array.from({ length: l.N }, (_, i) => l.startUaddr + i)
  const blockNumbers = [...new Set(uaddrs.map((u) => Math.floor(u / l.HP)))].sort((a, b) => a - b)
  const inRegion = (u: number) => u >= l.startUaddr && u < l.startUaddr + l.N
  return {
    blocks: blockNumbers.length,
    blockOf: (i: number) => blockNumbers.indexOf(Math.floor((l.startUaddr + i) / l.HP)),
    firstIndex: (b: number) => blockNumbers[b] * l.HP - l.startUaddr,
    inVma: (b: number) => Array.from({ length: l.HP }, (_, k) => blockNumbers[b] * l.HP + k).every(inRegion),
  }
}

/** Every (H, N, gfn offset, uaddr offset) with H in 1..3, N in 1..12, offsets below 2^H. */
const geometries: [number, number, number, number][] = []
for (let H = 1; H <= 3; H++) {
  for (let N = 1; N <= 12; N++) {
    for (let g = 0; g < 1 << H; g++) for (let u = 0; u < 1 << H; u++) geometries.push([H, N, g, u])
  }
}

describe('layout()', () => {
  it('HP, N and the start addresses: offsets are start_gfn / start_uaddr modulo 2^H, page 0 unused', () => {
    for (const [H, N, g, u] of geometries) {
      const l = layout(H, N, g, u)
      expect(l.HP).toBe(2 ** H)
      expect(l.N).toBe(N)
      expect(l.H).toBe(H)
      expect(l.startGfn % l.HP).toBe(g)
      expect(l.startUaddr % l.HP).toBe(u)
      expect(l.startGfn).toBeGreaterThan(0)
      expect(l.startUaddr).toBeGreaterThan(0)
    }
  })

  it('blocks, blockFirstIndex, blockOf, blockInVma agree with uaddr arithmetic for every small geometry', () => {
    for (const [H, N, g, u] of geometries) {
      const l = layout(H, N, g, u)
      const d = direct(l)
      const where = `H=${H} N=${N} gfn_offset=${g} uaddr_offset=${u}`
      expect(l.blocks, where).toBe(d.blocks)
      for (let i = 0; i < N; i++) {
        expect(blockOf(l, i), `${where} page ${i}`).toBe(d.blockOf(i))
        // Page i lies in its block: first <= i < first + HP.
        const first = blockFirstIndex(l, blockOf(l, i))
        expect(i - first).toBeGreaterThanOrEqual(0)
        expect(i - first).toBeLessThan(l.HP)
      }
      for (let b = 0; b < l.blocks; b++) {
        expect(blockFirstIndex(l, b), `${where} block ${b}`).toBe(d.firstIndex(b))
        expect((l.startUaddr + blockFirstIndex(l, b)) % l.HP).toBe(0)
        expect(blockInVma(l, b), `${where} block ${b}`).toBe(d.inVma(b))
      }
    }
  })

  it('a region of whole, aligned huge pages: every block is in the VMA; a misaligned one loses its first and last', () => {
    const aligned = layout(2, 8, 0, 0)
    expect(aligned.blocks).toBe(aligned.N / aligned.HP)
    for (let b = 0; b < aligned.blocks; b++) expect(blockInVma(aligned, b)).toBe(true)
    const shifted = layout(2, 8, 0, 1)
    expect(shifted.blocks).toBe(shifted.N / shifted.HP + 1)
    expect(blockInVma(shifted, 0)).toBe(false)
    expect(blockInVma(shifted, shifted.blocks - 1)).toBe(false)
    for (let b = 1; b < shifted.blocks - 1; b++) expect(blockInVma(shifted, b)).toBe(true)
  })
})

describe('thpEligible', () => {
  it('exactly the blocks wholly inside the VMA with no PTE present (random PTE fills)', () => {
    const geometry = fc.constantFrom(...geometries)
    fc.assert(
      fc.property(
        geometry.chain(([H, N, g, u]) =>
          fc.tuple(fc.constant(layout(H, N, g, u)), fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })), { minLength: N, maxLength: N })),
        ),
        ([l, pte]) => {
          const d = direct(l)
          const pt: HostPageTable = { pte, pmd: new Array(l.blocks).fill(0) }
          for (let b = 0; b < l.blocks; b++) {
            const pages = Array.from({ length: l.HP }, (_, k) => d.firstIndex(b) + k)
            const want = d.inVma(b) && pages.every((i) => pte[i] === 0)
            expect(thpEligible(l, pt, b)).toBe(want)
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('one PTE present in a block makes it ineligible; clearing it makes it eligible again', () => {
    const l = layout(2, 8, 0, 0)
    const pt = table(l)
    const m = memory(32)
    expect(thpEligible(l, pt, 1)).toBe(true)
    const i = blockFirstIndex(l, 1) + l.HP - 1
    faultSmall(pt, m, i)
    expect(thpEligible(l, pt, 1)).toBe(false)
    expect(thpEligible(l, pt, 0)).toBe(true)
    pt.pte[i] = 0
    expect(thpEligible(l, pt, 1)).toBe(true)
  })
})

describe('faultHuge', () => {
  for (const [H, N, g, u] of [
    [1, 4, 0, 1],
    [2, 8, 1, 0],
    [2, 9, 3, 2],
    [3, 16, 0, 0],
  ] as const) {
    it(`H=${H} N=${N} offsets ${g}/${u}: maps head+k at each page of the block, sets the PMD, leaves the rest`, () => {
      const l = layout(H, N, g, u)
      for (let b = 0; b < l.blocks; b++) {
        if (!blockInVma(l, b)) continue
        const m = memory(8 * l.HP)
        const pt = table(l)
        const other = l.blocks > 1 ? (b + 1) % l.blocks : -1
        // A page outside block b already mapped, to see it is left alone.
        const outside = Array.from({ length: N }, (_, i) => i).find((i) => blockOf(l, i) !== b)
        if (outside !== undefined) faultSmall(pt, m, outside)
        const before = [...pt.pte]
        const next = m.nextPfn
        faultHuge(l, pt, m, b)
        const head = Math.ceil(next / l.HP) * l.HP
        const first = blockFirstIndex(l, b)
        for (let i = 0; i < N; i++) {
          if (i >= first && i < first + l.HP) {
            expect(pt.pte[i]).toBe(head + (i - first))
            expect(m.frame[pt.pte[i]]).toBe(FRAME_HUGE)
            expect(folioOrder(m, pt.pte[i], H)).toBe(H)
            expect(folioHead(m, pt.pte[i], H)).toBe(head)
          } else {
            expect(pt.pte[i]).toBe(before[i])
          }
        }
        expect(pt.pmd[b]).toBe(1)
        if (other >= 0) expect(pt.pmd[other]).toBe(0)
        expect(pmdWellFormed(l, pt, m, b)).toBe(true)
        expect(thpEligible(l, pt, b)).toBe(false)
      }
    })
  }
})

describe('faultSmall', () => {
  it('fills an empty PTE with a fresh order-0 pfn; a present PTE is left as is and nothing is allocated', () => {
    const l = layout(1, 4, 0, 1)
    const pt = table(l)
    const m = memory(16)
    const next = m.nextPfn
    faultSmall(pt, m, 2)
    expect(pt.pte[2]).toBe(next)
    expect(folioOrder(m, pt.pte[2], l.H)).toBe(0)
    expect(m.nextPfn).toBe(next + 1)
    const snapshot = { pte: [...pt.pte], next: m.nextPfn, frame: [...m.frame] }
    faultSmall(pt, m, 2)
    expect({ pte: [...pt.pte], next: m.nextPfn, frame: [...m.frame] }).toEqual(snapshot)
    // A page a THP already backs is also left alone.
    const b = Array.from({ length: l.blocks }, (_, k) => k).find((k) => blockInVma(l, k))!
    const hl = layout(1, 4, 0, 1)
    const hpt = table(hl)
    faultHuge(hl, hpt, m, b)
    const hp = [...hpt.pte]
    const n2 = m.nextPfn
    faultSmall(hpt, m, blockFirstIndex(hl, b))
    expect(hpt.pte).toEqual(hp)
    expect(m.nextPfn).toBe(n2)
  })
})

describe('pmdWellFormed', () => {
  const l = layout(2, 8, 0, 0)
  const b = 1
  const first = blockFirstIndex(l, b)

  it('a block without a PMD is well formed whatever its PTEs', () => {
    const pt = table(l)
    pt.pte[first] = 7
    expect(pmdWellFormed(l, pt, memory(32), b)).toBe(true)
  })

  it('false for crafted bad PMDs: small pages, an unaligned start, a swapped page, a hole, a split folio', () => {
    const cases: [string, (pt: HostPageTable, m: Memory) => void][] = [
      [
        'order-0 pages',
        (pt, m) => {
          for (let k = 0; k < l.HP; k++) pt.pte[first + k] = allocSmall(m)
        },
      ],
      [
        'the block starts mid-folio',
        (pt, m) => {
          allocHuge(m, l.H)
          const head2 = allocHuge(m, l.H)
          // head + 1 .. head + HP: the last one belongs to the next folio.
          for (let k = 0; k < l.HP; k++) pt.pte[first + k] = head2 - l.HP + 1 + k
        },
      ],
      [
        'two pages swapped',
        (pt, m) => {
          const head = allocHuge(m, l.H)
          for (let k = 0; k < l.HP; k++) pt.pte[first + k] = head + k
          ;[pt.pte[first + 1], pt.pte[first + 2]] = [pt.pte[first + 2], pt.pte[first + 1]]
        },
      ],
      [
        'a hole at the head',
        (pt, m) => {
          const head = allocHuge(m, l.H)
          for (let k = 1; k < l.HP; k++) pt.pte[first + k] = head + k
        },
      ],
      [
        'the folio was split under the PMD',
        (pt, m) => {
          const head = allocHuge(m, l.H)
          for (let k = 0; k < l.HP; k++) pt.pte[first + k] = head + k
          splitFolio(m, head, l.H)
        },
      ],
    ]
    for (const [what, craft] of cases) {
      const pt = table(l)
      const m = memory(32)
      craft(pt, m)
      pt.pmd[b] = 1
      expect(pmdWellFormed(l, pt, m, b), what).toBe(false)
      pt.pmd[b] = 0
      expect(pmdWellFormed(l, pt, m, b), `${what}, without the PMD`).toBe(true)
    }
  })
})

describe('hmmPfnToMapOrder', () => {
  it('is the order of the CPU mapping, which can be smaller than the folio order', async () => {
    const { hmmPfnToMapOrder, faultHuge } = await import('../../../model/primitives/host-page-table.js')
    const { layout } = await import('../../../model/primitives/layout.js')
    const { folioOrder, splitFolio } = await import('../../../model/primitives/folio.js')
    const l = layout(2, 8, 0, 0)
    const m = { frame: new Array(32).fill(0), nextPfn: 1 }
    const pt = { pte: new Array(8).fill(0), pmd: new Array(l.blocks).fill(0) }
    faultHuge(l, pt, m, 1)
    for (let i = 0; i < 8; i++) expect(hmmPfnToMapOrder(l, pt, i)).toBe(i >= 4 ? l.H : 0)
    // split_huge_pmd: the PTEs still map the huge folio, but the CPU mapping is 4K now.
    pt.pmd[1] = 0
    expect(folioOrder(m, pt.pte[4], l.H)).toBe(l.H)
    expect(hmmPfnToMapOrder(l, pt, 4)).toBe(0)
    splitFolio(m, pt.pte[4], l.H)
    expect(folioOrder(m, pt.pte[4], l.H)).toBe(0)
  })
})

describe('the VMA as hmm_range_fault() sees it (hmmVmaError, hmmWalkRead, unmapRange)', () => {
  it('-EFAULT without a VMA (whatever is asked), -EPERM on a read-only VMA asked for write, else nothing', async () => {
    const { hmmVmaError, vmaInit } = await import('../../../model/primitives/host-page-table.js')
    const v = { vmaPresent: 0, vmaWritable: 0 }
    vmaInit(v)
    expect(v).toEqual({ vmaPresent: 1, vmaWritable: 1 })
    expect(hmmVmaError(v, true)).toBeNull()
    v.vmaWritable = 0
    expect(hmmVmaError(v, true)).toBe('EPERM')
    expect(hmmVmaError(v, false)).toBeNull()
    v.vmaPresent = 0
    expect(hmmVmaError(v, true)).toBe('EFAULT')
    expect(hmmVmaError(v, false)).toBe('EFAULT')
  })

  it('the walk reads a PMD-mapped block in one go (clipped to the range), a PTE one page, and an empty PTE not at all', async () => {
    const { hmmWalkRead } = await import('../../../model/primitives/host-page-table.js')
    const l = layout(2, 8, 0, 1) // blocks: pages -1..2, 3..6, 7..10
    const pt = table(l)
    const m = memory(32)
    faultHuge(l, pt, m, 1)
    expect(hmmWalkRead(l, pt, 3, 8)).toBe(7)
    expect(hmmWalkRead(l, pt, 5, 8)).toBe(7) // from mid-block: the rest of the block
    expect(hmmWalkRead(l, pt, 3, 5)).toBe(5) // clipped to the range's end
    expect(hmmWalkRead(l, pt, 0, 8)).toBe(0) // empty: a fault, nothing read
    faultSmall(pt, m, 0)
    expect(hmmWalkRead(l, pt, 0, 8)).toBe(1)
    // After __split_huge_pmd the same pages are PTE-mapped: one at a time.
    pt.pmd[1] = 0
    expect(hmmWalkRead(l, pt, 3, 8)).toBe(4)
  })

  it('unmapRange clears every PTE of the range and the PMDs of the blocks it touches, and returns what it unmapped', async () => {
    const { unmapRange } = await import('../../../model/primitives/host-page-table.js')
    const l = layout(1, 4, 0, 0)
    const pt = table(l)
    const m = memory(32)
    faultHuge(l, pt, m, 0)
    faultSmall(pt, m, 3)
    const mapped = [...pt.pte]
    expect(unmapRange(l, pt, 0, l.N)).toEqual(mapped.filter(Boolean))
    expect([...pt.pte]).toEqual([0, 0, 0, 0])
    expect([...pt.pmd]).toEqual([0, 0])
    expect(unmapRange(l, pt, 0, l.N)).toEqual([])
    // A part: only its PTEs, but the PMD of a block it touches.
    faultHuge(l, pt, m, 1)
    const keep = pt.pte[3]
    expect(unmapRange(l, pt, 2, 1)).toHaveLength(1)
    expect(pt.pmd[1]).toBe(0)
    expect(pt.pte[3]).toBe(keep)
  })
})

describe('mTHP faults (alloc_anon_folio: the aligned range in the VMA, every PTE none)', () => {
  // H=2, a region of 8 pages at uaddr offset 1: page i is at uaddr 5 + i.
  const l = layout(2, 8, 0, 1)

  it('an order-1 mTHP covers the 2-aligned uaddr pair around the faulting page, PTE-mapped (no PMD), head aligned in pfn', () => {
    for (let i = 1; i < l.N - 1; i++) {
      const pt = table(l)
      const m = memory(64)
      const r = mthpRange(l, pt, i, 1)!
      // uaddr 5 + i aligned down to 2, as a region page.
      expect(r).toEqual({ first: ((l.startUaddr + i) & ~1) - l.startUaddr, n: 2 })
      faultMthp(l, pt, m, i, 1)
      const head = pt.pte[r.first]
      expect(head % 2).toBe(0)
      expect(pt.pte[r.first + 1]).toBe(head + 1)
      expect(folioOrder(m, head, l.H)).toBe(1)
      expect(Array.from(pt.pmd)).toEqual(new Array(l.blocks).fill(0))
      expect(folioMapped(l, pt, m, head + 1)).toBe(true)
    }
  })

  it('refused when the aligned range leaves the VMA (region page 0 at an odd uaddr, page 7 at an even one) or a PTE in it is present', () => {
    const pt = table(l)
    expect(mthpRange(l, pt, 0, 1)).toBeNull()
    expect(mthpRange(l, pt, 7, 1)).toBeNull()
    expect(() => faultMthp(l, pt, memory(64), 0, 1)).toThrow()
    faultSmall(pt, memory(64), 2)
    expect(mthpRange(l, pt, 1, 1)).toBeNull()
    expect(mthpRange(l, pt, 3, 1)).not.toBeNull()
  })

  it('migration replaces an mTHP by a fresh folio of the same order, page for page', () => {
    const pt = table(l)
    const m = memory(64)
    faultMthp(l, pt, m, 1, 1)
    const old = pt.pte[1]
    const fresh = removeMigrationPtes(l, pt, m, old)
    expect(folioOrder(m, fresh, l.H)).toBe(1)
    expect([pt.pte[1], pt.pte[2]]).toEqual([fresh, fresh + 1])
    expect(folioMapped(l, pt, m, old)).toBe(false)
  })
})

describe('a VMA larger than the region (layout vmaMargin): folios straddling the region edges', () => {
  // H=1, 2 pages at uaddr offset 1: page 0 is the second page of block 0, page 1 the first of block 1.
  const l = layout(1, 2, 0, 1, true)
  const tableM = (lay: Layout = l): HostPageTable => ({ ...table(lay), outPte: new Array(outsideIndices(lay).length).fill(0) })

  it('the outside pages are those of the edge blocks: before page 0 and after page N - 1, none for an aligned region', () => {
    expect(outsideIndices(l)).toEqual([-1, 2])
    expect(outsideIndices(layout(2, 4, 0, 1, true))).toEqual([-1, 4, 5, 6])
    expect(outsideIndices(layout(2, 4, 0, 0, true))).toEqual([])
    const l4 = layout(2, 4, 0, 1, true)
    const pt = tableM(l4)
    setPteAt(l4, pt, 5, 9)
    expect(pt.outPte).toEqual([0, 0, 9, 0])
    expect(pteAt(l4, pt, 5)).toBe(9)
    expect(pteAt(l4, pt, 7)).toBe(0)
    expect(() => setPteAt(l4, pt, 7, 1)).toThrow(/outside the VMA/)
    expect(() => setPteAt(l4, pt, -2, 1)).toThrow(/outside the VMA/)
  })

  it('both edge blocks are in the VMA only with the margin, and each is eligible for a THP while nothing is mapped in it', () => {
    expect(edgeBlocks(l)).toEqual([0, 1])
    expect([blockInVma(l, 0), blockInVma(l, 1)]).toEqual([true, true])
    const plain = layout(1, 2, 0, 1)
    expect([blockInVma(plain, 0), blockInVma(plain, 1)]).toEqual([false, false])
    expect(thpEligible(l, tableM(), 0)).toBe(true)
  })

  it('a straddling THP maps its in-region page by the PMD, maps its outside page, keeps its folio mapped after the region page is unmapped, and moves with a migration', () => {
    const pt = tableM()
    const m = memory(32)
    faultHuge(l, pt, m, 0)
    const head = pteAt(l, pt, -1)
    expect(pt.pte[0]).toBe(head + 1)
    expect(pt.pmd[0]).toBe(1)
    expect(pmdWellFormed(l, pt, m, 0)).toBe(true)
    expect(outsidePfns(l, pt)).toEqual([head])
    // The block is no longer eligible even with its region page unmapped: the outside page is still mapped.
    unmapRange(l, pt, 0, 1)
    expect(thpEligible(l, pt, 0)).toBe(false)
    expect(folioMapped(l, pt, m, head + 1)).toBe(true)
    // Without the outside PTEs the folio would look unmapped: the check can fail.
    expect(folioMapped(l, { ...pt, outPte: [0, 0] }, m, head + 1)).toBe(false)
    const pt2 = tableM()
    faultHuge(l, pt2, m, 1)
    const h2 = pt2.pte[1]
    expect(pt2.outPte).toEqual([0, h2 + 1])
    expect(outsidePfns(l, pt2)).toEqual([h2 + 1])
    const fresh = removeMigrationPtes(l, pt2, m, h2)
    expect(pt2.outPte).toEqual([0, fresh + 1])
    expect(folioMapped(l, pt2, m, h2)).toBe(false)
  })

  describe('mTHPs (H=2, order 1) across an edge', () => {
    // 4 pages at uaddr offset 1: block 0 holds outside page -1 and pages 0..2; block 1 holds page 3 and outside pages 4..6.
    const l2 = layout(2, 4, 0, 1, true)

    it("an mTHP's aligned range may start before page 0 or end after page N - 1 only with the margin", () => {
      const m = memory(64)
      expect(mthpRange(l2, tableM(l2), 0, 1)).toEqual({ first: -1, n: 2 })
      expect(mthpRange(layout(2, 4, 0, 1), table(layout(2, 4, 0, 1)), 0, 1)).toBeNull()
      expect(mthpRange(l2, tableM(l2), 2, 1)).toEqual({ first: 1, n: 2 })
      expect(mthpRange(l2, tableM(l2), 3, 1)).toEqual({ first: 3, n: 2 })
      const pt = tableM(l2)
      faultMthp(l2, pt, m, 0, 1)
      const head = pteAt(l2, pt, -1)
      // Region page 0 maps the mTHP's tail; its head is mapped outside the region.
      expect(folioOrder(m, head, l2.H)).toBe(1)
      expect(pt.pte[0]).toBe(head + 1)
      // The other edge: page 3 and outside page 4.
      faultMthp(l2, pt, m, 3, 1)
      expect(pteAt(l2, pt, 4)).toBe(pt.pte[3] + 1)
      expect(outsidePfns(l2, pt)).toEqual([head, pt.pte[3] + 1])
      // pte_range_none: an mTHP over a mapped outside page is refused, and so is a THP over the block.
      expect(thpEligible(l2, pt, 0)).toBe(false)
      unmapRange(l2, pt, 0, 1)
      expect(mthpRange(l2, pt, 0, 1)).toBeNull()
      expect(folioMapped(l2, pt, m, head)).toBe(true)
      // Migration moves the outside page with the rest of the folio.
      const fresh = removeMigrationPtes(l2, pt, m, head)
      expect(pteAt(l2, pt, -1)).toBe(fresh)
      expect(folioMapped(l2, pt, m, head)).toBe(false)
    })
  })
})
