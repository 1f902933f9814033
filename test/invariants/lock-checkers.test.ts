/**
 * The general lock checkers on small synthetic processes: lockdep's
 * lock-order rule (a property of the whole exploration), Eraser's lockset
 * rule, sleeping in atomic context and deadlock.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { dfs } from '../../explorer/dfs.js'
import type { Invariant } from '../../explorer/model.js'
import { lockOrderConsistent, shortestCycle } from '../../invariants/lock-order.js'
import { regionListRaceFree } from '../../invariants/mmio-invariants.js'
import { noSleepInAtomic } from '../../invariants/slat-invariants.js'
import { compile } from '../../model/compile.js'
import { fsReclaim, lockFields, lockLocals, Locks, type LockHolder } from '../../model/primitives/locks.js'
import { access, lockset, type Lockset } from '../../model/primitives/lockset.js'
import { process, type Step } from '../../model/process.js'
import { u8, type ValueOf } from '../../model/schema.js'
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
    expect(v.witnesses).toHaveLength(1)
    expect(new Set([v.outcome, v.witnesses![0].outcome])).toEqual(new Set(['A -> B', 'B -> A']))
    expect(v.message).toBe('lock order inversion: A -> B on one run, B -> A on another (possible ABBA deadlock)')
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
      for (const run of [v, ...v.witnesses!]) {
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
    const found = bfs(model([{ name: 't0', process: nested }], [sleep])).violations
    expect(found.map((v) => v.invariant)).toEqual(['no-sleep-in-atomic'])
    expect(found[0].message).toBe('t0 may sleep in atomic context: mutex_lock(&A) while holding spin_lock(&S)')
    expect(bfs(model([{ name: 't0', process: sequential }], [sleep]), { allViolations: true }).verdict).toBe('ok')
  })

  /** An invalidate callback taking mutex A, called blockable or not (mmu_notifier_invalidate_range_start_nonblock: the OOM reaper). */
  const invalidate = (nonblock: boolean) =>
    process<W, L>()({
      name: nonblock ? 'invalidate-nonblock' : 'invalidate',
      locals,
      start: 'non_block_start',
      steps: {
        non_block_start: { run: (_w, me) => (nonblock && locks.enterNonblock(me), 'mutex_lock') },
        mutex_lock: locks.lockStep(A, 'mutex_unlock'),
        mutex_unlock: locks.unlockStep(A, 'non_block_end'),
        non_block_end: { run: (_w, me) => (nonblock && locks.leaveNonblock(me), 'done') },
      },
    })

  it('a mutex in a non-blockable invalidation is reported, naming the lock and the context; blockable, not', () => {
    const sleep = noSleepInAtomic((tid) => `t${tid}`)
    const found = bfs(model([{ name: 't0', process: invalidate(true) }], [sleep])).violations
    expect(found.map((v) => v.invariant)).toEqual(['no-sleep-in-atomic'])
    expect(found[0].message).toBe('t0 may sleep in atomic context: mutex_lock(&A) in a non-blockable invalidation')
    expect(bfs(model([{ name: 't0', process: invalidate(false) }], [sleep]), { allViolations: true }).verdict).toBe('ok')
  })
})

describe('lock-order-consistent with more lock classes than fit 32 facts', () => {
  // Six classes: 36 edges. Edge L5 -> L3 is fact 5*6+3 = 33; a 32-bit mask wraps it onto
  // fact 1 (L0 -> L1), which with L1 -> L0 made a false inversion.
  const six = new Locks(Array.from({ length: 6 }, (_, i) => ({ name: `L${i}`, kind: 'mutex' as const })))
  const sixGlobals = lockFields(six.decls)
  type W6 = ValueOf<typeof sixGlobals>
  const pair = (name: string, first: number, second: number) =>
    process<W6, LockHolder>({
      name,
      locals: lockLocals,
      start: 'lock1',
      steps: {
        lock1: six.lockStep<W6, LockHolder>(first, 'lock2'),
        lock2: six.lockStep<W6, LockHolder>(second, 'unlock2'),
        unlock2: six.unlockStep<W6, LockHolder>(second, 'unlock1'),
        unlock1: six.unlockStep<W6, LockHolder>(first, 'done'),
      },
    })
  it('L1 -> L0 on one thread and L5 -> L3 on another: no cycle, no report', () => {
    const m = compile(
      'six',
      {
        globals: sixGlobals,
        threads: [
          { name: 't0', process: pair('p10', 1, 0), locals: { tid: 0 } },
          { name: 't1', process: pair('p53', 5, 3), locals: { tid: 1 } },
        ],
      },
      { invariants: [], evidence: [lockOrderConsistent(six.decls)] },
    )
    expect(bfs(m, { allViolations: true }).violations).toEqual([])
  })
})

/** Replays a violation's run on `m` and checks it reproduces its fact. */
function replaysItsFact(m: ReturnType<typeof compile<any>>, run: { init: number; actions: readonly { thread: number; choice: number }[]; outcome?: string }): boolean {
  let s = m.initialStates()[run.init]
  const steps = run.actions.map((a) => {
    const after = m.next(s, a)
    const d = m.describe(a, s, after)
    s = after
    return { thread: d.thread, label: d.label, choice: d.choice }
  })
  return replaySteps(m, run.init, steps, 'lock-order-consistent', run.outcome).reproduced
}

describe('lock-order-consistent: cycles of any length', () => {
  /** `n` mutexes L0..; one thread that takes, on each run, one of `pairs` (its choice): first, then second. */
  const pairsModel = (n: number, pairs: readonly (readonly [number, number])[], threads = 1) => {
    const ls = new Locks(Array.from({ length: n }, (_, i) => ({ name: `L${i}`, kind: 'mutex' as const })))
    const g = { ...lockFields(ls.decls) }
    type Wn = ValueOf<typeof g>
    type Ln = LockHolder & { order: number }
    const first = (me: Ln) => pairs[me.order][0]
    const second = (me: Ln) => pairs[me.order][1]
    const p = process<Wn, Ln>()({
      name: 'pairs',
      locals: { ...ls.locals, order: u8() },
      start: 'pick',
      steps: {
        pick: { choices: () => pairs.length, run: (_w, me, c) => ((me.order = c), 'lock1') },
        lock1: { guard: (w, me) => ls.free(w, first(me)), run: (w, me) => (ls.lock(w, me, first(me)), 'lock2') },
        lock2: { guard: (w, me) => ls.free(w, second(me)), run: (w, me) => (ls.lock(w, me, second(me)), 'unlock') },
        unlock: { run: (w, me) => (ls.unlock(w, me, second(me)), ls.unlock(w, me, first(me)), 'done') },
      },
    })
    const threadSpecs = Array.from({ length: threads }, (_, tid) => ({ name: `t${tid}`, process: p, locals: { tid } }))
    return compile(`pairs-${n}`, { globals: g, threads: threadSpecs }, { invariants: [], evidence: [lockOrderConsistent(ls.decls)] })
  }

  it('A -> B, B -> C, C -> A, each on its own run: the cycle, with three traces, each replaying to its edge', () => {
    const m = pairsModel(3, [
      [0, 1],
      [1, 2],
      [2, 0],
    ])
    for (const x of [bfs(m, { allViolations: true }), dfs(m, { allViolations: true })]) {
      expect(x.violations.map((v) => v.invariant)).toEqual(['lock-order-consistent'])
      const v = x.violations[0]
      expect(v.message).toBe('lock order cycle L0 -> L1 -> L2 -> L0: each edge taken on some run (possible deadlock of 3 threads)')
      const runs = [v, ...v.witnesses!]
      expect(runs.map((r) => r.outcome)).toEqual(['L0 -> L1', 'L1 -> L2', 'L2 -> L0'])
      for (const run of runs) expect(replaysItsFact(m, run)).toBe(true)
    }
  })

  it('A -> B, B -> C and A -> C: no cycle, no report', () => {
    const m = pairsModel(3, [
      [0, 1],
      [1, 2],
      [0, 2],
    ])
    expect(bfs(m, { allViolations: true }).verdict).toBe('ok')
  })

  it('16 lock classes, L0 -> L1 -> ... -> L15 -> L0: a 16-edge cycle, one trace per edge', () => {
    const cycle = Array.from({ length: 16 }, (_, i) => [i, (i + 1) % 16] as const)
    const m = pairsModel(16, cycle)
    const x = bfs(m, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual(['lock-order-consistent'])
    const v = x.violations[0]
    const runs = [v, ...v.witnesses!]
    expect(runs.map((r) => r.outcome)).toEqual(cycle.map(([i, j]) => `L${i} -> L${j}`))
    for (const run of runs) expect(replaysItsFact(m, run)).toBe(true)
    expect(v.message).toMatch(/^lock order cycle L0 -> L1 -> .* -> L15 -> L0: .*deadlock of 16 threads/)
  })

  it('16 lock classes taken in one order (L0 -> L1 -> ... -> L15, and L0 -> L15): no cycle', () => {
    const chain = [...Array.from({ length: 15 }, (_, i) => [i, i + 1] as const), [0, 15] as const]
    expect(bfs(pairsModel(16, chain), { allViolations: true }).verdict).toBe('ok')
  })

  it('the search stops at the first cycle seen: a later, shorter one is not looked for', () => {
    // BFS sees L0 -> L1, L1 -> L2, L2 -> L3, L3 -> L0 (the 4-cycle) before L2 -> L1.
    const m = pairsModel(4, [
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 0],
      [2, 1],
    ])
    const v = bfs(m, { allViolations: true }).violations[0]
    expect([v, ...v.witnesses!].map((r) => r.outcome)).toEqual(['L0 -> L1', 'L1 -> L2', 'L2 -> L3', 'L3 -> L0'])
  })
})

describe('shortestCycle', () => {
  const edges = (n: number, es: [number, number][]) => new Set(es.map(([i, j]) => i * n + j))
  it('finds none in a DAG, and the cycle from its smallest node otherwise', () => {
    expect(shortestCycle(4, edges(4, [[0, 1], [1, 2], [0, 2], [2, 3]]))).toEqual([])
    expect(shortestCycle(4, edges(4, [[2, 3], [3, 1], [1, 2]]))).toEqual([1 * 4 + 2, 2 * 4 + 3, 3 * 4 + 1])
    expect(shortestCycle(20, edges(20, [[19, 17], [17, 19]]))).toEqual([17 * 20 + 19, 19 * 20 + 17])
  })
  it('of several cycles, the shortest', () => {
    // 0 -> 1 -> 2 -> 3 -> 0 and 2 -> 1.
    expect(shortestCycle(4, edges(4, [[0, 1], [1, 2], [2, 3], [3, 0], [2, 1]]))).toEqual([1 * 4 + 2, 2 * 4 + 1])
  })
})

describe("lockdep's fs_reclaim: an allocation under a lock an invalidate callback takes", () => {
  const rl = new Locks([{ name: 'region->mutex', kind: 'mutex' }, fsReclaim])
  const MUTEX = rl.id('region->mutex')
  const rg = lockFields(rl.decls)
  type RW = ValueOf<typeof rg>
  /** A VP that allocates (hv_call_deposit_pages) with region->mutex held, or before taking it. */
  const vp = (underMutex: boolean) =>
    underMutex
      ? process<RW, LockHolder>()({
          name: 'vp-alloc-under-mutex',
          locals: lockLocals,
          start: 'mutex_lock',
          steps: {
            mutex_lock: rl.lockStep(MUTEX, 'hv_call_deposit_pages'),
            hv_call_deposit_pages: { run: (w, me) => (rl.allocate(w, me, 'hv_call_deposit_pages'), 'mutex_unlock') },
            mutex_unlock: rl.unlockStep(MUTEX, 'done'),
          },
        })
      : process<RW, LockHolder>()({
          name: 'vp-alloc-first',
          locals: lockLocals,
          start: 'hv_call_deposit_pages',
          steps: {
            hv_call_deposit_pages: { run: (w, me) => (rl.allocate(w, me, 'hv_call_deposit_pages'), 'mutex_lock') },
            mutex_lock: rl.lockStep(MUTEX, 'mutex_unlock'),
            mutex_unlock: rl.unlockStep(MUTEX, 'done'),
          },
        })
  /** mmu_interval_notifier_insert (lockdep primes fs_reclaim -> the callback's locks), then the invalidate callback taking region->mutex. */
  const notifier = process<RW, LockHolder>()({
    name: 'notifier',
    locals: lockLocals,
    start: 'mmu_notifier_register',
    steps: {
      mmu_notifier_register: { run: (w) => (rl.primeReclaim(w, [MUTEX]), 'mutex_lock') },
      mutex_lock: rl.lockStep(MUTEX, 'mutex_unlock'),
      mutex_unlock: rl.unlockStep(MUTEX, 'done'),
    },
  })
  const build = (underMutex: boolean) =>
    compile(
      'reclaim',
      {
        globals: rg,
        threads: [
          { name: 'vp0', process: vp(underMutex), locals: { tid: 0 } },
          { name: 'notifier', process: notifier, locals: { tid: 1 } },
        ],
      },
      { invariants: [noSleepInAtomic()], evidence: [lockOrderConsistent(rl.decls)] },
    )

  it('GFP_KERNEL under region->mutex, region->mutex in the callback: the cycle region->mutex -> fs_reclaim -> region->mutex, one trace per edge', () => {
    const m = build(true)
    const x = bfs(m, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual(['lock-order-consistent'])
    const v = x.violations[0]
    expect(v.message).toBe('lock order inversion: region->mutex -> fs_reclaim on one run, fs_reclaim -> region->mutex on another (possible ABBA deadlock)')
    const runs = [v, ...v.witnesses!]
    expect(runs.map((r) => r.outcome)).toEqual(['region->mutex -> fs_reclaim', 'fs_reclaim -> region->mutex'])
    for (const run of runs) expect(replaysItsFact(m, run)).toBe(true)
  })

  it('the allocation before taking region->mutex: no cycle', () => {
    expect(bfs(build(false), { allViolations: true }).verdict).toBe('ok')
  })
})
