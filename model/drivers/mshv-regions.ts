/**
 * What drivers/hv/mshv_regions.c does with a region's pages[], shared by the
 * MSHV scenarios: mshv_chunk_stride() and mshv_region_remap_pages() over
 * HVCALL_MAP_GPA_PAGES.
 */
import { folioOrder, type Memory } from '../primitives/folio.js'
import { isAligned, type Layout } from '../primitives/layout.js'
import type { Region } from '../primitives/region.js'
import { HV_MAP_GPA_LARGE_PAGE, HV_STATUS_SUCCESS, mapGpaPages, type Leaf } from '../primitives/slat.js'

export interface StridePolicy {
  /** mshv_chunk_stride() also requires IS_ALIGNED(page_to_pfn(page), PTRS_PER_PMD) (seed 000's fix). */
  readonly pfnAlignedStride: boolean
}

export type MshvRegionWorld = Memory & Pick<Region, 'pages'> & { slat: ArrayLike<Leaf> }

/**
 * mshv_chunk_stride() as a function, for a scenario that holds it in its
 * context so that a patch can replace it: the stride at region page `i`
 * with `remaining` pages left in the range.
 */
export type ChunkStride = (l: Layout, w: MshvRegionWorld, i: number, remaining: number) => number

/**
 * mshv_chunk_stride(page, gfn, page_count) as the seeds discuss it: a huge
 * stride needs a huge folio, a huge-aligned gfn and a huge-aligned page
 * count; seed 000's fix also needs the pfn huge-aligned.
 */
export function chunkStride(l: Layout, w: MshvRegionWorld, pol: StridePolicy, i: number, remaining: number): number {
  const pfn = w.pages[i]
  const huge = folioOrder(w, pfn, l.H) === l.H
  if (huge && isAligned(l.startGfn + i, l.HP) && isAligned(remaining, l.HP) && (!pol.pfnAlignedStride || isAligned(pfn, l.HP))) {
    return l.HP
  }
  return 1
}

/**
 * mshv_region_remap_pages(region, flags, page_offset, page_count): over the
 * present pages[] of the range, one HVCALL_MAP_GPA_PAGES per stride, with
 * HV_MAP_GPA_LARGE_PAGE for a huge stride. Returns the first error. The
 * stride is `chunkStride` under `pol`, or the given mshv_chunk_stride().
 */
export function remapPages(l: Layout, w: MshvRegionWorld, pol: StridePolicy | ChunkStride, flags: number, off: number, cnt: number): number {
  for (let i = off; i < off + cnt; ) {
    if (w.pages[i] === 0) {
      i++
      continue
    }
    const stride = typeof pol === 'function' ? pol(l, w, i, off + cnt - i) : chunkStride(l, w, pol, i, off + cnt - i)
    const f = stride > 1 ? flags | HV_MAP_GPA_LARGE_PAGE : flags
    const ret = mapGpaPages(l, w.slat as Leaf[], i, stride, f, (k) => w.pages[i + k])
    if (ret !== HV_STATUS_SUCCESS) return ret
    i += stride
  }
  return HV_STATUS_SUCCESS
}

