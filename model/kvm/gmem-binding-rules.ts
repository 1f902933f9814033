/**
 * When may KVM map a guest_memfd-backed gfn range with one huge leaf? The
 * rules of seed 003 ("KVM: Disallow hugepages for incompatible gmem bindings,
 * but let 'em succeed"), as pure arithmetic so that the exploration
 * (scaled down) and the layout analyzer (at full scale) share them.
 *
 * A memslot binds gfns [baseGfn, baseGfn + npages) to file pages
 * [pgoff, pgoff + npages): index = pgoff + (gfn - baseGfn)
 * (kvm_gmem_get_pfn). A huge leaf of `level` pages at an aligned gfn range
 * must, whatever the policy, fit KVM's own limits (`kvmLimitsAllow`:
 * lpage_info from kvm_alloc_memslot_metadata): the range lies wholly inside
 * the slot, and base_gfn and the user address are congruent modulo the
 * level. The policies then differ:
 */

export type BindingPolicy = 'whole-binding' | 'interior-hugepages' | 'no-clamp'

export interface Binding {
  readonly baseGfn: number
  readonly npages: number
  readonly pgoff: number
  /** userspace_addr >> PAGE_SHIFT, when the slot has one (gmem slots keep it for shared memory). */
  readonly ugfn?: number
}

/**
 * KVM's own limits, whatever the policy (kvm_alloc_memslot_metadata's
 * lpage_info, which __kvm_mmu_max_mapping_level reads before it looks at
 * private memory): the aligned range [start, start + level) lies wholly
 * inside the slot (head/tail disallow_lpage), and base_gfn and the user
 * address are congruent modulo the level (else every huge page of that level
 * is disallowed in the slot).
 */
export function kvmLimitsAllow(slot: Binding, start: number, level: number): boolean {
  const uaOk = slot.ugfn === undefined || (((slot.baseGfn - slot.ugfn) % level) + level) % level === 0
  return uaOk && start % level === 0 && start >= slot.baseGfn && start + level <= slot.baseGfn + slot.npages
}

/** gfn and file index congruent modulo the huge size: the aligned gfn range maps an aligned index range, inside one folio of that size. */
export function congruent(slot: Binding, level: number): boolean {
  return (((slot.baseGfn - slot.pgoff) % level) + level) % level === 0
}

/**
 * May the aligned range at `start` be one leaf of `level` pages, given that
 * the file's folio there is big enough (`folioPages` >= level)?
 * - whole-binding (the 2023 patch): only if the whole binding is aligned:
 *   pgoff and npages multiples of the folio size (`*max_order = 0` otherwise).
 *   It does not compare base_gfn with pgoff;
 * - interior-hugepages (what Sean concludes KVM must support): the range is
 *   inside the slot and gfn and index are congruent, so it lies inside one folio;
 * - no-clamp: the folio's order with no binding check (must be caught).
 */
export function hugepageAllowed(policy: BindingPolicy, slot: Binding, start: number, level: number, folioPages: number): boolean {
  if (folioPages < level || !kvmLimitsAllow(slot, start, level)) return false
  switch (policy) {
    case 'whole-binding':
      // As posted: the binding's pgoff and npages only. A slot whose base_gfn is not congruent with an
      // aligned pgoff passes this check too, and then maps misaligned indices (hence `congruent` below).
      return slot.pgoff % folioPages === 0 && slot.npages % folioPages === 0
    case 'interior-hugepages':
      return congruent(slot, level)
    case 'no-clamp':
      return true
  }
}

