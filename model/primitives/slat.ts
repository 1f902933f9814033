/**
 * The SLAT (the hypervisor's second-level table) over the region's gfns, one
 * leaf record per gfn: the pfn it maps, the order of the leaf that covers it
 * (0, or H for a large leaf covering 2^H gfns) and its access.
 *
 * HVCALL_MAP_GPA_PAGES as the seeds state it (hv_do_map_gpa_hcall() in
 * drivers/hv/mshv_root_hv_call.c): with HV_MAP_GPA_LARGE_PAGE the page count
 * must be a multiple of 2^H (else -EINVAL before any hypercall), and the
 * hypervisor is given one pfn per large page, not a list of small pfns, so it
 * cannot fall back to 4K: a gfn or pfn that is not huge-aligned is an error.
 * With HV_MAP_GPA_NO_ACCESS the driver sends pfn 0 (`pfnlist[i] = 0`), so
 * no pfn can be misaligned and the leaf is left with none (pfn 0). A count of 0 is -EINVAL. Mapping an already-mapped gfn
 * silently succeeds (the leaf is replaced; Mukesh in seed 004, the
 * hypervisor's documented behaviour as the thread states it). That a
 * misaligned pfn under LARGE_PAGE fails is seed 000's inference about the
 * hypervisor: no kernel code checks it. Each call here is one stride and
 * all-or-nothing; the driver's real call spans consecutive same-stride
 * chunks and, on failure, unmaps the completed prefix (hv_do_map_gpa_hcall
 * -> hv_call_unmap_gpa_pages), which leaves it unmapped, not restored.
 */
import { array, struct, u8 } from '../schema.js'
import { isAligned, type Layout } from './layout.js'

export const ACCESS_NONE = 0
/** Mapped with HV_MAP_GPA_NO_ACCESS: the driver sends pfn 0, so the leaf holds no pfn; the guest faults on access. */
export const ACCESS_NO_ACCESS = 1
/** Readable and writable by the guest. */
export const ACCESS_RW = 2

export const HV_MAP_GPA_LARGE_PAGE = 1
export const HV_MAP_GPA_NO_ACCESS = 2

export const HV_STATUS_SUCCESS = 0
export const EINVAL = 1
export const HV_STATUS_INVALID_PARAMETER = 2

export const slatFields = (l: Layout) => ({
  slat: array(l.N, struct({ pfn: u8(), order: u8(), access: u8(ACCESS_RW) })),
})

export interface Leaf {
  pfn: number
  order: number
  access: number
}

/**
 * hv_call_map_gpa_pages(gfn = start_gfn + index, count, flags, pfns): `pfnAt(k)`
 * is the pfn of the k-th page. Returns HV_STATUS_SUCCESS or the error.
 */
export function mapGpaPages(
  l: Layout,
  slat: Leaf[],
  index: number,
  count: number,
  flags: number,
  pfnAt: (k: number) => number,
): number {
  const large = (flags & HV_MAP_GPA_LARGE_PAGE) !== 0
  const noAccess = (flags & HV_MAP_GPA_NO_ACCESS) !== 0
  if (count === 0) return EINVAL
  if (large) {
    if (!isAligned(count, l.HP)) return EINVAL
    for (let k = 0; k < count; k += l.HP) {
      if (!isAligned(l.startGfn + index + k, l.HP) || (!noAccess && !isAligned(pfnAt(k), l.HP))) return HV_STATUS_INVALID_PARAMETER
    }
  }
  // A map over part of an existing large leaf splits it first (the hypervisor removes the existing
  // mapping, splitting as needed): the rest of the 2M keeps its pages, as 4K leaves.
  if (!large) {
    for (let k = 0; k < count; k++) {
      const i = index + k
      if (slat[i].order !== l.H) continue
      const first = i - ((l.startGfn + i) & (l.HP - 1))
      for (let j = Math.max(first, 0); j < Math.min(first + l.HP, slat.length); j++) if (slat[j].order === l.H) slat[j].order = 0
    }
  }
  for (let k = 0; k < count; k++) {
    const leaf = slat[index + k]
    leaf.order = large ? l.H : 0
    if (noAccess) {
      leaf.pfn = 0
      leaf.access = ACCESS_NO_ACCESS
      continue
    }
    // A large page maps 2^H consecutive pfns from the one pfn the hypervisor was given.
    leaf.pfn = large ? pfnAt(k - (k % l.HP)) + (k % l.HP) : pfnAt(k)
    leaf.access = ACCESS_RW
  }
  return HV_STATUS_SUCCESS
}

/** hv_call_unmap_gpa_pages(gfn = start_gfn + index, count). */
export function unmapGpaPages(slat: Leaf[], index: number, count: number): void {
  for (let k = 0; k < count; k++) {
    const leaf = slat[index + k]
    leaf.pfn = 0
    leaf.order = 0
    leaf.access = ACCESS_NONE
  }
}
