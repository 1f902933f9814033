/**
 * kvm-gmem-conversion's world: one guest_memfd range of 2^2H pages bound to
 * one memslot (gfn = file index), its folios, the (S-)EPT over it, the
 * memory attributes and lpage_info, KVM's invalidation bookkeeping
 * (model/kvm/invalidation.ts), the locks that serialize conversions, and
 * the context a variant may replace.
 *
 * Critical sections under kvm->mmu_lock are single steps: a writer's
 * (kvm_gmem_invalidate_begin/_end, the zap, kvm_gmem_error_folio) and a
 * fault's read-side section (is_page_fault_stale + kvm_tdp_mmu_map) never
 * interleave, as the rwlock guarantees, and nothing in them sleeps.
 */
import { kvmInvalidationFields, type KvmInvalidation, type RetryGfn } from '../../kvm/invalidation.js'
import { alignDown } from '../../primitives/layout.js'
import { array, struct, u8, type ValueOf } from '../../schema.js'

export const SHARED = 0
export const PRIVATE = 1

export interface ConversionLayout {
  readonly H: number
  /** Leaf sizes in pages, by level: 1 (4K), 2^H ("2M"), 2^2H ("1G"). */
  readonly levels: readonly number[]
  /** gfns (and file pages) of the range. */
  readonly pages: number
  /** The first pfn of the range (aligned to its size: the hugetlb folio's). */
  readonly basePfn: number
  /** Where each huge level's lpage_info starts in `lpageMixed` (index 0 unused: 4K has none). */
  readonly mixedOffset: readonly number[]
}

export function conversionLayout(H: number): ConversionLayout {
  const pages = 1 << (2 * H)
  const levels = [1, 1 << H, pages]
  const mixedOffset = [0, 0, pages >> H]
  return { H, levels, pages, basePfn: pages, mixedOffset }
}

export function conversionGlobals(l: ConversionLayout) {
  return {
    /** KVM_MEMORY_ATTRIBUTE_PRIVATE per gfn (kvm->mem_attr_array, or the gmem's shareability). */
    attr: array(l.pages, u8(PRIVATE)),
    /**
     * lpage_info's KVM_LPAGE_MIXED_FLAG per huge block (2^H blocks, then the
     * 2^2H one): set by kvm_arch_post_set_memory_attributes under mmu_lock
     * after the attributes change, so it can lag them.
     */
    lpageMixed: array(l.mixedOffset[2] + 1, u8(1)),
    /** Per file page: the order of the folio holding it (folios are naturally aligned; pfn = basePfn + page). */
    order: array(l.pages, u8()),
    hwpoison: array(l.pages, u8(1)),
    /** Ghost: a memory failure whose kvm_gmem_error_folio has not ended yet (the page is poisoned but may still be mapped). */
    mcePending: u8(1),
    /** The (S-)EPT: per gfn, the pfn mapped (0 = none), the leaf's size in pages, and whether it is private. */
    ept: array(l.pages, struct({ pfn: u8(), pages: u8(), priv: u8(1) })),
    ...kvmInvalidationFields(),
    /** Ghost: invalidations between their kvm_mmu_invalidate_begin and _end (for in-progress-balanced). */
    invalidating: u8(),
    /** filemap_invalidate_lock of the gmem inode: held for write, and the shared holders across steps. */
    invalidateLock: u8(1),
    invalidateReaders: u8(2),
    /** kvm->slots_lock, which serializes KVM_SET_MEMORY_ATTRIBUTES (kvm_vm_set_mem_attributes). */
    slotsLock: u8(1),
  }
}
export type ConversionGlobals = ReturnType<typeof conversionGlobals>
export type ConversionWorld = ValueOf<ConversionGlobals> & KvmInvalidation

/** The steps a private -> shared conversion runs before its zap, in order. */
export type RestructureStep = 'split_sept' | 'hugetlb_restructuring_split_folio'

/** What the processes are built from; a variant replaces entries. */
export interface ConversionContext {
  readonly l: ConversionLayout
  /** The folio order guest_memfd allocates (mainline: 0; the hugetlb-backed series: 2H, the whole range). */
  readonly folio_order: number
  /**
   * What serializes a conversion: mainline's KVM_SET_MEMORY_ATTRIBUTES
   * takes kvm->slots_lock; the series' KVM_SET_MEMORY_ATTRIBUTES2 on the
   * gmem fd takes filemap_invalidate_lock, which kvm_gmem_get_pfn takes
   * shared.
   */
  readonly conversion_lock: 'slots_lock' | 'filemap_invalidate_lock'
  /** What a private -> shared conversion does before the zap, in order (mainline: nothing). */
  readonly restructure: readonly RestructureStep[]
  /** The folio split may stop part way (-ENOMEM), abandoning the conversion. */
  readonly restructure_may_fail: boolean
  /** The S-EPT split of a conversion at `page`. */
  readonly split_sept: (l: ConversionLayout, w: ConversionWorld, page: number) => void
  /** kvm_gmem_get_pfn's max_order as the largest leaf (pages) a fault at gfn may map. */
  readonly kvm_gmem_max_mapping: (l: ConversionLayout, w: ConversionWorld, gfn: number) => number
  /** Beyond lpage_info and max_order: may a leaf of `pages` at `start` be installed? */
  readonly leaf_allowed: (l: ConversionLayout, w: ConversionWorld, start: number, pages: number) => boolean
  /** kvm_arch_pre_set_memory_attributes' additions to the ongoing invalidation for the range [start, end). */
  readonly kvm_arch_pre_set_memory_attributes: (l: ConversionLayout, w: ConversionWorld, start: number, end: number) => void
  /** kvm_gmem_error_folio splits the S-EPT to the folio's size before zapping. */
  readonly error_folio_splits: boolean
  /** mmu_invalidate_retry_gfn, as the fault path calls it. */
  readonly mmu_invalidate_retry_gfn: RetryGfn
}

// Every size here (a folio, a leaf) is a power of two: the layout primitive's mask does.
export { alignDown }

/** The folio containing page p: [first, first + n). */
export const folioOf = (w: ConversionWorld, p: number): { first: number; n: number } => {
  const n = 1 << w.order[p]
  return { first: alignDown(p, n), n }
}

/** kvm_gmem_get_pfn: -EHWPOISON when the folio holding the page is poisoned (folio_test_hwpoison). */
export function folioPoisoned(w: ConversionWorld, p: number): boolean {
  const { first, n } = folioOf(w, p)
  for (let g = first; g < first + n; g++) if (w.hwpoison[g]) return true
  return false
}

/** Demote every leaf of more than `to` pages in [lo, hi) to leaves of `to` pages (tdx_sept_split_private_spte / tdp_mmu_split_huge_page). */
export function splitLeaves(w: ConversionWorld, lo: number, hi: number, to: number): void {
  for (let g = lo; g < hi; g++) if (w.ept[g].pages > to) w.ept[g].pages = to
}

/** Demote the leaves around gfn, level by level, until the one holding gfn has at most `to` pages. */
export function splitAround(l: ConversionLayout, w: ConversionWorld, gfn: number, to: number): void {
  for (let k = l.levels.length - 1; k > 0 && l.levels[k] > to; k--) {
    const lo = alignDown(gfn, l.levels[k])
    splitLeaves(w, lo, lo + l.levels[k], l.levels[k - 1])
  }
}

/**
 * kvm_mmu_unmap_gfn_range -> tdp_mmu_zap_leafs over [lo, hi): every leaf
 * that intersects the range goes, a huge leaf whole (field by field: the
 * record may be a packed view). Returns whether anything was zapped.
 */
export function unmapGfnRange(w: ConversionWorld, lo: number, hi: number): boolean {
  let flush = false
  for (let g = lo; g < hi; g++) {
    const e = w.ept[g]
    if (e.pfn === 0) continue
    flush = true
    // Read the leaf's extent before clearing it: `e` is one of the records cleared.
    const pages = e.pages
    const start = alignDown(g, pages)
    for (let k = start; k < start + pages; k++) {
      const x = w.ept[k]
      x.pfn = 0
      x.pages = 0
      x.priv = 0
    }
  }
  return flush
}
