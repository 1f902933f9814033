/**
 * mmu_interval_notifier, as mm/mmu_notifier.c implements it, for one mm and
 * one interval (the region's):
 * - `mmSeq` is subscriptions->invalidate_seq: even when idle; odd while any
 *   invalidation overlapping an interval is in progress (mn_itree_inv_start_range
 *   sets bit 0); back to even (+1) only when the last concurrent
 *   invalidation on the mm ends (mn_itree_inv_end, active_invalidate_ranges = 0);
 * - `mniSeq` is interval_sub->invalidate_seq, set by the driver's callback with
 *   mmu_interval_set_seq(mni, cur_seq); it starts odd and unequal to mmSeq
 *   (__mmu_interval_notifier_insert: invalidate_seq - 1);
 * - mmu_interval_read_begin() returns mniSeq, sleeping first while
 *   mniSeq == mmSeq (an invalidation that has called set_seq is still running);
 * - mmu_interval_read_retry(mni, seq) is mniSeq != seq; hmm_range_fault()
 *   returns -EBUSY on the same test (mmu_interval_check_retry).
 */
import { ModelError } from '../../explorer/errors.js'
import { u8 } from '../schema.js'

export const notifierFields = () => ({
  mmSeq: u8(),
  activeRanges: u8(),
  mniSeq: u8(),
  /** The interval is in the mm's interval tree (mmu_interval_notifier_insert/remove). */
  mniInserted: u8(1),
})

export interface Notifier {
  mmSeq: number
  activeRanges: number
  mniSeq: number
  mniInserted: number
}

/** mmu_interval_notifier_insert() on an idle mm (an insert during an invalidation is deferred in the kernel: not modelled). */
export function notifierInsert(n: Notifier): void {
  if (n.activeRanges !== 0) throw new ModelError('notifierInsert: only modelled on an idle mm')
  if (n.mmSeq === 0) n.mmSeq = 2
  n.mniSeq = n.mmSeq - 1
  n.mniInserted = 1
}

/**
 * mn_itree_inv_start_range(): returns cur_seq if the range overlaps the
 * interval (whose callback must then run), else 0.
 */
export function invalidateRangeStart(n: Notifier, overlaps: boolean): number {
  n.activeRanges++
  if (!overlaps || !n.mniInserted) return 0
  n.mmSeq |= 1
  return n.mmSeq
}

/** mn_itree_inv_end(): the last concurrent invalidation makes the seq even again and wakes read_begin sleepers. */
export function invalidateRangeEnd(n: Notifier): void {
  n.activeRanges--
  if (n.activeRanges === 0 && (n.mmSeq & 1) === 1) n.mmSeq++
}

/** mmu_interval_set_seq(), called by the driver's callback under its lock. */
export function setSeq(n: Notifier, curSeq: number): void {
  n.mniSeq = curSeq
}

/** Would mmu_interval_read_begin() sleep now? */
export const readBeginMustWait = (n: Notifier): boolean => n.mniSeq === n.mmSeq

/** mmu_interval_read_retry() / mmu_interval_check_retry(). */
export const readRetry = (n: Notifier, seq: number): boolean => n.mniSeq !== seq
