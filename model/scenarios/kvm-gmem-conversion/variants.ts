/**
 * The variants of kvm-gmem-conversion as patches of `upstream`: the series
 * of seed 002 (hugetlb-backed guest_memfd, in-place conversion) and the
 * positions of its thread, each a change of context.
 */
import type { VariantSpec } from '../../scenario.js'
import { splitAround, type ConversionContext } from './world.js'

/** The series: one 2^2H hugetlb folio, conversions on the gmem fd under filemap_invalidate_lock. */
const series = (ctx: ConversionContext): Partial<ConversionContext> => ({ folio_order: 2 * ctx.l.H, conversion_lock: 'filemap_invalidate_lock' })

export const conversionPatches: VariantSpec<ConversionContext>[] = [
  {
    name: 'split-ept-first',
    expect: { violates: [] },
    description: 'the series: on sharing, split the S-EPT to 4K, then the folio (mapping never exceeds folio)',
    context: ({ ctx }) => ({ ...series(ctx), restructure: ['split_sept', 'hugetlb_restructuring_split_folio'] }),
  },
  {
    name: 'split-folio-first',
    expect: { violates: ['mapping-within-folio'] },
    description: 'the series: on sharing, split the folio, then the S-EPT (a window where mapping > folio)',
    context: ({ ctx }) => ({ ...series(ctx), restructure: ['hugetlb_restructuring_split_folio', 'split_sept'] }),
  },
  {
    name: 'contiguous-multi-folio',
    expect: { violates: ['mapping-within-folio', 'no-freed-page-mapped'] },
    description: 'one huge mapping may span split folios that are contiguous and homogeneous; only the leaves around the converted page are split',
    context: ({ ctx }) => ({
      ...series(ctx),
      restructure: ['hugetlb_restructuring_split_folio', 'split_sept'],
      split_sept: (l, w, page) => splitAround(l, w, page, 1),
      // The memory of a split hugetlb folio stays contiguous: max_order is the original folio's.
      kvm_gmem_max_mapping: (l) => l.pages,
    }),
  },
  {
    name: 'restructure-may-fail',
    expect: { violates: [] },
    from: 'split-ept-first',
    description: 'split-ept-first where the folio split can fail part way (-ENOMEM) and the conversion is abandoned',
    context: () => ({ restructure_may_fail: true }),
  },
  {
    name: 'contiguous-error-split',
    expect: { violates: ['mapping-within-folio', 'no-freed-page-mapped'] },
    from: 'contiguous-multi-folio',
    description: 'contiguous-multi-folio, plus kvm_gmem_error_folio splitting the S-EPT to the folio size before zapping (what Yan says smaller folios would require)',
    context: () => ({ error_folio_splits: true }),
  },
  {
    name: 'contiguous-checked',
    expect: { violates: ['mapping-within-folio'] },
    from: 'contiguous-error-split',
    description: 'contiguous-error-split, plus the fault checking every folio under the leaf for hwpoison',
    context: () => ({
      leaf_allowed: (_l, w, start, pages) => {
        for (let g = start; g < start + pages; g++) if (w.hwpoison[g]) return false
        return true
      },
    }),
  },
  {
    name: 'page-range-only',
    expect: { violates: ['mapping-within-folio', 'homogeneous-attributes', 'no-shared-mapped-private'] },
    from: 'split-ept-first',
    description:
      'split-ept-first on a KVM before the 2025 kvm_arch_pre_set_memory_attributes change: only the converted gfn is added to the invalidation, so a neighbour fault may map a hugepage over it while the conversion runs',
    context: () => ({ kvm_arch_pre_set_memory_attributes: () => {} }),
  },
]
