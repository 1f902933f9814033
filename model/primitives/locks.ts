/**
 * Kernel locks as world cells: a mutex or spinlock holds its owner (thread
 * tid + 1, 0 = free); an rwsem (mmap_lock) holds its writer and its reader
 * count. A blocked acquire is a false guard, hence a disabled step. Each
 * thread keeps the set of lock ids it holds (`held`, a bitmask of locks 0..7,
 * and `heldHi` of locks 8..15 when there are more than 8: see `Locks.locals`)
 * and whether it runs in atomic context (`atomic`: the spinlocks it holds
 * plus the non-blockable invalidations it is in, `enterNonblock`), so
 * sleeping in atomic context is checkable: a step that may sleep
 * (`mightSleep`, with its reason) records the offender in the
 * `sleptInAtomic` ghost and why in `sleptWhy` (see `sleepReason`).
 *
 * Up to 16 lock classes. lockdep's dependency graph is the `lockOrder` ghost:
 * `orderBytes(n)` bytes per lock (one for up to 8 classes, two for up to 16),
 * bit j of lock i's row set when lock j was taken while holding lock i.
 */
import { ModelError } from '../../explorer/errors.js'
import type { Step } from '../process.js'
import { array, threadId, threadRef, u8 } from '../schema.js'

/**
 * `pseudo`: a lockdep map that is no lock, only a class in the dependency
 * graph (`fs_reclaim`: see `Locks.allocate`); nothing takes or releases it.
 */
export type LockKind = 'mutex' | 'spinlock' | 'rwsem' | 'pseudo'

export interface LockDecl {
  readonly name: string
  readonly kind: LockKind
}

/** lockdep's pseudo lock for memory reclaim, which `Locks.allocate` and `Locks.primeReclaim` use: declare it among the locks. */
export const FS_RECLAIM = 'fs_reclaim'
export const fsReclaim: LockDecl = { name: FS_RECLAIM, kind: 'pseudo' }

/** The most lock classes one `Locks` declares. */
export const MAX_LOCKS = 16

/** Bytes of one lock's row of the `lockOrder` ghost: one bit per lock class. */
export const orderBytes = (n: number): number => Math.max(1, Math.ceil(n / 8))

export const lockFields = (locks: readonly LockDecl[]) => ({
  lockOwner: array(locks.length, threadRef()),
  lockReaders: array(locks.length, u8()),
  /** An rwsem's writers waiting in `down_write` (new readers queue behind them). */
  lockWaiters: array(locks.length, u8()),
  /** Ghost: tid + 1 of a thread that slept (or might have) in atomic context. */
  sleptInAtomic: threadRef(),
  /** Ghost: what that thread did and in which context, a code for `sleepReason` (0 = none). */
  sleptWhy: u8(),
  /**
   * Ghost, lockdep's dependency graph on this run: lock i's row is
   * `orderBytes(n)` bytes from `i * orderBytes(n)`; its bit j (byte j >> 3,
   * bit j & 7) = lock j was taken while holding lock i. Read it with `ordered`.
   */
  lockOrder: array(locks.length * orderBytes(locks.length), u8()),
})

/** Has this run taken lock `j` while holding lock `i` (of `n` classes)? */
export function ordered(lockOrder: ArrayLike<number>, n: number, i: number, j: number): boolean {
  return (lockOrder[i * orderBytes(n) + (j >> 3)] & (1 << (j & 7))) !== 0
}

/** Locals every thread that takes locks carries (up to 8 lock classes; `Locks.locals` for more). */
export const lockLocals = { tid: threadId(), held: u8(), atomic: u8() }
/** The locals of a thread of a program with 9 to 16 lock classes: `heldHi` holds locks 8..15. */
export const lockLocals16 = { ...lockLocals, heldHi: u8() }

export interface LockWorld {
  lockOwner: number[] | Int16Array
  lockReaders: number[] | Int16Array
  lockWaiters: number[] | Int16Array
  sleptInAtomic: number
  sleptWhy: number
  lockOrder: number[] | Int16Array
}
export interface LockHolder {
  tid: number
  /** Bit i: lock i (0..7) is held. */
  held: number
  atomic: number
  /** Bit i: lock 8 + i is held (only with more than 8 lock classes). */
  heldHi?: number
}

/**
 * Why a thread may have slept in atomic context, interned: `sleptWhy` holds
 * index + 1. One table for every `Locks`, so an invariant reads a reason off
 * the world alone; the codes of a process's states are consistent within it.
 */
const sleepReasons: string[] = []
const sleepReasonCode = new Map<string, number>()

function sleepCode(reason: string): number {
  let code = sleepReasonCode.get(reason)
  if (code === undefined) {
    if (sleepReasons.length >= 255) throw new ModelError(`more than 255 distinct reasons to sleep in atomic context (the sleptWhy ghost is a byte): ${reason}`)
    sleepReasons.push(reason)
    code = sleepReasons.length
    sleepReasonCode.set(reason, code)
  }
  return code
}

/** The reason a `sleptWhy` code stands for (undefined for 0 or an unknown code). */
export const sleepReason = (code: number): string | undefined => (code > 0 ? sleepReasons[code - 1] : undefined)

const lockVerb = (kind: LockKind): string => (kind === 'rwsem' ? 'down_write' : kind === 'spinlock' ? 'spin_lock' : 'mutex_lock')

export class Locks {
  /** The locals each thread needs: `lockLocals`, plus `heldHi` with more than 8 lock classes. */
  readonly locals: typeof lockLocals | typeof lockLocals16
  /** The id of `fs_reclaim`, -1 when not declared. */
  private readonly reclaim: number

  constructor(readonly decls: readonly LockDecl[]) {
    if (decls.length > MAX_LOCKS) throw new Error(`Locks: at most ${MAX_LOCKS} lock classes`)
    this.locals = decls.length > 8 ? lockLocals16 : lockLocals
    this.reclaim = decls.findIndex((d) => d.name === FS_RECLAIM)
  }

  /** A pseudo lock is never taken: a ModelError. */
  private real(id: number): void {
    if (this.decls[id].kind === 'pseudo') throw new ModelError(`${this.decls[id].name} is a lockdep pseudo lock, not taken like a lock`)
  }

  /** Does `me` hold lock `id`? */
  holds(me: LockHolder, id: number): boolean {
    return id < 8 ? (me.held & (1 << id)) !== 0 : ((me.heldHi ?? 0) & (1 << (id - 8))) !== 0
  }

  private setHeld(me: LockHolder, id: number, on: boolean): void {
    if (id < 8) {
      me.held = on ? me.held | (1 << id) : me.held & ~(1 << id)
      return
    }
    if (me.heldHi === undefined) throw new ModelError(`${this.decls[id].name} is lock ${id}: a thread needs the locals of Locks.locals (heldHi) for locks 8..15`)
    me.heldHi = on ? me.heldHi | (1 << (id - 8)) : me.heldHi & ~(1 << (id - 8))
  }

  id(name: string): number {
    const i = this.decls.findIndex((d) => d.name === name)
    if (i < 0) throw new Error(`Locks: no lock ${name}`)
    return i
  }

  /** mutex_lock / spin_lock / down_write guard. */
  free(w: LockWorld, id: number): boolean {
    return w.lockOwner[id] === 0 && w.lockReaders[id] === 0
  }

  /**
   * down_read guard: no writer holds it and none waits for it (a kernel
   * rwsem queues a new reader behind a waiting writer, so reader-writer-reader
   * chains can deadlock: see `writeLockSteps`).
   */
  readable(w: LockWorld, id: number): boolean {
    return w.lockOwner[id] === 0 && w.lockWaiters[id] === 0
  }

  /** mutex_lock, spin_lock, down_write: call only when `free`. */
  lock(w: LockWorld, me: LockHolder, id: number): void {
    this.real(id)
    if (!this.free(w, id)) throw new ModelError(`${this.decls[id].name} taken while not free`)
    if (this.decls[id].kind !== 'spinlock') this.mightSleep(w, me, `${lockVerb(this.decls[id].kind)}(&${this.decls[id].name})`)
    this.depend(w, me, id)
    w.lockOwner[id] = me.tid + 1
    this.setHeld(me, id, true)
    if (this.decls[id].kind === 'spinlock') me.atomic++
  }

  /** mutex_trylock, spin_trylock, down_write_trylock: never sleeps. */
  trylock(w: LockWorld, me: LockHolder, id: number): boolean {
    this.real(id)
    if (!this.free(w, id)) return false
    w.lockOwner[id] = me.tid + 1
    this.setHeld(me, id, true)
    if (this.decls[id].kind === 'spinlock') me.atomic++
    return true
  }

  /** down_read: call only when `readable`. */
  readLock(w: LockWorld, me: LockHolder, id: number): void {
    this.real(id)
    this.mightSleep(w, me, `down_read(&${this.decls[id].name})`)
    this.depend(w, me, id)
    w.lockReaders[id]++
    this.setHeld(me, id, true)
  }

  /** down_read_trylock. */
  readTrylock(w: LockWorld, me: LockHolder, id: number): boolean {
    this.real(id)
    if (!this.readable(w, id)) return false
    w.lockReaders[id]++
    this.setHeld(me, id, true)
    return true
  }

  unlock(w: LockWorld, me: LockHolder, id: number): void {
    if (w.lockOwner[id] !== me.tid + 1) throw new ModelError(`${this.decls[id].name} released by a thread that does not own it`)
    w.lockOwner[id] = 0
    this.setHeld(me, id, false)
    if (this.decls[id].kind === 'spinlock') me.atomic--
  }

  readUnlock(w: LockWorld, me: LockHolder, id: number): void {
    if (!this.holds(me, id) || w.lockReaders[id] === 0) throw new ModelError(`${this.decls[id].name} read-released by a non-holder`)
    w.lockReaders[id]--
    this.setHeld(me, id, false)
  }

  /**
   * The step `mutex_lock(&name)` (or spin_lock / down_write): enabled only
   * while the lock is free; `then` is the next label.
   */
  lockStep<W extends LockWorld, L extends LockHolder, T extends string = string>(id: number, then: T | ((w: W, me: L) => T)): Step<W, L, T> {
    if (this.decls[id]?.kind === 'pseudo') throw new Error(`Locks.lockStep: ${this.decls[id].name} is a lockdep pseudo lock`)
    return {
      targets: [then],
      guard: (w) => this.free(w, id),
      run: (w, me) => {
        this.lock(w, me, id)
        return typeof then === 'string' ? then : then(w, me)
      },
      text: () => `${lockVerb(this.decls[id].kind)}(&${this.decls[id].name})`,
    }
  }

  /**
   * `down_write(&name)` on an rwsem as the kernel does it, in two steps: at
   * `label`, the writer takes the rwsem if it is free, else it starts waiting
   * (lockdep records the dependency then; from now on new readers queue
   * behind it, `readable` being false) and goes to `<label>_wait`, where it
   * takes the rwsem once it is free. Spread the result into a process's steps.
   * (`lockStep` on an rwsem is a writer that never waits: readers are not held
   * back by it.)
   */
  writeLockSteps<W extends LockWorld, L extends LockHolder, const K extends string, T extends string = string>(
    id: number,
    label: K,
    then: T | ((w: W, me: L) => T),
  ): { [k in K | `${K}_wait`]: Step<W, L, T | `${K}_wait`> } {
    const decl = this.decls[id]
    if (decl?.kind !== 'rwsem') throw new Error(`Locks.writeLockSteps: ${decl?.name ?? `lock ${id}`} is not an rwsem`)
    const wait = `${label}_wait` as const
    const next = (w: W, me: L): T => (typeof then === 'string' ? then : then(w, me))
    const announce: Step<W, L, T | `${K}_wait`> = {
      targets: [then, wait],
      run: (w, me) => {
        if (this.free(w, id)) {
          this.lock(w, me, id)
          return next(w, me)
        }
        this.mightSleep(w, me, `down_write(&${decl.name})`)
        this.depend(w, me, id)
        w.lockWaiters[id]++
        return wait
      },
      text: (w) => `down_write(&${decl.name})${this.free(w, id) ? '' : ': contended, waits (new readers queue behind)'}`,
    }
    const acquire: Step<W, L, T | `${K}_wait`> = {
      targets: [then],
      guard: (w) => this.free(w, id),
      run: (w, me) => {
        w.lockWaiters[id]--
        w.lockOwner[id] = me.tid + 1
        this.setHeld(me, id, true)
        return next(w, me)
      },
      text: () => `down_write(&${decl.name}): acquired after waiting`,
    }
    return { [label]: announce, [wait]: acquire } as { [k in K | `${K}_wait`]: Step<W, L, T | `${K}_wait`> }
  }

  /** The step `mutex_unlock(&name)` (or spin_unlock / up_write). */
  unlockStep<W extends LockWorld, L extends LockHolder, T extends string = string>(id: number, then: T | ((w: W, me: L) => T)): Step<W, L, T> {
    return {
      targets: [then],
      run: (w, me) => {
        this.unlock(w, me, id)
        return typeof then === 'string' ? then : then(w, me)
      },
      text: () => `${lockVerb(this.decls[id].kind).replace('lock', 'unlock').replace('down_write', 'up_write')}(&${this.decls[id].name})`,
    }
  }

  /** lockdep: every lock held now precedes `id` (trylocks cannot deadlock and add no dependency). */
  private depend(w: LockWorld, me: LockHolder, id: number): void {
    const n = this.decls.length
    const cell = id >> 3
    const bit = 1 << (id & 7)
    const row = orderBytes(n)
    for (let i = 0; i < n; i++) if (this.holds(me, i)) w.lockOrder[i * row + cell] |= bit
  }

  /**
   * might_sleep(): in atomic context, record the first thread that may sleep
   * and why: `why` names what it does (`mutex_lock(&region->mutex)`, `GFP_KERNEL
   * allocation (hv_call_deposit_pages)`), and the context is added (`while
   * holding spin_lock(&pt_mem_regions_lock)`, `in a non-blockable invalidation`).
   */
  mightSleep(w: LockWorld, me: LockHolder, why: string): void {
    if (me.atomic > 0 && w.sleptInAtomic === 0) {
      w.sleptInAtomic = me.tid + 1
      w.sleptWhy = sleepCode(`${why} ${this.atomicContext(me)}`)
    }
  }

  /** Spinlocks `me` holds. */
  private spinlocksHeld(me: LockHolder): number[] {
    const out: number[] = []
    for (let i = 0; i < this.decls.length; i++) if (this.decls[i].kind === 'spinlock' && this.holds(me, i)) out.push(i)
    return out
  }

  /** Why `me` is in atomic context: the spinlocks it holds, a non-blockable invalidation. */
  private atomicContext(me: LockHolder): string {
    const spins = this.spinlocksHeld(me)
    const parts: string[] = []
    if (spins.length > 0) parts.push(`while holding ${spins.map((i) => `spin_lock(&${this.decls[i].name})`).join(', ')}`)
    if (me.atomic > spins.length) parts.push('in a non-blockable invalidation')
    return parts.length > 0 ? parts.join(' ') : 'in atomic context'
  }

  /**
   * A GFP_KERNEL allocation by `me` (`what`: the call, e.g.
   * `hv_call_deposit_pages`): it may sleep (`mightSleep`), and it may enter
   * direct reclaim, which lockdep marks by acquiring and releasing the
   * pseudo lock `fs_reclaim`: every lock held now precedes fs_reclaim in
   * `lockOrder`. With `primeReclaim`, an allocation under a lock that an
   * invalidate callback takes is a cycle (lock -> fs_reclaim -> lock).
   * `fs_reclaim` must be declared (`fsReclaim`).
   */
  allocate(w: LockWorld, me: LockHolder, what: string): void {
    this.mightSleep(w, me, `GFP_KERNEL allocation (${what})`)
    this.depend(w, me, this.reclaimId())
  }

  /**
   * lockdep's priming of reclaim against the MMU notifiers: reclaim may
   * invalidate, so fs_reclaim precedes every lock in `lockIds` (the locks an
   * invalidate callback takes; the kernel records fs_reclaim ->
   * __mmu_notifier_invalidate_range_start_map at mmu_notifier_register, and
   * the map -> each lock as the callback runs). Call it where the notifier
   * is registered (or in the program's `init`).
   */
  primeReclaim(w: LockWorld, lockIds: readonly number[]): void {
    const r = this.reclaimId()
    const row = orderBytes(this.decls.length)
    for (const id of lockIds) if (id !== r) w.lockOrder[r * row + (id >> 3)] |= 1 << (id & 7)
  }

  private reclaimId(): number {
    if (this.reclaim < 0) throw new ModelError(`no ${FS_RECLAIM} among the locks (${this.decls.map((d) => d.name).join(', ')}): declare fsReclaim to allocate or prime reclaim`)
    return this.reclaim
  }

  /**
   * non_block_start(): `me` enters a context that must not block, such as an
   * invalidate callback called by mmu_notifier_invalidate_range_start_nonblock
   * (the OOM reaper's): anything that may sleep there is `no-sleep-in-atomic`.
   */
  enterNonblock(me: LockHolder): void {
    me.atomic++
  }

  /** non_block_end(): leaves the context `enterNonblock` entered. */
  leaveNonblock(me: LockHolder): void {
    if (me.atomic <= this.spinlocksHeld(me).length) throw new ModelError('non_block_end without non_block_start')
    me.atomic--
  }
}
