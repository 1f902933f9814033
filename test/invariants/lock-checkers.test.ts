/**
 * The general lock checkers on small synthetic processes: lockdep's
 * lock-order rule (a property of the whole exploration), Eraser's lockset
 * rule, sleeping in atomic context and deadlock.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { dfs } from '../../explorer/dfs.js'
import type { Invariant } from '../../explorer/model.js'
import { lockOrderConsistent } from '../../invariants/lock-order.js'
import { regionListRaceFree } from '../../invariants/mmio-invariants.js'
import { noSleepInAtomic } from '../../invariants/slat-invariants.js'
import { compile } from '../../model/compile.js'
import { lockFields, lockLocals, Locks, type LockHolder } from '../../model/primitives/locks.js'
import { access, lockset, type Lockset } from '../../model/primitives/lockset.js'
import { process, type Step } from '../../model/process.js'
import { u8 } from '../../model/schema.js'
import { replaySteps } from '../../traces/replay.js'

const locks = new Locks([
  { name: 'A', kind: 'mutex' },
  { name: 'B', kind: 'mutex' },
  { name: 'S', kind: 'spinlock' },
])
const [A, B, S] = [0, 1, 2]
const globals = { ...lockFields(locks.decls), counter: u8(), regionList: lockset(), done: u8(1) }
type W = { counter: number; regionList: Lockset; done: number } & Parameters<typeof locks.free>[0]
type L = LockHolder & { order: number; tmp: number }
const locals = { ...lockLocals, order: u8(), tmp: u8() }

/** A thread taking two locks in the given order (or, with `choose`, in either order, picked at its first step). */
function twoLocks(name: string, first: number, second: number, choose = false, waitFor = false) {
  const steps: Record<string, Step<W, L>> = {
    start: {
      guard: (w) => !waitFor || w.done === 1,
      choices: () => (choose ? 2 : 1),
      run: (_w, me, c) => ((me.order = c), 'lock1'),
    },
    lock1: locks.lockStep<W, L>(first, 'pick2'),
    pick2: { run: (_w, me) => (me.order ? 'lock2b' : 'lock2') },
    lock2: locks.lockStep<W, L>(second, 'unlock2'),
    lock2b: locks.lockStep<W, L>(second, 'unlock2'),
    unlock2: locks.unlockStep<W, L>(second, 'unlock1'),
    unlock1: locks.unlockStep<W, L>(first, (w) => ((w.done = 1), 'done')),
  }
  if (choose) {
    // The other order: take `second` first, then `first`.
    steps.lock1 = {
      guard: (w, me) => locks.free(w, me.order ? second : first),
      run: (w, me) => (locks.lock(w, me, me.order ? second : first), 'pick2'),
    }
    steps.lock2b = locks.lockStep<W, L>(first, 'unlock2b')
    steps.unlock2b = locks.unlockStep<W, L>(first, 'unlock1b')
    steps.unlock1b = locks.unlockStep<W, L>(second, (w) => ((w.done = 1), 'done'))
  }
  return process<W, L>({ name, locals, start: 'start', steps })
}

const model = (threads: { name: string; process: ReturnType<typeof twoLocks> }[], invariants: Invariant<any>[] = []) =>
  compile('locks', { globals, threads: threads.map((t, tid) => ({ ...t, locals: { tid } })) }, { invariants, evidence: [lockOrderConsistent(locks.decls)] })

describe('lock-order-consistent (lockdep, across the exploration)', () => {
  it('AB/BA: a deadlock, and the inversion with one trace per order', () => {
    const m = model([
      { name: 't0', process: twoLocks('ab', A, B) },
      { name: 't1', process: twoLocks('ba', B, A) },
    ])
    const x = bfs(m, { allViolations: true })
    const ids = x.violations.map((v) => v.invariant)
    expect(ids).toContain('no-deadlock')
    expect(ids).toContain('lock-order-consistent')
    const v = x.violations.find((r) => r.invariant === 'lock-order-consistent')!
    expect(new Set([v.outcome, v.witness!.outcome])).toEqual(new Set(['A -> B', 'B -> A']))
  })

  it('an inversion that cannot deadlock (the second thread waits for the first to finish) is still reported', () => {
    const m = model([
      { name: 't0', process: twoLocks('ab', A, B) },
      { name: 't1', process: twoLocks('ba', B, A, false, true) },
    ])
    const x = bfs(m, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual(['lock-order-consistent'])
  })

  it('two orders on different runs only (one thread choosing its order): found across the exploration, each run replays to its fact', () => {
    const m = model([{ name: 't0', process: twoLocks('either', A, B, true) }])
    for (const x of [bfs(m, { allViolations: true }), dfs(m, { allViolations: true })]) {
      expect(x.violations.map((v) => v.invariant)).toEqual(['lock-order-consistent'])
      const v = x.violations[0]
      for (const run of [v, v.witness!]) {
        let s = m.initialStates()[0]
        const steps = run.actions.map((a) => {
          const after = m.next(s, a)
          const d = m.describe(a, s, after)
          s = after
          return { thread: d.thread, label: d.label, choice: d.choice }
        })
        expect(replaySteps(m, 0, steps, 'lock-order-consistent', run.outcome).reproduced).toBe(true)
      }
      // No single run takes both orders.
      expect(v.actions.length).toBeGreaterThan(0)
    }
  })

  it('a consistent order holds', () => {
    const m = model([
      { name: 't0', process: twoLocks('ab', A, B) },
      { name: 't1', process: twoLocks('ab', A, B) },
    ])
    expect(bfs(m, { allViolations: true }).verdict).toBe('ok')
  })
})

/** A counter incremented read-then-write, with or without lock A. */
function counter(name: string, locked: boolean) {
  const after = locked ? 'unlock' : 'done'
  return process<W, L>({
    name,
    locals,
    start: locked ? 'lock' : 'read',
    steps: {
      ...(locked && { lock: locks.lockStep<W, L>(A, 'read'), unlock: locks.unlockStep<W, L>(A, 'done') }),
      read: {
        run(w, me) {
          access(w.regionList, me, false)
          me.tmp = w.counter
          return 'write'
        },
      },
      write: {
        run(w, me) {
          access(w.regionList, me, true)
          w.counter = me.tmp + 1
          return after
        },
      },
    },
    gotos: locked ? ['unlock'] : [],
  })
}

describe('the lockset checker (Eraser)', () => {
  const race = regionListRaceFree((tid) => `t${tid}`)
  it('a racy counter is reported, even on runs where the update is not lost', () => {
    const m = model(
      [
        { name: 't0', process: counter('racy', false) },
        { name: 't1', process: counter('racy', false) },
      ],
      [race],
    )
    const x = bfs(m, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual(['region-list-race-free'])
  })

  it('a properly locked counter is race-free', () => {
    const m = model(
      [
        { name: 't0', process: counter('locked', true) },
        { name: 't1', process: counter('locked', true) },
      ],
      [race],
    )
    expect(bfs(m, { allViolations: true }).verdict).toBe('ok')
  })
})

describe('no-sleep-in-atomic', () => {
  it('a mutex taken under a spinlock is reported; taken after it is released, not', () => {
    const nested = process<W, L>({
      name: 'nested',
      locals,
      start: 'spin',
      steps: {
        spin: locks.lockStep<W, L>(S, 'mutex'),
        mutex: locks.lockStep<W, L>(A, 'unlock_mutex'),
        unlock_mutex: locks.unlockStep<W, L>(A, 'unlock_spin'),
        unlock_spin: locks.unlockStep<W, L>(S, 'done'),
      },
    })
    const sequential = process<W, L>({
      name: 'sequential',
      locals,
      start: 'spin',
      steps: {
        spin: locks.lockStep<W, L>(S, 'unlock_spin'),
        unlock_spin: locks.unlockStep<W, L>(S, 'mutex'),
        mutex: locks.lockStep<W, L>(A, 'unlock_mutex'),
        unlock_mutex: locks.unlockStep<W, L>(A, 'done'),
      },
    })
    const sleep = noSleepInAtomic((tid) => `t${tid}`)
    expect(bfs(model([{ name: 't0', process: nested }], [sleep])).violations.map((v) => v.invariant)).toEqual(['no-sleep-in-atomic'])
    expect(bfs(model([{ name: 't0', process: sequential }], [sleep]), { allViolations: true }).verdict).toBe('ok')
  })
})
