/**
 * Memslot updates from the VMM as virt/kvm/kvm_main.c carries them out
 * (kvm_set_memslot, since the 5.17 memslot rework), and the SRCU read side
 * of the faults that use the memslots meanwhile.
 *
 * Each slot keeps its geometry (a `Memslot` of memslots.ts, one per id);
 * what changes is which struct the active memslot array holds for it:
 * none, the valid slot, or the INVALID copy (KVM_MEMSLOT_INVALID) that a
 * deletion installs first. A swap of the active array is
 * kvm_swap_active_memslots:
 *
 *   spin_lock(&kvm->mn_invalidate_lock);
 *   prepare_to_rcuwait(&kvm->mn_memslots_update_rcuwait);
 *   while (kvm->mn_active_invalidate_count) { ... schedule(); ... }
 *   finish_rcuwait(...);
 *   rcu_assign_pointer(kvm->memslots[as_id], slots);
 *   spin_unlock(&kvm->mn_invalidate_lock);
 *   ...
 *   synchronize_srcu_expedited(&kvm->srcu);
 *
 * The kernel's comment on the wait: "Do not store the new memslots while
 * there are invalidations in progress, otherwise the locking in
 * invalidate_range_start and invalidate_range_end will be unbalanced."
 * kvm_handle_hva_range walks the memslots afresh in range_start and in
 * range_end, and takes mmu_lock and calls on_lock (kvm_mmu_invalidate_begin
 * / _end) only when the walk finds a memslot (since "KVM: Take mmu_lock when
 * handling MMU notifier iff the hva hits a memslot", 2021, which needed
 * "KVM: Block memslot updates across range_start() and range_end()"): a
 * swap between the two makes start and end disagree, so
 * mmu_invalidate_in_progress is left raised (a deletion: every later fault
 * in the old range retries forever) or goes below zero (a creation).
 * kvm_mmu_notifier_invalidate_range_end's rcuwait_wake_up, when
 * mn_active_invalidate_count reaches 0, is what ends the wait.
 *
 * kvm_set_memslot, in steps:
 *   KVM_MR_DELETE: kvm_invalidate_memslot (swap in the INVALID copy; the
 *     swap's synchronize_srcu waits for the faults that looked the old slot
 *     up; kvm_arch_flush_shadow_memslot zaps its SPTEs), then
 *     kvm_delete_memslot -> kvm_activate_memslot (swap the slot out).
 *   KVM_MR_CREATE: kvm_create_memslot -> kvm_activate_memslot (swap it in).
 * A fault looks its memslot up once, in its SRCU read section
 * (kvm_mmu_do_page_fault: fault.slot = kvm_vcpu_gfn_to_memslot) and keeps
 * that struct to the end: it never sees a later swap.
 */
import { process, type Process } from '../process.js'
import { lockLocals, type LockHolder, type LockWorld } from '../primitives/locks.js'
import { array, u8 } from '../schema.js'
import { memslotSwapMayProceed, type KvmInvalidation } from './invalidation.js'
import type { Memslot } from './memslots.js'
import type { MmuLock } from './mmu-lock.js'

/** Not in the active memslot array. */
export const MEMSLOT_NONE = 0
/** The slot as userspace set it. */
export const MEMSLOT_VALID = 1
/** The copy kvm_invalidate_memslot installs: KVM_MEMSLOT_INVALID set; faults that find it retry. */
export const MEMSLOT_INVALID = 2

export const memslotUpdateFields = (slots: number, vcpus: number) => ({
  /** Per slot id: which struct the active array holds for it (MEMSLOT_NONE/VALID/INVALID). */
  memslotState: array(slots, u8(MEMSLOT_INVALID)),
  /** Swaps so far (the generation, halved: kvm_swap_active_memslots bumps it once per swap here). */
  memslotsGen: u8(),
  /** Per vCPU: 0 outside an SRCU read section, else 1 + the generation it entered under. */
  srcuReader: array(vcpus, u8()),
})

export interface MemslotWorld {
  memslotState: number[] | Int16Array
  memslotsGen: number
  srcuReader: number[] | Int16Array
}

/** kvm_create_vm plus the VMM's first KVM_SET_USER_MEMORY_REGIONs: every slot valid, nobody in a read section. */
export function memslotsInit(w: MemslotWorld, valid: readonly number[]): void {
  for (let s = 0; s < w.memslotState.length; s++) w.memslotState[s] = valid.includes(s) ? MEMSLOT_VALID : MEMSLOT_NONE
  w.memslotsGen = 0
  for (let v = 0; v < w.srcuReader.length; v++) w.srcuReader[v] = 0
}

/** The slots in the active array: what kvm_handle_hva_range walks (INVALID copies included: they still get zapped). */
export function activeMemslots(all: readonly Memslot[], w: MemslotWorld, states: readonly number[] = [MEMSLOT_VALID, MEMSLOT_INVALID]): Memslot[] {
  return all.filter((s) => states.includes(w.memslotState[s.id]))
}

/** kvm_vcpu_gfn_to_memslot on the active array: the slot holding gfn (valid or INVALID), or undefined. */
export function vcpuGfnToMemslot(all: readonly Memslot[], w: MemslotWorld, gfn: number): Memslot | undefined {
  return activeMemslots(all, w).find((s) => gfn >= s.baseGfn && gfn < s.baseGfn + s.npages)
}

/** kvm_vcpu_srcu_read_lock: `vcpu` reads the memslots of the current generation until it unlocks. */
export function srcuReadLock(w: MemslotWorld, vcpu: number): void {
  w.srcuReader[vcpu] = w.memslotsGen + 1
}

/** kvm_vcpu_srcu_read_unlock. */
export function srcuReadUnlock(w: MemslotWorld, vcpu: number): void {
  w.srcuReader[vcpu] = 0
}

/** synchronize_srcu's wait: no reader still in a section it entered before the latest swap (later readers do not hold it up). */
export function srcuGracePeriodOver(w: MemslotWorld): boolean {
  for (let v = 0; v < w.srcuReader.length; v++) if (w.srcuReader[v] !== 0 && w.srcuReader[v] - 1 < w.memslotsGen) return false
  return true
}

/** kvm_swap_active_memslots' rcu_assign_pointer: slot `id` becomes `state` in the active array. */
export function swapActiveMemslots(w: MemslotWorld, id: number, state: number): void {
  w.memslotState[id] = state
  w.memslotsGen++
}

/** One KVM_SET_USER_MEMORY_REGION of the VMM: delete slot `id` (size 0) or create it again with its geometry. */
export interface MemslotOp {
  readonly kind: 'delete' | 'create'
  readonly id: number
}

export interface VmmLocals extends LockHolder {
  /** Index of the op in progress. */
  op: number
  /** Which swap comes next: SWAP_INVALID, SWAP_DELETE or SWAP_CREATE. */
  swap: number
}

const SWAP_INVALID = 1
const SWAP_DELETE = 2
const SWAP_CREATE = 3

export const vmmLocals = { ...lockLocals, op: u8(), swap: u8(SWAP_CREATE) }

export interface KvmSetMemslotOptions<W> {
  /** The slots' geometry, by id. */
  readonly slots: readonly Memslot[]
  readonly ops: readonly MemslotOp[]
  readonly mmuLock: MmuLock
  /** kvm_arch_flush_shadow_memslot, run under write_lock(&kvm->mmu_lock): zap the slot's SPTEs. */
  readonly flush: (w: W, slot: Memslot) => void
  /** kvm_swap_active_memslots' rcuwait condition (default memslotSwapMayProceed: mn_active_invalidate_count == 0). */
  readonly swapMayProceed?: (w: W) => boolean
  /** synchronize_srcu's condition (default srcuGracePeriodOver). */
  readonly gracePeriodOver?: (w: W) => boolean
}

/**
 * The VMM thread's KVM_SET_USER_MEMORY_REGION calls, in order, as
 * kvm_set_memslot carries them out. Labels: kvm_set_memory_region (the
 * ioctl), kvm_swap_active_memslots (its rcuwait on
 * mn_active_invalidate_count, then rcu_assign_pointer), synchronize_srcu,
 * kvm_arch_flush_shadow_memslot.
 */
export function kvmSetMemslotProcess<W extends MemslotWorld & KvmInvalidation & LockWorld>(name: string, o: KvmSetMemslotOptions<W>): Process<W, VmmLocals> {
  const mayProceed = o.swapMayProceed ?? ((w: W) => memslotSwapMayProceed(w))
  const graceOver = o.gracePeriodOver ?? ((w: W) => srcuGracePeriodOver(w))
  const slot = (me: VmmLocals): Memslot => o.slots[o.ops[me.op].id]
  const next = (me: VmmLocals): string => {
    me.op++
    me.swap = 0
    return me.op < o.ops.length ? 'kvm_set_memory_region' : 'done'
  }
  const swapText = ['', 'INVALID copy', 'slot deleted', 'slot created']
  return process<W, VmmLocals>({
    name,
    locals: vmmLocals,
    start: 'kvm_set_memory_region',
    gotos: ['kvm_set_memory_region'],
    steps: {
      kvm_set_memory_region: {
        run(_w, me) {
          // KVM_MR_DELETE starts with kvm_invalidate_memslot's swap to the INVALID copy; KVM_MR_CREATE with kvm_activate_memslot's.
          me.swap = o.ops[me.op].kind === 'delete' ? SWAP_INVALID : SWAP_CREATE
          return 'kvm_swap_active_memslots'
        },
        text: (_w, me) => {
          const s = slot(me)
          return o.ops[me.op].kind === 'delete'
            ? `KVM_SET_USER_MEMORY_REGION slot ${s.id} size 0 (KVM_MR_DELETE): kvm_invalidate_memslot`
            : `KVM_SET_USER_MEMORY_REGION slot ${s.id} (KVM_MR_CREATE): gfn 0x${s.baseGfn.toString(16)}, ${s.npages} pages`
        },
      },
      /** The rcuwait for mn_active_invalidate_count == 0 (woken by kvm_mmu_notifier_invalidate_range_end), then rcu_assign_pointer. */
      kvm_swap_active_memslots: {
        guard: (w) => mayProceed(w),
        run(w, me) {
          swapActiveMemslots(w, slot(me).id, me.swap === SWAP_INVALID ? MEMSLOT_INVALID : me.swap === SWAP_DELETE ? MEMSLOT_NONE : MEMSLOT_VALID)
          return 'synchronize_srcu'
        },
        text: (w, me) => `kvm_swap_active_memslots (mn_active_invalidate_count ${w.mnActiveInvalidateCount}): slot ${slot(me).id} ${swapText[me.swap]}`,
      },
      /** synchronize_srcu_expedited(&kvm->srcu): the readers that may still use the old array finish. */
      synchronize_srcu: {
        guard: (w) => graceOver(w),
        run(_w, me) {
          return me.swap === SWAP_INVALID ? 'kvm_arch_flush_shadow_memslot' : next(me)
        },
      },
      /** kvm_arch_flush_shadow_memslot under write_lock(&kvm->mmu_lock) (x86: kvm_mmu_zap_memslot). */
      kvm_arch_flush_shadow_memslot: {
        guard: (w) => o.mmuLock.writable(w),
        run(w, me) {
          o.flush(w, slot(me))
          // kvm_delete_memslot -> kvm_activate_memslot: the second swap.
          me.swap = SWAP_DELETE
          return 'kvm_swap_active_memslots'
        },
        text: (_w, me) => `kvm_arch_flush_shadow_memslot(slot ${slot(me).id}): zap its SPTEs; kvm_delete_memslot`,
      },
    },
  })
}
