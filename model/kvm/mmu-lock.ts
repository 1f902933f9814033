/**
 * kvm->mmu_lock on x86: an rwlock_t (KVM_HAVE_MMU_RWLOCK), a spinning
 * reader-writer lock. The TDP MMU's fault path takes it for read
 * (kvm_tdp_mmu_page_fault: read_lock), the notifier for write
 * (kvm_handle_hva_range: KVM_MMU_LOCK = write_lock). Either way the holder
 * runs with preemption disabled: nothing may sleep under it.
 *
 * Modelled on the Locks primitive without changing it: mmu_lock is declared
 * there as a `spinlock` (so write_lock is `Locks.lock`: atomic, never
 * sleeps, lockdep-ordered; `no-sleep-in-atomic` names it
 * `spin_lock(&kvm->mmu_lock)`), and this class adds the read side on the
 * same cells: readers count in `lockReaders`, a reader waits only for a
 * writer that holds the lock (qrwlock's writer-waiting bias, which only
 * matters for fairness, is not modelled), and a reader is atomic too.
 */
import type { Step } from '../process.js'
import type { LockHolder, Locks, LockWorld } from '../primitives/locks.js'

export class MmuLock {
  constructor(
    readonly locks: Locks,
    readonly id: number,
  ) {
    if (locks.decls[id]?.kind !== 'spinlock') throw new Error(`MmuLock: lock ${id} must be declared as a spinlock (a spinning rwlock)`)
    if (id >= 8) throw new Error('MmuLock: the lock id must be below 8 (held bitmask)')
  }

  private get name(): string {
    return this.locks.decls[this.id].name
  }

  /** write_lock guard: no writer, no reader. */
  writable(w: LockWorld): boolean {
    return this.locks.free(w, this.id)
  }

  /** read_lock guard: no writer holds it. */
  readable(w: LockWorld): boolean {
    return w.lockOwner[this.id] === 0
  }

  readLock(w: LockWorld, me: LockHolder): void {
    w.lockReaders[this.id]++
    me.held |= 1 << this.id
    me.atomic++
  }

  readUnlock(w: LockWorld, me: LockHolder): void {
    w.lockReaders[this.id]--
    me.held &= ~(1 << this.id)
    me.atomic--
  }

  /** Does `me` hold it (for read or write)? */
  holds(me: LockHolder): boolean {
    return (me.held & (1 << this.id)) !== 0
  }

  /** The step `write_lock(&kvm->mmu_lock)` (KVM_MMU_LOCK). */
  writeLockStep<W extends LockWorld, L extends LockHolder, T extends string = string>(then: T | ((w: W, me: L) => T)): Step<W, L, T> {
    return {
      targets: [then],
      guard: (w) => this.writable(w),
      run: (w, me) => {
        this.locks.lock(w, me, this.id)
        return typeof then === 'string' ? then : then(w, me)
      },
      text: () => `write_lock(&${this.name})`,
    }
  }

  /** The step `write_unlock(&kvm->mmu_lock)` (KVM_MMU_UNLOCK). */
  writeUnlockStep<W extends LockWorld, L extends LockHolder, T extends string = string>(then: T | ((w: W, me: L) => T)): Step<W, L, T> {
    return {
      targets: [then],
      run: (w, me) => {
        this.locks.unlock(w, me, this.id)
        return typeof then === 'string' ? then : then(w, me)
      },
      text: () => `write_unlock(&${this.name})`,
    }
  }

  /** The step `read_lock(&kvm->mmu_lock)`. */
  readLockStep<W extends LockWorld, L extends LockHolder, T extends string = string>(then: T | ((w: W, me: L) => T)): Step<W, L, T> {
    return {
      targets: [then],
      guard: (w) => this.readable(w),
      run: (w, me) => {
        this.readLock(w, me)
        return typeof then === 'string' ? then : then(w, me)
      },
      text: () => `read_lock(&${this.name})`,
    }
  }

  /** The step `read_unlock(&kvm->mmu_lock)`. */
  readUnlockStep<W extends LockWorld, L extends LockHolder, T extends string = string>(then: T | ((w: W, me: L) => T)): Step<W, L, T> {
    return {
      targets: [then],
      run: (w, me) => {
        this.readUnlock(w, me)
        return typeof then === 'string' ? then : then(w, me)
      },
      text: () => `read_unlock(&${this.name})`,
    }
  }
}
