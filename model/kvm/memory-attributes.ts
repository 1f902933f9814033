/**
 * KVM's memory attributes and the lpage_info they feed, as
 * arch/x86/kvm/mmu/mmu.c and virt/kvm/kvm_main.c have them for
 * KVM_SET_MEMORY_ATTRIBUTES (kvm_vm_set_mem_attributes):
 *
 *   mutex_lock(&kvm->slots_lock)
 *   kvm_handle_gfn_range(pre_set_range):  KVM_MMU_LOCK, kvm_mmu_invalidate_begin,
 *       kvm_pre_set_memory_attributes: kvm_mmu_invalidate_range_add(start, end),
 *       kvm_arch_pre_set_memory_attributes: the straddling hugepage ranges
 *       (2025), kvm_unmap_gfn_range
 *   xa_store(&kvm->mem_attr_array, ...)   the attributes change
 *   kvm_handle_gfn_range(post_set_range): KVM_MMU_LOCK, kvm_mmu_invalidate_end,
 *       kvm_arch_post_set_memory_attributes: hugepage_set_mixed/clear per block
 *
 * so lpage_info's KVM_LPAGE_MIXED_FLAG lags the attributes by a step, and a
 * fault reads it (kvm_mmu_hugepage_adjust -> kvm_mmu_max_mapping_level)
 * under mmu_lock. One memslot [0, pages) in the model's gfns; level k's
 * blocks are `levels[k]` pages, their flags at `mixedOffset[k]` in
 * `lpageMixed`.
 */
import { alignDown } from '../primitives/layout.js'
import { mmuInvalidateRangeAdd, type KvmInvalidation } from './invalidation.js'

export interface LpageLevels {
  /** Leaf sizes in pages by level: [1, 2^H, ...]. */
  readonly levels: readonly number[]
  /** Where each huge level's flags start in `lpageMixed` (level 0 has none). */
  readonly mixedOffset: readonly number[]
  /** The memslot's gfns: [0, pages). */
  readonly pages: number
}

export interface AttributeWorld {
  attr: number[] | Int16Array
  lpageMixed: number[] | Int16Array
}

const cell = (l: LpageLevels, level: number, gfn: number): number => l.mixedOffset[level] + Math.floor(gfn / l.levels[level])

/** hugepage_test_mixed(slot, gfn, level). */
export const hugepageTestMixed = (l: LpageLevels, w: AttributeWorld, level: number, gfn: number): boolean => w.lpageMixed[cell(l, level, gfn)] !== 0

/** hugepage_has_attrs: the block of `level` at `start` has one attribute throughout (the lower levels' flags are implied by it). */
function hugepageHasAttrs(l: LpageLevels, w: AttributeWorld, level: number, start: number): boolean {
  for (let g = start; g < start + l.levels[level]; g++) if (w.attr[g] !== w.attr[start]) return false
  return true
}

/**
 * kvm_arch_post_set_memory_attributes for [start, end): every huge block
 * the range touches gets its mixed flag recomputed from the attributes
 * (hugepage_set_mixed / hugepage_clear_mixed). Called under mmu_lock.
 */
export function kvmArchPostSetMemoryAttributes(l: LpageLevels, w: AttributeWorld, start: number, end: number): void {
  for (let level = 1; level < l.levels.length; level++) {
    const n = l.levels[level]
    for (let b = alignDown(start, n); b < end; b += n) {
      if (b + n > l.pages) break
      w.lpageMixed[cell(l, level, b)] = hugepageHasAttrs(l, w, level, b) ? 0 : 1
    }
  }
}

/** kvm_mmu_init_memslot_memory_attributes: the flags as the attributes are at memslot creation. */
export const kvmMmuInitMemslotMemoryAttributes = (l: LpageLevels, w: AttributeWorld): void => kvmArchPostSetMemoryAttributes(l, w, 0, l.pages)

/**
 * kvm_mmu_max_mapping_level's lpage_info part: the largest leaf (pages) at
 * gfn, at most `maxPages`, whose block lies in the slot and is not mixed.
 */
export function lpageMaxMapping(l: LpageLevels, w: AttributeWorld, gfn: number, maxPages: number): number {
  for (let level = l.levels.length - 1; level > 0; level--) {
    const n = l.levels[level]
    if (n > maxPages) continue
    const b = alignDown(gfn, n)
    if (b + n <= l.pages && !hugepageTestMixed(l, w, level, gfn)) return n
  }
  return 1
}

/**
 * kvm_arch_pre_set_memory_attributes' hugepage ranges (Sean
 * Christopherson, 2025): for each huge level, if the head (and the tail)
 * hugepage of [start, end) lies in the slot, is not wholly inside the
 * range, and currently allows a hugepage (not mixed), add it to the ongoing
 * invalidation, "to prevent KVM from creating a hugepage in response to a
 * fault for a gfn whose attributes aren't changing". Before it, only
 * [start, end) was added (kvm_pre_set_memory_attributes), so a neighbour's
 * fault could map a hugepage over the converted gfn.
 */
export function kvmArchPreSetHugepageRanges(l: LpageLevels, w: AttributeWorld & KvmInvalidation, start: number, end: number): void {
  for (let level = 1; level < l.levels.length; level++) {
    const n = l.levels[level]
    const head = alignDown(start, n)
    const tail = alignDown(end - 1, n)
    if ((head !== start || head + n > end) && head + n <= l.pages && !hugepageTestMixed(l, w, level, head)) mmuInvalidateRangeAdd(w, head, head + n)
    if (tail === head) continue
    if (tail + n > end && tail + n <= l.pages && !hugepageTestMixed(l, w, level, tail)) mmuInvalidateRangeAdd(w, tail, tail + n)
  }
}
