/**
 * The fingerprint store against a Map: new states get consecutive indices,
 * a state seen before is found (-1), states are kept until released, parent
 * and successor links read back, and the collision estimate is TLC's formula.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { FingerprintStore } from '../../explorer/fingerprint-store.js'
import { NO_PARENT } from '../../explorer/state-store.js'
import { canSeeFds, namedLinkFiles, openLinkFiles } from '../support/link-files.js'

afterAll(() => {
  expect(namedLinkFiles()).toEqual([])
  if (canSeeFds) expect(openLinkFiles()).toEqual([])
})

describe('FingerprintStore', () => {
  it('200k states through many resizes: indices, duplicates, parents, successors, release', () => {
    const store = new FingerprintStore(3)
    const seen = new Map<string, number>()
    const w = new Uint32Array(3)
    let generated = 0
    const bad: string[] = []
    for (let i = 0; i < 400_000; i++) {
      const v = Math.imul(i, 0x9e3779b1) % 200_003
      w[0] = v
      w[1] = v ^ 0xdeadbeef
      w[2] = 7
      const key = `${w[0]},${w[1]}`
      const before = store.size
      const got = store.insert(w, before > 0 ? before - 1 : NO_PARENT, 0, i % 70)
      generated++
      if (seen.has(key)) {
        if (got !== -1) bad.push(`duplicate ${key}: got ${got}`)
      } else {
        if (got !== before) bad.push(`new ${key}: got ${got}, want ${before}`)
        seen.set(key, got)
      }
      if (bad.length > 5) break
    }
    expect(bad).toEqual([])
    expect(store.size).toBe(seen.size)
    expect(store.duplicates).toBe(generated - seen.size)
    expect(store.collisionProbability).toBeCloseTo((store.size * (generated - store.size)) / 2 ** 64, 25)
    const out = new Uint32Array(3)
    store.get(70_000, out)
    expect(out[2]).toBe(7)
    expect(out[1]).toBe((out[0] ^ 0xdeadbeef) >>> 0)
    expect(store.parent(70_000)).toBe(69_999)
    expect(store.path(3)).toEqual([0, 1, 2, 3])
    store.release(140_000)
    // the chunks wholly below 140000 are gone; the one holding it stays
    expect(() => store.get(70_000, out)).toThrow(/no longer kept/)
    store.get(140_000, out)
    store.get(131_072, out)
    expect(() => store.get(131_071, out)).toThrow()
    expect(store.successor(0)).toBe(0)
    expect(store.successor(100)).toBe(100 % 70) // no value repeats among the first hundred i, so state 100 is i = 100
    // The links of the full pages are on disk, only the last page's in memory.
    expect(store.diskBytes).toBe(Math.floor((store.size - 1) / 65_536) * 65_536 * 4)
    store.close()
  })

  it('successor indices of any size read back (those above 62 from the side map); NO_PARENT reads back', () => {
    const store = new FingerprintStore(1)
    const ks = [0, 1, 62, 63, 64, 1000, 70_000]
    ks.forEach((k, i) => expect(store.insert(Uint32Array.of(i + 1), i === 0 ? NO_PARENT : i - 1, 0, k)).toBe(i))
    expect(ks.map((_, i) => store.successor(i))).toEqual(ks)
    expect(store.parent(0)).toBe(NO_PARENT)
    expect(store.path(6)).toEqual([0, 1, 2, 3, 4, 5, 6])
  })

  for (const [where, options] of [
    ['on disk', {}],
    ['on disk in pages of 16', { linkPageBits: 4 }],
    ['in memory', { links: 'memory' }],
  ] as const) {
    it(`links past 26 bits (${where}): parents far above the chunk base, below it, and large successor indices read back exactly`, () => {
      const store = new FingerprintStore(1, options)
      const w = new Uint32Array(1)
      const want: [number, number][] = []
      for (let i = 0; i < 150_000; i++) {
        w[0] = Math.imul(i + 1, 0x9e3779b1)
        // BFS-like (parents growing slowly) with escapes: a parent 2^26 and 3e9 above, one below the base, successors past 62.
        const parent = i < 2 ? NO_PARENT : i % 5000 === 17 ? 3_000_000_000 + i : i % 7000 === 3 ? 2 ** 26 + i : i % 9000 === 5 ? 0 : Math.floor(i / 3)
        const k = i % 11_000 === 9 ? 200 : i % 60
        expect(store.insert(w, parent, 0, k)).toBe(i)
        want.push([parent, k])
      }
      let wrong = 0
      want.forEach(([parent, k], i) => {
        if (store.parent(i) !== parent || store.successor(i) !== k) wrong++
      })
      expect(wrong).toBe(0)
      // Whole paths, where every parent on the way is a stored state: as the inserted links give them.
      const chain = (i: number): number[] | null => {
        const out = [i]
        for (let p = want[i][0]; p !== NO_PARENT; p = want[p][0]) {
          if (p >= want.length) return null
          out.push(p)
        }
        return out.reverse()
      }
      const ends = [149_999, 140_000, 100_003, 70_017].filter((i) => chain(i) !== null)
      expect(ends.length).toBeGreaterThan(1)
      for (const i of ends) expect(store.path(i)).toEqual(chain(i))
      expect(store.diskBytes > 0).toBe(where !== 'in memory')
      store.close()
    })
  }

  it('past the in-place limit the table grows by copying: the same answers', () => {
    const inPlace = new FingerprintStore(2)
    const copying = new FingerprintStore(2, { inPlaceBytes: 2 ** 16 })
    const w = new Uint32Array(2)
    let differ = 0
    for (let i = 0; i < 120_000; i++) {
      const v = (Math.imul(i, 0x9e3779b1) >>> 0) % 60_013
      w[0] = v
      w[1] = v * 3
      if (inPlace.insert(w, NO_PARENT, 0, 0) !== copying.insert(w, NO_PARENT, 0, 0)) differ++
    }
    expect(differ).toBe(0)
    expect(copying.size).toBe(60_013)
    expect((copying as unknown as { table: Uint32Array }).table.byteLength).toBeGreaterThan(2 ** 16)
  })

  it('bounded to 2^10 slots: 768 states, then full', () => {
    const store = new FingerprintStore(1, { maxIndexBits: 10 })
    const w = new Uint32Array(1)
    let i = 0
    for (; !store.full; i++) {
      w[0] = i
      expect(store.insert(w, NO_PARENT, 0, 0)).toBe(i)
    }
    expect(i).toBe(768)
    for (let j = 0; j < i; j++) {
      w[0] = j
      if (store.insert(w, NO_PARENT, 0, 0) !== -1) expect(j).toBe(-1)
    }
  })
})
