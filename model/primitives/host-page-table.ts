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

/** `pfnMax`: the largest pfn the scenario's memory has (frames - 1), so a PTE packs in the bits it needs. */
export const hostPageTableFields = (l: Layout, pfnMax = 255) => ({
  pte: array(l.N, u8(pfnMax)),
  pmd: array(l.blocks, u8(1)),
})

export interface HostPageTable {
  pte: number[] | Int16Array
  pmd: number[] | Int16Array
  /**
   * With a VMA margin (l.vmaMargin): the PTEs of the VMA's pages outside
   * the region that share a huge-aligned block with it (`outsideIndices`),
   * 0 = none. Only a folio that straddles a region edge maps them (a THP
   * over an edge block, or an mTHP whose aligned range starts before page 0
   * or ends after page N - 1): nothing in the model touches the VMA outside
   * the region otherwise. They keep their folio from being freed until the
   * OOM reaper (the whole VMA), khugepaged or a migration replaces them.
   */
  outPte?: number[] | Int16Array
}

/**
 * The VMA pages outside the region in its edge blocks, as extended region
 * indices (negative before page 0, N and up after page N - 1), in uaddr
 * order: `outPte[k]` is the PTE of `outsideIndices(l)[k]`.
 */
export function outsideIndices(l: Layout): number[] {
  const [left, right] = edgeBlocks(l)
  const out: number[] = []
  if (left >= 0) for (let j = blockFirstIndex(l, left); j < 0; j++) out.push(j)
  if (right >= 0) for (let j = l.N; j < blockFirstIndex(l, right) + l.HP; j++) out.push(j)
  return out
}

/** The host page table's fields for a VMA larger than the region: one PTE per outside page of an edge block. */
export const vmaEdgeFields = (l: Layout, pfnMax = 255) => ({ outPte: array(outsideIndices(l).length, u8(pfnMax)) })

/** The outPte slot of an extended index j outside the region: the pages before page 0 come first (outsideIndices' order). */
function outSlot(l: Layout, j: number): number {
  const before = Math.max(-blockFirstIndex(l, 0), 0)
  return j < 0 ? j + before : j - l.N + before
}

/** Region pages [0, N) and, with a VMA margin, the edge blocks' pages outside it. */
function inTable(l: Layout, pt: HostPageTable, j: number): boolean {
  if (j >= 0 && j < l.N) return true
  if (!pt.outPte) return false
  const slot = outSlot(l, j)
  return slot >= 0 && slot < pt.outPte.length
}

/** The PTE at extended index j (a region page, or an edge block's page outside it; 0 where the table has none). */
export function pteAt(l: Layout, pt: HostPageTable, j: number): number {
  if (j >= 0 && j < l.N) return pt.pte[j]
  return inTable(l, pt, j) ? pt.outPte![outSlot(l, j)] : 0
}

/** Sets the PTE at extended index j, which must be in the table. */
export function setPteAt(l: Layout, pt: HostPageTable, j: number, pfn: number): void {
  if (j >= 0 && j < l.N) pt.pte[j] = pfn
  else if (inTable(l, pt, j)) pt.outPte![outSlot(l, j)] = pfn
  else throw new RangeError(`setPteAt: uaddr index ${j} is outside the VMA the model has`)
}

/** The pfns mapped outside the region at its edges (see HostPageTable.outPte). */
export function outsidePfns(l: Layout, pt: HostPageTable): number[] {
  return pt.outPte ? Array.from(pt.outPte).filter((pfn) => pfn !== 0) : []
}

/** Can the page fault at block b allocate a THP (do_huge_pmd_anonymous_page)? Aligned, inside the VMA, and nothing mapped there yet. */
export function thpEligible(l: Layout, pt: HostPageTable, b: number): boolean {
  if (!blockInVma(l, b)) return false
  const first = blockFirstIndex(l, b)
  // With a margin, an edge block's pages outside the region must be none too.
  for (let k = 0; k < l.HP; k++) if (pteAt(l, pt, first + k) !== 0) return false
  return true
}

/** Faults in block b with a fresh THP mapped by a PMD. */
export function faultHuge(l: Layout, pt: HostPageTable, m: Memory, b: number): void {
  const head = allocHuge(m, l.H)
  const first = blockFirstIndex(l, b)
  // A block that straddles an edge (a VMA margin): the THP's pages outside the region are mapped by the same PMD.
  for (let k = 0; k < l.HP; k++) if (inTable(l, pt, first + k)) setPteAt(l, pt, first + k, head + k)
  pt.pmd[b] = 1
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
 * allowed: the range must lie inside the VMA and every PTE in it must be
 * none (pte_range_none), as alloc_anon_folio -> thp_vma_suitable_order /
 * pte_range_none require. The VMA is the region, or with a margin also the
 * edge blocks' pages outside it: an mTHP smaller than a PMD then may
 * straddle page 0 or page N - 1 (`first` < 0, or first + n > N).
 */
export function mthpRange(l: Layout, pt: HostPageTable, i: number, order: number): { first: number; n: number } | null {
  const n = 1 << order
  const first = ((l.startUaddr + i) & ~(n - 1)) - l.startUaddr
  for (let k = 0; k < n; k++) if (!inTable(l, pt, first + k) || pteAt(l, pt, first + k) !== 0) return null
  return { first, n }
}

/** do_anonymous_page with an mTHP of that order (alloc_anon_folio): a fresh folio, PTE-mapped over `mthpRange`. */
export function faultMthp(l: Layout, pt: HostPageTable, m: Memory, i: number, order: number): void {
  const r = mthpRange(l, pt, i, order)
  if (!r) throw new Error(`faultMthp: no order-${order} folio fits at region page ${i}`)
  const head = allocFolio(m, order, l.H)
  for (let k = 0; k < r.n; k++) setPteAt(l, pt, r.first + k, head + k)
}

/** Checks the host rule: a PMD maps exactly one huge folio, head at the block's first uaddr. */
export function pmdWellFormed(l: Layout, pt: HostPageTable, m: Memory, b: number): boolean {
  if (pt.pmd[b] !== 1) return true
  const first = blockFirstIndex(l, b)
  // An edge block's first page may be outside the region (a VMA margin): its PTE is in outPte.
  const head = pteAt(l, pt, first)
  if (head === 0 || m.frame[head] !== FRAME_HUGE || folioHead(m, head, l.H) !== head) return false
  for (let k = 1; k < l.HP; k++) if (pteAt(l, pt, first + k) !== head + k) return false
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
  // The folio's pages outside the region (a folio straddling an edge) move with it.
  const out = pt.outPte ?? []
  for (let k = 0; k < out.length; k++) {
    const pfn = out[k]
    if (pfn < head || pfn >= head + n) continue
    if (fresh === 0) fresh = allocFolio(m, order, l.H)
    out[k] = fresh + (pfn - head)
  }
  return fresh
}
