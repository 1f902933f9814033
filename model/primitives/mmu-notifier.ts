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
 *   returns -EBUSY on the same test (mmu_interval_check_retry);
 * - an insert while the mm is invalidating (__mmu_interval_notifier_insert)
 *   makes read_begin wait for the end of that invalidation; an insert while
 *   the seq is odd is deferred until mn_itree_inv_end (`mniDeferred`, in the
 *   worlds that declare `notifierDeferredFields`);
 * - exit_mmap's mn_itree_release: a blockable MMU_NOTIFY_RELEASE invalidation
 *   of the whole address space whose callbacks must succeed.
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

/**
 * The interval on the mm's deferred_list (mm/mmu_notifier.c): an insert or a
 * remove while the mm's seq is odd is not done at once but queued
 * (`hlist_add_head(&interval_sub->deferred_item, &subscriptions->deferred_list)`
 * in __mmu_interval_notifier_insert and mmu_interval_notifier_remove), and
 * mn_itree_inv_end, when the last invalidation ends, links the interval into
 * the tree or takes it out (`RB_EMPTY_NODE` tells which). A world whose
 * interval may be inserted or removed during an invalidation declares these
 * fields next to `notifierFields` (which stay as they are for the others).
 */
export const notifierDeferredFields = () => ({
  /** 0, DEFERRED_INSERT (not yet in the tree: invalidations do not hit it) or DEFERRED_REMOVE (still in the tree until inv_end). */
  mniDeferred: u8(2),
})

export const DEFERRED_INSERT = 1
export const DEFERRED_REMOVE = 2

export interface NotifierDeferred {
  mniDeferred: number
}

/**
 * mmu_interval_notifier_insert() (mm/mmu_notifier.c: mmu_notifier_register on
 * a fresh mm sets invalidate_seq = 2, then __mmu_interval_notifier_insert):
 * - idle mm (active_invalidate_ranges == 0): the interval enters the tree
 *   with seq = invalidate_seq - 1 (odd, unequal), so read_begin does not wait;
 * - invalidations active and the seq even (none hit an interval):
 *   `invalidate_seq |= 1`, the interval enters the tree, and its seq equals
 *   the mm's, so read_begin waits for mn_itree_inv_end;
 * - the seq odd: the insert is deferred to mn_itree_inv_end (`mniDeferred`:
 *   the invalidations already running never call its callback) and its seq
 *   equals the mm's, so read_begin waits too.
 * A deferred insert needs `notifierDeferredFields` in the world.
 */
export function notifierInsert(n: Notifier & Partial<NotifierDeferred>): void {
  if (n.mmSeq === 0) n.mmSeq = 2
  if (n.activeRanges === 0) {
    n.mniSeq = n.mmSeq - 1
    n.mniInserted = 1
    return
  }
  if ((n.mmSeq & 1) === 1) {
    if (n.mniDeferred === undefined) throw new ModelError('notifierInsert: an insert while the mm is invalidating is deferred; declare notifierDeferredFields() in the world')
    n.mniDeferred = DEFERRED_INSERT
  } else {
    n.mmSeq |= 1
    n.mniInserted = 1
  }
  n.mniSeq = n.mmSeq
}

/** The name the fidelity review asked for: `notifierInsert` covers an active mm too. */
export const notifierInsertActive = notifierInsert

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

/**
 * mn_itree_inv_end(): the last concurrent invalidation makes the seq even
 * again, links a deferred insert into the tree (the deferred_list walk), and
 * wakes read_begin sleepers.
 */
export function invalidateRangeEnd(n: Notifier & Partial<NotifierDeferred>): void {
  n.activeRanges--
  if (n.activeRanges === 0 && (n.mmSeq & 1) === 1) {
    n.mmSeq++
    if (n.mniDeferred === DEFERRED_INSERT) n.mniInserted = 1
    if (n.mniDeferred === DEFERRED_REMOVE) n.mniInserted = 0
    if (n.mniDeferred) n.mniDeferred = 0
  }
}

/**
 * mmu_interval_notifier_remove() (mm/mmu_notifier.c): on an idle mm the
 * interval leaves the tree now (returns 0); while the mm is invalidating it
 * is queued on the deferred_list and stays in the tree, still hit by new
 * invalidations, until mn_itree_inv_end takes it out, and the caller sleeps
 * (`wait_event(subscriptions->wq, invalidate_seq != seq)`) on the seq
 * returned. A still-deferred insert is just dropped from the list
 * (`RB_EMPTY_NODE`: hlist_del, no wait). Without `notifierDeferredFields`
 * the caller clears `mniInserted` itself when it wakes (the interval is
 * then hit by invalidations that start before the wake-up, which the
 * kernel's inv_end prevents).
 */
export function notifierRemove(n: Notifier & Partial<NotifierDeferred>): number {
  if ((n.mmSeq & 1) === 0) {
    n.mniInserted = 0
    return 0
  }
  if (n.mniDeferred === DEFERRED_INSERT) {
    n.mniDeferred = 0
    return 0
  }
  if (n.mniDeferred !== undefined) n.mniDeferred = DEFERRED_REMOVE
  return n.mmSeq
}

/** mmu_interval_set_seq(), called by the driver's callback under its lock. */
export function setSeq(n: Notifier, curSeq: number): void {
  n.mniSeq = curSeq
}

/** Would mmu_interval_read_begin() sleep now? */
export const readBeginMustWait = (n: Notifier): boolean => n.mniSeq === n.mmSeq

/** mmu_interval_read_retry() / mmu_interval_check_retry(). */
export const readRetry = (n: Notifier, seq: number): boolean => n.mniSeq !== seq

/**
 * mn_itree_release() (exit_mmap -> mmu_notifier_release ->
 * __mmu_notifier_release, mm/mmu_notifier.c): one MMU_NOTIFY_RELEASE
 * invalidation of [0, ULONG_MAX), flagged MMU_NOTIFIER_RANGE_BLOCKABLE:
 * mn_itree_inv_start_range, each interval's callback, which must succeed
 * (`WARN_ON(!ret)`: the core carries on regardless), then mn_itree_inv_end.
 * In steps: `releaseStart` (cur_seq, 0 when no interval is inserted, so no
 * callback runs), the callback, then `releaseEnd` with what it returned,
 * which is true when the core WARNs.
 */
export function releaseStart(n: Notifier): number {
  return invalidateRangeStart(n, true)
}

/** The end of mn_itree_release: WARN_ON(!ret) for a callback that failed, then mn_itree_inv_end. Returns whether it WARNed. */
export function releaseEnd(n: Notifier & Partial<NotifierDeferred>, called: boolean, ok: boolean): boolean {
  invalidateRangeEnd(n)
  return called && !ok
}

/** mn_itree_release as one atomic step: `invalidate(cur_seq)` is the interval's callback. Returns whether the core WARNed. */
export function itreeRelease(n: Notifier & Partial<NotifierDeferred>, invalidate: (curSeq: number) => boolean): boolean {
  const cur = releaseStart(n)
  const ok = cur === 0 ? true : invalidate(cur)
  return releaseEnd(n, cur !== 0, ok)
}
