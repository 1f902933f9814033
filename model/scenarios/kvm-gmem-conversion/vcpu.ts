/**
 * A vCPU's private or shared fault on the guest_memfd range, the x86 TDP
 * path (arch/x86/kvm/mmu/mmu.c):
 *
 *   kvm_mmu_faultin_pfn: fault->mmu_seq = kvm->mmu_invalidate_seq; smp_rmb();
 *       mmu_invalidate_retry_gfn_unsafe -> RET_PF_RETRY;
 *       fault->is_private != kvm_mem_is_private(gfn) -> KVM_EXIT_MEMORY_FAULT
 *   kvm_gmem_get_pfn: filemap_invalidate_lock_shared; -EHWPOISON if the
 *       folio is poisoned; max_order = the folio's order
 *   read_lock(mmu_lock); is_page_fault_stale -> RET_PF_RETRY;
 *   kvm_tdp_mmu_map: kvm_mmu_hugepage_adjust (lpage_info, max_order), install
 *
 * The guest decides whether it accesses a gfn as private or shared; it does
 * so as the attributes say when it touches it (a guest that disagrees only
 * exits to userspace). RET_PF_RETRY and exits end the attempt; `faults`
 * bounds the attempts.
 */
import { isPageFaultStale } from '../../kvm/invalidation.js'
import { lpageMaxMapping } from '../../kvm/memory-attributes.js'
import { process } from '../../process.js'
import { u8 } from '../../schema.js'
import { alignDown, folioPoisoned, PRIVATE, type ConversionContext, type ConversionWorld as W } from './world.js'

type VcpuLocals = { gfn: number; priv: number; pages: number; seq: number; faults: number }

const kind = (priv: number): string => (priv === PRIVATE ? 'private' : 'shared')

export function vcpu(ctx: ConversionContext, faults: number) {
  const { l } = ctx
  const finish = (me: VcpuLocals): 'kvm_mmu_page_fault' | 'done' => {
    me.gfn = 0
    me.priv = 0
    me.pages = 0
    me.seq = 0
    me.faults++
    return me.faults < faults ? 'kvm_mmu_page_fault' : 'done'
  }
  /** The leaf kvm_mmu_hugepage_adjust settles on: lpage_info within max_order, and what the variant adds. */
  const level = (w: W, me: VcpuLocals): number => {
    let pages = lpageMaxMapping(l, w, me.gfn, me.pages)
    while (pages > 1 && !ctx.leaf_allowed(l, w, alignDown(me.gfn, pages), pages)) pages = l.levels[l.levels.indexOf(pages) - 1]
    return pages
  }
  const stale = (w: W, me: VcpuLocals): boolean => isPageFaultStale(w, me.seq, me.gfn, true, ctx.mmu_invalidate_retry_gfn)
  return process<W, VcpuLocals>()({
    name: 'vcpu',
    locals: { gfn: u8(), priv: u8(1), pages: u8(), seq: u8(), faults: u8() },
    start: 'kvm_mmu_page_fault',
    steps: {
      /** The guest touches a gfn (private or shared, as it believes the attributes are). */
      kvm_mmu_page_fault: {
        choices: () => l.pages,
        run(w, me, gfn) {
          if (w.ept[gfn].pfn !== 0) return finish(me) // mapped: spurious
          me.gfn = gfn
          me.priv = w.attr[gfn]
          return 'kvm_mmu_faultin_pfn'
        },
        text: (w, _me, gfn) => `${kind(w.attr[gfn])} fault at gfn ${gfn}${w.ept[gfn].pfn ? ' (mapped: spurious)' : ''}`,
      },
      kvm_mmu_faultin_pfn: {
        run(w, me) {
          me.seq = w.mmuInvalidateSeq
          if (ctx.mmu_invalidate_retry_gfn(w, me.seq, me.gfn)) return finish(me)
          if (w.attr[me.gfn] !== me.priv) return finish(me)
          return 'kvm_gmem_get_pfn'
        },
        text: (w, me) =>
          ctx.mmu_invalidate_retry_gfn(w, w.mmuInvalidateSeq, me.gfn)
            ? `kvm_mmu_faultin_pfn(gfn ${me.gfn}): mmu_invalidate_retry_gfn_unsafe: RET_PF_RETRY`
            : w.attr[me.gfn] !== me.priv
              ? `kvm_mmu_faultin_pfn(gfn ${me.gfn}): now ${kind(w.attr[me.gfn])}: KVM_EXIT_MEMORY_FAULT`
              : `kvm_mmu_faultin_pfn(gfn ${me.gfn}): mmu_seq ${w.mmuInvalidateSeq}`,
      },
      /** kvm_gmem_get_pfn under filemap_invalidate_lock_shared (waits for a conversion holding it). */
      kvm_gmem_get_pfn: {
        guard: (w) => w.invalidateLock === 0,
        run(w, me) {
          if (folioPoisoned(w, me.gfn)) return finish(me)
          me.pages = ctx.kvm_gmem_max_mapping(l, w, me.gfn)
          return 'kvm_tdp_mmu_map'
        },
        text: (w, me) =>
          folioPoisoned(w, me.gfn)
            ? `kvm_gmem_get_pfn(gfn ${me.gfn}) = -EHWPOISON`
            : `kvm_gmem_get_pfn(gfn ${me.gfn}): pfn ${l.basePfn + me.gfn}, max mapping ${ctx.kvm_gmem_max_mapping(l, w, me.gfn)} pages`,
      },
      /** read_lock(mmu_lock), is_page_fault_stale, kvm_tdp_mmu_map with kvm_mmu_hugepage_adjust, read_unlock. */
      kvm_tdp_mmu_map: {
        run(w, me) {
          if (stale(w, me) || w.ept[me.gfn].pfn !== 0) return finish(me)
          const pages = level(w, me)
          const start = alignDown(me.gfn, pages)
          for (let g = start; g < start + pages; g++) {
            w.ept[g].pfn = l.basePfn + g
            w.ept[g].pages = pages
            w.ept[g].priv = me.priv
          }
          return finish(me)
        },
        text: (w, me) => {
          if (stale(w, me)) return `is_page_fault_stale(gfn ${me.gfn}): RET_PF_RETRY`
          if (w.ept[me.gfn].pfn !== 0) return `kvm_tdp_mmu_map(gfn ${me.gfn}): RET_PF_SPURIOUS`
          const pages = level(w, me)
          return `kvm_tdp_mmu_map(gfn ${alignDown(me.gfn, pages)}, ${pages} pages, ${me.priv === PRIVATE ? 'S-EPT' : 'shared EPT'})`
        },
      },
    },
  })
}
