/**
 * mm/mmu_notifier.c's classic subscriber list (`subscriptions->list`, the
 * mmu_notifier_register side; mmu-notifier.ts has the interval tree): how
 * the core calls each subscriber's invalidate_range_start and
 * invalidate_range_end, as the newest kernel does it
 * (mn_hlist_invalidate_range_start, mn_hlist_invalidate_end):
 *
 *   range_start: every subscriber with an invalidate_range_start, in list
 *     order (hlist_add_head: the last registered first), each inside
 *     non_block_start()/non_block_end() when the range is not blockable;
 *     a failure (only -EAGAIN, only in a non-blockable range: WARN_ON
 *     otherwise) is remembered and the walk goes on. Then, if one failed:
 *     "Must be non-blocking to get here. If there are multiple notifiers
 *     and one or more failed start, any that succeeded start are expecting
 *     their end to be called. Do so now." -- every subscriber with an
 *     invalidate_range_end gets it (not wrapped in non_block_start), which
 *     is safe because a subscriber that can fail its start must not have
 *     an end (WARN_ON(ops->invalidate_range_end)). The caller gets -EAGAIN
 *     and must not call invalidate_range_end itself (__oom_reap_task_mm:
 *     tlb_finish_mmu, ret = false, continue).
 *   range_end: every subscriber with an invalidate_range_end, in order,
 *     inside non_block_start()/non_block_end() when not blockable.
 *
 * The compensating ends came with "mm/mmu_notifiers: ensure range_end() is
 * paired with range_start()" (Sean Christopherson, 2021): before it, a
 * non-blockable start that one subscriber failed left the others' starts
 * unpaired (KVM's mmu_notifier_count raised for good). `endAfterEagain:
 * false` is that older core.
 *
 * A subscriber's callbacks are steps of the invalidating thread's process,
 * entered at its `start` / `end` label; its last step returns
 * `hlistStartNext` / `hlistEndNext`, which compute the next label: the core
 * itself takes no step of its own. The thread's locals hold the walk
 * (`hlistLocals`).
 */
import type { Locks, LockHolder } from './locks.js'
import { u8 } from '../schema.js'

export interface HlistSubscriber {
  /** What a trace calls it (kvm, ...). */
  readonly name: string
  /** The label of its invalidate_range_start's first step, if it has one. */
  readonly start?: string
  /** The label of its invalidate_range_end's first step, if it has one. */
  readonly end?: string
}

export const hlistLocals = {
  /** Index of the next subscriber the walk looks at. */
  sub: u8(),
  /** A start failed with -EAGAIN in this invalidation. */
  err: u8(1),
  /** Inside a subscriber's callback wrapped in non_block_start(). */
  nonblock: u8(1),
}

export interface HlistLocals extends LockHolder {
  sub: number
  err: number
  nonblock: number
}

export interface HlistCore {
  /** The subscribers, in list order. */
  readonly subscribers: readonly HlistSubscriber[]
  /** mmu_notifier_range_blockable(range). */
  readonly blockable: boolean
  /** Where the invalidating thread goes when every start succeeded (its page-table change). */
  readonly apply: string
  /** Where it goes after range_end (its folio puts). */
  readonly done: string
  /** Where it goes when range_start returned -EAGAIN (after the compensating ends). */
  readonly fail: string
  /** The newest core: call every subscriber's end after a failed non-blockable start (false: the core before 2021). */
  readonly endAfterEagain: boolean
  /** The locks primitive whose non_block_start/end the wrapped callbacks enter and leave. */
  readonly locks?: Locks
}

/** The labels a core's walk may go to (for a process's `gotos`). */
export function hlistTargets(core: HlistCore): string[] {
  const out = new Set<string>([core.apply, core.done, core.fail])
  for (const s of core.subscribers) {
    if (s.start) out.add(s.start)
    if (s.end) out.add(s.end)
  }
  return [...out]
}

/** __mmu_notifier_invalidate_range_start on the list: the walk begins (call it as the invalidation starts, then go to `hlistStartNext`). */
export function hlistBegin(me: HlistLocals): void {
  me.sub = 0
  me.err = 0
  me.nonblock = 0
}

function leaveCallback(core: HlistCore, me: HlistLocals): void {
  if (!me.nonblock) return
  me.nonblock = 0
  core.locks?.leaveNonblock(me)
}

function enterCallback(core: HlistCore, me: HlistLocals, wrap: boolean): void {
  if (!wrap || core.blockable) return
  me.nonblock = 1
  core.locks?.enterNonblock(me)
}

/**
 * mn_hlist_invalidate_range_start's walk, after the previous subscriber's
 * start returned (or at the beginning): the next start's label; when none
 * is left, `apply` if every start succeeded, else the compensating ends
 * (newest core) and then `fail`.
 */
export function hlistStartNext(core: HlistCore, me: HlistLocals): string {
  leaveCallback(core, me)
  const subs = core.subscribers
  while (me.sub < subs.length && !subs[me.sub].start) me.sub++
  if (me.sub < subs.length) {
    enterCallback(core, me, true)
    return subs[me.sub++].start!
  }
  if (!me.err) return core.apply
  me.sub = 0
  return core.endAfterEagain ? hlistEndNext(core, me) : core.fail
}

/**
 * A subscriber's invalidate_range_start returned `ret` (0 or -EAGAIN):
 * remembered for the caller. Returns whether the core WARNs: a failure in a
 * blockable range, or a failing subscriber that has an invalidate_range_end.
 */
export function hlistStartReturned(core: HlistCore, me: HlistLocals, ret: number): boolean {
  if (ret === 0) return false
  me.err = 1
  const s = core.subscribers[me.sub - 1]
  return core.blockable || s?.end !== undefined
}

/**
 * mn_hlist_invalidate_end's walk (also the compensating walk after a failed
 * start): the next end's label, or `done` (`fail` for the compensating walk).
 * Call it from the invalidating thread's step that starts range_end (after
 * setting `me.sub = 0`) and from each subscriber's last end step.
 */
export function hlistEndNext(core: HlistCore, me: HlistLocals): string {
  leaveCallback(core, me)
  const subs = core.subscribers
  while (me.sub < subs.length && !subs[me.sub].end) me.sub++
  if (me.sub < subs.length) {
    // The compensating ends inside range_start are not wrapped in non_block_start().
    enterCallback(core, me, !me.err)
    return subs[me.sub++].end!
  }
  return me.err ? core.fail : core.done
}

/** __mmu_notifier_invalidate_range_end: the walk over the ends begins. */
export function hlistEndBegin(core: HlistCore, me: HlistLocals): string {
  me.sub = 0
  return hlistEndNext(core, me)
}
