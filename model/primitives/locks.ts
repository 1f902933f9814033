/**
 * Kernel locks as world cells: a mutex or spinlock holds its owner (thread
 * tid + 1, 0 = free); an rwsem (mmap_lock) holds its writer and its reader
 * count. A blocked acquire is a false guard, hence a disabled step. Each
 * thread keeps the set of lock ids it holds (`held`, a bitmask) and whether it
 * runs in atomic context (`atomic`: a non-blockable notifier callback, or a
 * spinlock held), so sleeping in atomic context is checkable: a step that may
 * sleep records the offender in the `sleptInAtomic` ghost.
 */
import { ModelError } from '../../explorer/errors.js'
import type { Step } from '../process.js'
import { array, u8 } from '../schema.js'

export type LockKind = 'mutex' | 'spinlock' | 'rwsem'

export interface LockDecl {
  readonly name: string
  readonly kind: LockKind
}

export const lockFields = (locks: readonly LockDecl[]) => ({
  lockOwner: array(locks.length, u8()),
  lockReaders: array(locks.length, u8()),
  /** Ghost: tid + 1 of a thread that slept (or might have) in atomic context. */
  sleptInAtomic: u8(),
  /** Ghost, lockdep's dependency graph on this run: bit j of lockOrder[i] = lock j was taken while holding lock i. */
  lockOrder: array(locks.length, u8()),
})

/** Locals every thread that takes locks carries. */
export const lockLocals = { tid: u8(), held: u8(), atomic: u8() }

export interface LockWorld {
  lockOwner: number[] | Int16Array
  lockReaders: number[] | Int16Array
  sleptInAtomic: number
  lockOrder: number[] | Int16Array
}
export interface LockHolder {
  tid: number
  held: number
  atomic: number
}

const lockVerb = (kind: LockKind): string => (kind === 'rwsem' ? 'down_write' : kind === 'spinlock' ? 'spin_lock' : 'mutex_lock')

export class Locks {
  constructor(readonly decls: readonly LockDecl[]) {
    if (decls.length > 8) throw new Error('Locks: at most 8 lock classes')
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

  /** down_read guard: no writer. */
  readable(w: LockWorld, id: number): boolean {
    return w.lockOwner[id] === 0
  }

  /** mutex_lock, spin_lock, down_write: call only when `free`. */
  lock(w: LockWorld, me: LockHolder, id: number): void {
    if (!this.free(w, id)) throw new ModelError(`${this.decls[id].name} taken while not free`)
    if (this.decls[id].kind !== 'spinlock') this.mightSleep(w, me)
    this.depend(w, me, id)
    w.lockOwner[id] = me.tid + 1
    me.held |= 1 << id
    if (this.decls[id].kind === 'spinlock') me.atomic++
  }

  /** mutex_trylock, spin_trylock, down_write_trylock: never sleeps. */
  trylock(w: LockWorld, me: LockHolder, id: number): boolean {
    if (!this.free(w, id)) return false
    w.lockOwner[id] = me.tid + 1
    me.held |= 1 << id
    if (this.decls[id].kind === 'spinlock') me.atomic++
    return true
  }

  /** down_read: call only when `readable`. */
  readLock(w: LockWorld, me: LockHolder, id: number): void {
    this.mightSleep(w, me)
    this.depend(w, me, id)
    w.lockReaders[id]++
    me.held |= 1 << id
  }

  /** down_read_trylock. */
  readTrylock(w: LockWorld, me: LockHolder, id: number): boolean {
    if (!this.readable(w, id)) return false
    w.lockReaders[id]++
    me.held |= 1 << id
    return true
  }

  unlock(w: LockWorld, me: LockHolder, id: number): void {
    if (w.lockOwner[id] !== me.tid + 1) throw new ModelError(`${this.decls[id].name} released by a thread that does not own it`)
    w.lockOwner[id] = 0
    me.held &= ~(1 << id)
    if (this.decls[id].kind === 'spinlock') me.atomic--
  }

  readUnlock(w: LockWorld, me: LockHolder, id: number): void {
    if ((me.held & (1 << id)) === 0 || w.lockReaders[id] === 0) throw new ModelError(`${this.decls[id].name} read-released by a non-holder`)
    w.lockReaders[id]--
    me.held &= ~(1 << id)
  }

  /**
   * The step `mutex_lock(&name)` (or spin_lock / down_write): enabled only
   * while the lock is free; `then` is the next label.
   */
  lockStep<W extends LockWorld, L extends LockHolder, T extends string = string>(id: number, then: T | ((w: W, me: L) => T)): Step<W, L, T> {
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
    for (let i = 0; i < this.decls.length; i++) if (me.held & (1 << i)) w.lockOrder[i] |= 1 << id
  }

  /** might_sleep(): record the first thread that sleeps in atomic context. */
  mightSleep(w: LockWorld, me: LockHolder): void {
    if (me.atomic > 0 && w.sleptInAtomic === 0) w.sleptInAtomic = me.tid + 1
  }
}
