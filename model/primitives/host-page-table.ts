/**
 * The VMM's host page table over the region's uaddr range: one PTE cell per
 * region page (the pfn mapped at start_uaddr + i, 0 = none) and, per
 * huge-aligned uaddr block, whether a PMD maps it. A huge host mapping needs
 * the uaddr block aligned and inside the VMA, and one huge folio whose head
 * is mapped at the block's first uaddr (so pfn and uaddr are both aligned).
 */
import { array, u8 } from '../schema.js'
import { blockFirstIndex, blockInVma, type Layout } from './layout.js'
import { allocHuge, allocSmall, folioHead, FRAME_HUGE, type Memory } from './folio.js'

export const hostPageTableFields = (l: Layout) => ({
  pte: array(l.N, u8()),
  pmd: array(l.blocks, u8(1)),
})

export interface HostPageTable {
  pte: number[] | Int16Array
  pmd: number[] | Int16Array
}

/** Can the page fault at block b allocate a THP (do_huge_pmd_anonymous_page)? Aligned, inside the VMA, and nothing mapped there yet. */
export function thpEligible(l: Layout, pt: HostPageTable, b: number): boolean {
  if (!blockInVma(l, b)) return false
  const first = blockFirstIndex(l, b)
  for (let k = 0; k < l.HP; k++) if (pt.pte[first + k] !== 0) return false
  return true
}

/** Faults in block b with a fresh THP mapped by a PMD. */
export function faultHuge(l: Layout, pt: HostPageTable, m: Memory, b: number): void {
  const head = allocHuge(m, l.H)
  const first = blockFirstIndex(l, b)
  for (let k = 0; k < l.HP; k++) pt.pte[first + k] = head + k
  pt.pmd[b] = 1
}

/** Faults in one small page (handle_pte_fault on an empty PTE). */
export function faultSmall(pt: HostPageTable, m: Memory, i: number): void {
  if (pt.pte[i] === 0) pt.pte[i] = allocSmall(m)
}

/** Checks the host rule: a PMD maps exactly one huge folio, head at the block's first uaddr. */
export function pmdWellFormed(l: Layout, pt: HostPageTable, m: Memory, b: number): boolean {
  if (pt.pmd[b] !== 1) return true
  const first = blockFirstIndex(l, b)
  const head = pt.pte[first]
  if (head === 0 || m.frame[head] !== FRAME_HUGE || folioHead(m, head, l.H) !== head) return false
  for (let k = 1; k < l.HP; k++) if (pt.pte[first + k] !== head + k) return false
  return true
}

/** Does any PTE still map a page of pfn's folio (folio_mapped())? A folio is freed only when it is not. */
export function folioMapped(l: Layout, pt: HostPageTable, m: Memory, pfn: number): boolean {
  const head = folioHead(m, pfn, l.H)
  const n = m.frame[pfn] === FRAME_HUGE ? l.HP : 1
  for (let i = 0; i < l.N; i++) if (pt.pte[i] >= head && pt.pte[i] < head + n) return true
  return false
}

/**
 * hmm_pfn_to_map_order(): the order of the CPU mapping of region page i as
 * hmm_range_fault() reports it (HMM_PFN_ORDER from hmm_vma_handle_pmd): H for
 * a PMD mapping, else 0, even when the folio behind a PTE mapping is huge
 * (a THP whose PMD was split, or one mapped at a misaligned uaddr).
 */
export function hmmPfnToMapOrder(l: Layout, pt: HostPageTable, i: number): number {
  const b = Math.floor((l.startUaddr + i) / l.HP) - Math.floor(l.startUaddr / l.HP)
  return pt.pmd[b] === 1 ? l.H : 0
}
