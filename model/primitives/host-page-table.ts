/**
 * The VMM's host page table over the region's uaddr range: one PTE cell per
 * region page (the pfn mapped at start_uaddr + i, 0 = none) and, per
 * huge-aligned uaddr block, whether a PMD maps it. A huge host mapping needs
 * the uaddr block aligned and inside the VMA, and one huge folio whose head
 * is mapped at the block's first uaddr (so pfn and uaddr are both aligned).
 */
import { array, u8 } from '../schema.js'
import { blockFirstIndex, blockInVma, blockOf, edgeBlocks, type Layout } from './layout.js'
import { allocFolio, allocHuge, allocSmall, folioHead, folioOrder, folioPages, FRAME_HUGE, type Memory } from './folio.js'

export const hostPageTableFields = (l: Layout) => ({
  pte: array(l.N, u8()),
  pmd: array(l.blocks, u8(1)),
})

export interface HostPageTable {
  pte: number[] | Int16Array
  pmd: number[] | Int16Array
  /**
   * With a VMA margin (l.vmaMargin): per region edge (0: the block of page
   * 0, 1: the block of page N - 1, as edgeBlocks), the pfn mapped at that
   * block's first uaddr while its pages outside the region are mapped (a
   * THP that straddles the edge: those pages are pfn .. in order), else 0.
   * Nothing in the model touches the VMA outside the region but the THP
   * that put them there: they stay mapped, keeping their folio from being
   * freed, until khugepaged or a migration replaces the whole folio.
   */
  edgeOut?: number[] | Int16Array
}

/** The host page table's fields for a VMA larger than the region. */
export const vmaEdgeFields = () => ({ edgeOut: array(2, u8()) })

/** The pfns mapped outside the region at its edges (see HostPageTable.edgeOut). */
export function outsidePfns(l: Layout, pt: HostPageTable): number[] {
  if (!pt.edgeOut) return []
  const out: number[] = []
  edgeBlocks(l).forEach((b, e) => {
    const base = pt.edgeOut![e]
    if (b < 0 || base === 0) return
    const first = blockFirstIndex(l, b)
    for (let k = 0; k < l.HP; k++) if (first + k < 0 || first + k >= l.N) out.push(base + k)
  })
  return out
}

/** Can the page fault at block b allocate a THP (do_huge_pmd_anonymous_page)? Aligned, inside the VMA, and nothing mapped there yet. */
export function thpEligible(l: Layout, pt: HostPageTable, b: number): boolean {
  if (!blockInVma(l, b)) return false
  const first = blockFirstIndex(l, b)
  for (let k = Math.max(first, 0); k < Math.min(first + l.HP, l.N); k++) if (pt.pte[k] !== 0) return false
  // An edge block's pages outside the region must be none too.
  return edgeBlocks(l).every((eb, e) => eb !== b || !pt.edgeOut || pt.edgeOut[e] === 0)
}

/** Faults in block b with a fresh THP mapped by a PMD. */
export function faultHuge(l: Layout, pt: HostPageTable, m: Memory, b: number): void {
  const head = allocHuge(m, l.H)
  const first = blockFirstIndex(l, b)
  for (let k = Math.max(first, 0); k < Math.min(first + l.HP, l.N); k++) pt.pte[k] = head + (k - first)
  pt.pmd[b] = 1
  // A block that straddles an edge (a VMA margin): the THP's pages outside the region are mapped by the same PMD.
  edgeBlocks(l).forEach((eb, e) => {
    if (eb === b && pt.edgeOut) pt.edgeOut[e] = head
  })
}

/** Faults in one small page (handle_pte_fault on an empty PTE). */
export function faultSmall(pt: HostPageTable, m: Memory, i: number): void {
  if (pt.pte[i] === 0) pt.pte[i] = allocSmall(m)
}

/**
 * The region pages an order-`order` folio (an mTHP, or with a scenario's
 * `pud` an order-2H 1G folio) faulted at region page i would
 * cover: the 2^order-aligned uaddr range around it (alloc_anon_folio aligns
 * the fault address down to the folio size), or null when it is not
 * allowed: the range must lie inside the VMA (the region) and every PTE in
 * it must be none (pte_range_none), as alloc_anon_folio ->
 * thp_vma_suitable_order / pte_range_none require.
 */
export function mthpRange(l: Layout, pt: HostPageTable, i: number, order: number): { first: number; n: number } | null {
  const n = 1 << order
  const first = ((l.startUaddr + i) & ~(n - 1)) - l.startUaddr
  if (first < 0 || first + n > l.N) return null
  for (let k = 0; k < n; k++) if (pt.pte[first + k] !== 0) return null
  return { first, n }
}

/** do_anonymous_page with an mTHP of that order (alloc_anon_folio): a fresh folio, PTE-mapped over `mthpRange`. */
export function faultMthp(l: Layout, pt: HostPageTable, m: Memory, i: number, order: number): void {
  const r = mthpRange(l, pt, i, order)
  if (!r) throw new Error(`faultMthp: no order-${order} folio fits at region page ${i}`)
  const head = allocFolio(m, order, l.H)
  for (let k = 0; k < r.n; k++) pt.pte[r.first + k] = head + k
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
  const n = folioPages(m, pfn, l.H)
  for (let i = 0; i < l.N; i++) if (pt.pte[i] >= head && pt.pte[i] < head + n) return true
  return outsidePfns(l, pt).some((p) => p >= head && p < head + n)
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

// ---- the VMA and what hmm_range_fault() makes of it ----------------------------

/**
 * The VMA over the region's uaddr range, as far as hmm_range_fault() cares:
 * is there one (munmap detaches it), and may it be written (mprotect without
 * PROT_WRITE clears VM_WRITE and write-protects its PTEs).
 */
export const vmaFields = () => ({
  vmaPresent: u8(1),
  vmaWritable: u8(1),
})

export interface Vma {
  vmaPresent: number
  vmaWritable: number
}

/** The VMA as mmap() leaves it: present and writable (a program's init). */
export function vmaInit(v: Vma): void {
  v.vmaPresent = 1
  v.vmaWritable = 1
}

/** Why hmm_range_fault() fails on a page it must fault or write-fault, or null. */
export type HmmError = 'EFAULT' | 'EPERM' | null

/**
 * Whether hmm_range_fault() can hand out a page of the VMA with
 * HMM_PFN_REQ_FAULT (and HMM_PFN_REQ_WRITE when `write`), mm/hmm.c:
 * - no VMA: walk_page_range calls the pte_hole op with walk->vma == NULL, and
 *   hmm_vma_walk_hole returns -EFAULT when a fault is required;
 * - a VMA without VM_WRITE asked for write: hmm_pte_need_fault wants
 *   HMM_NEED_WRITE_FAULT (the PTE, write-protected by mprotect's
 *   change_protection, or none, lacks HMM_PFN_WRITE) and hmm_vma_fault
 *   returns -EPERM before it calls handle_mm_fault.
 */
export function hmmVmaError(v: Vma, write: boolean): HmmError {
  if (!v.vmaPresent) return 'EFAULT'
  if (write && !v.vmaWritable) return 'EPERM'
  return null
}

/**
 * What hmm_range_fault()'s walk reads at region page i in one go, as
 * [i, end): a PMD-mapped block is one pmdp_get_lockless() read
 * (hmm_vma_handle_pmd fills every pfn of the block the range covers); a
 * present PTE is one page (hmm_vma_handle_pte); an empty PTE is a fault
 * (hmm_vma_fault), so nothing is read (end = i). `limit` is the range's end.
 */
export function hmmWalkRead(l: Layout, pt: HostPageTable, i: number, limit: number): number {
  if (pt.pte[i] === 0) return i
  const b = blockOf(l, i)
  if (pt.pmd[b] === 1) return Math.min(blockFirstIndex(l, b) + l.HP, limit)
  return i + 1
}

/**
 * unmap_vmas() over region pages [lo, lo + cnt) (zap_pmd_range /
 * zap_pte_range): every PMD of a block the range touches and every PTE in it
 * cleared. Returns the pfns it unmapped, to be freed after
 * mmu_notifier_invalidate_range_end (tlb_finish_mmu) once nothing maps
 * their folios (`folioMapped`).
 */
export function unmapRange(l: Layout, pt: HostPageTable, lo: number, cnt: number): number[] {
  const out: number[] = []
  if (cnt <= 0) return out
  for (let b = blockOf(l, lo); b <= blockOf(l, lo + cnt - 1); b++) pt.pmd[b] = 0
  for (let i = lo; i < lo + cnt; i++) {
    if (pt.pte[i] !== 0) out.push(pt.pte[i])
    pt.pte[i] = 0
  }
  return out
}

/**
 * remove_migration_ptes() after migrate_folio() (mm/migrate.c): every PTE
 * that maps the folio at `head` now maps the same offset of a fresh folio
 * of the same order. Returns the fresh folio's head, or 0 when no PTE
 * mapped the folio (it was zapped meanwhile: nothing to replace).
 */
export function removeMigrationPtes(l: Layout, pt: HostPageTable, m: Memory, head: number): number {
  const order = folioOrder(m, head, l.H)
  const n = 1 << order
  let fresh = 0
  for (let i = 0; i < pt.pte.length; i++) {
    const pfn = pt.pte[i]
    if (pfn < head || pfn >= head + n) continue
    if (fresh === 0) fresh = allocFolio(m, order, l.H)
    pt.pte[i] = fresh + (pfn - head)
  }
  // The folio's pages outside the region (a THP straddling an edge) move with it.
  if (fresh !== 0 && pt.edgeOut) for (let e = 0; e < 2; e++) if (pt.edgeOut[e] >= head && pt.edgeOut[e] < head + n) pt.edgeOut[e] = fresh + (pt.edgeOut[e] - head)
  return fresh
}
