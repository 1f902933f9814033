/**
 * An MSHV memory region (struct mshv_mem_region): its kind, its lifetime,
 * the pages[] array the driver keeps (pfns, 0 = not present), the
 * large_pages flag, and a reference count for the variants that keep a
 * region alive across the fault path (mshv_partition_region_by_gfn_get()).
 * Geometry (start_gfn, start_uaddr, nr_pages) is static: see layout.ts.
 */
import { array, threadRef, u8 } from '../schema.js'
import type { Layout } from './layout.js'

export const REGION_MMIO = 1
export const REGION_PINNED = 2
export const REGION_MOVABLE = 3

/** In the partition's region list. */
export const REGION_LISTED = 1
/** Unlinked (hlist_del) by mshv_partition_destroy_region, not yet freed. */
export const REGION_UNLINKED = 2
/** vfree()d: any further use is a use-after-free. */
export const REGION_FREED = 3

/** `pfnMax`: the largest pfn the scenario's memory has (frames - 1). */
export const regionFields = (l: Layout, pfnMax = 255) => ({
  regionKind: u8(REGION_MOVABLE),
  regionState: u8(REGION_FREED),
  regionRefs: u8(),
  largePages: u8(1),
  pages: array(l.N, u8(pfnMax)),
  /** Ghost: tid + 1 of the first thread that used the region after it was freed. */
  regionUseAfterFree: threadRef(),
})

export interface Region {
  regionKind: number
  regionState: number
  regionRefs: number
  largePages: number
  pages: number[] | Int16Array
  regionUseAfterFree: number
}

/** Every dereference of the region goes through here, so a use after vfree() is recorded. */
export function useRegion(r: Region, tid: number): void {
  if (r.regionState === REGION_FREED && r.regionUseAfterFree === 0) r.regionUseAfterFree = tid + 1
}
