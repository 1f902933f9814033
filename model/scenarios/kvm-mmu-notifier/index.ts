/**
 * KVM's mmu_notifier against the x86 TDP MMU on ordinary (non-private)
 * memory: host mm events on the VMM's VMA (MADV_DONTNEED, migration,
 * __split_huge_pmd, split_folio, khugepaged's collapse, the OOM reaper)
 * invalidate through the mm's classic subscriber list
 * (mn_hlist_invalidate_range_start/end, model/primitives/mmu-notifier-hlist.ts)
 * into kvm_mmu_notifier_invalidate_range_start/end (host-events.ts) while
 * vCPUs fault gfns in (vcpu.ts): mmu_invalidate_seq, kvm_faultin_pfn,
 * read_lock(mmu_lock), is_page_fault_stale, kvm_mmu_hugepage_adjust,
 * kvm_tdp_mmu_map; the VMM may delete and re-create a memslot
 * (kvm_set_memslot, model/kvm/memslot-update.ts). The invalidation
 * bookkeeping, mmu_lock, the memslots and the fault helpers are the
 * primitives of model/kvm/.
 *
 * `upstream` is the newest kernel (range-precise mmu_invalidate_retry_gfn
 * with the union of kvm_mmu_invalidate_range_add); each other variant
 * removes one line of its protection (variants.ts).
 *
 * Scaled down: a huge page is 2^H small pages; region page i is gfn
 * 2^H + i at hva 2^H + i.
 */
import { BadInput } from '../../../explorer/errors.js'
import { initMemory } from '../../primitives/folio.js'
import { kvmInvalidationInit, memslotSwapMayProceed, mmuInvalidateRangeAdd, mmuInvalidateRetryGfn } from '../../kvm/invalidation.js'
import { kvmSetMemslotProcess, memslotsInit, srcuGracePeriodOver, type MemslotOp } from '../../kvm/memslot-update.js'
import { memslotsOver } from '../../kvm/memslots.js'
import { hostPfnMappingLevel, kvmUnmapGfnRange } from '../../kvm/tdp-fault.js'
import type { Params, Scenario } from '../../scenario.js'
import { hostEvents } from './host-events.js'
import { kvmMmuPatches } from './variants.js'
import { vcpu } from './vcpu.js'
import { kvmMmuGlobals, kvmMmuLayout, mmuLock, type KvmMmuContext, type KvmMmuWorld } from './world.js'

export { kvmLocks, kvmMmuGlobals, kvmMmuLayout, mmuLock, MMU_LOCK, refHeld } from './world.js'
export type { EventLocals, KvmMmuContext, KvmMmuGlobals, KvmMmuWorld, VcpuLocals } from './world.js'

export const kvmMmuNotifier: Scenario<KvmMmuContext> = {
  name: 'kvm-mmu-notifier',
  title: 'KVM mmu_notifier invalidation vs x86 TDP faults on ordinary memory',
  description:
    'kvm_mmu_notifier_invalidate_range_start/end (mmu_invalidate_begin/range_add/end, mn_active_invalidate_count), called through the mm\'s subscriber list, under host zaps, migration, THP splits, khugepaged collapses, the OOM reaper and memslot updates (kvm_set_memslot), against the TDP fault path (mmu_invalidate_seq, kvm_faultin_pfn, read_lock(mmu_lock), is_page_fault_stale, kvm_mmu_hugepage_adjust with host_pfn_mapping_level).',
  params: [
    { name: 'H', default: 1, min: 1, max: 2, description: 'huge order: a huge page is 2^H small pages (9 on x86-64)' },
    { name: 'pages', default: 4, min: 1, max: 8, description: 'VMA size in small pages' },
    { name: 'slots', default: 1, min: 1, max: 2, description: 'memslots over the VMA (consecutive parts, gfn and hva congruent)' },
    { name: 'vcpus', default: 1, min: 1, max: 3, description: 'vCPU fault threads' },
    { name: 'touches', default: 1, min: 1, max: 2, description: 'gfns each vCPU faults in' },
    { name: 'zaps', default: 1, min: 0, max: 2, description: 'MADV_DONTNEED zaps' },
    { name: 'migrations', default: 0, min: 0, max: 2, description: 'page migrations' },
    { name: 'splits', default: 0, min: 0, max: 2, description: 'PMD splits (__split_huge_pmd: the THP stays whole, PTE-mapped)' },
    { name: 'folio_splits', default: 0, min: 0, max: 2, description: 'folio splits (split_folio)' },
    { name: 'collapses', default: 0, min: 0, max: 2, description: 'khugepaged collapses (collapse_huge_page: PTE-mapped pages of a block copied into a new THP)' },
    { name: 'subscribers', default: 1, min: 1, max: 3, description: "the mm's classic mmu_notifier list: 1 KVM alone, 2 KVM then another subscriber whose non-blockable start may fail (-EAGAIN), 3 that subscriber then KVM" },
    { name: 'oom_reaps', default: 0, min: 0, max: 1, description: 'OOM reaper passes over the VMA (__oom_reap_task_mm: a non-blockable invalidation of the whole VMA)' },
    { name: 'memslot_ops', default: 0, min: 0, max: 2, description: "the VMM's KVM_SET_USER_MEMORY_REGION calls on the last memslot: 1 deletes it, 2 deletes and re-creates it" },
  ],
  variants: [{ name: 'upstream', description: 'the newest kernel: range-precise mmu_invalidate_retry_gfn, union of ranges, is_page_fault_stale', expect: { violates: [] } }, ...kvmMmuPatches],
  processes: ['vcpu', 'madvise_dontneed', 'oom_reaper', 'migrate_pages', 'split_huge_pmd', 'khugepaged', 'split_folio', 'vmm'],
  memoryMap(p: Params) {
    const l = kvmMmuLayout(p)
    return {
      rows: l.N,
      firstGfn: l.startGfn,
      hugePages: l.HP,
      frames: 'frame',
      lanes: [
        // spteLevel: PG_LEVEL_4K (0) or PG_LEVEL_2M (1), a leaf of 2^(level * H) pages.
        { kind: 'leaf', label: 'SPTE (TDP MMU)', field: 'spte', orderField: 'spteLevel', toOrder: (level: number) => level * l.H },
        { kind: 'host', label: 'host page table', pte: 'pte', pmd: 'pmd', firstUaddr: l.startUaddr },
      ],
    }
  },
  context(p: Params): KvmMmuContext {
    const l = kvmMmuLayout(p)
    const allocs = l.N * (1 + p.zaps) + p.migrations + p.collapses + p.vcpus * p.touches + 1
    const slots = memslotsOver(l, p.slots)
    const last = slots[slots.length - 1].id
    const memslotOps: MemslotOp[] = [
      { kind: 'delete' as const, id: last },
      { kind: 'create' as const, id: last },
    ].slice(0, p.memslot_ops)
    const frames = 2 + 2 * l.HP * allocs
    if (frames > 255) throw new BadInput(`these bounds need ${frames} frames; at most 255 fit a byte: lower pages, H or the event counts`)
    return {
      l,
      slots,
      memslotOps,
      memslot_swap_may_proceed: memslotSwapMayProceed,
      synchronize_srcu_done: srcuGracePeriodOver,
      subscribers: p.subscribers,
      mn_hlist_end_after_eagain: true,
      frames,
      vcpus: p.vcpus,
      touches: p.touches,
      mmu_invalidate_retry_gfn: mmuInvalidateRetryGfn,
      kvm_mmu_invalidate_range_add: mmuInvalidateRangeAdd,
      host_pfn_mapping_level: (l2, pt, _m, i) => hostPfnMappingLevel(l2, pt, i),
    }
  },
  build(p: Params, _variant: string, ctx: KvmMmuContext) {
    const fault = vcpu(ctx)
    const threads = [
      ...Array.from({ length: p.vcpus }, (_, k) => ({ name: `vcpu${k}`, process: fault, locals: { vcpu: k } })),
      ...hostEvents(ctx, p).map((t) => ({ ...t, locals: {} as Record<string, number> })),
      ...(ctx.memslotOps.length > 0 ? [{ name: 'vmm', process: vmm(ctx), locals: {} as Record<string, number> }] : []),
    ].map((t, tid) => ({ ...t, locals: { ...t.locals, tid } }))
    return {
      globals: kvmMmuGlobals(ctx.l, ctx.frames, p.vcpus, ctx.slots.length),
      init(world) {
        const w = world as KvmMmuWorld
        initMemory(w)
        kvmInvalidationInit(w)
        memslotsInit(
          w,
          ctx.slots.map((s) => s.id),
        )
      },
      threads,
    }
  },
}

/** The VMM's memslot updates (kvm_set_memslot); the flush zaps the slot's SPTEs (kvm_mmu_zap_memslot; x86's default quirk zaps every SPTE, a superset). */
function vmm(ctx: KvmMmuContext) {
  const { l } = ctx
  return kvmSetMemslotProcess<KvmMmuWorld>('vmm', {
    slots: ctx.slots,
    ops: ctx.memslotOps,
    mmuLock,
    flush: (w, s) => {
      kvmUnmapGfnRange(l, w, s.baseGfn - l.startGfn, s.baseGfn - l.startGfn + s.npages)
    },
    swapMayProceed: (w) => ctx.memslot_swap_may_proceed(w),
    gracePeriodOver: (w) => ctx.synchronize_srcu_done(w),
  })
}
