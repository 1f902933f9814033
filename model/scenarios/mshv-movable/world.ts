/**
 * mshv-movable's world: the globals, each process's locals and labels, the
 * region's layout, the two locks, and the context the processes are built
 * from (what a patch may replace: mshv_chunk_stride() and
 * mshv_region_remap_pages()).
 */
import type { ChunkStride } from '../../drivers/mshv-regions.js'
import { memoryFields, type Memory } from '../../primitives/folio.js'
import { hostPageTableFields, vmaEdgeFields, vmaFields, type HostPageTable, type Vma } from '../../primitives/host-page-table.js'
import { layout, type Layout } from '../../primitives/layout.js'
import { fsReclaim, lockFields, lockLocals, Locks, type LockHolder } from '../../primitives/locks.js'
import { notifierDeferredFields, notifierFields, type Notifier, type NotifierDeferred } from '../../primitives/mmu-notifier.js'
import { regionFields, type Region } from '../../primitives/region.js'
import { slatFields } from '../../primitives/slat.js'
import type { DONE, Step } from '../../process.js'
import type { Params } from '../../scenario.js'
import { array, threadRef, u8, type ValueOf } from '../../schema.js'

/** Lock ids of `movableLocks`. */
export const MMAP_LOCK = 0
export const REGION_MUTEX = 1
export const movableLocks = new Locks([
  { name: 'mmap_lock', kind: 'rwsem' },
  { name: 'region->mutex', kind: 'mutex' },
  // lockdep's reclaim pseudo lock: a GFP_KERNEL allocation (hv_call_deposit_pages) may enter direct reclaim.
  fsReclaim,
])

/** hmm_range_fault()'s -EBUSY, in a VP's `ret`. */
export const EBUSY = 1
/** hmm_range_fault()'s -EFAULT (no VMA), in a VP's `ret`. */
export const EFAULT = 2
/** hmm_range_fault()'s -EPERM (HMM_PFN_REQ_WRITE on a read-only VMA), in a VP's `ret`. */
export const EPERM = 3

export function movableGlobals(l: Layout, frames: number, mthp = 0) {
  return {
    ...memoryFields(frames, mthp),
    // Every pfn field is bounded by the frames the bounds need (allocFolio refuses a pfn past them).
    ...hostPageTableFields(l, frames - 1),
    // Only with a VMA margin, so that the default model keeps its shape.
    ...(l.vmaMargin ? vmaEdgeFields(l, frames - 1) : {}),
    ...vmaFields(),
    ...slatFields(l, frames - 1),
    ...notifierFields(),
    ...notifierDeferredFields(),
    ...lockFields(movableLocks.decls),
    ...regionFields(l, frames - 1),
    /** Ghost: per region page, invalidations started whose callback has not returned. */
    invalPending: array(l.N, u8()),
    /** Ghost: tid + 1 of a VP whose fault-path hypercall failed (the patch's WARN_ONCE: the access is not handled). */
    faultMapFailed: threadRef(),
    /**
     * Ghost: tid + 1 of a VP whose hmm_range_fault() failed (-EFAULT: the VMA
     * is gone; -EPERM: it is read-only): mshv_region_handle_gfn_fault WARNs
     * and returns false, the intercept is not handled.
     */
    faultFailed: threadRef(),
  }
}
export type MovableGlobals = ReturnType<typeof movableGlobals>
/** The world every step reads and writes. */
export type MovableWorld = ValueOf<MovableGlobals> & Memory & HostPageTable & Vma & Notifier & NotifierDeferred & Region
type W = MovableWorld

/** The layout a parameter set gives, for invariants and tests. */
export function movableLayout(p: Params): Layout {
  // With 1G folios (pud) the region starts at a 1G-aligned uaddr and gfn (plus the offsets), so one can lie inside it.
  return layout(p.H, p.pages, p.gfn_offset, p.uaddr_offset, p.vma_margin === 1, p.pud ? 1 << (2 * p.H) : 1 << p.H)
}

export const hex = (n: number): string => `0x${n.toString(16)}`

// ---- VP -------------------------------------------------------------------

/** `pfnMax`: the largest pfn of the scenario's memory (frames - 1). */
export const vpLocals = (l: Layout, pfnMax = 255) => ({
  ...lockLocals,
  /** Region page the guest touches. */
  gfn: u8(),
  touched: u8(),
  off: u8(),
  cnt: u8(),
  seq: u8(),
  ret: u8(),
  /** hmm_range_fault()'s walk: the range page it looks at next (hmm_vma_walk.last - range.start). */
  walk: u8(),
  /** range.hmm_pfns */
  pfns: array(l.HP, u8(pfnMax)),
})
export type VpLocals = LockHolder & { gfn: number; touched: number; off: number; cnt: number; seq: number; ret: number; walk: number; pfns: number[] | Int16Array }

/** Every label a VP has in some variant: v6's GPA intercept path, and the region reference's put. */
export type VpLabel =
  | 'touch'
  | 'mshv_partition_region_by_gfn'
  | 'mshv_region_handle_gfn_fault'
  | 'mmu_interval_read_begin'
  | 'wait_event'
  | 'mmap_read_lock'
  | 'hmm_range_fault'
  | 'mmap_read_unlock'
  | 'mutex_lock'
  | 'mmu_interval_read_retry'
  | 'pages_update'
  | 'mshv_region_remap_pages'
  | 'mutex_unlock'
  | 'mshv_region_put'
export type VpStep = Step<W, VpLocals, VpLabel | typeof DONE>

// ---- host mm events ---------------------------------------------------------

/** The most pages of one folio an unmap may leave to free: a THP's, or with --param pud a 1G folio's. */
export const oldLen = (ctx: Pick<MovableContext, 'l' | 'pud'>): number => (ctx.pud ? 1 << (2 * ctx.l.H) : ctx.l.HP)

export const eventLocals = (l: Layout, oldLen = l.HP, pfnMax = 255) => ({
  ...lockLocals,
  /** The invalidated range, as region page indices. */
  lo: u8(),
  cnt: u8(),
  /** cur_seq given to the callback, 0 when the interval was not hit. */
  cur: u8(),
  ok: u8(1),
  /** The folio an event works on (migration: the isolated folio's head pfn). */
  folio: u8(pfnMax),
  /** The folio(s) to free after invalidate_range_end, if no longer mapped (`oldLen`: a 1G folio's pages with --param pud). */
  old: array(oldLen, u8(pfnMax)),
})
export type EventLocals = LockHolder & { lo: number; cnt: number; cur: number; ok: number; folio: number; old: number[] | Int16Array }

// ---- VMM --------------------------------------------------------------------

export const vmmLocals = { ...lockLocals, seq: u8() }
export type VmmLocals = LockHolder & { seq: number }

/** Every label of the VMM's mshv_partition_destroy_region() in some variant. */
export type VmmLabel =
  | 'hlist_del'
  | 'mutex_lock'
  | 'mutex_unlock'
  | 'mmu_interval_notifier_remove'
  | 'wait_event'
  | 'hv_call_unmap_gpa_pages'
  | 'mshv_region_invalidate'
  | 'vfree'
  | 'mshv_region_put'
export type VmmStep = Step<W, VmmLocals, VmmLabel | typeof DONE>

// ---- context ----------------------------------------------------------------

/** What the processes are built from; a patch replaces entries (`context`), and every step sees the replacement. */
export interface MovableContext {
  /** The region and its VMA (movableLayout). */
  readonly l: Layout
  /** Gfns each VP touches. */
  readonly touches: number
  /** The mTHP order a PTE fault may allocate besides order 0 (alloc_anon_folio; 0: none, the default). */
  readonly mthp?: number
  /**
   * May a PTE fault back a 2^(2H)-aligned unit of the VMA with one order-2H
   * folio (a 1G folio: --param pud)? PTE-mapped here: the model's page table
   * has no PUD level, and what mshv_chunk_stride() sees is the folio's order.
   */
  readonly pud?: boolean
  /** Frames for every allocation the bounds allow. */
  readonly frames: number
  /**
   * May a map hypercall need a deposit first? (hv_do_map_gpa_hcall: on
   * HV_STATUS_INSUFFICIENT_MEMORY it calls hv_call_deposit_pages, which
   * allocates with GFP_KERNEL, and retries.)
   */
  readonly deposits: boolean
  /** May the deposit's allocation enter direct reclaim and unmap a folio of this region (direct-reclaim.ts)? */
  readonly directReclaim?: boolean
  /** mshv_chunk_stride(page, gfn, page_count): as posted, a huge folio, a huge-aligned gfn and page count. */
  readonly mshv_chunk_stride: ChunkStride
  /** mshv_region_remap_pages(region, flags, page_offset, page_count), striding by this context's mshv_chunk_stride. */
  mshv_region_remap_pages(this: MovableContext, w: W, flags: number, off: number, cnt: number): number
}

/**
 * How many branches a map hypercall has: with `deposits`, the hypervisor
 * may first answer HV_STATUS_INSUFFICIENT_MEMORY (branch 1).
 */
export const depositChoices = (ctx: MovableContext): number => (ctx.deposits ? 2 : 1)

/**
 * hv_do_map_gpa_hcall's deposit loop (drivers/hv/mshv_root_hv_call.c): on
 * HV_STATUS_INSUFFICIENT_MEMORY, hv_call_deposit_pages() (hv_proc.c:
 * alloc_page / kcalloc / alloc_pages_node, all GFP_KERNEL), then the call
 * again. The allocation may sleep and may enter direct reclaim (lockdep's
 * fs_reclaim), whatever locks the caller holds.
 */
export function depositIfAsked(w: W, me: LockHolder, choice: number): void {
  if (choice === 1) movableLocks.allocate(w, me, 'hv_call_deposit_pages')
}

export const depositText = (choice: number): string => (choice === 1 ? ': HV_STATUS_INSUFFICIENT_MEMORY, hv_call_deposit_pages(GFP_KERNEL), again' : '')
