/**
 * What drivers/hv/mshv_regions.c does with a region's pages[], shared by the
 * MSHV scenarios: mshv_chunk_stride(), and mshv_region_remap_pages() as
 * torvalds 0eaed89c has it: mshv_region_process_range() ->
 * mshv_region_process_chunk() -> mshv_region_chunk_remap() ->
 * hv_call_map_gpa_pages().
 */
import { folioHead, folioOrder, type Memory } from '../primitives/folio.js'
import { isAligned, type Layout } from '../primitives/layout.js'
import type { Region } from '../primitives/region.js'
import type { MemoryMap } from '../memory-map.js'
import { EINVAL, HV_MAP_GPA_LARGE_PAGE, HV_STATUS_INVALID_PARAMETER, HV_STATUS_SUCCESS, HV_UNMAP_GPA_LARGE_PAGE, mapGpaPages, repsOf, unmapGpaPagesHcall, type Leaf } from '../primitives/slat.js'

/**
 * Which mshv_chunk_stride() (drivers/hv/mshv_regions.c), each as the kernel
 * or the list had it:
 * - `as-posted`: "[PATCH] mshv: Align huge page stride with guest mapping"
 *   (seed 000, Dec 2025): `if (page_order && page_order != PMD_ORDER)
 *   return -EINVAL;` first ("The hypervisor only supports 4K and 2M page
 *   sizes"), then `if (page_order && IS_ALIGNED(gfn, PTRS_PER_PMD) &&
 *   IS_ALIGNED(page_count, PTRS_PER_PMD)) return 1 << page_order;`. Any page
 *   of an mTHP or of a 1G folio, head or tail, is -EINVAL.
 * - `page-head`: torvalds d3b402c5: `if (!PageCompound(page) ||
 *   !PageHead(page) || !IS_ALIGNED(gfn, ..) || !IS_ALIGNED(page_count, ..))
 *   return 1;` then `if (page_order != PMD_ORDER) return -EINVAL;`: a tail
 *   page strides 1, a compound head of another order at an aligned gfn and
 *   count is -EINVAL.
 * - `upstream`: torvalds 0eaed89c: `if (page_order < PMD_ORDER ||
 *   !IS_ALIGNED(page_to_pfn(page), PTRS_PER_PMD) || !IS_ALIGNED(gfn, ..) ||
 *   !IS_ALIGNED(page_count, ..)) return 1; return 1 << PMD_ORDER;` (mTHPs
 *   stride 1, a 1G folio is processed as 2M chunks).
 */
export type StrideVersion = 'as-posted' | 'page-head' | 'upstream'

export interface StridePolicy {
  /** mshv_chunk_stride() also requires IS_ALIGNED(page_to_pfn(page), PTRS_PER_PMD) (seed 000's fix, on `as-posted`). */
  readonly pfnAlignedStride: boolean
  /** Which mshv_chunk_stride(); `as-posted` when absent. */
  readonly version?: StrideVersion
}

/** mshv_chunk_stride()'s -EINVAL (as-posted and page-head, for a folio order the hypervisor does not support). */
export const STRIDE_EINVAL = -1

export type MshvRegionWorld = Memory & Pick<Region, 'pages'> & { slat: ArrayLike<Leaf> }

/**
 * mshv_chunk_stride() as a function, for a scenario that holds it in its
 * context so that a patch can replace it: the stride at region page `i`
 * with `remaining` pages left in the range, or STRIDE_EINVAL.
 */
export type ChunkStride = (l: Layout, w: MshvRegionWorld, i: number, remaining: number) => number

/** mshv_chunk_stride(page, gfn, page_count) in the version `pol` names (see StrideVersion). */
export function chunkStride(l: Layout, w: MshvRegionWorld, pol: StridePolicy, i: number, remaining: number): number {
  const pfn = w.pages[i]
  const order = folioOrder(w, pfn, l.H)
  const gfnAligned = isAligned(l.startGfn + i, l.HP)
  const countAligned = isAligned(remaining, l.HP)
  const pfnAligned = isAligned(pfn, l.HP)
  switch (pol.version ?? 'as-posted') {
    case 'as-posted':
      if (order !== 0 && order !== l.H) return STRIDE_EINVAL
      if (order !== 0 && gfnAligned && countAligned && (!pol.pfnAlignedStride || pfnAligned)) return 1 << order
      return 1
    case 'page-head':
      // PageCompound && PageHead: a large folio's first page.
      if (order === 0 || folioHead(w, pfn, l.H) !== pfn || !gfnAligned || !countAligned) return 1
      return order === l.H ? 1 << order : STRIDE_EINVAL
    case 'upstream':
      return order < l.H || !pfnAligned || !gfnAligned || !countAligned ? 1 : l.HP
  }
}

/** One hv_call_map_gpa_pages() of a remap: `count` pages from region page `index`, with HV_MAP_GPA_LARGE_PAGE when `large`. */
export interface MapCall {
  readonly index: number
  readonly count: number
  readonly large: boolean
}

const strideOf = (l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, i: number, remaining: number): number =>
  typeof pol === 'function' ? pol(l, w, i, remaining) : chunkStride(l, w, pol, i, remaining)

/**
 * mshv_region_process_chunk(region, flags, page_offset, page_count, handler)
 * (0eaed89c): from a present page, the stride of its first page, then
 * "start at stride since the first stride is validated": the chunk grows by
 * `stride` while the next page is present and mshv_chunk_stride() gives it
 * the same stride (pages inside a stride are never looked at). One call of
 * the handler covers the chunk. Null when mshv_chunk_stride() fails
 * (-EINVAL: the range stops there).
 */
export function processChunk(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, off: number, cnt: number): MapCall | null {
  const stride = strideOf(l, w, pol, off, cnt)
  // if (stride < 0) return stride; (as-posted, page-head: -EINVAL, nothing called)
  if (stride < 0) return null
  let count = stride
  for (; count < cnt; count += stride) {
    // Break if current page is not present; break if stride size changes.
    if (w.pages[off + count] === 0) break
    if (stride !== strideOf(l, w, pol, off + count, cnt - count)) break
  }
  return { index: off, count, large: stride > 1 }
}

/**
 * The hypercalls mshv_region_process_range(region, flags, off, cnt,
 * mshv_region_chunk_remap) makes when each succeeds: non-present pages are
 * skipped, each chunk is one hv_call_map_gpa_pages(); `strideError` when a
 * chunk's mshv_chunk_stride() is -EINVAL, after the calls before it.
 */
export function remapPlan(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, off: number, cnt: number): { calls: MapCall[]; strideError: boolean } {
  const calls: MapCall[] = []
  while (cnt > 0) {
    if (w.pages[off] === 0) {
      off++
      cnt--
      continue
    }
    const call = processChunk(l, w, pol, off, cnt)
    if (!call) return { calls, strideError: true }
    calls.push(call)
    off += call.count
    cnt -= call.count
  }
  return { calls, strideError: false }
}

/**
 * How a trace shows a remap whose mshv_chunk_stride() fails: the page where
 * the range stops with -EINVAL and its folio's order, or '' when none does.
 */
export function strideErrorText(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, off: number, cnt: number): string {
  const plan = remapPlan(l, w, pol, off, cnt)
  if (!plan.strideError) return ''
  const last = plan.calls[plan.calls.length - 1]
  let at = last ? last.index + last.count : off
  while (w.pages[at] === 0) at++
  const hex = (n: number): string => `0x${n.toString(16)}`
  return `: mshv_chunk_stride(pfn ${hex(w.pages[at])}, an order-${folioOrder(w, w.pages[at], l.H)} folio, gfn ${hex(l.startGfn + at)}) = -EINVAL`
}

/** The hypercalls of `remapPlan` (those before a stride error). */
export function remapCalls(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, off: number, cnt: number): MapCall[] {
  return remapPlan(l, w, pol, off, cnt).calls
}

/** The reps (hypervisor work items: a small or a large page each) of every call a remap makes when each succeeds. */
export function remapReps(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, off: number, cnt: number): number {
  return remapCalls(l, w, pol, off, cnt).reduce((n, c) => n + repsOf(l, c.count, c.large ? HV_MAP_GPA_LARGE_PAGE : 0), 0)
}

/** Where rep `rep` (counted over the whole remap, as `remapReps` counts) lands: its call, and its first region page. */
export function remapRepAt(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, off: number, cnt: number, rep: number): { call: MapCall; page: number } | null {
  let before = 0
  for (const call of remapCalls(l, w, pol, off, cnt)) {
    const reps = repsOf(l, call.count, call.large ? HV_MAP_GPA_LARGE_PAGE : 0)
    if (rep < before + reps) return { call, page: call.index + (rep - before) * (call.large ? l.HP : 1) }
    before += reps
  }
  return null
}

/**
 * mshv_region_remap_pages(region, flags, page_offset, page_count)
 * (0eaed89c): mshv_region_process_range() over the present pages[] of the
 * range, one hv_call_map_gpa_pages() per chunk (mshv_region_chunk_remap:
 * HV_MAP_GPA_LARGE_PAGE for a huge stride), stopping at the first error,
 * which it returns. The stride is `chunkStride` under `pol`, or the given
 * mshv_chunk_stride(). `failAt` injects a hypervisor error at that rep of
 * the whole remap (counted as `remapReps` counts; -1: none): the calls
 * before it succeed, the failing call stops there (mapGpaPages).
 */
export function remapPages(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, flags: number, off: number, cnt: number, failAt = -1): number {
  // if (page_offset + page_count > region->nr_pages) return -EINVAL;
  if (off + cnt > l.N) return EINVAL
  // The chunks do not depend on the SLAT, so they can be computed first: process_range stops at the first error.
  let rep = 0
  const plan = remapPlan(l, w, pol, off, cnt)
  for (const call of plan.calls) {
    const f = call.large ? flags | HV_MAP_GPA_LARGE_PAGE : flags
    const ret = mapGpaPages(l, w.slat as Leaf[], call.index, call.count, f, (k) => w.pages[call.index + k], failAt - rep)
    if (ret !== HV_STATUS_SUCCESS) return ret
    rep += repsOf(l, call.count, f)
  }
  return plan.strideError ? EINVAL : HV_STATUS_SUCCESS
}

/**
 * mshv_region_unshare / mshv_region_share (mshv_regions.c, for encrypted
 * partitions): mshv_region_process_range with mshv_region_chunk_unshare
 * (or _share), one hv_call_modify_spa_host_access() per chunk, with
 * HV_MODIFY_SPA_PAGE_HOST_ACCESS_LARGE_PAGE for a huge stride: the same
 * chunks as the map, so the same stride rules. The hypercall
 * (mshv_root_hv_call.c) refuses a LARGE_PAGE count that is not 2M-aligned
 * with -EINVAL; the hypervisor takes each large page from one SPA, which
 * must be 2M-aligned (the rule the map's large pages follow here too), else
 * HV_STATUS_INVALID_PARAMETER. Changes no SLAT entry the model tracks (host
 * access is not modelled); returns the first error.
 */
export function modifySpaHostAccess(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, off: number, cnt: number): number {
  if (off + cnt > l.N) return EINVAL
  const plan = remapPlan(l, w, pol, off, cnt)
  for (const call of plan.calls) {
    if (!call.large) continue
    if (!isAligned(call.count, l.HP)) return EINVAL
    for (let k = 0; k < call.count; k += l.HP) if (!isAligned(w.pages[call.index + k], l.HP)) return HV_STATUS_INVALID_PARAMETER
  }
  return plan.strideError ? EINVAL : HV_STATUS_SUCCESS
}

/**
 * mshv_region_process_range(region, 0, off, cnt, mshv_region_chunk_unmap)
 * (0eaed89c, as mshv_region_unmap does it over the whole region): one
 * hv_call_unmap_gpa_pages() per chunk of present pages, with
 * HV_UNMAP_GPA_LARGE_PAGE for a huge stride. Returns the first error.
 */
export function unmapPages(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, off: number, cnt: number): number {
  if (off + cnt > l.N) return EINVAL
  const plan = remapPlan(l, w, pol, off, cnt)
  for (const call of plan.calls) {
    const ret = unmapGpaPagesHcall(l, w.slat as Leaf[], call.index, call.count, call.large ? HV_UNMAP_GPA_LARGE_PAGE : 0)
    if (ret !== HV_STATUS_SUCCESS) return ret
  }
  return plan.strideError ? EINVAL : HV_STATUS_SUCCESS
}

// ---- injected map failures (a scenario's `map_failures`) ------------------------

/**
 * What a scenario context needs for injected map failures: whether they are
 * on, the stride, and mshv_region_remap_pages() taking the failing rep.
 * mshv-movable's context has these (the flag read from `map_failures` in
 * its context()); MovableContext does not declare them yet.
 */
export interface RemapFailures {
  readonly l: Layout
  readonly mshv_chunk_stride: ChunkStride
  readonly map_failures?: boolean
  mshv_region_remap_pages(w: any, flags: number, off: number, cnt: number, failAt?: number): number
}

/** A context seen with its map-failure entries (present when the scenario's context() set them). */
export const withRemapFailures = <C extends { readonly l: Layout; readonly mshv_chunk_stride: ChunkStride }>(ctx: C): C & RemapFailures => ctx as C & RemapFailures

/**
 * How many branches a remap has: 1, or with map failures on, 1 + the reps
 * it would make (branch 0: every rep succeeds; branch r + 1: rep r fails).
 */
export function remapFailureChoices(ctx: RemapFailures, w: MshvRegionWorld, off: number, cnt: number): number {
  return ctx.map_failures ? 1 + remapReps(ctx.l, w, ctx.mshv_chunk_stride, off, cnt) : 1
}

/** How a trace shows branch `failure` (0: none) of a remap: the gfn where the hypercall fails. */
export function remapFailureText(ctx: RemapFailures, w: MshvRegionWorld, off: number, cnt: number, failure: number): string {
  if (failure === 0) return ''
  const at = remapRepAt(ctx.l, w, ctx.mshv_chunk_stride, off, cnt, failure - 1)
  if (!at) return ''
  const hex = (n: number): string => `0x${n.toString(16)}`
  const n = at.call.count
  return `: HVCALL_MAP_GPA_PAGES fails at gfn ${hex(ctx.l.startGfn + at.page)} (in the call from gfn ${hex(ctx.l.startGfn + at.call.index)}, ${n} page${n === 1 ? '' : 's'}${at.call.large ? ', LARGE_PAGE' : ''})`
}

/**
 * The memory map of one MSHV region (mshv-movable, mshv-pinned and review
 * files on them): its gfns, the SLAT leaves (pfn, size, access), the VMM's
 * page table (PTE or PMD), region->pages, the region's state, and host
 * memory by pfn with the folios.
 */
export function regionMemoryMap(l: Layout): MemoryMap {
  return {
    rows: l.N,
    firstGfn: l.startGfn,
    hugePages: l.HP,
    frames: 'frame',
    lanes: [
      { kind: 'leaf', label: 'SLAT', field: 'slat', pfn: 'pfn', order: 'order', access: 'access', accessNames: ['', 'NO_ACCESS', 'RW'] },
      { kind: 'host', label: 'host page table', pte: 'pte', pmd: 'pmd', firstUaddr: l.startUaddr },
      { kind: 'value', label: 'region->pages', cell: (w: { pages: number[] }, row: number) => (w.pages[row] ? { text: `pfn 0x${w.pages[row].toString(16)}`, kind: 'small', pfns: [w.pages[row]] } : { text: '-', kind: 'none' }) },
      { kind: 'range', label: 'region', live: 'regionState', liveNames: ['none', 'listed', 'unlinked', 'FREED'] },
    ],
  }
}
