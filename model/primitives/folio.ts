/**
 * Host memory: frames and folios. One cell per pfn (pfn 0 means "none").
 * Folios are order 0 or order H and naturally aligned in pfn space, as the
 * buddy allocator makes them. Allocation is a bump allocator and pfns are
 * never reused, so "freed" stays visible for the invariants; the pool is
 * sized by the scenario from its event bounds.
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

export const memoryFields = (frames: number) => ({
  frame: array(frames, u8(FRAME_FREED)),
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

/** alloc_pages(order H): a fresh order-H folio, its head pfn aligned to 2^H. */
export function allocHuge(m: Memory, H: number): number {
  const HP = 1 << H
  const head = (m.nextPfn + HP - 1) & ~(HP - 1)
  if (head + HP > m.frame.length) throw new ModelError(`memory pool exhausted at pfn ${head}: the scenario's frame bound is too small`)
  for (let k = 0; k < HP; k++) m.frame[head + k] = FRAME_HUGE
  m.nextPfn = head + HP
  return head
}

/** folio_order(page_folio(pfn_to_page(pfn))): H for a page of a huge folio, else 0. */
export function folioOrder(m: Memory, pfn: number, H: number): number {
  return m.frame[pfn] === FRAME_HUGE ? H : 0
}

/** The folio's first pfn. */
export function folioHead(m: Memory, pfn: number, H: number): number {
  return m.frame[pfn] === FRAME_HUGE ? pfn & ~((1 << H) - 1) : pfn
}

/** split_folio(): the huge folio becomes 2^H order-0 folios; the pfns do not move. */
export function splitFolio(m: Memory, pfn: number, H: number): void {
  if (m.frame[pfn] !== FRAME_HUGE) return
  const head = folioHead(m, pfn, H)
  for (let k = 0; k < 1 << H; k++) m.frame[head + k] = FRAME_SMALL
}

/** folio_put() of the last reference: every page of the folio is freed. */
export function freeFolio(m: Memory, pfn: number, H: number): void {
  if (m.frame[pfn] !== FRAME_SMALL && m.frame[pfn] !== FRAME_HUGE) throw new ModelError(`pfn ${pfn} freed while not allocated`)
  const head = folioHead(m, pfn, H)
  const n = m.frame[pfn] === FRAME_HUGE ? 1 << H : 1
  for (let k = 0; k < n; k++) m.frame[head + k] = FRAME_FREED
}

export const isFreed = (m: Memory, pfn: number): boolean => m.frame[pfn] === FRAME_FREED
