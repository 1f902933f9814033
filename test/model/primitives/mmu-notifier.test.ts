/**
 * model/primitives/mmu-notifier.ts against the mm/mmu_notifier.c protocol
 * (__mmu_interval_notifier_insert, mn_itree_inv_start_range,
 * mn_itree_inv_end, mmu_interval_set_seq, mmu_interval_read_begin,
 * mmu_interval_read_retry), then a tiny compiled program explored by bfs: a
 * reader that skips read_retry (or does not sleep in read_begin) can publish
 * a stale value; the full protocol never does.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import type { Invariant } from '../../../explorer/model.js'
import { compile } from '../../../model/compile.js'
import {
  DEFERRED_INSERT,
  DEFERRED_REMOVE,
  invalidateRangeEnd,
  invalidateRangeStart,
  itreeRelease,
  notifierDeferredFields,
  notifierFields,
  notifierInsert,
  notifierInsertActive,
  notifierRemove,
  type Notifier,
  type NotifierDeferred,
  readBeginMustWait,
  readRetry,
  releaseEnd,
  releaseStart,
  setSeq,
} from '../../../model/primitives/mmu-notifier.js'
import { ModelError } from '../../../explorer/errors.js'
import { process, type Program, type State } from '../../../model/process.js'
import { u8, type ValueOf } from '../../../model/schema.js'

const fresh = (): Notifier => ({ mmSeq: 0, activeRanges: 0, mniSeq: 0, mniInserted: 0 })
const inserted = (): Notifier => {
  const n = fresh()
  notifierInsert(n)
  return n
}
const even = (x: number) => x % 2 === 0
const odd = (x: number) => x % 2 === 1

describe('mmu_interval_notifier_insert', () => {
  it('on a fresh mm: invalidate_seq even, the interval seq odd and different, inserted', () => {
    const n = inserted()
    expect(even(n.mmSeq)).toBe(true)
    expect(n.mmSeq).toBeGreaterThan(0)
    expect(odd(n.mniSeq)).toBe(true)
    expect(n.mniSeq).not.toBe(n.mmSeq)
    expect(n.mniInserted).toBe(1)
    expect(n.activeRanges).toBe(0)
    // Not invalidating: a reader must not sleep and sees no retry on its own seq.
    expect(readBeginMustWait(n)).toBe(false)
    expect(readRetry(n, n.mniSeq)).toBe(false)
  })

  it('on an mm that has seen invalidations: still even / odd / different', () => {
    const n = inserted()
    for (let r = 0; r < 3; r++) {
      invalidateRangeStart(n, true)
      invalidateRangeEnd(n)
    }
    const seq = n.mmSeq
    n.mniInserted = 0
    notifierInsert(n)
    expect(n.mmSeq).toBe(seq)
    expect(even(n.mmSeq)).toBe(true)
    expect(odd(n.mniSeq)).toBe(true)
    expect(n.mniSeq).not.toBe(n.mmSeq)
  })
})

describe('invalidate_range_start / _end', () => {
  it('start makes the seq odd and returns it as cur_seq; end makes it even again, past the old value', () => {
    const n = inserted()
    const before = n.mmSeq
    const cur = invalidateRangeStart(n, true)
    expect(odd(n.mmSeq)).toBe(true)
    expect(cur).toBe(n.mmSeq)
    expect(n.activeRanges).toBe(1)
    invalidateRangeEnd(n)
    expect(even(n.mmSeq)).toBe(true)
    expect(n.mmSeq).toBeGreaterThan(before)
    expect(n.activeRanges).toBe(0)
  })

  it('two concurrent invalidations: even again only when both have ended', () => {
    const n = inserted()
    const a = invalidateRangeStart(n, true)
    const b = invalidateRangeStart(n, true)
    expect(a).toBe(b) // both see the same odd seq
    expect(n.activeRanges).toBe(2)
    invalidateRangeEnd(n)
    expect(odd(n.mmSeq)).toBe(true)
    expect(n.mmSeq).toBe(a)
    invalidateRangeEnd(n)
    expect(even(n.mmSeq)).toBe(true)
    expect(n.mmSeq).toBe(a + 1)
  })

  it('a non-overlapping range still counts as active but leaves the seq even and returns 0', () => {
    const n = inserted()
    const seq = n.mmSeq
    expect(invalidateRangeStart(n, false)).toBe(0)
    expect(n.mmSeq).toBe(seq)
    expect(n.activeRanges).toBe(1)
    invalidateRangeEnd(n)
    expect(n.mmSeq).toBe(seq)
    expect(n.activeRanges).toBe(0)
  })

  it('a removed interval (mniInserted = 0) is not hit: returns 0, seq stays even', () => {
    const n = inserted()
    n.mniInserted = 0
    const seq = n.mmSeq
    expect(invalidateRangeStart(n, true)).toBe(0)
    expect(n.mmSeq).toBe(seq)
    invalidateRangeEnd(n)
    expect(n.mmSeq).toBe(seq)
  })

  it('a non-overlapping invalidation overlapped in time by a hitting one keeps the seq odd until the last ends', () => {
    const n = inserted()
    invalidateRangeStart(n, false)
    const cur = invalidateRangeStart(n, true)
    invalidateRangeEnd(n) // whichever ends first
    expect(n.mmSeq).toBe(cur)
    invalidateRangeEnd(n)
    expect(n.mmSeq).toBe(cur + 1)
  })
})

describe('read_begin / set_seq / read_retry', () => {
  it('after set_seq, read_begin must wait while the invalidation runs, and not after it ends', () => {
    const n = inserted()
    const cur = invalidateRangeStart(n, true)
    // Before the callback calls set_seq, read_begin does not sleep (the driver lock orders the rest).
    expect(readBeginMustWait(n)).toBe(false)
    setSeq(n, cur)
    expect(n.mniSeq).toBe(cur)
    expect(readBeginMustWait(n)).toBe(true)
    invalidateRangeEnd(n)
    expect(readBeginMustWait(n)).toBe(false)
  })

  it('with two invalidations, read_begin keeps waiting until the second ends', () => {
    const n = inserted()
    const cur = invalidateRangeStart(n, true)
    invalidateRangeStart(n, true)
    setSeq(n, cur)
    invalidateRangeEnd(n)
    expect(readBeginMustWait(n)).toBe(true)
    invalidateRangeEnd(n)
    expect(readBeginMustWait(n)).toBe(false)
  })

  it('read_retry is true after an invalidation that called set_seq following the read_begin', () => {
    const n = inserted()
    const seq = n.mniSeq // read_begin
    expect(readRetry(n, seq)).toBe(false)
    const cur = invalidateRangeStart(n, true)
    expect(readRetry(n, seq)).toBe(false) // not yet: set_seq has not run
    setSeq(n, cur)
    expect(readRetry(n, seq)).toBe(true)
    invalidateRangeEnd(n)
    expect(readRetry(n, seq)).toBe(true)
    // A read that begins after the end is current.
    const seq2 = n.mniSeq
    expect(readRetry(n, seq2)).toBe(false)
  })

  it('an invalidation that does not hit the interval never forces a retry', () => {
    const n = inserted()
    const seq = n.mniSeq
    const cur = invalidateRangeStart(n, false)
    expect(cur).toBe(0)
    invalidateRangeEnd(n)
    expect(readRetry(n, seq)).toBe(false)
  })
})

// ---- a compiled reader / invalidator ----------------------------------

const globals = {
  ...notifierFields(),
  /** The primary value (a host PTE). */
  value: u8(2),
  /** The reader's published copy (a secondary-MMU mapping), 0 = none. */
  copy: u8(2),
  /** The driver lock the callback and the reader's read_retry share. */
  lock: u8(1),
}
type W = ValueOf<typeof globals>
type R = { seq: number; tmp: number; rounds: number; slept: number }
type I = { cur: number }

const INITIAL = 1
const CHANGED = 2

function reader(opts: { retry: boolean; wait: boolean }) {
  return process<W, R>({
    name: 'reader',
    // rounds / slept only count, for the probes below (the packed backend shows invariants locals, not pcs).
    locals: { seq: u8(), tmp: u8(2), rounds: u8(3), slept: u8(1) },
    start: 'mmu_interval_read_begin',
    steps: {
      mmu_interval_read_begin: {
        run(w, me) {
          me.seq = w.mniSeq
          me.rounds++
          return opts.wait && readBeginMustWait(w) ? 'wait_event' : 'read'
        },
      },
      wait_event: {
        guard: (w, me) => w.mmSeq !== me.seq,
        run(_w, me) {
          me.slept = 1
          return 'read'
        },
      },
      read: {
        run(w, me) {
          me.tmp = w.value
          return 'lock'
        },
      },
      lock: {
        guard: (w) => w.lock === 0,
        run(w) {
          w.lock = 1
          return 'mmu_interval_read_retry'
        },
      },
      mmu_interval_read_retry: {
        run(w, me) {
          if (opts.retry && readRetry(w, me.seq)) {
            w.lock = 0
            return 'mmu_interval_read_begin'
          }
          return 'publish'
        },
      },
      publish: {
        run(w, me) {
          w.copy = me.tmp
          w.lock = 0
          return 'done'
        },
      },
    },
  })
}

/**
 * The invalidator's steps after range_start, shared by the toy models: the interval callback under the
 * driver lock (set_seq, then zap the copy), the change itself, range_end.
 */
const invalidationTail = {
  callback: {
    guard: (w: { lock: number }) => w.lock === 0,
    run(w: Notifier & { copy: number }, me: { cur: number }) {
      setSeq(w, me.cur)
      w.copy = 0
      return 'change'
    },
  },
  change: {
    run(w: { value: number }) {
      w.value = CHANGED
      return 'invalidate_range_end'
    },
  },
  invalidate_range_end: {
    run(w: Notifier) {
      invalidateRangeEnd(w)
      return 'done'
    },
  },
}

const invalidator = process<W, I>({
  name: 'invalidator',
  locals: { cur: u8() },
  start: 'invalidate_range_start',
  steps: {
    invalidate_range_start: {
      run(w, me) {
        me.cur = invalidateRangeStart(w, true)
        return 'callback'
      },
    },
    ...invalidationTail,
  },
})

/** An invariant over any world with a published copy of a value. */
const noStaleCopy: Invariant<State<{ copy: number; value: number }>> = {
  id: 'no-stale-copy',
  description: 'the published copy is none or the current value',
  check: (s) => (s.copy === 0 || s.copy === s.value ? null : `the reader published ${s.copy} but the value is ${s.value}`),
}
const readerNeverWaits: Invariant<State<W>> = {
  id: 'reader-never-waits',
  description: 'a probe: fails if the reader ever sleeps in read_begin',
  check: (s) => (s.threads[0].slept ? 'the reader slept in read_begin' : null),
}
const readerNeverRetries: Invariant<State<W>> = {
  id: 'reader-never-retries',
  description: 'a probe: fails if the reader ever goes round read_begin a second time',
  check: (s) => (Number(s.threads[0].rounds) > 1 ? 'the reader went round read_begin again' : null),
}

function program(opts: { retry: boolean; wait: boolean }): Program<typeof globals> {
  return {
    globals,
    init(w) {
      notifierInsert(w)
      w.value = INITIAL
    },
    threads: [
      { name: 'reader', process: reader(opts) },
      { name: 'invalidator', process: invalidator },
    ],
  }
}

describe('read_begin / read / read_retry against start / set_seq / change / end, explored by bfs', () => {
  it('a reader that skips read_retry can publish a stale value', () => {
    const model = compile('mn-no-retry', program({ retry: false, wait: true }), [noStaleCopy])
    const r = bfs(model)
    expect(r.verdict).toBe('violation')
    expect(r.violations.map((v) => v.invariant)).toEqual(['no-stale-copy'])
    expect(r.violations[0].message).toBe(`the reader published ${INITIAL} but the value is ${CHANGED}`)
    // The shortest counterexample: the reader reads before the change and publishes after the callback.
    let s = model.initialStates()[r.violations[0].init]
    const labels: string[] = []
    for (const a of r.violations[0].actions) {
      labels.push(`${model.threadNames[a.thread]}:${s.threads[a.thread].pc}`)
      s = model.next(s, a)
    }
    expect(labels.indexOf('reader:read')).toBeLessThan(labels.indexOf('invalidator:change'))
    expect(labels.indexOf('invalidator:callback')).toBeLessThan(labels.indexOf('reader:publish'))
    expect(noStaleCopy.check(s)).not.toBeNull()
  })

  it('a reader that does not sleep in read_begin can publish a stale value even with read_retry', () => {
    const r = bfs(compile('mn-no-wait', program({ retry: true, wait: false }), [noStaleCopy]))
    expect(r.violations.map((v) => v.invariant)).toEqual(['no-stale-copy'])
  })

  it('the full protocol (sleep in read_begin, read_retry under the lock) never publishes a stale value', () => {
    const r = bfs(compile('mn-retry', program({ retry: true, wait: true }), [noStaleCopy]))
    expect(r.verdict).toBe('ok')
    expect(r.violations).toEqual([])
    expect(r.stats.states).toBeGreaterThan(1)
  })

  it('and in that model the reader does both sleep in read_begin and retry (the check is not vacuous)', () => {
    const r = bfs(compile('mn-probe', program({ retry: true, wait: true }), [noStaleCopy, readerNeverWaits, readerNeverRetries]), {
      allViolations: true,
    })
    expect(r.violations.map((v) => v.invariant).sort()).toEqual(['reader-never-retries', 'reader-never-waits'])
  })
})

// ---- insert while invalidating, deferred remove, mn_itree_release ------------

const deferring = (): Notifier & NotifierDeferred => ({ mmSeq: 0, activeRanges: 0, mniSeq: 0, mniInserted: 0, mniDeferred: 0 })

describe('mmu_interval_notifier_insert while the mm is invalidating (__mmu_interval_notifier_insert)', () => {
  it('invalidations active, seq even (none hit an interval): seq |= 1, inserted at once, its seq the mm\'s: read_begin waits until the end', () => {
    const n = deferring()
    n.mmSeq = 4
    invalidateRangeStart(n, true) // nothing inserted yet: active, seq stays even
    expect(n.mmSeq).toBe(4)
    notifierInsertActive(n)
    expect(n.mmSeq).toBe(5)
    expect(n.mniInserted).toBe(1)
    expect(n.mniDeferred).toBe(0)
    expect(n.mniSeq).toBe(n.mmSeq)
    expect(readBeginMustWait(n)).toBe(true)
    // A new invalidation now hits it.
    expect(invalidateRangeStart(n, true)).toBe(5)
    invalidateRangeEnd(n)
    expect(readBeginMustWait(n)).toBe(true)
    invalidateRangeEnd(n)
    expect(n.mmSeq).toBe(6)
    expect(readBeginMustWait(n)).toBe(false)
    expect(odd(n.mniSeq)).toBe(true)
  })

  it('seq odd (another interval is being invalidated): deferred, not hit by invalidations, read_begin waits; inv_end links it in', () => {
    const n = deferring()
    n.mmSeq = 7 // another interval of the mm is being invalidated
    n.activeRanges = 1
    notifierInsert(n)
    expect(n.mniDeferred).toBe(DEFERRED_INSERT)
    expect(n.mniInserted).toBe(0)
    expect(n.mniSeq).toBe(7)
    expect(readBeginMustWait(n)).toBe(true)
    // A second invalidation starting now does not find it in the tree: no callback.
    expect(invalidateRangeStart(n, true)).toBe(0)
    invalidateRangeEnd(n)
    expect(n.mniInserted).toBe(0)
    expect(readBeginMustWait(n)).toBe(true)
    invalidateRangeEnd(n)
    expect(n.mmSeq).toBe(8)
    expect(n.mniInserted).toBe(1)
    expect(n.mniDeferred).toBe(0)
    expect(readBeginMustWait(n)).toBe(false)
    expect(invalidateRangeStart(n, true)).toBe(9)
  })

  it('a deferred insert needs notifierDeferredFields: without it, a model error', () => {
    const n = fresh()
    n.mmSeq = 3
    n.activeRanges = 1
    expect(() => notifierInsert(n)).toThrow(ModelError)
  })

  it('the idle insert is unchanged: seq - 1, no wait', () => {
    const n = deferring()
    notifierInsert(n)
    expect(n).toEqual({ mmSeq: 2, activeRanges: 0, mniSeq: 1, mniInserted: 1, mniDeferred: 0 })
  })
})

describe('mmu_interval_notifier_remove and the deferred list', () => {
  it('idle: removed at once, no wait', () => {
    const n = deferring()
    notifierInsert(n)
    expect(notifierRemove(n)).toBe(0)
    expect(n.mniInserted).toBe(0)
  })

  it('while invalidating: stays in the tree (a new invalidation still hits it) until the last inv_end takes it out', () => {
    const n = deferring()
    notifierInsert(n)
    const cur = invalidateRangeStart(n, true)
    expect(notifierRemove(n)).toBe(cur)
    expect(n.mniDeferred).toBe(DEFERRED_REMOVE)
    expect(n.mniInserted).toBe(1)
    expect(invalidateRangeStart(n, true)).toBe(cur)
    invalidateRangeEnd(n)
    expect(n.mniInserted).toBe(1)
    invalidateRangeEnd(n)
    // Out of the tree in the same step that wakes the remover: an invalidation after it no longer hits.
    expect(n.mniInserted).toBe(0)
    expect(n.mmSeq).not.toBe(cur)
    expect(invalidateRangeStart(n, true)).toBe(0)
  })

  it('a still-deferred insert is just dropped from the list, without waiting', () => {
    const n = deferring()
    n.mmSeq = 3
    n.activeRanges = 1
    notifierInsert(n)
    expect(notifierRemove(n)).toBe(0)
    expect(n.mniDeferred).toBe(0)
    invalidateRangeEnd(n)
    expect(n.mniInserted).toBe(0)
  })

  it('without notifierDeferredFields, the remover clears mniInserted itself on waking (the old behaviour)', () => {
    const n = inserted()
    const cur = invalidateRangeStart(n, true)
    expect(notifierRemove(n)).toBe(cur)
    invalidateRangeEnd(n)
    expect(n.mniInserted).toBe(1)
  })
})

describe('mn_itree_release (exit_mmap)', () => {
  it('one blockable invalidation of everything: the callback gets cur_seq, set_seq makes readers retry, the seq ends even', () => {
    const n = inserted()
    const seq = n.mniSeq
    const before = n.mmSeq
    let got = 0
    const warned = itreeRelease(n, (cur) => {
      got = cur
      setSeq(n, cur)
      return true
    })
    expect(warned).toBe(false)
    expect(got).toBe(before + 1)
    expect(readRetry(n, seq)).toBe(true)
    expect(n.mmSeq).toBe(before + 2)
    expect(n.activeRanges).toBe(0)
  })

  it('a callback that returns false: WARN_ON(!ret), and the core carries on (inv_end still runs)', () => {
    const n = inserted()
    expect(itreeRelease(n, () => false)).toBe(true)
    expect(n.activeRanges).toBe(0)
    expect(even(n.mmSeq)).toBe(true)
  })

  it('no interval in the tree: no callback, no WARN, the seq unchanged', () => {
    const n = inserted()
    n.mniInserted = 0
    const seq = n.mmSeq
    let called = false
    expect(
      itreeRelease(n, () => {
        called = true
        return false
      }),
    ).toBe(false)
    expect(called).toBe(false)
    expect(n.mmSeq).toBe(seq)
  })

  it('in steps, overlapped by another invalidation: the seq stays odd until both end', () => {
    const n = inserted()
    const cur = releaseStart(n)
    expect(cur).toBe(n.mmSeq)
    invalidateRangeStart(n, true)
    setSeq(n, cur)
    expect(releaseEnd(n, true, true)).toBe(false)
    expect(readBeginMustWait(n)).toBe(true)
    invalidateRangeEnd(n)
    expect(readBeginMustWait(n)).toBe(false)
  })
})

// ---- compiled: an insert racing an invalidation; exit_mmap's release racing a reader ----

const gi = { ...notifierFields(), ...notifierDeferredFields(), value: u8(2), copy: u8(2), lock: u8(1), warned: u8(1) }
type WI = ValueOf<typeof gi>

/** What the idle formula does if applied whatever the mm is doing (seq - 1): the insert mmu_notifier.c does not do. */
function idleOnlyInsert(n: Notifier): void {
  if (n.mmSeq === 0) n.mmSeq = 2
  n.mniSeq = (n.mmSeq & ~1) - 1
  n.mniInserted = 1
}

/** A driver registering its interval and then reading (read_begin, read, lock, read_retry, publish). */
function inserterReader(insert: (n: WI) => void) {
  return process<WI, { seq: number; tmp: number; slept: number }>({
    name: 'reader',
    locals: { seq: u8(), tmp: u8(2), slept: u8(1) },
    start: 'mmu_interval_notifier_insert',
    steps: {
      mmu_interval_notifier_insert: {
        run(w) {
          insert(w)
          return 'mmu_interval_read_begin'
        },
      },
      mmu_interval_read_begin: {
        run(w, me) {
          me.seq = w.mniSeq
          return readBeginMustWait(w) ? 'wait_event' : 'read'
        },
      },
      wait_event: {
        guard: (w, me) => w.mmSeq !== me.seq,
        run(_w, me) {
          me.slept = 1
          return 'read'
        },
      },
      read: {
        run(w, me) {
          me.tmp = w.value
          return 'lock'
        },
      },
      lock: {
        guard: (w) => w.lock === 0,
        run(w) {
          w.lock = 1
          return 'mmu_interval_read_retry'
        },
      },
      mmu_interval_read_retry: {
        run(w, me) {
          if (readRetry(w, me.seq)) {
            w.lock = 0
            return 'mmu_interval_read_begin'
          }
          return 'publish'
        },
      },
      publish: {
        run(w, me) {
          w.copy = me.tmp
          w.lock = 0
          return 'done'
        },
      },
    },
  })
}

/** An invalidation of the mm: whatever it hits gets the callback (set_seq, drop the copy) under the driver lock. */
const mmInvalidator = process<WI, { cur: number }>({
  name: 'invalidator',
  locals: { cur: u8() },
  start: 'invalidate_range_start',
  steps: {
    invalidate_range_start: {
      run(w, me) {
        me.cur = invalidateRangeStart(w, true)
        return me.cur ? 'callback' : 'change'
      },
    },
    ...invalidationTail,
  },
})


function insertProgram(insert: (n: WI) => void): Program<typeof gi> {
  return {
    globals: gi,
    init(w) {
      w.mmSeq = 2 // the mm has notifier subscriptions (another interval), none of this driver's yet
      w.value = INITIAL
    },
    threads: [
      { name: 'reader', process: inserterReader(insert) },
      { name: 'invalidator', process: mmInvalidator },
    ],
  }
}

describe('an insert racing an invalidation, explored by bfs', () => {
  it('an insert that does not make read_begin wait (seq - 1 while invalidating) lets the reader publish a stale value', () => {
    const r = bfs(compile('mn-insert-idle-only', insertProgram(idleOnlyInsert), [noStaleCopy]))
    expect(r.violations.map((v) => v.invariant)).toEqual(['no-stale-copy'])
  })

  it('__mmu_interval_notifier_insert (seq |= 1, read_begin waits for inv_end) never does, and the reader does sleep', () => {
    const probe: Invariant<State<WI>> = { id: 'reader-never-waits', description: 'a probe', check: (s) => (s.threads[0].slept ? 'slept' : null) }
    const ok = bfs(compile('mn-insert', insertProgram(notifierInsert), [noStaleCopy]))
    expect(ok.verdict).toBe('ok')
    const probed = bfs(compile('mn-insert-probe', insertProgram(notifierInsert), [noStaleCopy, probe]), { allViolations: true })
    expect(probed.violations.map((v) => v.invariant)).toEqual(['reader-never-waits'])
  })
})

/** exit_mmap's mn_itree_release against a reader holding the driver lock; the callback blocks (mutex_lock) or, wrongly, only tries. */
function releaseProgram(callback: 'lock' | 'trylock'): Program<typeof gi> {
  const exit = process<WI, { cur: number; ok: number }>({
    name: 'exit_mmap',
    locals: { cur: u8(), ok: u8(1) },
    start: 'mn_itree_release',
    steps: {
      mn_itree_release: {
        run(w, me) {
          me.cur = releaseStart(w)
          me.ok = 1
          return me.cur ? 'invalidate' : 'mn_itree_inv_end'
        },
      },
      // The driver's callback for MMU_NOTIFY_RELEASE: the range is blockable, so mutex_lock; a trylock-only callback fails while a reader holds it.
      invalidate: {
        guard: (w) => callback === 'trylock' || w.lock === 0,
        run(w, me) {
          if (w.lock !== 0) {
            me.ok = 0
            return 'mn_itree_inv_end'
          }
          setSeq(w, me.cur)
          w.copy = 0
          return 'mn_itree_inv_end'
        },
      },
      mn_itree_inv_end: {
        run(w, me) {
          if (releaseEnd(w, me.cur !== 0, me.ok === 1)) w.warned = 1
          w.value = 0 // the address space is gone
          return 'done'
        },
      },
    },
  })
  return {
    globals: gi,
    init(w) {
      notifierInsert(w)
      w.value = INITIAL
    },
    threads: [
      { name: 'reader', process: inserterReader(() => {}) },
      { name: 'exit', process: exit },
    ],
  }
}

const releaseSucceeds: Invariant<State<WI>> = {
  id: 'release-callback-succeeds',
  description: 'mn_itree_release never WARNs: the callback of a blockable MMU_NOTIFY_RELEASE returns true',
  check: (s) => (s.warned ? 'WARN_ON(!ret) in mn_itree_release' : null),
}

describe('mn_itree_release racing a reader, explored by bfs', () => {
  it('a callback that only trylocks returns false while the reader holds the lock: the WARN_ON', () => {
    const r = bfs(compile('mn-release-trylock', releaseProgram('trylock'), [releaseSucceeds, noStaleCopy]), { allViolations: true })
    expect(r.violations.map((v) => v.invariant).sort()).toEqual(['no-stale-copy', 'release-callback-succeeds'])
  })

  it('a callback that takes the lock (the range is blockable) always succeeds, and the reader never publishes what the release tore down', () => {
    const r = bfs(compile('mn-release-lock', releaseProgram('lock'), [releaseSucceeds, noStaleCopy]), { allViolations: true })
    expect(r.verdict).toBe('ok')
    expect(r.stats.states).toBeGreaterThan(5)
  })
})
