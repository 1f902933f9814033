/**
 * The patches of kvm-mmu-notifier: each removes one line of the kernel's
 * protection from `upstream`.
 */
import { mmuInvalidateRetrySeqOnly, type KvmInvalidation } from '../../kvm/invalidation.js'
import type { VariantSpec } from '../../scenario.js'
import { mmuLock, type KvmMmuContext } from './world.js'

export const kvmMmuPatches: VariantSpec<KvmMmuContext>[] = [
  {
    name: 'no-stale-check',
    description: 'kvm_tdp_mmu_page_fault without is_page_fault_stale(): after read_lock(&kvm->mmu_lock), straight to kvm_tdp_mmu_map',
    expect: { violates: ['no-stale-mapping', 'no-freed-page-mapped', 'mapping-within-folio'] },
    steps: {
      vcpu: {
        read_lock: mmuLock.readLockStep('kvm_mmu_hugepage_adjust'),
        is_page_fault_stale: null,
      },
    },
  },
  {
    name: 'no-in-progress-check',
    description:
      'mmu_invalidate_retry_gfn without its mmu_invalidate_in_progress test: a fault retries only when mmu_invalidate_seq moved, not while an invalidation of its gfn is in progress (the seq moves only at invalidate_range_end)',
    expect: { violates: ['no-stale-mapping', 'no-freed-page-mapped', 'mapping-within-folio'] },
    context: () => ({ mmu_invalidate_retry_gfn: mmuInvalidateRetrySeqOnly }),
  },
  {
    name: 'range-overwrite',
    description:
      'kvm_mmu_invalidate_range_add keeping only the last range instead of the union (as first posted with the gfn-range rework, caught in review): an invalidation over two memslots leaves the first slot unprotected (breaks with --param slots=2)',
    expect: { violates: [] },
    context: () => ({
      kvm_mmu_invalidate_range_add(w: KvmInvalidation, start: number, end: number) {
        w.mmuInvalidateRangeStart = start
        w.mmuInvalidateRangeEnd = end
      },
    }),
  },
  {
    name: 'memslot-swap-no-mn-wait',
    description:
      "kvm_swap_active_memslots without its rcuwait for mn_active_invalidate_count == 0 (the wait \"KVM: Block memslot updates across range_start() and range_end()\" added, 2021): a memslot swapped between a notifier's range_start and range_end makes kvm_handle_hva_range find a slot in one and not the other, so mmu_invalidate_in_progress is left raised or goes below zero (breaks with --param memslot_ops=1 or 2)",
    expect: [{ violates: [] }, { params: { memslot_ops: 1 }, violates: ['in-progress-balanced'] }, { params: { memslot_ops: 2 }, violates: ['in-progress-balanced'] }],
    context: () => ({ memslot_swap_may_proceed: () => true }),
  },
  {
    name: 'memslot-no-synchronize-srcu',
    description:
      'kvm_swap_active_memslots without synchronize_srcu: kvm_arch_flush_shadow_memslot zaps while a fault that looked the slot up before the INVALID swap still runs, and that fault maps after the zap, so its SPTE outlives the deleted slot, and once the slot is gone no notifier zaps it when the host frees the page (breaks with --param memslot_ops=1 or 2)',
    expect: [
      { violates: [] },
      { params: { memslot_ops: 1 }, violates: ['no-stale-mapping', 'no-freed-page-mapped', 'mapping-within-folio'] },
      { params: { memslot_ops: 2 }, violates: ['no-stale-mapping', 'no-freed-page-mapped', 'mapping-within-folio'] },
    ],
    context: () => ({ synchronize_srcu_done: () => true }),
  },
  {
    name: 'hlist-no-end-after-eagain',
    description:
      "mm/mmu_notifier.c before \"mm/mmu_notifiers: ensure range_end() is paired with range_start()\" (2021): when another subscriber fails the OOM reaper's non-blockable invalidate_range_start with -EAGAIN, the core returns without calling KVM's invalidate_range_end, so KVM's start stays unpaired: mmu_invalidate_in_progress and mn_active_invalidate_count stay raised (breaks with --param oom_reaps=1 --param subscribers=2 or 3)",
    expect: [
      { violates: [] },
      { params: { oom_reaps: 1, subscribers: 2 }, violates: ['in-progress-balanced'] },
      { params: { oom_reaps: 1, subscribers: 3 }, violates: ['in-progress-balanced'] },
    ],
    context: () => ({ mn_hlist_end_after_eagain: false }),
  },
]
