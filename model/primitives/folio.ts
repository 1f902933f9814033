/**
 * Host memory: frames and folios. One cell per pfn (pfn 0 means "none").
 * Folios are naturally aligned in pfn space, as the buddy allocator makes
 * them: order 0, order H (a PMD-sized THP), and, when a scenario asks for
 * them, any other order k (an mTHP below H, from alloc_anon_folio; a
 * PUD-sized folio at 2H, a 1G hugetlbfs page). Allocation is a bump
 * allocator and pfns are never reused, so "freed" stays visible for the
 * invariants; the pool is sized by the scenario from its event bounds.
 */
import { ModelError } from '../../explorer/errors.js'
import { array, u8 } from '../schema.js'

export const FRAME_UNUSED = 0
/** An order-0 folio. */
export const FRAME_SMALL = 1
/** A page of an order-H folio (head = pfn aligned down to 2^H). */
export const FRAME_HUGE = 2
/** Freed back to the allocator (never reused here). */
export const FRAME_FREED = 3
/** A page of an order-k folio, k neither 0 nor H: FRAME_ORDER_BASE + k (head = pfn aligned down to 2^k). */
export const FRAME_ORDER_BASE = 4

/** The frame code of a page of an order-`order` folio. */
export const frameCode = (order: number, H: number): number => (order === 0 ? FRAME_SMALL : order === H ? FRAME_HUGE : FRAME_ORDER_BASE + order)

/**
 * The memory's fields. `maxOrder`: the largest folio order other than 0
 * and H the scenario allocates (0: none, and the field keeps the range it
 * always had, so models without other orders keep their shape).
 */
export const memoryFields = (frames: number, maxOrder = 0) => ({
  frame: array(frames, u8(maxOrder > 0 ? FRAME_ORDER_BASE + maxOrder : FRAME_FREED)),
  nextPfn: u8(frames),
})

export interface Memory {
  frame: number[] | Int16Array
  nextPfn: number
}

export function initMemory(m: Memory): void {
  m.nextPfn = 1
}

/** alloc_pages(order 0): a fresh order-0 folio. */
export function allocSmall(m: Memory): number {
  const pfn = m.nextPfn
  if (pfn >= m.frame.length) throw new ModelError(`memory pool exhausted at pfn ${pfn}: the scenario's frame bound is too small`)
  m.frame[pfn] = FRAME_SMALL
  m.nextPfn = pfn + 1
  return pfn
}

/** folio_alloc(order): a fresh folio of that order, its head pfn aligned to 2^order. */
export function allocFolio(m: Memory, order: number, H: number): number {
  if (order === 0) return allocSmall(m)
  const n = 1 << order
  const head = (m.nextPfn + n - 1) & ~(n - 1)
  if (head + n > m.frame.length) throw new ModelError(`memory pool exhausted at pfn ${head}: the scenario's frame bound is too small`)
  const code = frameCode(order, H)
  for (let k = 0; k < n; k++) m.frame[head + k] = code
  m.nextPfn = head + n
  return head
}

/** alloc_pages(order H): a fresh order-H folio, its head pfn aligned to 2^H. */
export function allocHuge(m: Memory, H: number): number {
  return allocFolio(m, H, H)
}

/** Is the pfn a page of a live folio (allocated, not freed)? */
export const isAllocated = (m: Memory, pfn: number): boolean => m.frame[pfn] !== FRAME_UNUSED && m.frame[pfn] !== FRAME_FREED

/** folio_order(page_folio(pfn_to_page(pfn))): 0 for an order-0, unused or freed pfn. */
export function folioOrder(m: Memory, pfn: number, H: number): number {
  const code = m.frame[pfn]
  if (code === FRAME_HUGE) return H
  return code >= FRAME_ORDER_BASE ? code - FRAME_ORDER_BASE : 0
}

/** folio_nr_pages(): the number of pages of pfn's folio. */
export const folioPages = (m: Memory, pfn: number, H: number): number => 1 << folioOrder(m, pfn, H)

/** The folio's first pfn. */
export function folioHead(m: Memory, pfn: number, H: number): number {
  return pfn & ~(folioPages(m, pfn, H) - 1)
}

/** split_folio(): a large folio becomes order-0 folios; the pfns do not move. */
export function splitFolio(m: Memory, pfn: number, H: number): void {
  const n = folioPages(m, pfn, H)
  if (n === 1) return
  const head = folioHead(m, pfn, H)
  for (let k = 0; k < n; k++) m.frame[head + k] = FRAME_SMALL
}

/** folio_put() of the last reference: every page of the folio is freed. */
export function freeFolio(m: Memory, pfn: number, H: number): void {
  if (!isAllocated(m, pfn)) throw new ModelError(`pfn ${pfn} freed while not allocated`)
  const head = folioHead(m, pfn, H)
  const n = folioPages(m, pfn, H)
  for (let k = 0; k < n; k++) m.frame[head + k] = FRAME_FREED
}

export const isFreed = (m: Memory, pfn: number): boolean => m.frame[pfn] === FRAME_FREED
