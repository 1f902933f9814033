import { describe, expect, it } from 'vitest'
import { inProgressBalanced } from '../../../invariants/kvm-invariants.js'
import { kvmInvalidationInit, memslotSwapMayProceed, mmuInvalidateBegin, mmuInvalidateEnd, mnActiveInvalidateDec, mnActiveInvalidateInc, type KvmInvalidation } from '../../../model/kvm/invalidation.js'
import {
  activeMemslots,
  MEMSLOT_INVALID,
  MEMSLOT_NONE,
  MEMSLOT_VALID,
  memslotsInit,
  srcuGracePeriodOver,
  srcuReadLock,
  srcuReadUnlock,
  swapActiveMemslots,
  vcpuGfnToMemslot,
  type MemslotWorld,
} from '../../../model/kvm/memslot-update.js'
import { hvaRangeToGfnRanges, type Memslot } from '../../../model/kvm/memslots.js'

const SLOTS: Memslot[] = [
  { id: 0, baseGfn: 2, npages: 2, userspaceAddr: 2 },
  { id: 1, baseGfn: 4, npages: 2, userspaceAddr: 4 },
]

const world = (): MemslotWorld & KvmInvalidation & { invalidating: number } => {
  const w = { memslotState: [0, 0], memslotsGen: 0, srcuReader: [0, 0], mmuInvalidateSeq: 0, mmuInvalidateInProgress: 0, mmuInvalidateRangeStart: 0, mmuInvalidateRangeEnd: 0, mnActiveInvalidateCount: 0, invalidating: 0 }
  memslotsInit(w, [0, 1])
  kvmInvalidationInit(w)
  return w
}

/** kvm_mmu_notifier_invalidate_range_start / _end over hvas [lo, hi): on_lock only when kvm_handle_hva_range finds a memslot. */
const rangeStart = (w: ReturnType<typeof world>, lo: number, hi: number) => {
  mnActiveInvalidateInc(w)
  w.invalidating++
  if (hvaRangeToGfnRanges(activeMemslots(SLOTS, w), lo, hi).length > 0) mmuInvalidateBegin(w)
}
const rangeEnd = (w: ReturnType<typeof world>, lo: number, hi: number) => {
  if (hvaRangeToGfnRanges(activeMemslots(SLOTS, w), lo, hi).length > 0) mmuInvalidateEnd(w)
  mnActiveInvalidateDec(w)
  w.invalidating--
}

describe('memslot updates (kvm_set_memslot, kvm_swap_active_memslots)', () => {
  it('the active array: an INVALID copy is still walked by the notifier and found by a fault; a deleted slot is neither', () => {
    const w = world()
    expect(vcpuGfnToMemslot(SLOTS, w, 5)?.id).toBe(1)
    swapActiveMemslots(w, 1, MEMSLOT_INVALID)
    expect(w.memslotsGen).toBe(1)
    expect(activeMemslots(SLOTS, w).map((s) => s.id)).toEqual([0, 1])
    expect(vcpuGfnToMemslot(SLOTS, w, 5)?.id).toBe(1)
    swapActiveMemslots(w, 1, MEMSLOT_NONE)
    expect(activeMemslots(SLOTS, w).map((s) => s.id)).toEqual([0])
    expect(vcpuGfnToMemslot(SLOTS, w, 5)).toBeUndefined()
    swapActiveMemslots(w, 1, MEMSLOT_VALID)
    expect(vcpuGfnToMemslot(SLOTS, w, 5)?.id).toBe(1)
  })

  it('synchronize_srcu waits for readers that entered before the swap, not for later ones', () => {
    const w = world()
    srcuReadLock(w, 0)
    expect(srcuGracePeriodOver(w)).toBe(true) // no swap since it entered
    swapActiveMemslots(w, 1, MEMSLOT_INVALID)
    expect(srcuGracePeriodOver(w)).toBe(false) // vCPU 0 may still use the old slot
    srcuReadLock(w, 1)
    srcuReadUnlock(w, 0)
    expect(srcuGracePeriodOver(w)).toBe(true) // vCPU 1 entered after the swap: it sees the INVALID copy
  })

  it('waiting for mn_active_invalidate_count keeps range_start and range_end balanced across a deletion', () => {
    const w = world()
    rangeStart(w, 4, 6)
    expect(memslotSwapMayProceed(w)).toBe(false) // the rcuwait: the swap must wait
    rangeEnd(w, 4, 6)
    expect(memslotSwapMayProceed(w)).toBe(true)
    swapActiveMemslots(w, 1, MEMSLOT_NONE)
    expect(inProgressBalanced().check(w)).toBeNull()
  })

  it('a swap between range_start and range_end unbalances mmu_invalidate_in_progress both ways (the wait dropped, broken)', () => {
    const inv = inProgressBalanced()
    // Deletion: start found slot 1 (begin), end finds nothing (no end): left raised.
    const del = world()
    rangeStart(del, 4, 6)
    swapActiveMemslots(del, 1, MEMSLOT_NONE)
    rangeEnd(del, 4, 6)
    expect(del.mmuInvalidateInProgress).toBe(1)
    expect(inv.check(del)).toBe('mmu_invalidate_in_progress is 1 with 0 invalidations between range_start and range_end')
    // Creation: start found nothing, end finds the new slot: below zero.
    const add = world()
    swapActiveMemslots(add, 1, MEMSLOT_NONE)
    rangeStart(add, 4, 6)
    swapActiveMemslots(add, 1, MEMSLOT_VALID)
    rangeEnd(add, 4, 6)
    expect(inv.check(add)).toBe('mmu_invalidate_in_progress is -1')
  })
})
