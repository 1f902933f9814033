import { describe, expect, it } from 'vitest'
import { kvmMappingWithinFolio, kvmNoFreedPageMapped, kvmNoStaleMapping } from '../../../invariants/kvm-invariants.js'
import { noSleepInAtomic } from '../../../invariants/slat-invariants.js'
import { gfnToHva, gfnToMemslot, hvaRangeToGfnRanges, lpageAllowed, memslotsOver } from '../../../model/kvm/memslots.js'
import { MmuLock } from '../../../model/kvm/mmu-lock.js'
import { faultinChoices, hostPfnMappingLevel, hvaToPfn, kvmMmuHugepageAdjust, kvmTdpMmuMap, kvmUnmapGfnRange, PG_LEVEL_2M, PG_LEVEL_4K } from '../../../model/kvm/tdp-fault.js'
import { freeFolio, initMemory } from '../../../model/primitives/folio.js'
import { layout } from '../../../model/primitives/layout.js'
import { lockFields, Locks } from '../../../model/primitives/locks.js'
import { zero, struct, type ValueOf } from '../../../model/schema.js'

const l = layout(1, 4, 0, 0) // gfn 2..5 at hva 2..5, huge = 2 pages
const world = () => {
  const w = {
    frame: Array(32).fill(0),
    nextPfn: 0,
    pte: Array(l.N).fill(0),
    pmd: Array(l.blocks).fill(0),
    spte: Array(l.N).fill(0),
    spteLevel: Array(l.N).fill(0),
  }
  initMemory(w)
  return w
}

describe('x86 TDP fault helpers', () => {
  it('hva_to_pfn faults in a THP (PMD-mapped) or a page; host_pfn_mapping_level reads the PMD', () => {
    const w = world()
    expect(faultinChoices(l, w, 1)).toBe(2)
    const pfn = hvaToPfn(l, w, w, 1, 1)
    expect([pfn, w.pmd[0], w.pte[0]]).toEqual([3, 1, 2])
    expect(hostPfnMappingLevel(l, w, 1)).toBe(PG_LEVEL_2M)
    expect(faultinChoices(l, w, 1)).toBe(1)
    // A PTE-mapped THP (after __split_huge_pmd) gives 4K.
    w.pmd[0] = 0
    expect(hostPfnMappingLevel(l, w, 1)).toBe(PG_LEVEL_4K)
  })

  it('kvm_mmu_hugepage_adjust maps 2M only where the slot and the host allow it, pfn aligned down', () => {
    const w = world()
    const pfn = hvaToPfn(l, w, w, 1, 1)
    const one = memslotsOver(l, 1)
    expect(kvmMmuHugepageAdjust(l, one, w, w, 1, pfn)).toEqual({ level: PG_LEVEL_2M, pfn: 2 })
    // A memslot boundary inside the block: lpage_info disallows the huge level.
    const split = [{ id: 0, baseGfn: 2, npages: 1, userspaceAddr: 2 }, { id: 1, baseGfn: 3, npages: 3, userspaceAddr: 3 }]
    expect(kvmMmuHugepageAdjust(l, split, w, w, 1, pfn)).toEqual({ level: PG_LEVEL_4K, pfn: 3 })
    w.pmd[0] = 0
    expect(kvmMmuHugepageAdjust(l, one, w, w, 1, pfn)).toEqual({ level: PG_LEVEL_4K, pfn: 3 })
  })

  it('a 2M leaf over a PTE-mapped THP is caught by mapping-within-folio; the PMD-mapped one holds', () => {
    const w = world()
    hvaToPfn(l, w, w, 0, 1)
    expect(kvmTdpMmuMap(l, w, 0, PG_LEVEL_2M, 2)).toBe(true)
    expect(w.spte.slice(0, 2)).toEqual([2, 3])
    expect(kvmTdpMmuMap(l, w, 1, PG_LEVEL_4K, 3)).toBe(false) // RET_PF_SPURIOUS
    const inv = kvmMappingWithinFolio(l)
    expect(inv.check(w)).toBeNull()
    w.pmd[0] = 0
    expect(inv.check(w)).toBe('gfn 0x2 is mapped by a 2M SPTE but the host maps hva 0x2 with PTEs (host mapping level 4K)')
  })

  it('kvm_unmap_gfn_range zaps a huge leaf whole when the range touches one page of it', () => {
    const w = world()
    hvaToPfn(l, w, w, 0, 1)
    kvmTdpMmuMap(l, w, 0, PG_LEVEL_2M, 2)
    expect(kvmUnmapGfnRange(l, w, 1, 2)).toBe(true)
    expect(w.spte).toEqual([0, 0, 0, 0])
    expect(kvmUnmapGfnRange(l, w, 0, 4)).toBe(false)
  })

  it('no-stale-mapping and no-freed-page-mapped catch an SPTE the host took away and freed', () => {
    const w = world()
    const pfn = hvaToPfn(l, w, w, 2, 0)
    kvmTdpMmuMap(l, w, 2, PG_LEVEL_4K, pfn)
    expect(kvmNoStaleMapping(l).check(w)).toBeNull()
    expect(kvmNoFreedPageMapped(l).check(w)).toBeNull()
    w.pte[2] = 0
    expect(kvmNoStaleMapping(l).check(w)).toBe(`gfn 0x4 maps pfn 0x${pfn.toString(16)} but the host maps nothing at hva 0x4`)
    freeFolio(w, pfn, l.H)
    expect(kvmNoFreedPageMapped(l).check(w)).toBe(`gfn 0x4 maps pfn 0x${pfn.toString(16)}, which the host has freed`)
  })
})

describe('memslots', () => {
  it('a hva range over two slots gives one gfn range per slot; lpage_info needs the block inside one slot and gfn/hva congruent', () => {
    const slots = memslotsOver(l, 2)
    expect(slots.map((s) => [s.baseGfn, s.npages])).toEqual([[2, 2], [4, 2]])
    expect(hvaRangeToGfnRanges(slots, 3, 5).map((r) => [r.slot.id, r.start, r.end])).toEqual([[0, 3, 4], [1, 4, 5]])
    expect(gfnToHva(gfnToMemslot(slots, 5)!, 5)).toBe(5)
    expect(lpageAllowed(slots, 1, 2)).toBe(true)
    expect(lpageAllowed([{ id: 0, baseGfn: 2, npages: 4, userspaceAddr: 3 }], 1, 2)).toBe(false)
    expect(lpageAllowed(slots, 1, 9)).toBe(false)
  })
})

describe('mmu_lock (a spinning rwlock)', () => {
  const locks = new Locks([{ name: 'kvm->mmu_lock', kind: 'spinlock' }])
  const mmu = new MmuLock(locks, 0)
  const w = () => zero(struct(lockFields(locks.decls))) as ValueOf<ReturnType<typeof lockFields>>
  const holder = (tid: number) => ({ tid, held: 0, atomic: 0 })

  it('readers share it, a writer excludes them, and both are atomic', () => {
    const s = w()
    const a = holder(0)
    const b = holder(1)
    mmu.readLock(s, a)
    expect(mmu.readable(s)).toBe(true)
    expect(mmu.writable(s)).toBe(false)
    mmu.readLock(s, b)
    expect([s.lockReaders[0], a.atomic, mmu.holds(b)]).toEqual([2, 1, true])
    mmu.readUnlock(s, a)
    mmu.readUnlock(s, b)
    expect(mmu.writable(s)).toBe(true)
    locks.lock(s, a, 0)
    expect([mmu.readable(s), a.atomic]).toEqual([false, 1])
  })

  it('sleeping under read_lock is caught by no-sleep-in-atomic; outside it is fine', () => {
    const s = w()
    const a = holder(0)
    locks.mightSleep(s, a, 'kvm_faultin_pfn (hva_to_pfn: get_user_pages)')
    expect(noSleepInAtomic().check(s)).toBeNull()
    mmu.readLock(s, a)
    locks.mightSleep(s, a, 'kvm_faultin_pfn (hva_to_pfn: get_user_pages)')
    expect(noSleepInAtomic().check(s)).toBe('thread 0 may sleep in atomic context: kvm_faultin_pfn (hva_to_pfn: get_user_pages) while holding spin_lock(&kvm->mmu_lock)')
  })

  it('refuses a lock that is not declared a spinlock', () => {
    expect(() => new MmuLock(new Locks([{ name: 'm', kind: 'mutex' }]), 0)).toThrow(/spinlock/)
  })
})
