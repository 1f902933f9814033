/**
 * The fingerprint store against a Map: new states get consecutive indices,
 * a state seen before is found (-1), states are kept until released, parent
 * and successor links read back, and the collision estimate is TLC's formula.
 */
import { describe, expect, it } from 'vitest'
import { FingerprintStore } from '../../explorer/fingerprint-store.js'
import { NO_PARENT } from '../../explorer/state-store.js'

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
  })

  it('successor indices of any size read back (those above 62 from the side map); NO_PARENT reads back', () => {
    const store = new FingerprintStore(1)
    const ks = [0, 1, 62, 63, 64, 1000, 70_000]
    ks.forEach((k, i) => expect(store.insert(Uint32Array.of(i + 1), i === 0 ? NO_PARENT : i - 1, 0, k)).toBe(i))
    expect(ks.map((_, i) => store.successor(i))).toEqual(ks)
    expect(store.parent(0)).toBe(NO_PARENT)
    expect(store.path(6)).toEqual([0, 1, 2, 3, 4, 5, 6])
  })
})
