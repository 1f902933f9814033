/**
 * The x86 TDP MMU's side of ordinary (non-private) guest memory, scaled
 * down: one SPTE per region page i (gfn startGfn + i, hva startUaddr + i),
 * holding the pfn it maps (0 = not present) and its level (0 = 4K, 1 = a
 * 2^H leaf, written on each page of its block with pfn head + k). And the
 * fault path's helpers, each one kernel function (arch/x86/kvm/mmu/mmu.c,
 * tdp_mmu.c, virt/kvm/kvm_main.c):
 * - `faultinChoices` / `hvaToPfn`: kvm_faultin_pfn -> __kvm_faultin_pfn ->
 *   hva_to_pfn: get_user_pages faults the page in if the host maps nothing
 *   (do_huge_pmd_anonymous_page when the block is eligible: a THP mapped by
 *   a PMD, else one small page); outside mmu_lock, and it may sleep;
 * - `hostPfnMappingLevel`: host_pfn_mapping_level, a walk of the host page
 *   table: 2M only when a PMD maps the hva (a PTE-mapped THP gives 4K);
 * - `kvmMmuHugepageAdjust`: kvm_mmu_hugepage_adjust ->
 *   kvm_mmu_max_mapping_level: lpage_info (the memslot) then the host
 *   level; a huge goal level aligns the pfn down (fault->pfn &= ~mask);
 * - `kvmTdpMmuMap`: kvm_tdp_mmu_map at the goal level (a present leaf at
 *   the faulting gfn is RET_PF_SPURIOUS);
 * - `kvmUnmapGfnRange`: kvm_unmap_gfn_range -> kvm_tdp_mmu_unmap_gfn_range
 *   -> tdp_mmu_zap_leafs: every leaf intersecting [start, end), a huge leaf
 *   whole.
 */
import { faultHuge, faultSmall, thpEligible, type HostPageTable } from '../primitives/host-page-table.js'
import type { Memory } from '../primitives/folio.js'
import { blockOf, type Layout } from '../primitives/layout.js'
import { array, u8 } from '../schema.js'
import { lpageAllowed, type Memslot } from './memslots.js'

export const PG_LEVEL_4K = 0
export const PG_LEVEL_2M = 1

export const spteFields = (l: Layout) => ({
  spte: array(l.N, u8()),
  spteLevel: array(l.N, u8(PG_LEVEL_2M)),
})

export interface Sptes {
  spte: number[] | Int16Array
  spteLevel: number[] | Int16Array
}

/** How many ways hva_to_pfn can go at region page i: a present PTE is read; an empty one faults in a THP (if eligible) or a small page. */
export function faultinChoices(l: Layout, pt: HostPageTable, i: number): number {
  if (pt.pte[i] !== 0) return 1
  return thpEligible(l, pt, blockOf(l, i)) ? 2 : 1
}

/** hva_to_pfn (via get_user_pages / handle_mm_fault): the pfn the host maps at region page i, faulting it in first (choice 1: a THP). */
export function hvaToPfn(l: Layout, pt: HostPageTable, m: Memory, i: number, choice: number): number {
  if (pt.pte[i] === 0) {
    if (choice === 1) faultHuge(l, pt, m, blockOf(l, i))
    else faultSmall(pt, m, i)
  }
  return pt.pte[i]
}

/** host_pfn_mapping_level: the level the host maps region page i at (PMD -> 2M, PTE -> 4K, nothing -> 4K). */
export function hostPfnMappingLevel(l: Layout, pt: HostPageTable, i: number): number {
  return pt.pte[i] !== 0 && pt.pmd[blockOf(l, i)] === 1 ? PG_LEVEL_2M : PG_LEVEL_4K
}

/** How kvm_mmu_hugepage_adjust reads the host's level: host_pfn_mapping_level, or a replacement a variant proposes. */
export type HostLevel = (l: Layout, pt: HostPageTable, m: Memory, i: number) => number

/**
 * kvm_mmu_hugepage_adjust: the goal level and the pfn to map at region page
 * i (gfn), given the pfn kvm_faultin_pfn got: the memslot's lpage_info
 * allows the huge level, and the host maps it at that level.
 */
export function kvmMmuHugepageAdjust(
  l: Layout,
  slots: readonly Memslot[],
  pt: HostPageTable,
  m: Memory,
  i: number,
  pfn: number,
  hostLevel: HostLevel = (l2, pt2, _m, i2) => hostPfnMappingLevel(l2, pt2, i2),
): { level: number; pfn: number } {
  const gfn = l.startGfn + i
  if (pfn === 0 || !lpageAllowed(slots, l.H, gfn)) return { level: PG_LEVEL_4K, pfn }
  const level = Math.min(PG_LEVEL_2M, hostLevel(l, pt, m, i))
  if (level === PG_LEVEL_4K) return { level, pfn }
  return { level, pfn: pfn & ~(l.HP - 1) }
}

/** The region page of the first gfn of i's huge block. */
export const spteBlockFirst = (l: Layout, i: number): number => i - ((l.startGfn + i) & (l.HP - 1))

/** kvm_tdp_mmu_map: installs the leaf; returns false for RET_PF_SPURIOUS (a leaf is already present at i). */
export function kvmTdpMmuMap(l: Layout, s: Sptes, i: number, level: number, pfn: number): boolean {
  if (s.spte[i] !== 0) return false
  if (level === PG_LEVEL_4K) {
    s.spte[i] = pfn
    s.spteLevel[i] = PG_LEVEL_4K
    return true
  }
  const first = spteBlockFirst(l, i)
  for (let k = 0; k < l.HP; k++) {
    s.spte[first + k] = pfn + k
    s.spteLevel[first + k] = PG_LEVEL_2M
  }
  return true
}

/** kvm_unmap_gfn_range over region pages [lo, hi): every leaf that intersects it, a huge leaf whole; returns whether anything was zapped (flush). */
export function kvmUnmapGfnRange(l: Layout, s: Sptes, lo: number, hi: number): boolean {
  let flush = false
  for (let i = Math.max(0, lo); i < Math.min(hi, l.N); i++) {
    if (s.spte[i] === 0) continue
    flush = true
    if (s.spteLevel[i] === PG_LEVEL_2M) {
      const first = spteBlockFirst(l, i)
      for (let k = 0; k < l.HP; k++) {
        s.spte[first + k] = 0
        s.spteLevel[first + k] = PG_LEVEL_4K
      }
    } else s.spte[i] = 0
  }
  return flush
}
