/**
 * mshv-mmio's world: the layout (two MMIO regions over the same gfns, each
 * backed by a VFIO BAR mapping), the locks, the globals, each process's
 * locals and labels, and the helpers the steps share.
 */
import { lockFields, lockLocals, Locks, type LockHolder } from '../../primitives/locks.js'
import type { Lockset } from '../../primitives/lockset.js'
import { lockset } from '../../primitives/lockset.js'
import { notifierFields, type Notifier } from '../../primitives/mmu-notifier.js'
import { REGION_FREED, REGION_LISTED, REGION_UNLINKED } from '../../primitives/region.js'
import type { DONE, Step } from '../../process.js'
import { array, struct, u8, type ValueOf } from '../../schema.js'

/** Lock ids of `mmioLocks`. */
export const PT_LOCK = 0
export const MMAP_LOCK = 1
/** vdev->memory_lock: VFIO's reset holds it for write; its fault handler (vfio_pci_mmap_huge_fault) takes it for read. */
export const MEMORY_LOCK = 2
/** region->mreg_mutex, which only the notifier fix (variants.ts) takes for an MMIO region. */
export const MREG_MUTEX = 3
export const mmioLocks = new Locks([
  { name: 'pt_mem_regions_lock', kind: 'spinlock' },
  { name: 'mmap_lock', kind: 'rwsem' },
  { name: 'vdev->memory_lock', kind: 'rwsem' },
  { name: 'region->mreg_mutex', kind: 'mutex' },
])

/**
 * Static layout. Region r (0: the one the VMM replaces, 1: its replacement)
 * covers gfns 0..gfns-1 (start_gfn 0) and is backed by the VMA of BAR r,
 * which maps BAR page k at its page k (VFIO: vma_to_pfn(vma) + pgoff).
 */
export interface MmioLayout {
  readonly gfns: number
  readonly regions: number
  /** Per BAR r: its first pfn. */
  readonly barPfn: readonly number[]
  /**
   * Per BAR r: the VMA's vm_pgoff. Since aac6db75a9fc ("vfio/pci: Use
   * unmap_mapping_range()", v6.10) vfio-pci leaves it as the file offset
   * (VFIO_PCI_INDEX_TO_OFFSET(index) >> PAGE_SHIFT: 0 for BAR0, index << 28
   * for the others), not the BAR's pfn. The model uses values that are no
   * BAR pfn and not 0, which stands for "not mapped" in the SLAT.
   */
  readonly vmPgoff: readonly number[]
}

export const mmioLayout = (gfns: number): MmioLayout => ({ gfns, regions: 2, barPfn: [16, 32], vmPgoff: [48, 64] })

/** Every BAR page mapped in the host page table (the bitmask `pte[r]` starts full: the VMM has touched its BARs). */
export const allPages = (l: MmioLayout): number => (1 << l.gfns) - 1

export function mmioGlobals(l: MmioLayout) {
  return {
    ...lockFields(mmioLocks.decls),
    /** The partition's region list, as Eraser sees it. */
    regionList: lockset(),
    /** struct mshv_mem_region: in the list or not, its kref, and `dead` (set by the teardown fix when it has unmapped the region's GPAs). */
    region: array(l.regions, struct({ state: u8(REGION_FREED), refs: u8(), dead: u8() })),
    /** The VMM's VMAs mapping each BAR (VFIO). */
    vmaPresent: array(l.regions, u8(1)),
    /** Per BAR: bit k set while the host page table maps BAR page k (vfio_pci_zap_bars clears them all, VFIO's fault handler sets one). */
    pte: array(l.regions, u8()),
    /** SLAT over the MMIO gfns: pfn (0 = none). */
    slat: array(l.gfns, u8()),
    /** Ghost: tid + 1 of a thread that used a region after vfree(). */
    regionUseAfterFree: u8(),
    /** The MMIO region's mmu_interval_notifier (region 0's only: nothing invalidates BAR 1), used by the notifier fix. */
    ...notifierFields(),
  }
}
export type MmioGlobals = ReturnType<typeof mmioGlobals>
export type MmioWorld = ValueOf<MmioGlobals>
/** The world every step reads and writes. */
export type W = MmioWorld & { regionList: Lockset } & Notifier

/** What the processes are built from. */
export interface MmioContext {
  readonly l: MmioLayout
  /** The default (!hv_nofull_mmio): the intercept maps the whole region, not one page. */
  readonly full: boolean
  /** `bar_reset`: something zaps BAR PTEs under a VMA that stays, so the pfn lookup may need fixup_user_fault. */
  readonly zaps: boolean
}

// ---- helpers ---------------------------------------------------------------

/** The listed region backing `gfn` (mshv_partition_region_by_gfn), -1 if none. */
export function listed(l: MmioLayout, w: W, gfn: number): number {
  for (let r = 0; r < l.regions; r++) if (w.region[r].state === REGION_LISTED && gfn < l.gfns) return r
  return -1
}

/** Every dereference of a region goes through here, so a use after vfree() is recorded. */
export function use(w: W, r: number, me: LockHolder): void {
  if (w.region[r].state === REGION_FREED && w.regionUseAfterFree === 0) w.regionUseAfterFree = me.tid + 1
}

/**
 * kref_put(&region->mreg_refcount, mshv_region_destroy) as upstream has it
 * (drivers/hv/mshv_regions.c @0eaed89c): the last reference runs the release
 * in the caller's context. mshv_region_destroy() -> mshv_region_unmap() ->
 * mshv_region_process_range() skips every NULL mreg_pages[] entry, and an
 * MMIO region never fills mreg_pages[] (its GPAs are mapped with
 * hv_call_map_mmio_pages), so the release leaves the SLAT as it is and frees
 * the region (MB-8 of the fidelity review). Returns whether it was the last.
 */
export function regionPut(w: W, r: number): boolean {
  w.region[r].refs--
  if (w.region[r].refs !== 0 || w.region[r].state !== REGION_UNLINKED) return false
  w.region[r].state = REGION_FREED
  return true
}

export const putText = (w: W, r: number): string =>
  w.region[r].refs === 1 && w.region[r].state === REGION_UNLINKED
    ? `mshv_region_put(region ${r}): last reference, mshv_region_destroy: mshv_region_unmap skips every page (an MMIO region has no mreg_pages[]), vfree`
    : `mshv_region_put(region ${r})`

/** hv_call_map_mmio_pages(gfn, pfn, count): the hypervisor silently replaces what the gfns mapped. */
export function mapMmioPages(w: W, gfn: number, pfn: number, count: number): void {
  for (let k = 0; k < count; k++) w.slat[gfn + k] = pfn + k
}

/** hv_call_unmap_gpa_pages over every gfn of the region. */
export function unmapRegionGpas(l: MmioLayout, w: W): void {
  for (let g = 0; g < l.gfns; g++) w.slat[g] = 0
}

/** The SLAT entries that map BAR r, unmapped (locked-lookup-notifier's callback: the replacement may already map the same gfns). */
export function unmapBar(l: MmioLayout, w: W, r: number): void {
  for (let g = 0; g < l.gfns; g++) if (w.slat[g] >= l.barPfn[r] && w.slat[g] < l.barPfn[r] + l.gfns) w.slat[g] = 0
}

// ---- processes' locals and labels ----------------------------------------------

export const vpLocals = { ...lockLocals, gfn: u8(), fast: u8(), mreg: u8(), pfn: u8(), seq: u8() }
export type VpLocals = LockHolder & { gfn: number; fast: number; mreg: number; pfn: number; seq: number }
/** Every label a VP has in some variant. */
export type VpLabel =
  | 'mshv_vp_handle_intercept'
  | 'spin_lock'
  | 'mshv_partition_region_by_gfn'
  | 'spin_unlock'
  | 'mmu_interval_read_begin'
  | 'mmap_read_lock'
  | 'follow_pfnmap_start'
  | 'fixup_user_fault'
  | 'mmap_read_unlock'
  | 'mutex_lock'
  | 'mmu_interval_read_retry'
  | 'hv_call_map_mmio_pages'
  | 'mutex_unlock'
  | 'mshv_region_put'
  | 'mshv_region_destroy'
export type VpStep = Step<W, VpLocals, VpLabel | typeof DONE>

/** An intercept is over (handled or not). */
export function vpDone(me: VpLocals): typeof DONE {
  me.gfn = 0
  me.fast = 0
  me.mreg = 0
  me.pfn = 0
  me.seq = 0
  return 'done'
}

export const vmmLocals = { ...lockLocals, step: u8(), pfn: u8() }
export type VmmLocals = LockHolder & { step: number; pfn: number }
export type VmmLabel =
  | 'spin_lock'
  | 'mshv_unmap_user_memory'
  | 'spin_unlock'
  | 'mutex_lock'
  | 'mshv_mmio_region_unmap'
  | 'mutex_unlock'
  | 'mshv_region_put'
  | 'mshv_region_destroy'
  | 'mshv_map_user_memory'
  | 'hv_call_map_mmio_pages'
  | 'hlist_add_head'
export type VmmStep = Step<W, VmmLocals, VmmLabel | typeof DONE>

export const vfioLocals = { ...lockLocals, cur: u8() }
export type VfioLocals = LockHolder & { cur: number }
export type VfioLabel =
  | 'mmap_write_lock'
  | 'down_write'
  | 'mmu_notifier_invalidate_range_start'
  | 'spin_lock'
  | 'mutex_lock'
  | 'mshv_mmio_region_invalidate'
  | 'spin_unlock'
  | 'mutex_unlock'
  | 'unmap_vma'
  | 'unmap_mapping_range'
  | 'mmu_notifier_invalidate_range_end'
  | 'mmap_write_unlock'
  | 'up_write'
export type VfioStep = Step<W, VfioLocals, VfioLabel | typeof DONE>
