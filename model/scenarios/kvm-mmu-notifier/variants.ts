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
]
