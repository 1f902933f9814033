/**
 * Bit-packed states: every cell reads back what was packed, over random
 * ranges and values; a value outside its range (either end) does not pack;
 * cells take the bits their ranges need, and never straddle a word.
 */
import { describe, expect, it } from 'vitest'
import { BitLayout } from '../../explorer/bit-layout.js'
import { bfs } from '../../explorer/bfs.js'
import { instantiate } from '../../invariants/scenarios.js'

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

describe('BitLayout', () => {
  it('round-trips random values over random ranges (signed, unsigned, constant)', () => {
    const rand = rng(11)
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rand() * 60)
      const ranges = Array.from({ length: n }, () => {
        const min = rand() < 0.3 ? -Math.floor(rand() * 128) : Math.floor(rand() * 10)
        return { min, max: min + Math.floor(rand() * (rand() < 0.2 ? 1 : 200)) }
      })
      const layout = new BitLayout(ranges)
      const cells = new Int16Array(n)
      const back = new Int16Array(n)
      const words = new Uint32Array(layout.words)
      for (let k = 0; k < 20; k++) {
        ranges.forEach((r, i) => (cells[i] = r.min + Math.floor(rand() * (r.max - r.min + 1))))
        expect(layout.pack(cells, words)).toBe(true)
        // The packed words are the layout's: each cell's offset from its minimum at its shift in its word (pack and unpack are generated code, so this is what they are checked against).
        const expected = new Uint32Array(layout.words)
        for (let c = 0; c < n; c++) expected[layout.word[c]] |= (cells[c] - layout.min[c]) << layout.shift[c]
        expect(Array.from(words)).toEqual(Array.from(expected))
        layout.unpack(words, 0, back)
        expect(Array.from(back)).toEqual(Array.from(cells))
      }
      // Each end of each range, one past it.
      const i = Math.floor(rand() * n)
      cells[i] = ranges[i].max + 1
      expect(layout.pack(cells, words)).toBe(false)
      expect(layout.firstOutOfRange(cells)).toBe(i)
      cells[i] = ranges[i].min - 1
      expect(layout.pack(cells, words)).toBe(false)
      cells[i] = ranges[i].min
      expect(layout.pack(cells, words)).toBe(true)
      expect(layout.firstOutOfRange(cells)).toBe(-1)
    }
  })

  it('a cell takes the bits of its range: flags 1, 0..4 3, a constant 0; whole words, first-fit', () => {
    expect(new BitLayout([{ min: 0, max: 1 }]).bits).toBe(1)
    expect(new BitLayout([{ min: 0, max: 4 }]).bits).toBe(3)
    expect(new BitLayout([{ min: 7, max: 7 }]).bits).toBe(0)
    expect(new BitLayout([{ min: -128, max: 127 }]).bits).toBe(8)
    // 40 flags: 2 words; 4 bytes and 1 flag: 2 words (a cell never straddles a word)
    expect(new BitLayout(Array.from({ length: 40 }, () => ({ min: 0, max: 1 }))).words).toBe(2)
    expect(new BitLayout([...Array.from({ length: 4 }, () => ({ min: 0, max: 255 })), { min: 0, max: 1 }]).words).toBe(2)
    // 3 cells of 7 bits and 11 of 1: 32 bits, one word (first-fit decreasing fills the gaps)
    expect(new BitLayout([...Array.from({ length: 11 }, () => ({ min: 0, max: 1 })), ...Array.from({ length: 3 }, () => ({ min: 0, max: 127 }))]).words).toBe(1)
  })

  it('distinct states pack to distinct words (the reference model: one word per ~24 bits of state)', () => {
    const model = instantiate('fault-invalidate', 'retry', { P: 2, V: 2, I: 1, K: 1, F: 1 }).model
    const layout = BitLayout.of(model.packed!)
    expect(layout.words).toBeLessThan(model.packed!.stateBytes / 4)
    // BFS counts (checked against SPIN and a brute force elsewhere) depend on packing being injective.
    expect(bfs(model, { symmetry: false, por: false }).stats.states).toBe(4731)
  })
})
