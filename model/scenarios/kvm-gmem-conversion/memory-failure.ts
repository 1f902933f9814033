/**
 * memory_failure() on one page, then kvm_gmem_error_folio (virt/kvm/guest_memfd.c):
 *
 *   filemap_invalidate_lock_shared(mapping)
 *   kvm_gmem_invalidate_begin(folio range): kvm_mmu_invalidate_begin,
 *       range_add, kvm_mmu_unmap_gfn_range -> tdp_mmu_zap_leafs: every leaf
 *       intersecting the folio's range, a larger leaf whole (an over-zap
 *       of private pages outside the folio, not a surviving mapping)
 *   kvm_gmem_invalidate_end: kvm_mmu_invalidate_end
 *   filemap_invalidate_unlock_shared(mapping)
 *
 * The range is not truncated: a later fault on the poisoned page gets
 * -EHWPOISON from kvm_gmem_get_pfn.
 */
import { mmuInvalidateBegin, mmuInvalidateEnd, mmuInvalidateRangeAdd } from '../../kvm/invalidation.js'
import { process } from '../../process.js'
import { u8 } from '../../schema.js'
import { folioOf, splitAround, unmapGfnRange, type ConversionContext, type ConversionWorld as W } from './world.js'

export function memoryFailure(ctx: ConversionContext) {
  const { l } = ctx
  return process<W, { page: number; first: number; n: number }>()({
    name: 'memory_failure',
    locals: { page: u8(), first: u8(), n: u8() },
    start: 'memory_failure',
    steps: {
      memory_failure: {
        choices: () => l.pages,
        run(w, me, page) {
          w.hwpoison[page] = 1
          w.mcePending = 1
          me.page = page
          return 'kvm_gmem_invalidate_begin'
        },
        text: (_w, _me, page) => `memory_failure(pfn ${l.basePfn + page})`,
      },
      /** filemap_invalidate_lock_shared, then kvm_gmem_invalidate_begin over the folio's range, under mmu_lock. */
      kvm_gmem_invalidate_begin: {
        guard: (w) => w.invalidateLock === 0,
        run(w, me) {
          w.invalidateReaders++
          const { first, n } = folioOf(w, me.page)
          me.first = first
          me.n = n
          mmuInvalidateBegin(w)
          w.invalidating++
          mmuInvalidateRangeAdd(w, first, first + n)
          // A variant of the series splits the S-EPT to the folio's size first, so the zap takes only the folio.
          if (ctx.error_folio_splits) splitAround(l, w, first, n)
          unmapGfnRange(w, first, first + n)
          return 'kvm_gmem_invalidate_end'
        },
        text: (w, me) => {
          const { first, n } = folioOf(w, me.page)
          return `kvm_gmem_error_folio(folio of ${n} pages at pfn ${l.basePfn + first}): kvm_gmem_invalidate_begin, kvm_mmu_unmap_gfn_range(gfn ${first}..${first + n - 1})`
        },
      },
      kvm_gmem_invalidate_end: {
        run(w) {
          mmuInvalidateEnd(w)
          w.invalidating--
          w.invalidateReaders--
          w.mcePending = 0
          return 'done'
        },
        text: () => 'kvm_gmem_invalidate_end; filemap_invalidate_unlock_shared',
      },
    },
  })
}
