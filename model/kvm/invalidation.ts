/**
 * KVM's mmu_notifier invalidation bookkeeping as virt/kvm/kvm_main.c and
 * include/linux/kvm_host.h have it (since the gfn-range rework of 6.8, with
 * the range union of kvm_mmu_invalidate_range_add):
 *
 * - `mmuInvalidateSeq` (kvm->mmu_invalidate_seq): bumped by
 *   kvm_mmu_invalidate_end, before in_progress drops;
 * - `mmuInvalidateInProgress` (kvm->mmu_invalidate_in_progress, a `long`):
 *   invalidations between their begin and end; a signed field, so that an
 *   underflow is a value (-1) that `in-progress-balanced` reports, rather
 *   than the built-in `field-in-range` (which fires only below -128);
 * - `mmuInvalidateRangeStart/End` (kvm->mmu_invalidate_range_start/_end):
 *   the union of the gfn ranges of the invalidations in progress, reset
 *   to INVALID_GPA by the first begin;
 * - `mnActiveInvalidateCount` (kvm->mn_active_invalidate_count, under
 *   mn_invalidate_lock): notifier invalidations between range_start and
 *   range_end; kvm_swap_active_memslots waits for it to be 0.
 *
 * Every function is one kernel function; the caller holds what the kernel
 * asserts (mmu_lock for write for begin/range_add/end).
 */
import { i8, u8 } from '../schema.js'

/** INVALID_GPA, scaled down: no gfn of a model reaches it. */
export const INVALID_GPA = 255

export const kvmInvalidationFields = () => ({
  mmuInvalidateSeq: u8(),
  mmuInvalidateInProgress: i8(),
  mmuInvalidateRangeStart: u8(),
  mmuInvalidateRangeEnd: u8(),
  mnActiveInvalidateCount: u8(),
})

export interface KvmInvalidation {
  mmuInvalidateSeq: number
  mmuInvalidateInProgress: number
  mmuInvalidateRangeStart: number
  mmuInvalidateRangeEnd: number
  mnActiveInvalidateCount: number
}

/** kvm_create_vm / kvm_init_mmu_notifier: nothing in progress, no range. */
export function kvmInvalidationInit(k: KvmInvalidation): void {
  k.mmuInvalidateSeq = 0
  k.mmuInvalidateInProgress = 0
  k.mmuInvalidateRangeStart = INVALID_GPA
  k.mmuInvalidateRangeEnd = INVALID_GPA
  k.mnActiveInvalidateCount = 0
}

/** kvm_mmu_invalidate_begin (kvm_main.c): in_progress++; the first one resets the range to INVALID_GPA. */
export function mmuInvalidateBegin(k: KvmInvalidation): void {
  k.mmuInvalidateInProgress++
  if (k.mmuInvalidateInProgress === 1) {
    k.mmuInvalidateRangeStart = INVALID_GPA
    k.mmuInvalidateRangeEnd = INVALID_GPA
  }
}

/**
 * kvm_mmu_invalidate_range_add (kvm_main.c): the first range is taken as is;
 * later ones (concurrent invalidations, or several memslots of one) widen it
 * to the smallest range holding both, which persists until every
 * outstanding invalidation has ended.
 */
export function mmuInvalidateRangeAdd(k: KvmInvalidation, start: number, end: number): void {
  if (k.mmuInvalidateRangeStart === INVALID_GPA) {
    k.mmuInvalidateRangeStart = start
    k.mmuInvalidateRangeEnd = end
  } else {
    k.mmuInvalidateRangeStart = Math.min(k.mmuInvalidateRangeStart, start)
    k.mmuInvalidateRangeEnd = Math.max(k.mmuInvalidateRangeEnd, end)
  }
}

/** kvm_mmu_invalidate_end (kvm_main.c): seq++, smp_wmb(), in_progress-- (KVM_BUG_ON below 0: the model lets it show). */
export function mmuInvalidateEnd(k: KvmInvalidation): void {
  k.mmuInvalidateSeq++
  k.mmuInvalidateInProgress--
}

/** kvm_mmu_notifier_invalidate_range_start's `kvm->mn_active_invalidate_count++` under mn_invalidate_lock. */
export function mnActiveInvalidateInc(k: KvmInvalidation): void {
  k.mnActiveInvalidateCount++
}

/**
 * kvm_mmu_notifier_invalidate_range_end's decrement under mn_invalidate_lock
 * (`if (!WARN_ON_ONCE(!kvm->mn_active_invalidate_count)) --count`); returns
 * `wake`: the count reached 0, so rcuwait_wake_up wakes a memslot swap.
 */
export function mnActiveInvalidateDec(k: KvmInvalidation): boolean {
  if (k.mnActiveInvalidateCount > 0) k.mnActiveInvalidateCount--
  return k.mnActiveInvalidateCount === 0
}

/** kvm_swap_active_memslots' rcuwait condition: no notifier invalidation between range_start and range_end. */
export const memslotSwapMayProceed = (k: KvmInvalidation): boolean => k.mnActiveInvalidateCount === 0

/**
 * mmu_invalidate_retry_gfn (kvm_host.h), called under mmu_lock: retry if an
 * invalidation is in progress and gfn is in [range_start, range_end) (or the
 * range is still INVALID_GPA: WARN_ON_ONCE and retry), or if the sequence
 * moved since `mmuSeq` was read. Range-precise: a fault outside the range
 * goes on while others are invalidated.
 */
export function mmuInvalidateRetryGfn(k: KvmInvalidation, mmuSeq: number, gfn: number): boolean {
  if (k.mmuInvalidateInProgress !== 0) {
    if (k.mmuInvalidateRangeStart === INVALID_GPA) return true
    if (gfn >= k.mmuInvalidateRangeStart && gfn < k.mmuInvalidateRangeEnd) return true
  }
  return k.mmuInvalidateSeq !== mmuSeq
}

/** mmu_invalidate_retry_gfn_unsafe (kvm_host.h): the same test without mmu_lock, as kvm_mmu_faultin_pfn makes it before and after getting the pfn. */
export const mmuInvalidateRetryGfnUnsafe = mmuInvalidateRetryGfn

/**
 * The test of a variant that retries only on a sequence change, not while an
 * invalidation is in progress (mmu_invalidate_retry before range tracking,
 * without its in_progress test).
 */
export const mmuInvalidateRetrySeqOnly = (k: KvmInvalidation, mmuSeq: number, _gfn: number): boolean => k.mmuInvalidateSeq !== mmuSeq

/** How a fault path asks "retry?": mmu_invalidate_retry_gfn or a replacement. */
export type RetryGfn = (k: KvmInvalidation, mmuSeq: number, gfn: number) => boolean

/**
 * is_page_fault_stale (arch/x86/kvm/mmu/mmu.c), its notifier half (an
 * obsolete root is not modelled): under mmu_lock, `fault->slot &&
 * mmu_invalidate_retry_gfn(kvm, fault->mmu_seq, fault->gfn)`.
 */
export function isPageFaultStale(k: KvmInvalidation, mmuSeq: number, gfn: number, hasSlot = true, retry: RetryGfn = mmuInvalidateRetryGfn): boolean {
  return hasSlot && retry(k, mmuSeq, gfn)
}
