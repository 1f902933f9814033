/**
 * model/primitives/mmu-notifier-hlist.ts: the classic subscriber list walk
 * of mm/mmu_notifier.c (mn_hlist_invalidate_range_start / _end), run by
 * hand: which callbacks the core calls, in which order, with which
 * non_block_start() context, and what happens after a -EAGAIN.
 */
import { describe, expect, it } from 'vitest'
import { Locks } from '../../../model/primitives/locks.js'
import { hlistBegin, hlistEndBegin, hlistEndNext, hlistStartNext, hlistStartReturned, hlistTargets, type HlistCore, type HlistLocals, type HlistSubscriber } from '../../../model/primitives/mmu-notifier-hlist.js'

const kvm: HlistSubscriber = { name: 'kvm', start: 'kvm_start', end: 'kvm_end' }
const other: HlistSubscriber = { name: 'other', start: 'other_start' }
const locks = new Locks([{ name: 'kvm->mmu_lock', kind: 'spinlock' }])

const core = (subscribers: HlistSubscriber[], blockable: boolean, endAfterEagain = true): HlistCore => ({ subscribers, blockable, apply: 'apply', done: 'free', fail: 'eagain', endAfterEagain, locks })
const thread = (): HlistLocals => ({ tid: 0, held: 0, atomic: 0, sub: 0, err: 0, nonblock: 0 })

/** Runs one invalidation: each start callback returns what `starts` says (0 by default); returns the labels visited and the atomic depth inside each callback. */
function walk(c: HlistCore, starts: Record<string, number> = {}): { labels: string[]; atomic: number[] } {
  const me = thread()
  const labels: string[] = []
  const atomic: number[] = []
  hlistBegin(me)
  let at = hlistStartNext(c, me)
  while (at !== 'apply' && at !== 'eagain') {
    labels.push(at)
    atomic.push(me.atomic)
    if (at.endsWith('_start')) {
      hlistStartReturned(c, me, starts[at] ?? 0)
      at = hlistStartNext(c, me)
    } else at = hlistEndNext(c, me)
  }
  labels.push(at)
  if (at === 'eagain') return { labels, atomic }
  at = hlistEndBegin(c, me)
  while (at !== 'free') {
    labels.push(at)
    atomic.push(me.atomic)
    at = hlistEndNext(c, me)
  }
  labels.push(at)
  expect(me.atomic).toBe(0)
  return { labels, atomic }
}

describe('mmu_notifier classic subscriber list (mn_hlist_invalidate_range_start/end)', () => {
  it('calls every start in list order, then the change, then every end; a subscriber without an end is skipped at range_end', () => {
    expect(walk(core([kvm, other], true)).labels).toEqual(['kvm_start', 'other_start', 'apply', 'kvm_end', 'free'])
    expect(walk(core([other, kvm], true)).labels).toEqual(['other_start', 'kvm_start', 'apply', 'kvm_end', 'free'])
    expect(hlistTargets(core([kvm, other], false)).sort()).toEqual(['apply', 'eagain', 'free', 'kvm_end', 'kvm_start', 'other_start'])
  })

  it('wraps each callback in non_block_start() only in a non-blockable range', () => {
    expect(walk(core([kvm, other], true)).atomic).toEqual([0, 0, 0])
    expect(walk(core([kvm, other], false)).atomic).toEqual([1, 1, 1])
  })

  it('after a -EAGAIN the walk goes on, then calls the end of every subscriber that has one (not non-block wrapped), and the caller gets -EAGAIN', () => {
    // KVM started before the failure: its end pairs it.
    const after = walk(core([kvm, other], false), { other_start: -11 })
    expect(after.labels).toEqual(['kvm_start', 'other_start', 'kvm_end', 'eagain'])
    expect(after.atomic).toEqual([1, 1, 0])
    // The failing subscriber first: the walk still calls KVM's start, then its end.
    expect(walk(core([other, kvm], false), { other_start: -11 }).labels).toEqual(['other_start', 'kvm_start', 'kvm_end', 'eagain'])
  })

  it('the core before 2021 returns -EAGAIN without any end: KVM\'s start is left unpaired (broken)', () => {
    expect(walk(core([kvm, other], false, false), { other_start: -11 }).labels).toEqual(['kvm_start', 'other_start', 'eagain'])
  })

  it('WARNs for a failure in a blockable range, and for a failing subscriber that has an end', () => {
    const me = thread()
    const nb = core([kvm, other], false)
    hlistBegin(me)
    hlistStartNext(nb, me) // kvm
    expect(hlistStartReturned(nb, me, 0)).toBe(false)
    hlistStartNext(nb, me) // other
    expect(hlistStartReturned(nb, me, -11)).toBe(false)
    hlistBegin(me)
    hlistStartNext(nb, me) // kvm, which has an end
    expect(hlistStartReturned(nb, me, -11)).toBe(true)
    const b = core([kvm, other], true)
    hlistBegin(me)
    hlistStartNext(b, me)
    hlistStartNext(b, me) // other, in a blockable range
    expect(hlistStartReturned(b, me, -11)).toBe(true)
  })
})
