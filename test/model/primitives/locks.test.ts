/**
 * model/primitives/locks.ts: mutex / spinlock / rwsem cells with owner
 * tracking, the per-thread `held` bitmask and `atomic` depth, trylocks,
 * might_sleep() in atomic context, and two compiled programs explored by
 * bfs: an AB/BA lock-order deadlock, and the same threads in one order.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { ModelError } from '../../../explorer/errors.js'
import { NO_DEADLOCK } from '../../../explorer/search.js'
import { noSleepInAtomic } from '../../../invariants/slat-invariants.js'
import { compile } from '../../../model/compile.js'
import { FS_RECLAIM, fsReclaim, type LockDecl, lockFields, type LockHolder, lockLocals, Locks, type LockWorld, ordered, sleepReason } from '../../../model/primitives/locks.js'
import { process, type Program, type Step } from '../../../model/process.js'
import type { ValueOf } from '../../../model/schema.js'

const decls: LockDecl[] = [
  { name: 'mmap_lock', kind: 'rwsem' },
  { name: 'region->mutex', kind: 'mutex' },
  { name: 'kvm->mmu_lock', kind: 'spinlock' },
]
const locks = new Locks(decls)
const RWSEM = locks.id('mmap_lock')
const MUTEX = locks.id('region->mutex')
const SPIN = locks.id('kvm->mmu_lock')

const world = (): LockWorld => ({
  lockOwner: new Array(decls.length).fill(0),
  lockReaders: new Array(decls.length).fill(0),
  lockWaiters: new Array(decls.length).fill(0),
  sleptInAtomic: 0,
  sleptWhy: 0,
  lockOrder: new Array(decls.length).fill(0),
})
const thread = (tid: number): LockHolder => ({ tid, held: 0, atomic: 0 })

describe('Locks: construction and ids', () => {
  it('ids are declaration indices; an unknown name or more than 16 classes is an error', () => {
    expect([RWSEM, MUTEX, SPIN]).toEqual([0, 1, 2])
    expect(() => locks.id('nope')).toThrow(/no lock nope/)
    expect(() => new Locks(Array.from({ length: 17 }, (_, i) => ({ name: `l${i}`, kind: 'mutex' as const })))).toThrow(/at most 16/)
    expect(() => new Locks(Array.from({ length: 16 }, (_, i) => ({ name: `l${i}`, kind: 'mutex' as const })))).not.toThrow()
  })

  it('up to 8 classes: one lockOrder byte per lock and the plain locals; 9 to 16: two bytes and heldHi', () => {
    expect(lockFields(decls).lockOrder.length).toBe(3)
    expect(locks.locals).toBe(lockLocals)
    const many = new Locks(Array.from({ length: 16 }, (_, i) => ({ name: `l${i}`, kind: 'mutex' as const })))
    expect(lockFields(many.decls).lockOrder.length).toBe(32)
    expect(Object.keys(many.locals)).toEqual(['tid', 'held', 'atomic', 'heldHi'])
  })
})

describe('16 lock classes', () => {
  const many = new Locks(Array.from({ length: 16 }, (_, i) => ({ name: `l${i}`, kind: 'mutex' as const })))
  const bigWorld = (): LockWorld => ({
    lockOwner: new Array(16).fill(0),
    lockReaders: new Array(16).fill(0),
    lockWaiters: new Array(16).fill(0),
    sleptInAtomic: 0,
    sleptWhy: 0,
    lockOrder: new Array(32).fill(0),
  })

  it('locks 8..15 are held in heldHi; the dependency l3 -> l12 and l12 -> l3 are recorded in their rows', () => {
    const w = bigWorld()
    const t = { ...thread(0), heldHi: 0 }
    many.lock(w, t, 3)
    many.lock(w, t, 12)
    expect(t.held).toBe(1 << 3)
    expect(t.heldHi).toBe(1 << 4)
    expect(many.holds(t, 12)).toBe(true)
    expect(many.holds(t, 11)).toBe(false)
    expect(ordered(w.lockOrder, 16, 3, 12)).toBe(true)
    expect(w.lockOrder[3 * 2 + 1]).toBe(1 << 4) // row 3, second byte, bit 12 - 8
    expect(ordered(w.lockOrder, 16, 12, 3)).toBe(false)
    many.unlock(w, t, 3)
    many.lock(w, t, 3)
    expect(ordered(w.lockOrder, 16, 12, 3)).toBe(true)
    expect(w.lockOrder[12 * 2]).toBe(1 << 3)
    many.unlock(w, t, 3)
    many.unlock(w, t, 12)
    expect([t.held, t.heldHi]).toEqual([0, 0])
  })

  it('a thread without heldHi cannot take lock 8 or above (a ModelError naming the fix)', () => {
    expect(() => many.lock(bigWorld(), thread(0), 9)).toThrow(/l9 is lock 9: a thread needs the locals of Locks.locals \(heldHi\)/)
  })
})

describe('lock / unlock: owner and held', () => {
  for (const id of [MUTEX, SPIN, RWSEM]) {
    it(`${decls[id].name} (${decls[id].kind}): the owner is tid + 1, held has bit ${id}, unlock clears both`, () => {
      const w = world()
      const t = thread(3)
      expect(locks.free(w, id)).toBe(true)
      locks.lock(w, t, id)
      expect(w.lockOwner[id]).toBe(t.tid + 1)
      expect(t.held).toBe(1 << id)
      expect(locks.free(w, id)).toBe(false)
      locks.unlock(w, t, id)
      expect(w.lockOwner[id]).toBe(0)
      expect(t.held).toBe(0)
      expect(locks.free(w, id)).toBe(true)
    })
  }

  it('held is a bitmask of every lock the thread holds, released in any order', () => {
    const w = world()
    const t = thread(0)
    locks.lock(w, t, MUTEX)
    locks.lock(w, t, SPIN)
    locks.readLock(w, t, RWSEM)
    expect(t.held).toBe((1 << MUTEX) | (1 << SPIN) | (1 << RWSEM))
    locks.unlock(w, t, MUTEX)
    expect(t.held).toBe((1 << SPIN) | (1 << RWSEM))
    locks.readUnlock(w, t, RWSEM)
    locks.unlock(w, t, SPIN)
    expect(t.held).toBe(0)
  })

  it('tid 0 owns as 1, so an owned lock is never mistaken for a free one', () => {
    const w = world()
    locks.lock(w, thread(0), MUTEX)
    expect(w.lockOwner[MUTEX]).toBe(1)
    expect(locks.free(w, MUTEX)).toBe(false)
  })

  it('unlock by a non-owner throws ModelError and changes nothing', () => {
    const w = world()
    const a = thread(0)
    const b = thread(1)
    locks.lock(w, a, MUTEX)
    expect(() => locks.unlock(w, b, MUTEX)).toThrow(ModelError)
    expect(() => locks.unlock(w, b, MUTEX)).toThrow(/region->mutex released by a thread that does not own it/)
    expect(w.lockOwner[MUTEX]).toBe(a.tid + 1)
    expect(a.held).toBe(1 << MUTEX)
    // Nor can a free lock be released.
    expect(() => locks.unlock(w, b, SPIN)).toThrow(ModelError)
  })

  it('lock on a taken lock is a ModelError (callers must guard with free)', () => {
    const w = world()
    locks.lock(w, thread(0), MUTEX)
    expect(() => locks.lock(w, thread(1), MUTEX)).toThrow(ModelError)
    expect(() => locks.lock(w, thread(1), MUTEX)).toThrow(/region->mutex taken while not free/)
  })
})

describe('trylock', () => {
  for (const id of [MUTEX, SPIN, RWSEM]) {
    it(`${decls[id].kind}: succeeds when free, fails when taken (changing nothing)`, () => {
      const w = world()
      const a = thread(0)
      const b = thread(1)
      expect(locks.trylock(w, a, id)).toBe(true)
      expect(w.lockOwner[id]).toBe(a.tid + 1)
      expect(a.held).toBe(1 << id)
      const before = { owner: [...w.lockOwner], readers: [...w.lockReaders], b: { ...b } }
      expect(locks.trylock(w, b, id)).toBe(false)
      expect({ owner: [...w.lockOwner], readers: [...w.lockReaders], b: { ...b } }).toEqual(before)
    })
  }

  it('a mutex trylock never records sleeping, even in atomic context (it does not sleep)', () => {
    const w = world()
    const t = thread(2)
    t.atomic = 1
    expect(locks.trylock(w, t, MUTEX)).toBe(true)
    expect(w.sleptInAtomic).toBe(0)
    const u = thread(4)
    u.atomic = 1
    expect(locks.trylock(w, u, MUTEX)).toBe(false)
    expect(w.sleptInAtomic).toBe(0)
    // down_read_trylock neither.
    expect(locks.readTrylock(w, u, RWSEM)).toBe(true)
    expect(w.sleptInAtomic).toBe(0)
  })

  it('spin_trylock enters atomic context; unlock leaves it', () => {
    const w = world()
    const t = thread(0)
    expect(locks.trylock(w, t, SPIN)).toBe(true)
    expect(t.atomic).toBe(1)
    locks.unlock(w, t, SPIN)
    expect(t.atomic).toBe(0)
  })
})

describe('rwsem', () => {
  it('readers share; any reader excludes a writer', () => {
    const w = world()
    const r1 = thread(0)
    const r2 = thread(1)
    expect(locks.readable(w, RWSEM)).toBe(true)
    locks.readLock(w, r1, RWSEM)
    expect(locks.readable(w, RWSEM)).toBe(true)
    locks.readLock(w, r2, RWSEM)
    expect(w.lockReaders[RWSEM]).toBe(2)
    expect(w.lockOwner[RWSEM]).toBe(0)
    expect(r1.held).toBe(1 << RWSEM)
    expect(locks.free(w, RWSEM)).toBe(false)
    expect(locks.trylock(w, thread(2), RWSEM)).toBe(false)
    locks.readUnlock(w, r1, RWSEM)
    expect(locks.free(w, RWSEM)).toBe(false)
    locks.readUnlock(w, r2, RWSEM)
    expect(w.lockReaders[RWSEM]).toBe(0)
    expect(locks.free(w, RWSEM)).toBe(true)
  })

  it('a writer excludes readers', () => {
    const w = world()
    const wr = thread(0)
    locks.lock(w, wr, RWSEM)
    expect(locks.readable(w, RWSEM)).toBe(false)
    const r = thread(1)
    expect(locks.readTrylock(w, r, RWSEM)).toBe(false)
    expect(w.lockReaders[RWSEM]).toBe(0)
    expect(r.held).toBe(0)
    locks.unlock(w, wr, RWSEM)
    expect(locks.readable(w, RWSEM)).toBe(true)
    expect(locks.readTrylock(w, r, RWSEM)).toBe(true)
  })

  it('read-release by a thread that does not hold it (or of a write-held rwsem) is a ModelError', () => {
    const w = world()
    const r = thread(0)
    locks.readLock(w, r, RWSEM)
    expect(() => locks.readUnlock(w, thread(1), RWSEM)).toThrow(/mmap_lock read-released by a non-holder/)
    expect(w.lockReaders[RWSEM]).toBe(1)
    const w2 = world()
    const wr = thread(0)
    locks.lock(w2, wr, RWSEM)
    expect(() => locks.readUnlock(w2, wr, RWSEM)).toThrow(ModelError)
  })
})

describe('rwsem writer fairness: a waiting writer holds back new readers', () => {
  it('readable is false while a writer waits; down_read_trylock fails then', () => {
    const w = world()
    locks.readLock(w, thread(0), RWSEM)
    w.lockWaiters[RWSEM] = 1
    expect(locks.readable(w, RWSEM)).toBe(false)
    expect(locks.readTrylock(w, thread(1), RWSEM)).toBe(false)
    w.lockWaiters[RWSEM] = 0
    expect(locks.readable(w, RWSEM)).toBe(true)
  })

  it('writeLockSteps: free, down_write takes it at once; held by a reader, the writer waits, then takes it at <label>_wait once free', () => {
    type S = { down_write: Step<LockWorld, LockHolder>; down_write_wait: Step<LockWorld, LockHolder> }
    const steps: S = locks.writeLockSteps<LockWorld, LockHolder, 'down_write'>(RWSEM, 'down_write', 'up_write')
    expect(Object.keys(steps)).toEqual(['down_write', 'down_write_wait'])
    // Free: the fast path.
    const w0 = world()
    const t0 = thread(0)
    expect(steps.down_write.run(w0, t0, 0)).toBe('up_write')
    expect(w0.lockOwner[RWSEM]).toBe(1)
    expect(w0.lockWaiters[RWSEM]).toBe(0)
    // A reader holds it: the writer queues.
    const w = world()
    const r = thread(0)
    const wr = thread(1)
    locks.readLock(w, r, RWSEM)
    expect(steps.down_write.text!(w, wr, 0)).toBe('down_write(&mmap_lock): contended, waits (new readers queue behind)')
    expect(steps.down_write.run(w, wr, 0)).toBe('down_write_wait')
    expect(w.lockWaiters[RWSEM]).toBe(1)
    expect(wr.held).toBe(0)
    expect(locks.readable(w, RWSEM)).toBe(false)
    expect(steps.down_write_wait.guard!(w, wr)).toBe(false)
    locks.readUnlock(w, r, RWSEM)
    expect(steps.down_write_wait.guard!(w, wr)).toBe(true)
    expect(steps.down_write_wait.run(w, wr, 0)).toBe('up_write')
    expect([w.lockOwner[RWSEM], w.lockWaiters[RWSEM], wr.held]).toEqual([wr.tid + 1, 0, 1 << RWSEM])
    expect(locks.readable(w, RWSEM)).toBe(false)
    locks.unlock(w, wr, RWSEM)
    expect(locks.readable(w, RWSEM)).toBe(true)
  })

  it('writeLockSteps on a mutex is an error', () => {
    expect(() => locks.writeLockSteps(MUTEX, 'x', 'done')).toThrow(/region->mutex is not an rwsem/)
  })

  // R1: down_read(S); mutex_lock(M). R2: mutex_lock(M); down_read(S). W: down_write(S).
  const rwr = new Locks([
    { name: 'S', kind: 'rwsem' },
    { name: 'M', kind: 'mutex' },
  ])
  const [S, M] = [0, 1]
  const g = lockFields(rwr.decls)
  type G = ValueOf<typeof g>
  const r1 = process<G, LockHolder>()({
    name: 'r1',
    locals: lockLocals,
    start: 'down_read',
    steps: {
      down_read: { guard: (w) => rwr.readable(w, S), run: (w, me) => (rwr.readLock(w, me, S), 'mutex_lock') },
      mutex_lock: rwr.lockStep(M, 'mutex_unlock'),
      mutex_unlock: rwr.unlockStep(M, 'up_read'),
      up_read: { run: (w, me) => (rwr.readUnlock(w, me, S), 'done') },
    },
  })
  const r2 = process<G, LockHolder>()({
    name: 'r2',
    locals: lockLocals,
    start: 'mutex_lock',
    steps: {
      mutex_lock: rwr.lockStep(M, 'down_read'),
      down_read: { guard: (w) => rwr.readable(w, S), run: (w, me) => (rwr.readLock(w, me, S), 'up_read') },
      up_read: { run: (w, me) => (rwr.readUnlock(w, me, S), 'mutex_unlock') },
      mutex_unlock: rwr.unlockStep(M, 'done'),
    },
  })
  const fairWriter = process<G, LockHolder>()({
    name: 'writer',
    locals: lockLocals,
    start: 'down_write',
    steps: { ...rwr.writeLockSteps(S, 'down_write', 'up_write'), up_write: rwr.unlockStep(S, 'done') },
  })
  const unfairWriter = process<G, LockHolder>()({
    name: 'writer',
    locals: lockLocals,
    start: 'down_write',
    steps: { down_write: rwr.lockStep(S, 'up_write'), up_write: rwr.unlockStep(S, 'done') },
  })
  const program = (writer: typeof fairWriter | null): Program<typeof g> => ({
    globals: g,
    threads: [
      { name: 'r1', process: r1, locals: { tid: 0 } },
      { name: 'r2', process: r2, locals: { tid: 1 } },
      ...(writer ? [{ name: 'w', process: writer, locals: { tid: 2 } }] : []),
    ],
  })

  it('reader-writer-reader: R1 reads S, W waits for S, R2 (holding M) queues behind W, R1 wants M: deadlock', () => {
    const model = compile('rwr', program(fairWriter), [])
    const r = bfs(model)
    expect(r.violations.map((v) => v.invariant)).toEqual([NO_DEADLOCK])
    const v = r.violations[0]
    expect(v.message).toMatch(/r1 is at mutex_lock, blocked/)
    expect(v.message).toMatch(/r2 is at down_read, blocked/)
    expect(v.message).toMatch(/w is at down_write_wait, blocked/)
    let s = model.initialStates()[v.init]
    for (const a of v.actions) s = model.next(s, a)
    expect([s.lockReaders[S], s.lockWaiters[S], s.lockOwner[M]]).toEqual([1, 1, 2])
  })

  it('the same readers without the writer: no deadlock (R2 reads S alongside R1)', () => {
    expect(bfs(compile('rr', program(null), [])).verdict).toBe('ok')
  })

  it('with a writer that never waits (lockStep on the rwsem) the deadlock is missed: why down_write needs writeLockSteps', () => {
    expect(bfs(compile('rwr-unfair', program(unfairWriter), [])).verdict).toBe('ok')
  })
})

describe('might_sleep and atomic context', () => {
  it('mightSleep records tid + 1 only when atomic > 0', () => {
    const w = world()
    const t = thread(5)
    locks.mightSleep(w, t, 'msleep(1)')
    expect(w.sleptInAtomic).toBe(0)
    expect(w.sleptWhy).toBe(0)
    t.atomic = 1
    locks.mightSleep(w, t, 'msleep(1)')
    expect(w.sleptInAtomic).toBe(t.tid + 1)
    expect(sleepReason(w.sleptWhy)).toBe('msleep(1) in a non-blockable invalidation')
  })

  it('the first offender is kept', () => {
    const w = world()
    const a = { ...thread(1), atomic: 1 }
    const b = { ...thread(2), atomic: 1 }
    locks.mightSleep(w, a, 'first')
    locks.mightSleep(w, b, 'second')
    expect(w.sleptInAtomic).toBe(a.tid + 1)
    expect(sleepReason(w.sleptWhy)).toMatch(/^first /)
  })

  it('spin_lock increments atomic (nested spinlocks count), unlock decrements', () => {
    const two = new Locks([
      { name: 'a', kind: 'spinlock' },
      { name: 'b', kind: 'spinlock' },
    ])
    const w = world()
    const t = thread(0)
    two.lock(w, t, 0)
    expect(t.atomic).toBe(1)
    two.lock(w, t, 1)
    expect(t.atomic).toBe(2)
    expect(w.sleptInAtomic).toBe(0) // spin_lock does not sleep
    two.unlock(w, t, 1)
    expect(t.atomic).toBe(1)
    two.unlock(w, t, 0)
    expect(t.atomic).toBe(0)
  })

  it('mutex_lock and down_read outside atomic context are fine', () => {
    const w = world()
    const t = thread(0)
    locks.lock(w, t, MUTEX)
    locks.readLock(w, t, RWSEM)
    expect(w.sleptInAtomic).toBe(0)
    expect(t.atomic).toBe(0)
  })

  it('a mutex taken while holding a spinlock is recorded as sleeping in atomic context', () => {
    const w = world()
    const t = thread(6)
    locks.lock(w, t, SPIN)
    locks.lock(w, t, MUTEX)
    expect(w.sleptInAtomic).toBe(t.tid + 1)
    expect(noSleepInAtomic().check(w)).toBe(`thread ${t.tid} may sleep in atomic context: mutex_lock(&region->mutex) while holding spin_lock(&kvm->mmu_lock)`)
  })

  it('down_read and down_write while holding a spinlock are too; after spin_unlock they are not', () => {
    for (const take of [(w: LockWorld, t: LockHolder) => locks.readLock(w, t, RWSEM), (w: LockWorld, t: LockHolder) => locks.lock(w, t, RWSEM)]) {
      const w = world()
      const t = thread(2)
      locks.lock(w, t, SPIN)
      take(w, t)
      expect(w.sleptInAtomic).toBe(t.tid + 1)
    }
    const w = world()
    const t = thread(2)
    locks.lock(w, t, SPIN)
    locks.unlock(w, t, SPIN)
    locks.lock(w, t, MUTEX)
    expect(w.sleptInAtomic).toBe(0)
  })
})

describe('non-blockable invalidation (non_block_start / non_block_end)', () => {
  it('enterNonblock makes the thread atomic; a mutex there is recorded with its reason; leaveNonblock ends it', () => {
    const w = world()
    const t = thread(1)
    locks.enterNonblock(t)
    expect(t.atomic).toBe(1)
    locks.lock(w, t, MUTEX)
    expect(w.sleptInAtomic).toBe(t.tid + 1)
    expect(noSleepInAtomic((tid) => `vp${tid}`).check(w)).toBe('vp1 may sleep in atomic context: mutex_lock(&region->mutex) in a non-blockable invalidation')
    locks.unlock(w, t, MUTEX)
    locks.leaveNonblock(t)
    expect(t.atomic).toBe(0)
  })

  it('outside it (left, or never entered) the same mutex is fine', () => {
    const w = world()
    const t = thread(1)
    locks.enterNonblock(t)
    locks.leaveNonblock(t)
    locks.lock(w, t, MUTEX)
    locks.readLock(w, t, RWSEM)
    expect(w.sleptInAtomic).toBe(0)
    expect(noSleepInAtomic().check(w)).toBeNull()
  })

  it('a spinlock held inside a non-blockable invalidation: both are named', () => {
    const w = world()
    const t = thread(0)
    locks.enterNonblock(t)
    locks.lock(w, t, SPIN)
    locks.readLock(w, t, RWSEM)
    expect(sleepReason(w.sleptWhy)).toBe('down_read(&mmap_lock) while holding spin_lock(&kvm->mmu_lock) in a non-blockable invalidation')
  })

  it('non_block_end without non_block_start is a ModelError (a spinlock does not count as one)', () => {
    const t = thread(0)
    expect(() => locks.leaveNonblock(t)).toThrow(/non_block_end without non_block_start/)
    locks.lock(world(), t, SPIN)
    expect(() => locks.leaveNonblock(t)).toThrow(ModelError)
    expect(t.atomic).toBe(1)
  })

  it('a contended down_write (writeLockSteps) in atomic context is recorded when it starts waiting', () => {
    const w = world()
    locks.readLock(w, thread(0), RWSEM)
    const t = thread(1)
    locks.lock(w, t, SPIN)
    const steps = locks.writeLockSteps<LockWorld, LockHolder, 'down_write'>(RWSEM, 'down_write', 'done')
    expect(steps.down_write.run(w, t, 0)).toBe('down_write_wait')
    expect(noSleepInAtomic().check(w)).toBe('thread 1 may sleep in atomic context: down_write(&mmap_lock) while holding spin_lock(&kvm->mmu_lock)')
  })
})

describe('allocate and fs_reclaim (lockdep pseudo lock)', () => {
  const rl = new Locks([...decls, fsReclaim])
  const R = rl.id(FS_RECLAIM)
  const rworld = (): LockWorld => ({ lockOwner: [0, 0, 0, 0], lockReaders: [0, 0, 0, 0], lockWaiters: [0, 0, 0, 0], sleptInAtomic: 0, sleptWhy: 0, lockOrder: [0, 0, 0, 0] })

  it('an allocation records held -> fs_reclaim for every lock held, and holds nothing after', () => {
    const w = rworld()
    const t = thread(0)
    rl.lock(w, t, MUTEX)
    rl.readLock(w, t, RWSEM)
    rl.allocate(w, t, 'hv_call_deposit_pages')
    expect(ordered(w.lockOrder, 4, MUTEX, R)).toBe(true)
    expect(ordered(w.lockOrder, 4, RWSEM, R)).toBe(true)
    expect(ordered(w.lockOrder, 4, SPIN, R)).toBe(false)
    expect(rl.holds(t, R)).toBe(false)
    expect(w.lockOwner[R]).toBe(0)
    expect(w.sleptInAtomic).toBe(0)
  })

  it('primeReclaim records fs_reclaim -> each lock given', () => {
    const w = rworld()
    rl.primeReclaim(w, [MUTEX, RWSEM])
    expect([MUTEX, RWSEM, SPIN].map((j) => ordered(w.lockOrder, 4, R, j))).toEqual([true, true, false])
  })

  it('an allocation may sleep: in a non-blockable invalidation, or under a spinlock, it is reported with what it allocates for', () => {
    const w = rworld()
    const t = thread(0)
    rl.enterNonblock(t)
    rl.allocate(w, t, 'hv_call_deposit_pages')
    expect(noSleepInAtomic((tid) => `vp${tid}`).check(w)).toBe('vp0 may sleep in atomic context: GFP_KERNEL allocation (hv_call_deposit_pages) in a non-blockable invalidation')
    const w2 = rworld()
    const u = thread(3)
    rl.lock(w2, u, SPIN)
    rl.allocate(w2, u, 'kmalloc')
    expect(noSleepInAtomic().check(w2)).toBe('thread 3 may sleep in atomic context: GFP_KERNEL allocation (kmalloc) while holding spin_lock(&kvm->mmu_lock)')
  })

  it('fs_reclaim is never taken like a lock; without it declared, allocate is a ModelError', () => {
    expect(() => rl.lock(rworld(), thread(0), R)).toThrow(/fs_reclaim is a lockdep pseudo lock/)
    expect(() => rl.readLock(rworld(), thread(0), R)).toThrow(ModelError)
    expect(() => rl.trylock(rworld(), thread(0), R)).toThrow(ModelError)
    expect(() => rl.lockStep(R, 'done')).toThrow(/pseudo lock/)
    expect(() => locks.allocate(world(), thread(0), 'kmalloc')).toThrow(/no fs_reclaim among the locks/)
    expect(() => locks.primeReclaim(world(), [MUTEX])).toThrow(ModelError)
  })
})

// ---- compiled programs: AB/BA ----------------------------------------

const AB: LockDecl[] = [
  { name: 'A', kind: 'mutex' },
  { name: 'B', kind: 'mutex' },
]
const ab = new Locks(AB)
const globals = lockFields(AB)
type W = ValueOf<typeof globals>

/** Takes `first` then `second`, releases both. */
const taker = (first: number, second: number) =>
  process<W, LockHolder>({
    name: `take-${AB[first].name}${AB[second].name}`,
    locals: lockLocals,
    start: `lock_${AB[first].name}`,
    steps: {
      [`lock_${AB[first].name}`]: {
        guard: (w) => ab.free(w, first),
        run(w, me) {
          ab.lock(w, me, first)
          return `lock_${AB[second].name}`
        },
      },
      [`lock_${AB[second].name}`]: {
        guard: (w) => ab.free(w, second),
        run(w, me) {
          ab.lock(w, me, second)
          return 'unlock'
        },
      },
      unlock: {
        run(w, me) {
          ab.unlock(w, me, second)
          ab.unlock(w, me, first)
          return 'done'
        },
      },
    },
    gotos: [`lock_${AB[second].name}`],
  })

const A = ab.id('A')
const B = ab.id('B')
const twoThreads = (order1: [number, number]): Program<typeof globals> => ({
  globals,
  threads: [
    { name: 't0', process: taker(A, B), locals: { tid: 0 } },
    { name: 't1', process: taker(order1[0], order1[1]), locals: { tid: 1 } },
  ],
})
describe('lock ordering, explored by bfs', () => {
  it('AB/BA: bfs reports no-deadlock, each thread blocked on the lock the other holds', () => {
    const model = compile('ab-ba', twoThreads([B, A]), [noSleepInAtomic()])
    const r = bfs(model)
    expect(r.verdict).toBe('violation')
    expect(r.violations.map((v) => v.invariant)).toEqual([NO_DEADLOCK])
    const v = r.violations[0]
    expect(v.message).toMatch(/t0 is at lock_B, blocked/)
    expect(v.message).toMatch(/t1 is at lock_A, blocked/)
    let s = model.initialStates()[v.init]
    for (const a of v.actions) s = model.next(s, a)
    expect(model.actions(s)).toEqual([])
    expect(s.lockOwner[A]).toBe(1) // t0 (tid 0) holds A
    expect(s.lockOwner[B]).toBe(2) // t1 (tid 1) holds B
    expect(s.threads[0].held).toBe(1 << A)
    expect(s.threads[1].held).toBe(1 << B)
  })

  it('the same threads taking A then B: no deadlock, verdict ok, both finish with nothing held', () => {
    const model = compile('ab-ab', twoThreads([A, B]), [noSleepInAtomic()])
    const r = bfs(model)
    expect(r.verdict).toBe('ok')
    expect(r.violations).toEqual([])
    // Every terminal state: both done, locks free.
    const seen = new Set<string>()
    const stack = [...model.initialStates()]
    let finals = 0
    while (stack.length) {
      const s = stack.pop()!
      const key = model.fingerprint(s)
      if (seen.has(key)) continue
      seen.add(key)
      const acts = model.actions(s)
      if (acts.length === 0) {
        finals++
        expect(model.terminal!(s)).toBe(true)
        expect([...s.lockOwner]).toEqual([0, 0])
        expect(s.threads.map((t) => t.held)).toEqual([0, 0])
      }
      for (const a of acts) stack.push(model.next(s, a))
    }
    expect(finals).toBe(1)
    expect(seen.size).toBe(r.stats.states)
  })
})
