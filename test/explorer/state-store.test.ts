/**
 * The visited set against a JS Set/Map of strings: insert, duplicate
 * detection, get, parent chains and depths, through many table resizes and
 * past several 2^16-record chunks.
 */
import { describe, expect, it } from 'vitest'
import { hashWords, MAX_INDEX_BITS, NO_PARENT, StateStore, storeCapacity } from '../../explorer/state-store.js'

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const key = (b: Uint8Array, n: number) => Array.from(b.subarray(0, n)).join(',')

describe('StateStore', () => {
  it('200k random states of 5 bytes: every one found again, nothing spurious, through many resizes', () => {
    const n = 5
    const store = new StateStore(n)
    // The state drawn from v is a function of v (and v of it), so v is its key.
    const truth = new Map<number, number>()
    const rand = rng(1)
    const b = new Uint8Array(n)
    const fill = (v: number, salt: number): void => {
      b[0] = v & 0xff
      b[1] = (v >>> 8) & 0xff
      b[2] = (v >>> 16) & 0x1f
      b[3] = b[0] ^ salt
      b[4] = 0
    }
    const bad: string[] = []
    // Peek at the private table only to count its resizes.
    const tableSlots = (): number => (store as unknown as { table: Uint32Array }).table.length
    let resizes = 0
    let lastSlots = tableSlots()
    let inserts = 0
    // Draw from 2^21 values, so that duplicates happen often.
    while (truth.size < 200_000) {
      const v = Math.floor(rand() * (1 << 21))
      fill(v, 0x5a)
      const before = store.size
      const got = store.insert(b, truth.size > 0 ? truth.size - 1 : NO_PARENT)
      inserts++
      const known = truth.get(v)
      if (known === undefined) {
        if (got !== before || store.size !== before + 1) bad.push(`new ${v}: got ${got}, size ${before} -> ${store.size}`)
        truth.set(v, before)
      } else if (got !== -(known + 1) || store.size !== before) {
        bad.push(`duplicate ${v}: got ${got}, want ${-(known + 1)}`)
      }
      if (tableSlots() !== lastSlots) {
        resizes++
        lastSlots = tableSlots()
      }
      if (bad.length > 5) break
    }
    expect(bad).toEqual([])
    expect(inserts).toBeGreaterThan(truth.size + 5000) // duplicates were exercised
    expect(store.size).toBe(truth.size)
    // The table (4096 slots at first, load <= 3/4) grew several times; storage spans several 2^16 chunks.
    expect(resizes).toBeGreaterThanOrEqual(5)
    expect(tableSlots() * 3).toBeGreaterThanOrEqual(4 * store.size)
    // Every stored state: found again at its index, and its bytes read back.
    const out = new Uint32Array(n)
    for (const [v, idx] of truth) {
      fill(v, 0x5a)
      const got = store.insert(b, 0)
      if (got !== -(idx + 1)) bad.push(`lookup ${v}: got ${got}, want ${-(idx + 1)}`)
      store.get(idx, out)
      if (out.some((x, i) => x !== b[i])) bad.push(`get ${idx}: ${out} != ${b}`)
      if (bad.length > 5) break
    }
    expect(bad).toEqual([])
    expect(store.size).toBe(truth.size)
    // States outside the set (another salt in byte 3) are new: no spurious hits.
    for (let i = 0; i < 20_000; i++) {
      fill(Math.floor(rand() * (1 << 21)), 0xa5)
      const before = store.size
      const got = store.insert(b, 0)
      if (got < 0) {
        // only a state inserted earlier in this loop may be found
        if (-got - 1 < truth.size) bad.push(`spurious hit ${b} -> ${-got - 1}`)
      } else if (got !== before) bad.push(`new index ${got} != ${before}`)
    }
    expect(bad).toEqual([])
  })

  it('states that differ in one byte only, or only in the last byte, are distinct', () => {
    const n = 8
    const store = new StateStore(n)
    const b = new Uint8Array(n)
    const seen = new Set<string>()
    for (let pos = 0; pos < n; pos++) {
      for (let v = 0; v < 256; v++) {
        b.fill(0)
        b[pos] = v
        const k = key(b, n)
        const r = store.insert(b, NO_PARENT)
        if (seen.has(k)) expect(r).toBeLessThan(0)
        else expect(r).toBeGreaterThanOrEqual(0)
        seen.add(k)
      }
    }
    expect(store.size).toBe(seen.size)
    expect(store.size).toBe(8 * 255 + 1)
  })

  it('only the first stateBytes bytes of the buffer count', () => {
    const store = new StateStore(3)
    const a = Uint8Array.from([1, 2, 3, 4, 5])
    const b = Uint8Array.from([1, 2, 3, 9, 9])
    expect(store.insert(a, NO_PARENT)).toBe(0)
    expect(store.insert(b, NO_PARENT)).toBe(-1)
  })

  it('parent chains: path() follows parents back to an initial state', () => {
    const n = 4
    const store = new StateStore(n)
    const rand = rng(7)
    const parents: number[] = []
    const b = new Uint8Array(n)
    const view = new DataView(b.buffer)
    for (let i = 0; i < 150_000; i++) {
      // index i stored as its bytes; a handful of roots, the rest with a random earlier parent
      view.setUint32(0, Math.imul(i, 0x9e3779b1)) // a bijection of i: all distinct
      const p = i < 3 || rand() < 0.001 ? NO_PARENT : Math.floor(rand() * i)
      const got = store.insert(b, p)
      if (got !== i) expect(got).toBe(i)
      parents.push(p)
    }
    for (let t = 0; t < 300; t++) {
      const idx = Math.floor(rand() * parents.length)
      const want: number[] = []
      for (let i = idx; i !== NO_PARENT; i = parents[i]) want.push(i)
      want.reverse()
      expect(store.path(idx)).toEqual(want)
      expect(store.parent(idx)).toBe(parents[idx])
    }
  })

  it('depths and reparent', () => {
    const store = new StateStore(3, { trackDepth: true })
    const b = new Uint8Array(3)
    for (let i = 0; i < 70_000; i++) {
      b[0] = i & 0xff
      b[1] = (i >>> 8) & 0xff
      b[2] = i >>> 16
      store.insert(b, i === 0 ? NO_PARENT : i - 1, i % 1000)
    }
    for (const i of [0, 1, 999, 1000, 65_535, 65_536, 69_999]) {
      expect(store.depth(i)).toBe(i % 1000)
      expect(store.parent(i)).toBe(i === 0 ? NO_PARENT : i - 1)
    }
    store.reparent(69_999, 5, 6)
    expect(store.parent(69_999)).toBe(5)
    expect(store.depth(69_999)).toBe(6)
    expect(store.path(69_999)).toEqual([0, 1, 2, 3, 4, 5, 69_999])
    expect(() => new StateStore(2).depth(0)).toThrow()
  })

  it('a depth above 65535 is kept', () => {
    const store = new StateStore(1, { trackDepth: true })
    store.insert(Uint8Array.of(1), NO_PARENT, 70_000)
    expect(store.depth(0)).toBe(70_000)
  })

  it('initialCapacity gives the same answers', () => {
    const a = new StateStore(3)
    const c = new StateStore(3, { initialCapacity: 100_000 })
    const rand = rng(3)
    const b = new Uint8Array(3)
    let mismatches = 0
    for (let i = 0; i < 50_000; i++) {
      b.set([Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 4)])
      if (c.insert(b, NO_PARENT) !== a.insert(b, NO_PARENT)) mismatches++
    }
    expect(mismatches).toBe(0)
    expect(c.size).toBe(a.size)
  })

  it('hashWords depends on exactly the given range, on whole 32-bit words, and on its seed', () => {
    const a = Uint32Array.from([9, 1, 0xffffffff, 3, 9])
    const b = Uint32Array.from([7, 1, 0xffffffff, 3, 7])
    expect(hashWords(a, 1, 3)).toBe(hashWords(b, 1, 3))
    expect(hashWords(a, 0, 3)).not.toBe(hashWords(b, 0, 3))
    expect(hashWords(a, 1, 3)).toBeGreaterThanOrEqual(0)
    expect(Number.isInteger(hashWords(a, 1, 3))).toBe(true)
    // the high bits of a word count
    expect(hashWords(Uint32Array.of(0x80000000), 0, 1)).not.toBe(hashWords(Uint32Array.of(0), 0, 1))
    expect(hashWords(a, 1, 3, 1)).not.toBe(hashWords(a, 1, 3, 2))
  })

  it('the index width is the table\'s: a store bounded to 2^10 slots holds 768 states, then is full, every one found', () => {
    const store = new StateStore(2, { maxIndexBits: 10 })
    expect(store.capacity).toBe(768)
    const w = new Uint32Array(2)
    let i = 0
    for (; !store.full; i++) {
      w[0] = Math.imul(i, 0x9e3779b1)
      w[1] = i
      expect(store.insert(w, NO_PARENT)).toBe(i)
    }
    expect(i).toBe(768)
    const table = (store as unknown as { table: Uint32Array }).table
    expect(table.length).toBe(1024)
    for (let j = 0; j < i; j++) {
      w[0] = Math.imul(j, 0x9e3779b1)
      w[1] = j
      if (store.insert(w, NO_PARENT) !== -(j + 1)) expect(store.insert(w, NO_PARENT)).toBe(-(j + 1))
    }
  })

  it('indices past what a 16-bit index field would hold: the index bits widen as the table doubles, the tags narrow, nothing is confused', () => {
    // A fixed 16-bit index field (as the fixed 26 bits were, at scale) would end this store at 65,535 states; it reaches 300k, the split moving at each of 7 doublings.
    const store = new StateStore(1)
    const w = new Uint32Array(1)
    const n = 300_000
    let wrong = 0
    for (let i = 0; i < n; i++) {
      w[0] = Math.imul(i, 0x2545f491)
      if (store.insert(w, i - 1 < 0 ? NO_PARENT : i - 1) !== i) wrong++
    }
    for (let i = 0; i < n; i++) {
      w[0] = Math.imul(i, 0x2545f491)
      if (store.insert(w, 0) !== -(i + 1)) wrong++
    }
    expect(wrong).toBe(0)
    expect(store.parent(n - 1)).toBe(n - 2)
    // Parent links are whole Uint32s: an index above 2^31 is kept as it is.
    w[0] = 12345678
    const idx = store.insert(w, 3_000_000_000)
    expect(store.parent(idx)).toBe(3_000_000_000)
    // The default bound: 3/4 of 2^31 slots.
    expect(new StateStore(1).capacity).toBe(storeCapacity(MAX_INDEX_BITS))
    expect(storeCapacity(MAX_INDEX_BITS)).toBe(1_610_612_736)
  })
})
