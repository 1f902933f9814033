import { describe, expect, it } from 'vitest'
import { inProgressBalanced } from '../../../invariants/kvm-invariants.js'
import {
  INVALID_GPA,
  isPageFaultStale,
  kvmInvalidationInit,
  memslotSwapMayProceed,
  mmuInvalidateBegin,
  mmuInvalidateEnd,
  mmuInvalidateRangeAdd,
  mmuInvalidateRetryGfn,
  mmuInvalidateRetrySeqOnly,
  mnActiveInvalidateDec,
  mnActiveInvalidateInc,
  type KvmInvalidation,
} from '../../../model/kvm/invalidation.js'

const fresh = (): KvmInvalidation & { invalidating: number } => {
  const k = { mmuInvalidateSeq: 7, mmuInvalidateInProgress: 3, mmuInvalidateRangeStart: 0, mmuInvalidateRangeEnd: 0, mnActiveInvalidateCount: 2, invalidating: 0 }
  kvmInvalidationInit(k)
  return k
}

describe('KVM invalidation bookkeeping (kvm_main.c)', () => {
  it('begin resets the range only for the first invalidation; range_add takes the union of concurrent ones', () => {
    const k = fresh()
    expect([k.mmuInvalidateSeq, k.mmuInvalidateInProgress, k.mmuInvalidateRangeStart]).toEqual([0, 0, INVALID_GPA])
    mmuInvalidateBegin(k)
    mmuInvalidateRangeAdd(k, 4, 6)
    mmuInvalidateBegin(k)
    expect([k.mmuInvalidateRangeStart, k.mmuInvalidateRangeEnd]).toEqual([4, 6])
    mmuInvalidateRangeAdd(k, 10, 12)
    expect([k.mmuInvalidateRangeStart, k.mmuInvalidateRangeEnd]).toEqual([4, 12])
    // The union persists until every invalidation has ended.
    mmuInvalidateEnd(k)
    expect([k.mmuInvalidateSeq, k.mmuInvalidateInProgress, k.mmuInvalidateRangeStart, k.mmuInvalidateRangeEnd]).toEqual([1, 1, 4, 12])
    mmuInvalidateEnd(k)
    expect([k.mmuInvalidateSeq, k.mmuInvalidateInProgress]).toEqual([2, 0])
  })

  it('mmu_invalidate_retry_gfn is range-precise while in progress, and retries on any seq change', () => {
    const k = fresh()
    mmuInvalidateBegin(k)
    expect(mmuInvalidateRetryGfn(k, 0, 5)).toBe(true) // range still INVALID_GPA: WARN and retry
    mmuInvalidateRangeAdd(k, 4, 6)
    expect(mmuInvalidateRetryGfn(k, 0, 4)).toBe(true)
    expect(mmuInvalidateRetryGfn(k, 0, 5)).toBe(true)
    expect(mmuInvalidateRetryGfn(k, 0, 6)).toBe(false) // [start, end): end excluded
    expect(mmuInvalidateRetryGfn(k, 0, 3)).toBe(false)
    mmuInvalidateEnd(k)
    expect(mmuInvalidateRetryGfn(k, 0, 9)).toBe(true) // the sequence moved
    expect(mmuInvalidateRetryGfn(k, 1, 9)).toBe(false)
    expect(isPageFaultStale(k, 0, 9)).toBe(true)
    expect(isPageFaultStale(k, 0, 9, false)).toBe(false) // no memslot: nothing to be stale
  })

  it('a seq-only retry misses a fault inside an invalidation in progress (the no-in-progress-check rule, broken)', () => {
    const k = fresh()
    mmuInvalidateBegin(k)
    mmuInvalidateRangeAdd(k, 4, 6)
    expect(mmuInvalidateRetryGfn(k, 0, 4)).toBe(true)
    expect(mmuInvalidateRetrySeqOnly(k, 0, 4)).toBe(false)
  })

  it('overwriting the range instead of the union loses the first memslot (the range-overwrite rule, broken)', () => {
    const union = fresh()
    const last = fresh()
    for (const k of [union, last]) mmuInvalidateBegin(k)
    mmuInvalidateRangeAdd(union, 2, 4)
    mmuInvalidateRangeAdd(union, 4, 6)
    last.mmuInvalidateRangeStart = 4
    last.mmuInvalidateRangeEnd = 6
    expect(mmuInvalidateRetryGfn(union, 0, 2)).toBe(true)
    expect(mmuInvalidateRetryGfn(last, 0, 2)).toBe(false)
  })

  it('in-progress-balanced holds when balanced and catches an end without a begin (in_progress -1) and a leaked mn_active_invalidate_count', () => {
    const inv = inProgressBalanced()
    const k = fresh()
    expect(inv.check(k)).toBeNull()
    k.invalidating = 1
    mnActiveInvalidateInc(k)
    mmuInvalidateBegin(k)
    expect(memslotSwapMayProceed(k)).toBe(false)
    expect(inv.check(k)).toBeNull()
    mmuInvalidateEnd(k)
    expect(mnActiveInvalidateDec(k)).toBe(true) // wake the memslot swap
    k.invalidating = 0
    expect(inv.check(k)).toBeNull()
    mmuInvalidateEnd(k) // unbalanced
    expect(inv.check(k)).toBe('mmu_invalidate_in_progress is -1')
    const leak = fresh()
    mnActiveInvalidateInc(leak)
    expect(inv.check(leak)).toBe('no invalidation runs but mn_active_invalidate_count is 1')
    // The decrement WARNs rather than going below zero.
    const z = fresh()
    expect(mnActiveInvalidateDec(z)).toBe(true)
    expect(z.mnActiveInvalidateCount).toBe(0)
  })
})
