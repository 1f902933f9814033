/**
 * invariants/slat-invariants.ts on small hand-built worlds (plain objects):
 * for each invariant, worlds where it holds and where it fails, the failure
 * message naming the gfn / pfn / thread in the code's hex formatting.
 * Addresses are derived from the layout (start_gfn + i, start_uaddr + i).
 */
import { describe, expect, it } from 'vitest'
import {
  hugeMappingAligned,
  mapHypercallSucceeds,
  mappingWithinFolio,
  noFreedPageMapped,
  noRegionUseAfterFree,
  noSleepInAtomic,
  noStaleMapping,
} from '../../invariants/slat-invariants.js'
import { allocFolio, allocHuge, allocSmall, freeFolio, initMemory, type Memory, splitFolio } from '../../model/primitives/folio.js'
import { type Layout, layout } from '../../model/primitives/layout.js'
import { Locks, type LockWorld } from '../../model/primitives/locks.js'
import { REGION_FREED, REGION_LISTED, REGION_MOVABLE, REGION_UNLINKED, type Region, useRegion } from '../../model/primitives/region.js'
import { ACCESS_NO_ACCESS, ACCESS_NONE, ACCESS_RW, type Leaf } from '../../model/primitives/slat.js'

const hex = (n: number): string => `0x${n.toString(16)}`
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

const emptySlat = (l: Layout): Leaf[] => Array.from({ length: l.N }, () => ({ pfn: 0, order: 0, access: ACCESS_NONE }))
const memory = (frames: number): Memory => {
  const m: Memory = { frame: new Array(frames).fill(0), nextPfn: 0 }
  initMemory(m)
  return m
}

describe('no-stale-mapping', () => {
  // Big enough pfns that hex and decimal differ.
  const l = layout(1, 4, 1, 0)
  const world = () => ({
    slat: emptySlat(l),
    pte: [0x1a, 0x2b, 0, 0x3c],
    pmd: new Array(l.blocks).fill(0),
    invalPending: new Array(l.N).fill(0),
  })

  it('holds with no leaf, with leaves matching the host, and with non-accessible mismatches', () => {
    const w = world()
    const inv = noStaleMapping(l)
    expect(inv.id).toBe('no-stale-mapping')
    expect(inv.check(w)).toBeNull()
    w.slat[0] = { pfn: w.pte[0], order: 0, access: ACCESS_RW }
    w.slat[1] = { pfn: w.pte[1], order: 0, access: ACCESS_RW }
    expect(inv.check(w)).toBeNull()
    w.slat[3] = { pfn: 0x77, order: 0, access: ACCESS_NO_ACCESS }
    expect(inv.check(w)).toBeNull()
  })

  it('fails on an accessible leaf whose pfn the host no longer maps there, naming gfn, both pfns and the uaddr', () => {
    const w = world()
    const i = 1
    const stale = 0x5e
    w.slat[i] = { pfn: stale, order: 0, access: ACCESS_RW }
    expect(noStaleMapping(l).check(w)).toBe(
      `gfn ${hex(l.startGfn + i)} maps pfn ${hex(stale)} but the host maps pfn ${hex(w.pte[i])} at uaddr ${hex(l.startUaddr + i)}`,
    )
  })

  it('says "nothing" when the host PTE is empty', () => {
    const w = world()
    const i = w.pte.indexOf(0)
    w.slat[i] = { pfn: 0x4d, order: 0, access: ACCESS_RW }
    expect(noStaleMapping(l).check(w)).toBe(`gfn ${hex(l.startGfn + i)} maps pfn ${hex(0x4d)} but the host maps nothing at uaddr ${hex(l.startUaddr + i)}`)
  })

  it('exempts a page while its invalidation callback is pending (invalPending[i] > 0), and only that page', () => {
    const w = world()
    const i = 3
    w.slat[i] = { pfn: 0x5e, order: 0, access: ACCESS_RW }
    w.invalPending[i] = 1
    expect(noStaleMapping(l).check(w)).toBeNull()
    w.invalPending[i] = 2
    expect(noStaleMapping(l).check(w)).toBeNull()
    w.invalPending[i] = 0
    w.invalPending[i - 1] = 1
    expect(noStaleMapping(l).check(w)).toMatch(new RegExp(`^gfn ${esc(hex(l.startGfn + i))} maps`))
  })

  it('reports the first offending gfn', () => {
    const w = world()
    w.slat[2] = { pfn: 0x61, order: 0, access: ACCESS_RW }
    w.slat[3] = { pfn: 0x62, order: 0, access: ACCESS_RW }
    expect(noStaleMapping(l).check(w)).toMatch(new RegExp(`^gfn ${esc(hex(l.startGfn + 2))} maps pfn ${esc(hex(0x61))}`))
  })
})

describe('no-freed-page-mapped', () => {
  const l = layout(2, 8, 0, 0)

  it('holds while the mapped pfns are live, and for non-accessible leaves of freed pfns', () => {
    const m = memory(64)
    const slat = emptySlat(l)
    const p = allocSmall(m)
    slat[5] = { pfn: p, order: 0, access: ACCESS_RW }
    const inv = noFreedPageMapped(l)
    expect(inv.check({ slat, ...m })).toBeNull()
    freeFolio(m, p, l.H)
    slat[5].access = ACCESS_NO_ACCESS
    expect(inv.check({ slat, ...m })).toBeNull()
  })

  it('fails on an accessible leaf of a freed pfn, naming gfn and pfn', () => {
    const m = memory(64)
    const slat = emptySlat(l)
    // Push the pfn past 15 so hex formatting is visible.
    for (let k = 0; k < 20; k++) allocSmall(m)
    const head = allocHuge(m, l.H)
    const i = 6
    slat[i] = { pfn: head + 2, order: 0, access: ACCESS_RW }
    expect(noFreedPageMapped(l).check({ slat, ...m })).toBeNull()
    freeFolio(m, head, l.H) // freeing the folio frees head + 2 with it
    expect(noFreedPageMapped(l).check({ slat, ...m })).toBe(`gfn ${hex(l.startGfn + i)} maps pfn ${hex(head + 2)}, which the host has freed`)
  })
})

describe('mapping-within-folio', () => {
  // start_gfn aligned, so region page i has gfn offset i mod HP.
  const l = layout(2, 8, 0, 0)
  const hugeLeaves = (slat: Leaf[], at: number, head: number, access = ACCESS_RW) => {
    for (let k = 0; k < l.HP; k++) slat[at + k] = { pfn: head + k, order: l.H, access }
  }

  it('holds for a huge leaf over one huge folio page for page, and ignores order-0 leaves', () => {
    const m = memory(64)
    const slat = emptySlat(l)
    const head = allocHuge(m, l.H)
    hugeLeaves(slat, l.HP, head)
    slat[0] = { pfn: allocSmall(m), order: 0, access: ACCESS_RW }
    expect(mappingWithinFolio(l).check({ slat, ...m })).toBeNull()
  })

  it('fails when a huge leaf maps an order-0 folio (e.g. after a split)', () => {
    const m = memory(64)
    for (let k = 0; k < 20; k++) allocSmall(m)
    const slat = emptySlat(l)
    const head = allocHuge(m, l.H)
    hugeLeaves(slat, l.HP, head)
    splitFolio(m, head, l.H)
    expect(mappingWithinFolio(l).check({ slat, ...m })).toBe(
      `gfn ${hex(l.startGfn + l.HP)} is mapped by an order-${l.H} leaf but pfn ${hex(head)} is in an order-0 folio`,
    )
    // A no-access huge leaf is not a mapping the guest uses.
    hugeLeaves(slat, l.HP, head, ACCESS_NO_ACCESS)
    expect(mappingWithinFolio(l).check({ slat, ...m })).toBeNull()
  })

  it('fails when a huge leaf maps a huge folio at the wrong offset (two folios under one leaf)', () => {
    const m = memory(64)
    for (let k = 0; k < 20; k++) allocSmall(m)
    const slat = emptySlat(l)
    const first = allocHuge(m, l.H)
    const second = allocHuge(m, l.H)
    expect(second).toBe(first + l.HP)
    // Shifted by one: page 0 of the leaf is the first folio's page 1 (offset 1 at gfn offset 0).
    const shifted = first + 1
    hugeLeaves(slat, 0, shifted)
    expect(mappingWithinFolio(l).check({ slat, ...m })).toBe(
      `gfn ${hex(l.startGfn)} is mapped by an order-${l.H} leaf but pfn ${hex(shifted)} is at the wrong offset of its folio`,
    )
  })
})

describe('mapping-within-folio with folios of other orders (a 1G folio, an mTHP)', () => {
  const l = layout(2, 8, 0, 0)
  const hugeLeaves = (slat: Leaf[], at: number, base: number) => {
    for (let k = 0; k < l.HP; k++) slat[at + k] = { pfn: base + k, order: l.H, access: ACCESS_RW }
  }

  it('holds for 2M leaves over the 2M-aligned parts of one 1G folio (0eaed89c processes a 1G folio as 2M chunks)', () => {
    const m = memory(64)
    const slat = emptySlat(l)
    const head = allocFolio(m, 2 * l.H, l.H)
    hugeLeaves(slat, 0, head + l.HP)
    hugeLeaves(slat, l.HP, head + 2 * l.HP)
    expect(mappingWithinFolio(l).check({ slat, ...m })).toBeNull()
  })

  it('fails for a 2M leaf past the end of a 1G folio, and for one over an mTHP', () => {
    const m = memory(64)
    const slat = emptySlat(l)
    const head = allocFolio(m, 2 * l.H, l.H)
    allocFolio(m, 2 * l.H, l.H)
    // The last 2M of the 1G folio, shifted by one: its last page is the next folio's.
    hugeLeaves(slat, 0, head + 3 * l.HP + 1)
    expect(mappingWithinFolio(l).check({ slat, ...m })).toBe(`gfn ${hex(l.startGfn)} is mapped by an order-${l.H} leaf but pfn ${hex(head + 3 * l.HP + 1)} is at the wrong offset of its folio`)
    const mthp = allocFolio(m, 1, l.H)
    hugeLeaves(slat, 0, mthp)
    expect(mappingWithinFolio(l).check({ slat, ...m })).toBe(`gfn ${hex(l.startGfn)} is mapped by an order-${l.H} leaf but pfn ${hex(mthp)} is in an order-1 folio`)
  })
})

describe('huge-mapping-aligned', () => {
  it('holds for aligned huge leaves, order-0 leaves anywhere, and no leaves', () => {
    const l = layout(2, 8, 0, 0)
    const slat = emptySlat(l)
    expect(hugeMappingAligned(l).check({ slat })).toBeNull()
    const head = 5 * l.HP
    for (let k = 0; k < l.HP; k++) slat[l.HP + k] = { pfn: head + k, order: l.H, access: ACCESS_RW }
    slat[1] = { pfn: 0x33, order: 0, access: ACCESS_RW }
    expect(hugeMappingAligned(l).check({ slat })).toBeNull()
  })

  it('fails for a huge leaf whose pfn is not aligned with its gfn, naming the leaf gfn and pfn', () => {
    const l = layout(2, 8, 0, 0)
    const slat = emptySlat(l)
    const pfn0 = 5 * l.HP + 1 // the pfn at the leaf's first gfn: one page off
    const at = l.HP
    for (let k = 0; k < l.HP; k++) slat[at + k] = { pfn: pfn0 + k, order: l.H, access: ACCESS_RW }
    expect(hugeMappingAligned(l).check({ slat })).toBe(
      `the order-${l.H} leaf at gfn ${hex(l.startGfn + at)} maps pfn ${hex(pfn0)}, not aligned to ${l.HP} pages`,
    )
  })

  it('a no-access huge leaf carries no pfn (the driver sends 0): only its gfn range is checked', () => {
    const l = layout(2, 8, 0, 0)
    const slat = emptySlat(l)
    for (let k = 0; k < l.HP; k++) slat[k] = { pfn: 0, order: l.H, access: ACCESS_NO_ACCESS }
    expect(hugeMappingAligned(l).check({ slat })).toBeNull()
    const shifted = layout(2, 8, 1, 0)
    const bad = emptySlat(shifted)
    bad[0] = { pfn: 0, order: shifted.H, access: ACCESS_NO_ACCESS }
    expect(hugeMappingAligned(shifted).check({ slat: bad })).toMatch(/^the order-2 leaf at gfn 0x4 maps pfn/)
  })

  it('fails for a huge leaf that would start before the region (start_gfn not aligned)', () => {
    const g = 1
    const l = layout(2, 8, g, 0)
    const slat = emptySlat(l)
    // Region page 0 is at gfn offset g: an order-H leaf there starts g pages before the region.
    const head = 6 * l.HP
    slat[0] = { pfn: head + g, order: l.H, access: ACCESS_RW }
    expect(hugeMappingAligned(l).check({ slat })).toBe(
      `the order-${l.H} leaf at gfn ${hex(l.startGfn - g)} maps pfn ${hex(head)}, not aligned to ${l.HP} pages`,
    )
  })

  it('fails for a huge leaf that would run past the region end', () => {
    const l = layout(2, 6, 0, 0) // one whole huge page, then half of one
    const slat = emptySlat(l)
    const head = 6 * l.HP
    slat[l.HP] = { pfn: head, order: l.H, access: ACCESS_RW }
    expect(hugeMappingAligned(l).check({ slat })).toMatch(new RegExp(`^the order-${l.H} leaf at gfn ${esc(hex(l.startGfn + l.HP))} maps pfn ${esc(hex(head))}`))
  })
})

describe('map-hypercall-succeeds', () => {
  it('holds when no fault-path map failed; names the thread (tid = ghost - 1) otherwise', () => {
    const inv = mapHypercallSucceeds()
    expect(inv.check({ faultMapFailed: 0 })).toBeNull()
    for (const tid of [0, 3]) {
      expect(inv.check({ faultMapFailed: tid + 1 })).toBe(`HVCALL_MAP_GPA_PAGES failed in thread ${tid}'s fault path: GPA intercept failed (WARN_ONCE)`)
    }
    const named = mapHypercallSucceeds((tid) => ['vp0', 'vp1'][tid])
    expect(named.check({ faultMapFailed: 2 })).toMatch(/^HVCALL_MAP_GPA_PAGES failed in vp1's fault path/)
  })
})

describe('no-region-use-after-free', () => {
  const region = (state: number): Region => ({
    regionKind: REGION_MOVABLE,
    regionState: state,
    regionRefs: 0,
    largePages: 0,
    pages: [0, 0],
    regionUseAfterFree: 0,
  })

  it('holds while the region is listed or only unlinked, even when used', () => {
    for (const state of [REGION_LISTED, REGION_UNLINKED]) {
      const r = region(state)
      useRegion(r, 2)
      expect(r.regionUseAfterFree).toBe(0)
      expect(noRegionUseAfterFree().check(r)).toBeNull()
    }
  })

  it('fails after a use of a freed region, naming the first thread that used it', () => {
    const r = region(REGION_FREED)
    expect(noRegionUseAfterFree().check(r)).toBeNull()
    useRegion(r, 4)
    useRegion(r, 1)
    expect(r.regionUseAfterFree).toBe(4 + 1)
    expect(noRegionUseAfterFree().check(r)).toBe('thread 4 used the region after vfree()')
    // tid 0 is recorded as 1, not lost as "none".
    const r0 = region(REGION_FREED)
    useRegion(r0, 0)
    expect(noRegionUseAfterFree().check(r0)).toBe('thread 0 used the region after vfree()')
  })
})

describe('no-sleep-in-atomic', () => {
  const locks = new Locks([
    { name: 'spin', kind: 'spinlock' },
    { name: 'mutex', kind: 'mutex' },
  ])
  const world = (): LockWorld => ({ lockOwner: [0, 0], lockReaders: [0, 0], lockWaiters: [0, 0], sleptInAtomic: 0, sleptWhy: 0, lockOrder: [0, 0] })

  it('holds for a mutex taken outside atomic context', () => {
    const w = world()
    locks.lock(w, { tid: 2, held: 0, atomic: 0 }, 1)
    expect(noSleepInAtomic().check(w)).toBeNull()
  })

  it('fails for a mutex taken under a spinlock, naming the thread, the lock and the spinlock', () => {
    const w = world()
    const t = { tid: 2, held: 0, atomic: 0 }
    locks.lock(w, t, 0)
    locks.lock(w, t, 1)
    expect(noSleepInAtomic().check(w)).toBe(`thread ${t.tid} may sleep in atomic context: mutex_lock(&mutex) while holding spin_lock(&spin)`)
  })

  it('fails for a blocking step in a non-blockable callback, thread 0 included', () => {
    const w = world()
    const t = { tid: 0, held: 0, atomic: 0 }
    locks.enterNonblock(t)
    locks.mightSleep(w, t, 'msleep()')
    expect(noSleepInAtomic().check(w)).toBe('thread 0 may sleep in atomic context: msleep() in a non-blockable invalidation')
  })

  it('a world whose ghost has no reason (written by hand) still names the thread', () => {
    expect(noSleepInAtomic().check({ ...world(), sleptInAtomic: 4 })).toBe('thread 3 may sleep in atomic context')
  })
})

describe('the invariants read byte views as well as arrays', () => {
  it('no-stale-mapping and no-freed-page-mapped on Int16Array cells', () => {
    const l = layout(1, 2, 0, 0)
    const m: Memory = { frame: new Int16Array(16), nextPfn: 0 }
    initMemory(m)
    const p = allocSmall(m)
    const slat: Leaf[] = [
      { pfn: p, order: 0, access: ACCESS_RW },
      { pfn: 0, order: 0, access: ACCESS_NONE },
    ]
    const w = { slat, pte: Int16Array.of(p, 0), pmd: new Int16Array(l.blocks), invalPending: new Int16Array(l.N), ...m }
    expect(noStaleMapping(l).check(w)).toBeNull()
    expect(noFreedPageMapped(l).check(w)).toBeNull()
    w.pte[0] = 0
    expect(noStaleMapping(l).check(w)).toMatch(/the host maps nothing/)
    freeFolio(m, p, l.H)
    expect(noFreedPageMapped(l).check(w)).toMatch(new RegExp(`pfn ${esc(hex(p))}, which the host has freed`))
  })
})
