/**
 * A review file: KVM's x86 TDP fault path (kvm_tdp_mmu_page_fault) with
 * is_page_fault_stale() dropped, as a patch that "simplifies" the fault
 * under read_lock(&kvm->mmu_lock) might propose: the pfn kvm_faultin_pfn
 * got outside mmu_lock is mapped without asking whether an mmu_notifier
 * invalidation ran (or is running) since fault->mmu_seq was read.
 *
 *   mapcheck check ./examples/kvm-drop-stale-check.ts     # VIOLATED no-stale-mapping
 *   mapcheck compare ./examples/kvm-drop-stale-check.ts   # against upstream and the other patches
 *
 * The patch is one step of the vCPU: is_page_fault_stale goes straight on
 * to kvm_mmu_hugepage_adjust, never to RET_PF_RETRY.
 */
import { kvmMmuNotifier, variant } from 'mapcheck'

export default variant(kvmMmuNotifier, {
  name: 'drop-stale-check',
  description: 'kvm_tdp_mmu_page_fault without the is_page_fault_stale() test: a stale pfn is mapped',
  steps: {
    vcpu: {
      is_page_fault_stale: {
        run: () => 'kvm_mmu_hugepage_adjust',
        text: () => 'is_page_fault_stale: (dropped)',
      },
    },
  },
})
