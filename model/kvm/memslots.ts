/**
 * KVM memslots over one VMA, static (no KVM_SET_USER_MEMORY_REGION while the
 * model runs): slot k maps gfns [baseGfn, baseGfn + npages) to user
 * addresses [userspaceAddr, ...), page for page. What the notifier and the
 * fault path ask of them:
 * - `hvaRangeToGfnRanges`: kvm_handle_hva_range's walk of the slots that
 *   intersect an hva range, each giving its gfn range (hva_to_gfn_memslot);
 * - `gfnToMemslot` / `gfnToHva`: __gfn_to_memslot, __gfn_to_hva_memslot;
 * - `lpageAllowed`: kvm_alloc_memslot_metadata's disallow_lpage at a level:
 *   the huge-aligned gfn block lies inside the slot, and gfn and hva are
 *   congruent modulo the huge size.
 * Scaled down like the rest: in small pages, a huge page of 2^H.
 */
import type { Layout } from '../primitives/layout.js'

export interface Memslot {
  readonly id: number
  readonly baseGfn: number
  readonly npages: number
  /** userspace_addr in small pages. */
  readonly userspaceAddr: number
}

/** `count` slots splitting a layout's pages (gfn startGfn + i at uaddr startUaddr + i) into consecutive, near-equal parts. */
export function memslotsOver(l: Layout, count: number): Memslot[] {
  const out: Memslot[] = []
  let at = 0
  for (let k = 0; k < count; k++) {
    const n = Math.floor((l.N * (k + 1)) / count) - at
    if (n <= 0) continue
    out.push({ id: k, baseGfn: l.startGfn + at, npages: n, userspaceAddr: l.startUaddr + at })
    at += n
  }
  return out
}

/** __gfn_to_memslot: the slot holding gfn, or undefined. */
export const gfnToMemslot = (slots: readonly Memslot[], gfn: number): Memslot | undefined =>
  slots.find((s) => gfn >= s.baseGfn && gfn < s.baseGfn + s.npages)

/** __gfn_to_hva_memslot. */
export const gfnToHva = (s: Memslot, gfn: number): number => s.userspaceAddr + (gfn - s.baseGfn)

/** kvm_handle_hva_range's slot walk: each slot intersecting [hvaStart, hvaEnd) with the gfn range it covers there. */
export function hvaRangeToGfnRanges(slots: readonly Memslot[], hvaStart: number, hvaEnd: number): { slot: Memslot; start: number; end: number }[] {
  const out: { slot: Memslot; start: number; end: number }[] = []
  for (const s of slots) {
    const lo = Math.max(hvaStart, s.userspaceAddr)
    const hi = Math.min(hvaEnd, s.userspaceAddr + s.npages)
    if (lo >= hi) continue
    out.push({ slot: s, start: s.baseGfn + (lo - s.userspaceAddr), end: s.baseGfn + (hi - s.userspaceAddr) })
  }
  return out
}

/** lpage_info's disallow_lpage for the huge level at gfn (kvm_alloc_memslot_metadata): may a 2^H leaf map gfn's block? */
export function lpageAllowed(slots: readonly Memslot[], H: number, gfn: number): boolean {
  const s = gfnToMemslot(slots, gfn)
  if (!s) return false
  const HP = 1 << H
  const first = gfn & ~(HP - 1)
  if (first < s.baseGfn || first + HP > s.baseGfn + s.npages) return false
  return ((s.baseGfn ^ s.userspaceAddr) & (HP - 1)) === 0
}
