/**
 * model/primitives/folio.ts: the bump allocator of order-0 and order-H
 * folios (heads naturally aligned, pfns never reused), folio_order /
 * folio head lookups, split_folio and the folio_put that frees a folio.
 * Expected values are derived from the allocator's rules (round the next pfn
 * up to 2^H for a huge folio), never hard-coded.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ModelError } from '../../../explorer/errors.js'
import {
  allocFolio,
  allocHuge,
  allocSmall,
  folioHead,
  folioOrder,
  folioPages,
  frameCode,
  FRAME_ORDER_BASE,
  memoryFields,
  FRAME_FREED,
  FRAME_HUGE,
  FRAME_SMALL,
  FRAME_UNUSED,
  freeFolio,
  initMemory,
  isFreed,
  type Memory,
  splitFolio,
} from '../../../model/primitives/folio.js'

const memory = (frames: number): Memory => {
  const m: Memory = { frame: new Array(frames).fill(FRAME_UNUSED), nextPfn: 0 }
  initMemory(m)
  return m
}
const roundUp = (x: number, HP: number): number => Math.ceil(x / HP) * HP
const snapshot = (m: Memory) => ({ frame: Array.from(m.frame), nextPfn: m.nextPfn })

describe('allocSmall / allocHuge', () => {
  it('initMemory starts at pfn 1 (pfn 0 means "none")', () => {
    const m = memory(8)
    expect(m.nextPfn).toBe(1)
    expect(allocSmall(m)).toBe(1)
    expect(m.frame[0]).toBe(FRAME_UNUSED)
  })

  it('allocSmall bumps: consecutive pfns, each an order-0 folio', () => {
    const m = memory(16)
    const got = [allocSmall(m), allocSmall(m), allocSmall(m)]
    expect(got).toEqual([1, 2, 3])
    for (const p of got) {
      expect(m.frame[p]).toBe(FRAME_SMALL)
      expect(folioOrder(m, p, 2)).toBe(0)
      expect(folioHead(m, p, 2)).toBe(p)
    }
    expect(m.nextPfn).toBe(got[got.length - 1] + 1)
  })

  for (const H of [1, 2, 3]) {
    const HP = 1 << H
    it(`allocHuge(H=${H}): head aligned to ${HP}, all ${HP} pages huge, the skipped pfns left unused`, () => {
      const m = memory(8 * HP)
      const small = allocSmall(m) // nextPfn is now misaligned for every H >= 1
      const before = m.nextPfn
      const head = allocHuge(m, H)
      expect(head).toBe(roundUp(before, HP))
      expect(head % HP).toBe(0)
      expect(head).toBeGreaterThan(small)
      for (let k = 0; k < HP; k++) {
        expect(m.frame[head + k]).toBe(FRAME_HUGE)
        expect(folioOrder(m, head + k, H)).toBe(H)
        expect(folioHead(m, head + k, H)).toBe(head)
      }
      for (let p = before; p < head; p++) expect(m.frame[p]).toBe(FRAME_UNUSED)
      expect(m.nextPfn).toBe(head + HP)
      // An already aligned next pfn is not rounded further.
      const again = allocHuge(m, H)
      expect(again).toBe(head + HP)
    })
  }

  it('random mixes of small and huge allocations: bump order, aligned heads, no pfn handed out twice', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }), (H, huge) => {
        const HP = 1 << H
        const m = memory(1 + huge.length * 2 * HP)
        const seen = new Set<number>()
        let expectNext = 1
        for (const isHuge of huge) {
          const want = isHuge ? roundUp(expectNext, HP) : expectNext
          const got = isHuge ? allocHuge(m, H) : allocSmall(m)
          expect(got).toBe(want)
          const pages = isHuge ? HP : 1
          for (let k = 0; k < pages; k++) {
            expect(seen.has(got + k)).toBe(false)
            seen.add(got + k)
          }
          expectNext = got + pages
          expect(m.nextPfn).toBe(expectNext)
        }
      }),
      { numRuns: 200 },
    )
  })

  it('freed pfns are never reused', () => {
    const m = memory(32)
    const a = allocSmall(m)
    const h = allocHuge(m, 2)
    freeFolio(m, a, 2)
    freeFolio(m, h, 2)
    const b = allocSmall(m)
    const h2 = allocHuge(m, 2)
    expect(b).toBe(h + 4)
    expect([a, h, h + 1, h + 2, h + 3]).not.toContain(b)
    expect(h2).toBe(roundUp(b + 1, 4))
    expect(h2 % 4).toBe(0)
    expect(isFreed(m, a)).toBe(true)
    expect(isFreed(m, b)).toBe(false)
  })

  it('works on a packed byte view (Int16Array) as on an array', () => {
    const m: Memory = { frame: new Int16Array(16), nextPfn: 0 }
    initMemory(m)
    expect(allocSmall(m)).toBe(1)
    const head = allocHuge(m, 2)
    expect(head).toBe(roundUp(2, 4))
    expect(Array.from(m.frame.slice(head, head + 4))).toEqual([FRAME_HUGE, FRAME_HUGE, FRAME_HUGE, FRAME_HUGE])
    freeFolio(m, head + 3, 2)
    expect(Array.from(m.frame.slice(head, head + 4)).every((f) => f === FRAME_FREED)).toBe(true)
  })
})

describe('pool exhaustion', () => {
  it('allocSmall throws ModelError past the last frame and changes nothing', () => {
    const frames = 5
    const m = memory(frames)
    for (let p = 1; p < frames; p++) expect(allocSmall(m)).toBe(p)
    const before = snapshot(m)
    expect(() => allocSmall(m)).toThrow(ModelError)
    expect(() => allocSmall(m)).toThrow(new RegExp(`memory pool exhausted at pfn ${frames}\\b`))
    expect(snapshot(m)).toEqual(before)
  })

  for (const H of [1, 2, 3]) {
    const HP = 1 << H
    it(`allocHuge(H=${H}) throws ModelError when the aligned folio does not fit, and changes nothing`, () => {
      // Room for exactly one aligned huge folio after pfn 0: [HP, 2HP).
      const m = memory(2 * HP)
      expect(allocHuge(m, H)).toBe(HP)
      const before = snapshot(m)
      expect(() => allocHuge(m, H)).toThrow(ModelError)
      expect(snapshot(m)).toEqual(before)
      // One frame short of a second folio: still exhausted, even though frames remain unused below the head.
      const m2 = memory(2 * HP - 1)
      expect(() => allocHuge(m2, H)).toThrow(new RegExp(`memory pool exhausted at pfn ${HP}\\b`))
      expect(m2.nextPfn).toBe(1)
      expect(Array.from(m2.frame).every((f) => f === FRAME_UNUSED)).toBe(true)
    })
  }
})

describe('folioOrder / folioHead', () => {
  it('an unused, small or freed pfn is its own order-0 folio', () => {
    const m = memory(16)
    const s = allocSmall(m)
    const h = allocHuge(m, 2)
    freeFolio(m, h, 2)
    for (const p of [0, s, h, h + 1, 15]) {
      expect(folioOrder(m, p, 2)).toBe(0)
      expect(folioHead(m, p, 2)).toBe(p)
    }
  })
})

describe('splitFolio', () => {
  for (const H of [1, 2, 3]) {
    const HP = 1 << H
    it(`H=${H}: split from any page leaves the pfns in place, each page an order-0 folio`, () => {
      for (let at = 0; at < HP; at++) {
        const m = memory(4 * HP)
        allocSmall(m)
        const head = allocHuge(m, H)
        const tail = allocSmall(m)
        splitFolio(m, head + at, H)
        for (let k = 0; k < HP; k++) {
          expect(m.frame[head + k]).toBe(FRAME_SMALL)
          expect(folioOrder(m, head + k, H)).toBe(0)
          expect(folioHead(m, head + k, H)).toBe(head + k)
        }
        expect(m.frame[tail]).toBe(FRAME_SMALL)
        expect(m.nextPfn).toBe(tail + 1)
      }
    })
  }

  it('splitting an order-0 folio is a no-op', () => {
    const m = memory(8)
    const s = allocSmall(m)
    const before = snapshot(m)
    splitFolio(m, s, 2)
    expect(snapshot(m)).toEqual(before)
  })
})

describe('freeFolio', () => {
  for (const H of [1, 2, 3]) {
    const HP = 1 << H
    it(`H=${H}: freeing any page of a huge folio frees the whole folio and nothing else`, () => {
      for (let at = 0; at < HP; at++) {
        const m = memory(4 * HP)
        const before = allocSmall(m)
        const head = allocHuge(m, H)
        const after = allocSmall(m)
        freeFolio(m, head + at, H)
        for (let k = 0; k < HP; k++) expect(isFreed(m, head + k)).toBe(true)
        expect(m.frame[before]).toBe(FRAME_SMALL)
        expect(m.frame[after]).toBe(FRAME_SMALL)
      }
    })

    it(`H=${H}: after a split, freeing one page frees only that page`, () => {
      const m = memory(4 * HP)
      const head = allocHuge(m, H)
      splitFolio(m, head, H)
      const victim = head + HP - 1
      freeFolio(m, victim, H)
      for (let k = 0; k < HP; k++) expect(m.frame[head + k]).toBe(head + k === victim ? FRAME_FREED : FRAME_SMALL)
    })
  }

  it('freeing an order-0 folio frees exactly it', () => {
    const m = memory(8)
    const [a, b, c] = [allocSmall(m), allocSmall(m), allocSmall(m)]
    freeFolio(m, b, 2)
    expect([m.frame[a], m.frame[b], m.frame[c]]).toEqual([FRAME_SMALL, FRAME_FREED, FRAME_SMALL])
  })
})

describe('folios of any order (mTHP below H, a 1G folio at 2H: fidelity review MB-5)', () => {
  for (const H of [1, 2, 3]) {
    const orders = [...Array.from({ length: H - 1 }, (_, k) => k + 1), 2 * H]
    for (const order of orders) {
      const n = 1 << order
      it(`H=${H}: allocFolio(order ${order}) gives a head aligned to ${n}, every page of order ${order}, its pages freed and split as one folio`, () => {
        const m = memory(4 * n + 8)
        allocSmall(m)
        const head = allocFolio(m, order, H)
        expect(head).toBe(roundUp(2, n))
        expect(m.nextPfn).toBe(head + n)
        expect(m.frame[head]).toBe(frameCode(order, H))
        for (let k = 0; k < n; k++) {
          expect(folioOrder(m, head + k, H)).toBe(order)
          expect(folioHead(m, head + k, H)).toBe(head)
          expect(folioPages(m, head + k, H)).toBe(n)
        }
        // The order-0 folio before it is untouched.
        expect(folioOrder(m, 1, H)).toBe(0)
        const other = allocFolio(m, order, H)
        splitFolio(m, other + n - 1, H)
        for (let k = 0; k < n; k++) expect(folioOrder(m, other + k, H)).toBe(0)
        freeFolio(m, head + n - 1, H)
        for (let k = 0; k < n; k++) expect(isFreed(m, head + k)).toBe(true)
        expect(isFreed(m, other)).toBe(false)
        expect(() => freeFolio(m, head, H)).toThrow(ModelError)
      })
    }
  }

  it('allocFolio(order 0) and allocFolio(order H) are allocSmall and allocHuge (the codes every model had)', () => {
    const a = memory(32)
    const b = memory(32)
    expect(allocFolio(a, 0, 2)).toBe(allocSmall(b))
    expect(allocFolio(a, 2, 2)).toBe(allocHuge(b, 2))
    expect(snapshot(a)).toEqual(snapshot(b))
    expect(frameCode(2, 2)).toBe(FRAME_HUGE)
    expect(frameCode(0, 2)).toBe(FRAME_SMALL)
  })

  it("memoryFields keeps its range without other orders (a model's shape is unchanged) and widens it to the largest order asked for", () => {
    expect(memoryFields(16).frame).toEqual(memoryFields(16, 0).frame)
    expect((memoryFields(16).frame as any).of.max).toBe(FRAME_FREED)
    expect((memoryFields(16, 4).frame as any).of.max).toBe(FRAME_ORDER_BASE + 4)
  })
})
