/** The parallel BFS's shared visited set (explorer/shared-store.ts), on one thread; parallel-bfs.test.ts has it shared. */
import { describe, expect, it } from 'vitest'
import { SharedStore } from '../../explorer/shared-store.js'
import { NO_PARENT } from '../../explorer/state-store.js'

const state = (i: number): Uint32Array => Uint32Array.of(i, i * 7 + 1, 0xffffffff - i)

describe('SharedStore', () => {
  it('stores each state once, finds it again by its words, through table rehashes and arena growth', () => {
    const store = SharedStore.create(3)
    const n = 50_000
    for (let i = 0; i < n; i++) expect(store.insert(state(i), NO_PARENT, 0, i, 0)).toBe(i)
    for (let i = 0; i < n; i += 97) expect(store.insert(state(i), NO_PARENT, 0, 0, 0)).toBe(-(i + 1))
    expect(store.size).toBe(n)
    expect(store.find(state(n))).toBe(-1)
    const out = new Uint32Array(3)
    for (let i = 0; i < n; i += 101) {
      expect(store.find(state(i))).toBe(i)
      store.get(i, out)
      expect([...out]).toEqual([...state(i)])
    }
    // Past 4,096 slots at load 3/4: the table grew (several times) and still holds every state.
    expect(store.bytes).toBeGreaterThan(n * 4)
  })

  it("keeps the least (parent position, action) edge of a state new in the level, and leaves an older level's alone", () => {
    const store = SharedStore.create(3)
    const root = store.insert(state(0), NO_PARENT, 0, 0, 0)
    // A new level: the indices it hands out from now on are all at least `next`.
    store.dropSpare()
    const levelBase = store.next
    const a = store.insert(state(1), root, 5, 2, levelBase)
    expect([store.edgePos(a, levelBase), store.edgeK(a, levelBase)]).toEqual([5, 2])
    expect(store.insert(state(1), root, 7, 0, levelBase)).toBe(-(a + 1))
    expect(store.improved).toBe(false)
    expect(store.insert(state(1), root, 3, 4, levelBase)).toBe(-(a + 1))
    expect(store.improved).toBe(true)
    expect([store.edgePos(a, levelBase), store.edgeK(a, levelBase)]).toEqual([3, 4])
    // The same parent again: its actions come in order, so a later one never wins.
    expect(store.insert(state(1), root, 3, 6, levelBase)).toBe(-(a + 1))
    expect(store.improved).toBe(false)
    // A state of an earlier level keeps its edge whatever reaches it now.
    store.dropSpare()
    expect(store.insert(state(0), a, 0, 0, store.next)).toBe(-(root + 1))
    expect(store.improved).toBe(false)
    expect(store.path(a)).toEqual([root, a])
  })
})
