/**
 * One conversion of one page between private and shared.
 *
 * Mainline (`conversion_lock: 'slots_lock'`): KVM_SET_MEMORY_ATTRIBUTES,
 * kvm_vm_set_mem_attributes (virt/kvm/kvm_main.c) under kvm->slots_lock:
 * the pre_set range (kvm_mmu_invalidate_begin, range_add of the page and of
 * the straddling hugepages, kvm_unmap_gfn_range), the attribute store, the
 * post_set range (kvm_mmu_invalidate_end, lpage_info's mixed flags).
 *
 * The series of seed 002 (`'filemap_invalidate_lock'`): KVM_SET_MEMORY_ATTRIBUTES2
 * on the gmem fd, __kvm_gmem_set_attributes under filemap_invalidate_lock:
 * kvm_gmem_invalidate_begin, then, private -> shared only, the S-EPT split
 * and the folio split (hugetlb_restructuring_split_folio, 2^2H -> 4K
 * uniformly) in the variant's order, the zap of the page, the attribute
 * store, kvm_gmem_invalidate_end with the lpage_info update.
 */
import { mmuInvalidateBegin, mmuInvalidateEnd, mmuInvalidateRangeAdd } from '../../kvm/invalidation.js'
import { kvmArchPostSetMemoryAttributes } from '../../kvm/memory-attributes.js'
import { process } from '../../process.js'
import { u8 } from '../../schema.js'
import { PRIVATE, SHARED, unmapGfnRange, type ConversionContext, type ConversionWorld as W, type RestructureStep } from './world.js'

type ConvLocals = { target: number; to: number }
type Label = 'lock' | 'kvm_gmem_invalidate_begin' | RestructureStep | 'kvm_gmem_zap' | 'set_attributes' | 'kvm_gmem_invalidate_end' | 'done'

export function convert(ctx: ConversionContext) {
  const { l } = ctx
  const gmem = ctx.conversion_lock === 'filemap_invalidate_lock'
  const toShared = (me: ConvLocals) => me.to === SHARED
  /** The step after `label` on the way to the zap (only private -> shared restructures: a shared page needs its own 4K folio). */
  const next = (label: 'kvm_gmem_invalidate_begin' | RestructureStep, me: ConvLocals): Label => {
    if (!toShared(me)) return 'kvm_gmem_zap'
    const i = label === 'kvm_gmem_invalidate_begin' ? -1 : ctx.restructure.indexOf(label)
    return i + 1 < ctx.restructure.length ? ctx.restructure[i + 1] : 'kvm_gmem_zap'
  }
  const restructuring = {
      /** Split the S-EPT so no leaf is larger than the folios will be. */
      split_sept: {
        run(w: W, me: ConvLocals) {
          ctx.split_sept(l, w, me.target)
          return next('split_sept', me)
        },
        text: () => 'split the S-EPT leaves',
      },
      /** 2^2H -> 4K uniformly; with restructure_may_fail it may stop after the first 2^H block (-ENOMEM) and the conversion fails. */
      hugetlb_restructuring_split_folio: {
        choices: () => (ctx.restructure_may_fail ? 2 : 1),
        run(w: W, me: ConvLocals, fail: number) {
          if (fail) {
            for (let p = 0; p < l.pages; p++) w.order[p] = p < l.levels[1] ? 0 : l.H
            return 'kvm_gmem_invalidate_end'
          }
          for (let p = 0; p < l.pages; p++) w.order[p] = 0
          return next('hugetlb_restructuring_split_folio', me)
        },
        text: (_w: W, _me: ConvLocals, fail: number) => (fail ? 'hugetlb_restructuring_split_folio: fails part way (-ENOMEM)' : 'hugetlb_restructuring_split_folio: to 4K folios'),
      },
  }
  return process<W, ConvLocals>({
    name: 'convert',
    locals: { target: u8(), to: u8(1) },
    start: 'lock',
    // next() computes these from the variant's restructure order.
    gotos: [...ctx.restructure, 'kvm_gmem_zap'],
    steps: {
      lock: {
        guard: (w) => (gmem ? w.invalidateLock === 0 && w.invalidateReaders === 0 : w.slotsLock === 0),
        choices: () => l.pages,
        run(w, me, page) {
          if (gmem) w.invalidateLock = 1
          else w.slotsLock = 1
          me.target = page
          me.to = w.attr[page] === PRIVATE ? SHARED : PRIVATE
          return 'kvm_gmem_invalidate_begin'
        },
        text: (w, _me, page) =>
          `${gmem ? 'KVM_SET_MEMORY_ATTRIBUTES2' : 'KVM_SET_MEMORY_ATTRIBUTES'}(gfn ${page} -> ${w.attr[page] === PRIVATE ? 'shared' : 'private'}): ${gmem ? 'filemap_invalidate_lock' : 'mutex_lock(&kvm->slots_lock)'}`,
      },
      /** Under mmu_lock: kvm_mmu_invalidate_begin, range_add of the page (kvm_pre_set_memory_attributes) and what kvm_arch_pre_set_memory_attributes adds. */
      kvm_gmem_invalidate_begin: {
        run(w, me) {
          mmuInvalidateBegin(w)
          w.invalidating++
          mmuInvalidateRangeAdd(w, me.target, me.target + 1)
          ctx.kvm_arch_pre_set_memory_attributes(l, w, me.target, me.target + 1)
          return next('kvm_gmem_invalidate_begin', me)
        },
        text: (_w, me) => `kvm_mmu_invalidate_begin; kvm_mmu_invalidate_range_add(gfn ${me.target}) and the straddling hugepages`,
      },
      ...Object.fromEntries(ctx.restructure.map((k) => [k, restructuring[k]])),
      /** kvm_mmu_unmap_gfn_range(gfn, gfn + 1): every leaf over the page goes, whole. */
      kvm_gmem_zap: {
        run(w, me) {
          unmapGfnRange(w, me.target, me.target + 1)
          return 'set_attributes'
        },
        text: (_w, me) => `kvm_mmu_unmap_gfn_range(gfn ${me.target})`,
      },
      set_attributes: {
        run(w, me) {
          w.attr[me.target] = me.to
          return 'kvm_gmem_invalidate_end'
        },
        text: (_w, me) => `attributes(gfn ${me.target}) = ${me.to === PRIVATE ? 'private' : 'shared'}`,
      },
      /** Under mmu_lock: kvm_mmu_invalidate_end, then kvm_arch_post_set_memory_attributes (the mixed flags); then the lock is dropped. */
      kvm_gmem_invalidate_end: {
        run(w, me) {
          mmuInvalidateEnd(w)
          w.invalidating--
          kvmArchPostSetMemoryAttributes(l, w, me.target, me.target + 1)
          if (gmem) w.invalidateLock = 0
          else w.slotsLock = 0
          return 'done'
        },
        text: () => `kvm_mmu_invalidate_end; kvm_arch_post_set_memory_attributes; ${gmem ? 'filemap_invalidate_unlock' : 'mutex_unlock(&kvm->slots_lock)'}`,
      },
    },
  })
}
