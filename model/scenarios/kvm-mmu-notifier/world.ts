/**
 * kvm-mmu-notifier's world: the host (folios, the VMM's page table over one
 * VMA), KVM's SPTEs and invalidation bookkeeping, mmu_lock, and the context
 * the processes are built from (what a patch may replace).
 */
import { memoryFields, type Memory } from '../../primitives/folio.js'
import { hostPageTableFields, type HostPageTable } from '../../primitives/host-page-table.js'
import { layout, type Layout } from '../../primitives/layout.js'
import { lockFields, lockLocals, Locks, type LockHolder } from '../../primitives/locks.js'
import { hlistLocals, type HlistLocals } from '../../primitives/mmu-notifier-hlist.js'
import { kvmInvalidationFields, type KvmInvalidation, type RetryGfn } from '../../kvm/invalidation.js'
import type { Memslot } from '../../kvm/memslots.js'
import { memslotUpdateFields, type MemslotOp, type MemslotWorld } from '../../kvm/memslot-update.js'
import { MmuLock } from '../../kvm/mmu-lock.js'
import { spteFields, type HostLevel, type Sptes } from '../../kvm/tdp-fault.js'
import type { Params } from '../../scenario.js'
import { array, u8, type ValueOf } from '../../schema.js'

/** kvm->mmu_lock, an rwlock_t on x86: declared a spinlock in Locks, its read side in MmuLock. */
export const MMU_LOCK = 0
/** The VMM's mm->mmap_lock: MADV_DONTNEED and the OOM reaper hold it for read, khugepaged's collapse for write, a fault's slow get_user_pages waits for a writer. */
export const MMAP_LOCK = 1
export const kvmLocks = new Locks([
  { name: 'kvm->mmu_lock', kind: 'spinlock' },
  { name: 'mm->mmap_lock', kind: 'rwsem' },
])
export const mmuLock = new MmuLock(kvmLocks, MMU_LOCK)

export function kvmMmuGlobals(l: Layout, frames: number, vcpus: number, slots = 1) {
  return {
    ...memoryFields(frames),
    ...hostPageTableFields(l),
    ...spteFields(l),
    ...kvmInvalidationFields(),
    ...memslotUpdateFields(slots, vcpus),
    ...lockFields(kvmLocks.decls),
    /** Per vCPU: the page kvm_faultin_pfn holds a reference to until kvm_release_faultin_page (0 = none). */
    pageRef: array(vcpus, u8()),
    /** Ghost: host invalidations between mmu_notifier_invalidate_range_start and _end. */
    invalidating: u8(),
  }
}
export type KvmMmuGlobals = ReturnType<typeof kvmMmuGlobals>
export type KvmMmuWorld = ValueOf<KvmMmuGlobals> & Memory & HostPageTable & Sptes & KvmInvalidation & MemslotWorld

export const kvmMmuLayout = (p: Params): Layout => layout(p.H, p.pages, 0, 0)

export const hex = (n: number): string => `0x${n.toString(16)}`

export const vcpuLocals = {
  ...lockLocals,
  /** Index of this vCPU (its pageRef cell). */
  vcpu: u8(),
  /** Region page of the faulting gfn (gfn = startGfn + i). */
  gfn: u8(),
  touched: u8(),
  /** fault->mmu_seq */
  seq: u8(),
  /** fault->pfn */
  pfn: u8(),
  /** fault->goal_level */
  level: u8(1),
  /** RET_PF_RETRY */
  retry: u8(1),
  /** fault->slot, as the fault looked it up in its SRCU read section: the slot id + 1 (0 = no memslot). */
  slot: u8(),
}
export type VcpuLocals = LockHolder & { vcpu: number; gfn: number; touched: number; seq: number; pfn: number; level: number; retry: number; slot: number }

export const eventLocals = (l: Layout) => ({
  ...lockLocals,
  ...hlistLocals,
  /** The invalidated hva range, as region pages [lo, lo + cnt). */
  lo: u8(),
  cnt: u8(),
  /** The folio the event works on (its head pfn). */
  folio: u8(),
  /** Folios to put after invalidate_range_end. */
  old: array(l.HP, u8()),
})
export type EventLocals = HlistLocals & { lo: number; cnt: number; folio: number; old: number[] | Int16Array }

/** What the processes are built from; a patch replaces entries. */
export interface KvmMmuContext {
  readonly l: Layout
  readonly slots: readonly Memslot[]
  readonly frames: number
  readonly vcpus: number
  readonly touches: number
  /** mmu_invalidate_retry_gfn, as is_page_fault_stale and kvm_faultin_pfn's lockless check call it. */
  readonly mmu_invalidate_retry_gfn: RetryGfn
  /** kvm_mmu_invalidate_range_add(kvm, start, end) (gfns). */
  readonly kvm_mmu_invalidate_range_add: (w: KvmInvalidation, start: number, end: number) => void
  /** host_pfn_mapping_level, as kvm_mmu_hugepage_adjust reads it. */
  readonly host_pfn_mapping_level: HostLevel
  /** The VMM's KVM_SET_USER_MEMORY_REGION calls (none by default). */
  readonly memslotOps: readonly MemslotOp[]
  /** kvm_swap_active_memslots' rcuwait condition: mn_active_invalidate_count == 0. */
  readonly memslot_swap_may_proceed: (w: KvmInvalidation) => boolean
  /** synchronize_srcu's condition in kvm_swap_active_memslots: no fault still reads the memslots from before the swap. */
  readonly synchronize_srcu_done: (w: MemslotWorld) => boolean
  /** The mm's classic subscriber list: 1 = KVM alone, 2 = KVM then another subscriber, 3 = the other then KVM. */
  readonly subscribers: number
  /** mn_hlist_invalidate_range_start calls every subscriber's invalidate_range_end after a failed non-blockable start. */
  readonly mn_hlist_end_after_eagain: boolean
}

/** Does a vCPU hold a reference (kvm_faultin_pfn's) to a page of the folio [head, head + n)? */
export function refHeld(w: KvmMmuWorld, head: number, n: number): boolean {
  for (let v = 0; v < w.pageRef.length; v++) if (w.pageRef[v] >= head && w.pageRef[v] < head + n) return true
  return false
}
