/**
 * The SLAT (the hypervisor's second-level table) over the region's gfns, one
 * leaf record per gfn: the pfn it maps, the order of the leaf that covers it
 * (0, or H for a large leaf covering 2^H gfns) and its access.
 *
 * HVCALL_MAP_GPA_PAGES as the kernel issues it (hv_do_map_gpa_hcall() in
 * drivers/hv/mshv_root_hv_call.c, followed line by line below) and as the
 * hypervisor answers it. Where each rule comes from:
 *
 * - The kernel's code (hv_do_map_gpa_hcall, hv_call_unmap_gpa_pages):
 *   a count of 0 is -EINVAL; with HV_MAP_GPA_LARGE_PAGE the count must be a
 *   multiple of 2^H (HV_PAGE_COUNT_2M_ALIGNED, else -EINVAL before any
 *   hypercall) and each rep is one large page, given one pfn (pfnlist[i] =
 *   page_to_pfn(pages[(done + i) << large_shift])), not a list of small
 *   pfns; with HV_MAP_GPA_NO_ACCESS the driver sends pfn 0 (`pfnlist[i] =
 *   0`), so the leaf is left with no pfn; the reps go to the hypervisor in
 *   batches of HV_MAP_GPA_BATCH_SIZE; on HV_STATUS_INSUFFICIENT_MEMORY the
 *   driver deposits and goes on (the scenario's `deposits`); on any other
 *   error it stops (`break`, before `done += completed`), and if `done` (the
 *   reps of the batches that completed before the failing one) is not 0 it
 *   calls hv_call_unmap_gpa_pages(gfn, done, LARGE_PAGE ? HV_UNMAP_GPA_LARGE_PAGE : 0):
 *   that prefix is left UNMAPPED, not restored to what it was.
 *   Two consequences of that code, modelled as written: the reps the
 *   hypervisor completed in the failing batch are not in `done`, so they
 *   stay mapped with the new mapping; and under LARGE_PAGE `done` counts
 *   large pages while hv_call_unmap_gpa_pages takes a 4K count
 *   (`page_count_4k`, checked with HV_PAGE_COUNT_2M_ALIGNED), so unless
 *   `done` is a multiple of 2^H that unmap is -EINVAL and the prefix stays
 *   mapped too.
 * - The hypervisor's documented behaviour: a rep hypercall processes its
 *   reps in order, and on an error its result carries the number of reps
 *   completed (hv_repcomp), which stay done (the TLFS's rep hypercall
 *   contract, which hv_do_map_gpa_hcall relies on). Mapping an
 *   already-mapped gfn silently succeeds (the leaf is replaced; Mukesh in
 *   seed 004, the hypervisor's behaviour as the thread states it). A large
 *   page needs a huge-aligned gfn (the hardware's rule for a large leaf).
 * - The seeds' inference, not documented and checked by no kernel code: a
 *   misaligned pfn under LARGE_PAGE fails the rep with
 *   HV_STATUS_INVALID_PARAMETER (seed 000's inference about the
 *   hypervisor); a 4K map or unmap over part of a large leaf splits that
 *   leaf first, the rest of its 2M keeping its pages as 4K leaves (mapcheck's
 *   reading of "the hypervisor removes the existing mapping").
 * - mapcheck's scaling: HV_MAP_GPA_BATCH_SIZE is (4096 - 24) / 8 = 509
 *   reps, three less than PTRS_PER_PMD; scaled, it is 2^H - 1 (at least 1),
 *   so that, as in the kernel, a fault chunk of 2^H 4K pages takes two
 *   batches while a fault chunk of large pages (one rep) takes one.
 * - Injected: `failAt`, a rep at which the hypervisor answers an error
 *   (mshv-movable's `map_failures`: any map hypercall may fail; the reason,
 *   a hypervisor error or a deposit's -ENOMEM, does not matter to the driver).
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
/** hv_call_unmap_gpa_pages(..., HV_UNMAP_GPA_LARGE_PAGE): each rep unmaps one large page. */
export const HV_UNMAP_GPA_LARGE_PAGE = 1

export const HV_STATUS_SUCCESS = 0
export const EINVAL = 1
export const HV_STATUS_INVALID_PARAMETER = 2
/** Any other hypervisor error (an injected failure: mshv-movable's `map_failures`). */
export const HV_STATUS_FAILED = 3

/** `pfnMax`: the largest pfn the scenario's memory has (frames - 1). */
export const slatFields = (l: Layout, pfnMax = 255) => ({
  slat: array(l.N, struct({ pfn: u8(pfnMax), order: u8(), access: u8(ACCESS_RW) })),
})

export interface Leaf {
  pfn: number
  order: number
  access: number
}

/**
 * HV_MAP_GPA_BATCH_SIZE, scaled: the kernel's is (HV_HYP_PAGE_SIZE -
 * sizeof(struct hv_input_map_gpa_pages)) / sizeof(u64) = 509 reps, three
 * less than PTRS_PER_PMD; here 2^H - 1 (at least 1).
 */
export const mapGpaBatch = (l: Layout): number => Math.max(1, l.HP - 1)

/** The reps of a map or unmap of `count` pages: one per page, or one per large page. */
export const repsOf = (l: Layout, count: number, flags: number): number => ((flags & HV_MAP_GPA_LARGE_PAGE) !== 0 ? count >> l.H : count)

/** A 4K map or unmap of leaf i over a large leaf splits that leaf: the other pages of its 2M stay, as 4K leaves (mapcheck's inference). */
function splitLargeLeafAt(l: Layout, slat: Leaf[], i: number): void {
  if (slat[i].order !== l.H) return
  const first = i - ((l.startGfn + i) & (l.HP - 1))
  for (let j = Math.max(first, 0); j < Math.min(first + l.HP, slat.length); j++) if (slat[j].order === l.H) slat[j].order = 0
}

/**
 * One rep of HVCALL_MAP_GPA_PAGES, as the hypervisor processes it: rep `r`
 * of a call at region index `index` (a large page, or one small page).
 */
function mapRep(l: Layout, slat: Leaf[], index: number, r: number, flags: number, pfnAt: (k: number) => number, fail: boolean): number {
  const large = (flags & HV_MAP_GPA_LARGE_PAGE) !== 0
  const noAccess = (flags & HV_MAP_GPA_NO_ACCESS) !== 0
  if (fail) return HV_STATUS_FAILED
  if (!large) {
    const leaf = slat[index + r]
    splitLargeLeafAt(l, slat, index + r)
    leaf.order = 0
    leaf.pfn = noAccess ? 0 : pfnAt(r)
    leaf.access = noAccess ? ACCESS_NO_ACCESS : ACCESS_RW
    return HV_STATUS_SUCCESS
  }
  const k0 = r * l.HP
  // A large leaf needs a huge-aligned gfn (the hardware's rule); a huge-aligned pfn is seed 000's inference.
  if (!isAligned(l.startGfn + index + k0, l.HP) || (!noAccess && !isAligned(pfnAt(k0), l.HP))) return HV_STATUS_INVALID_PARAMETER
  for (let k = 0; k < l.HP; k++) {
    const leaf = slat[index + k0 + k]
    leaf.order = l.H
    // A large page maps 2^H consecutive pfns from the one pfn the hypervisor was given.
    leaf.pfn = noAccess ? 0 : pfnAt(k0) + k
    leaf.access = noAccess ? ACCESS_NO_ACCESS : ACCESS_RW
  }
  return HV_STATUS_SUCCESS
}

/**
 * hv_call_map_gpa_pages(gfn = start_gfn + index, count, flags, pfns) ->
 * hv_do_map_gpa_hcall(): `pfnAt(k)` is the pfn of the k-th page. The reps
 * go in batches of mapGpaBatch(l); the hypervisor completes them in order
 * until one fails (the first misaligned large page, or rep `failAt`: an
 * injected error). On an error the completed batches (`done`) are unmapped
 * with hv_call_unmap_gpa_pages(gfn, done, ...) and the completed reps of the
 * failing batch stay mapped: see the header. Returns HV_STATUS_SUCCESS or
 * the error.
 */
export function mapGpaPages(
  l: Layout,
  slat: Leaf[],
  index: number,
  count: number,
  flags: number,
  pfnAt: (k: number) => number,
  failAt = -1,
): number {
  const large = (flags & HV_MAP_GPA_LARGE_PAGE) !== 0
  // if (page_count == 0 || (pages && mmio_spa)) return -EINVAL; if (!HV_PAGE_COUNT_2M_ALIGNED(page_count)) return -EINVAL;
  if (count === 0) return EINVAL
  if (large && !isAligned(count, l.HP)) return EINVAL
  const reps = repsOf(l, count, flags)
  let done = 0
  let ret = HV_STATUS_SUCCESS
  // while (done < page_count) { rep_count = min(remain, HV_MAP_GPA_BATCH_SIZE); hv_do_rep_hypercall(...); ... }
  while (done < reps) {
    const repCount = Math.min(reps - done, mapGpaBatch(l))
    let status = HV_STATUS_SUCCESS
    for (let r = done; r < done + repCount && status === HV_STATUS_SUCCESS; r++) status = mapRep(l, slat, index, r, flags, pfnAt, r === failAt)
    if (status !== HV_STATUS_SUCCESS) {
      // else if (!hv_result_success(status)) { ret = hv_result_to_errno(status); break; }: `done += completed` is skipped.
      ret = status
      break
    }
    done += repCount
  }
  // if (ret && done) hv_call_unmap_gpa_pages(partition_id, gfn, done, unmap_flags): `done` counts reps, passed as a 4K count.
  if (ret !== HV_STATUS_SUCCESS && done > 0) unmapGpaPagesHcall(l, slat, index, done, large ? HV_UNMAP_GPA_LARGE_PAGE : 0)
  return ret
}

/**
 * hv_call_unmap_gpa_pages(gfn = start_gfn + index, page_count_4k, flags)
 * (drivers/hv/mshv_root_hv_call.c): with HV_UNMAP_GPA_LARGE_PAGE the count
 * must be a multiple of 2^H (else -EINVAL, nothing unmapped) and each rep
 * unmaps a large page; a 4K unmap over part of a large leaf splits it
 * (mapcheck's inference). The unmap itself never fails otherwise here.
 */
export function unmapGpaPagesHcall(l: Layout, slat: Leaf[], index: number, count4k: number, flags: number): number {
  if (count4k === 0) return EINVAL
  const large = (flags & HV_UNMAP_GPA_LARGE_PAGE) !== 0
  if (large && !isAligned(count4k, l.HP)) return EINVAL
  if (!large) for (let k = 0; k < count4k; k++) splitLargeLeafAt(l, slat, index + k)
  unmapGpaPages(slat, index, count4k)
  return HV_STATUS_SUCCESS
}

/** The leaves of [index, index + count) cleared: what an unmap of that whole range leaves (hv_call_unmap_gpa_pages over whole leaves). */
export function unmapGpaPages(slat: Leaf[], index: number, count: number): void {
  for (let k = 0; k < count; k++) {
    const leaf = slat[index + k]
    leaf.pfn = 0
    leaf.order = 0
    leaf.access = ACCESS_NONE
  }
}
