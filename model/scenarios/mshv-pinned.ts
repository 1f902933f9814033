/**
 * Creating an MSHV region and mapping it into the guest, as argued in seed
 * 000 ("[PATCH] mshv: Align huge page stride with guest mapping").
 *
 * The VMM's ioctl (MSHV_GET_GUEST_MEMORY / mshv_map_user_memory) creates a
 * region at (userspace_addr, guest_pfn, size). A pinned region is populated
 * first, without looking at the gfn: mshv_prepare_pinned_region ->
 * mshv_region_pin -> pin_user_pages_fast, where the host picks, for every
 * huge-aligned uaddr block wholly inside the range, a THP or small pages
 * (with `mthp` / `pud` also an mTHP or a 1G folio per aligned unit, and with
 * `vma_margin` a THP across the region's first or last page).
 * Then mshv_region_map -> mshv_chunk_stride (in the version each variant
 * names: mshv-regions.ts StrideVersion) -> HVCALL_MAP_GPA_PAGES; with
 * HV_MAP_GPA_LARGE_PAGE the hypervisor is given one pfn per large page, so a
 * pfn that is not huge-aligned fails the call, and the ioctl with it. A
 * movable region instead gets every gfn remapped with HV_MAP_GPA_NO_ACCESS
 * (the same patch), which sends no pfn at all.
 *
 * The region kind is the run's input, chosen first, so one exploration
 * judges both kinds; the host's allocation choices come after it, and
 * `ioctl-outcome-deterministic` requires the ioctl's result not to depend on
 * them. Scaled down: a huge page is 2^H small pages.
 */
import { BadInput } from '../../explorer/errors.js'
import { modifySpaHostAccess, regionMemoryMap, remapPages, strideErrorText, type StridePolicy } from '../drivers/mshv-regions.js'
import { allocFolio, initMemory, memoryFields, type Memory } from '../primitives/folio.js'
import { faultHuge, faultSmall, hostPageTableFields, type HostPageTable } from '../primitives/host-page-table.js'
import { blockInVma, blockOf, isAligned, layout, type Layout } from '../primitives/layout.js'
import { REGION_MOVABLE, REGION_PINNED, regionFields, type Region } from '../primitives/region.js'
import { EINVAL, HV_MAP_GPA_NO_ACCESS, HV_STATUS_SUCCESS, mapGpaPages, slatFields, unmapGpaPages, type Leaf } from '../primitives/slat.js'
import { process } from '../process.js'
import type { Params, Scenario } from '../scenario.js'
import { u8, type ValueOf } from '../schema.js'

export type PinnedVariant = 'as-posted' | 'upstream' | 'page-head' | 'pfn-aligned-stride' | 'reject-misaligned' | 'reject-misaligned-gfn'

export const IOCTL_PENDING = 0
export const IOCTL_OK = 1
/** Rejected up front (-EINVAL) by reject-misaligned. */
export const IOCTL_REJECTED = 2
/** HVCALL_MAP_GPA_PAGES failed: the ioctl fails. */
export const IOCTL_MAP_FAILED = 3
/** mshv_region_map returned -EINVAL before any hypercall of its failing chunk (mshv_chunk_stride: a folio order it does not support). */
export const IOCTL_EINVAL = 4
/** Encrypted partitions: mshv_region_unshare (hv_call_modify_spa_host_access over the same chunks) failed, before any map. */
export const IOCTL_UNSHARE_FAILED = 5
export const OUTCOME_NAMES = ['pending', 'ok', 'rejected (-EINVAL)', 'map hypercall failed', 'mshv_region_map: -EINVAL', 'mshv_region_unshare failed'] as const

function globals(l: Layout, frames: number, maxOrder = 0) {
  return {
    ...memoryFields(frames, maxOrder),
    ...hostPageTableFields(l),
    ...slatFields(l),
    ...regionFields(l),
    /** The ioctl's result. */
    ioctl: u8(IOCTL_UNSHARE_FAILED),
  }
}
type G = ReturnType<typeof globals>
export type PinnedWorld = ValueOf<G>
type W = PinnedWorld & Memory & HostPageTable & Region

/** Is the region misaligned (userspace_addr and guest_pfn differ modulo the huge size)? */
export const misaligned = (l: Layout): boolean => (l.startUaddr - l.startGfn) % l.HP !== 0

/**
 * reject-misaligned's rule, the threshold seed 000 suggests: a misaligned
 * region is refused when it could hold a huge page, i.e. when some
 * huge-aligned uaddr block lies wholly inside it; smaller regions (below one
 * huge page, or below two when the alignment prevents one) are let through.
 */
export const canHoldHugePage = (l: Layout): boolean => Array.from({ length: l.blocks }, (_, b) => blockInVma(l, b)).some(Boolean)

/**
 * reject-misaligned-gfn's rule (mapcheck's, for a VMA larger than the
 * region): refuse a misaligned region when mshv_chunk_stride could ever be
 * asked for a huge stride in it, i.e. some page has a huge-aligned gfn and a
 * huge-aligned, nonzero count of pages left from it. The ioctl knows this
 * from the region alone; which folios the VMA holds does not matter, since
 * with the VMA larger than the region any page may be a THP's.
 */
export const mayStrideHuge = (l: Layout): boolean => {
  for (let i = 0; i < l.N; i++) if (isAligned(l.startGfn + i, l.HP) && isAligned(l.N - i, l.HP)) return true
  return false
}

/** The folio orders the host may allocate, larger first: PUD (2H, a 1G folio) with `pud`, PMD (H, a THP), the mTHP order with `mthp`. */
export interface HostOrders {
  readonly margin: boolean
  readonly mthp: number
  readonly pud: boolean
}

const ordersOf = (l: Layout, o: HostOrders): number[] => [...(o.pud ? [2 * l.H] : []), l.H, ...(o.mthp ? [o.mthp] : [])]

/** The region page of the first uaddr of unit j of order k (may be negative: a unit that starts before the region). */
const unitFirst = (l: Layout, k: number, j: number): number => (l.startUaddr & ~((1 << k) - 1)) + j * (1 << k) - l.startUaddr

/**
 * The units of order k among the first `upTo` pages the host may back with
 * one folio: the 2^k-aligned uaddr range inside the VMA and the range, with
 * nothing mapped in it yet. With `margin`, the VMA is larger than the region
 * (seed 000: VMMs map more than one region per VMA), so a unit that
 * straddles the region's first or last page may get a large folio too
 * (thp_vma_allowable_order looks at the VMA, not at the region).
 */
function eligible(l: Layout, w: W, k: number, upTo: number, margin: boolean): number[] {
  const n = 1 << k
  const out: number[] = []
  for (let j = 0; unitFirst(l, k, j) < upTo; j++) {
    const first = unitFirst(l, k, j)
    const inside = margin ? first + n <= upTo + (upTo === l.N ? n : 0) : first >= 0 && first + n <= upTo
    if (!inside) continue
    let empty = true
    for (let i = Math.max(first, 0); i < Math.min(first + n, l.N); i++) if (w.pte[i] !== 0) empty = false
    if (empty) out.push(j)
  }
  return out
}

/** Maps unit j of order k with a fresh folio of that order (its pages inside the region; a PMD-mapped THP when it is a whole block). */
function mapUnit(l: Layout, w: W, k: number, j: number): void {
  const first = unitFirst(l, k, j)
  if (k === l.H && first >= 0 && first + l.HP <= l.N) return faultHuge(l, w, w, blockOf(l, first))
  // A THP straddling the region's edge, an mTHP or a 1G folio: the region's pages are some of its pages, PTE-mapped here.
  const head = allocFolio(w, k, l.H)
  for (let i = Math.max(first, 0); i < Math.min(first + (1 << k), l.N); i++) w.pte[i] = head + (i - first)
}

/**
 * The host's choices over pages [0, upTo), one per plan: for each order,
 * larger first, a subset of the units still eligible (a bit each); the
 * rest are order-0 pages. With only the PMD order (the defaults), plan
 * number = the bitmask over the eligible blocks.
 */
function plans(l: Layout, w: W, upTo: number, o: HostOrders): number[][] {
  const orders = ordersOf(l, o)
  const out: number[][] = []
  const walk = (level: number, masks: number[]): void => {
    if (level === orders.length) return void out.push(masks)
    // Eligibility at this level depends on what the earlier masks mapped: replayed on a scratch copy.
    const copy = scratchOf(w)
    applyMasks(l, copy, upTo, o, masks)
    const units = eligible(l, copy, orders[level], upTo, o.margin)
    for (let mask = 0; mask < 1 << units.length; mask++) walk(level + 1, [...masks, mask])
  }
  walk(0, [])
  return out
}

/** A scratch copy of what the host's choices read and write (the world's scalars are accessors: copied by name). */
const scratchOf = (w: W): W => ({ frame: Array.from(w.frame), nextPfn: w.nextPfn, pte: Array.from(w.pte), pmd: Array.from(w.pmd) }) as unknown as W

/** Maps what the masks choose, level by level (each mask over the units eligible at its level then). */
function applyMasks(l: Layout, w: W, upTo: number, o: HostOrders, masks: number[]): number[][] {
  const orders = ordersOf(l, o)
  const chosen: number[][] = []
  masks.forEach((mask, level) => {
    const k = orders[level]
    const units = eligible(l, w, k, upTo, o.margin).filter((_, b) => (mask >> b) & 1)
    units.forEach((j) => mapUnit(l, w, k, j))
    chosen.push(units)
  })
  return chosen
}

/** Faults pages [0, upTo) as plan `choice` says; the rest small pages. Returns, per order, the units it backed. */
function populate(l: Layout, w: W, upTo: number, choice: number, o: HostOrders): number[][] {
  const chosen = applyMasks(l, w, upTo, o, plans(l, w, upTo, o)[choice])
  for (let i = 0; i < upTo; i++) faultSmall(w, w, i)
  return chosen
}

/** How a trace shows the large folios a plan puts in. */
function planText(l: Layout, w: W, upTo: number, choice: number, o: HostOrders): string {
  const orders = ordersOf(l, o)
  const parts = applyMasks(l, scratchOf(w), upTo, o, plans(l, w, upTo, o)[choice]).flatMap((units, level) =>
    units.map((j) => `${orders[level] === l.H ? 'THP' : orders[level] === 2 * l.H ? '1G folio' : `order-${orders[level]} mTHP`} at uaddr ${hex(l.startUaddr + unitFirst(l, orders[level], j))}`),
  )
  return parts.length ? `: ${parts.join(', ')}` : ''
}

const hex = (n: number): string => `0x${n.toString(16)}`

/** Each variant's mshv_chunk_stride() (mshv-regions.ts StrideVersion). */
const STRIDES: Record<PinnedVariant, StridePolicy> = {
  'as-posted': { pfnAlignedStride: false, version: 'as-posted' },
  // The newest kernel (torvalds 0eaed89c, mshv_chunk_stride) carries seed 000's pfn alignment test, and strides mTHPs by 1.
  upstream: { pfnAlignedStride: true, version: 'upstream' },
  'page-head': { pfnAlignedStride: false, version: 'page-head' },
  'pfn-aligned-stride': { pfnAlignedStride: true, version: 'as-posted' },
  'reject-misaligned': { pfnAlignedStride: false, version: 'as-posted' },
  'reject-misaligned-gfn': { pfnAlignedStride: false, version: 'as-posted' },
}

/** Does the variant refuse this region up front? */
const rejects = (l: Layout, variant: PinnedVariant): boolean =>
  misaligned(l) && ((variant === 'reject-misaligned' && canHoldHugePage(l)) || (variant === 'reject-misaligned-gfn' && mayStrideHuge(l)))

function vmm(l: Layout, variant: PinnedVariant, populated: number, o: HostOrders, encrypted: boolean) {
  const stride = STRIDES[variant]
  // The step after pinning: encrypted partitions unshare first.
  const afterPin = encrypted ? 'mshv_region_unshare' : 'mshv_region_map'
  const fail = (w: W, result: number): string => {
    w.ioctl = result
    return 'done'
  }
  return process<W, Record<string, never>>({
    name: 'vmm',
    locals: {},
    gotos: [afterPin],
    start: populated > 0 ? 'vmm_populates' : 'mshv_map_user_memory',
    steps: {
      /** The VMM touched part of its memory before the ioctl (the host chose THP or small pages then). */
      ...(populated > 0 && {
        vmm_populates: {
          choices: (w: W) => plans(l, w, populated, o).length,
          run(w: W, _me: unknown, choice: number) {
            populate(l, w, populated, choice, o)
            return 'mshv_map_user_memory'
          },
          text: (w: W, _me: unknown, choice: number) => `VMM touches uaddr ${hex(l.startUaddr)}..${hex(l.startUaddr + populated - 1)}${planText(l, w, populated, choice, o)}`,
        },
      }),
      /** The ioctl; its input is the region kind (pinned, or movable when unpinned memory is enabled). */
      mshv_map_user_memory: {
        choices: () => 2,
        run(w, _me, movable) {
          w.regionKind = movable ? REGION_MOVABLE : REGION_PINNED
          if (rejects(l, variant)) return fail(w, IOCTL_REJECTED)
          return movable ? 'hv_call_map_gpa_pages_no_access' : 'mshv_region_pin'
        },
        text: (_w, _me, movable) =>
          `mshv_map_user_memory(uaddr ${hex(l.startUaddr)}, gfn ${hex(l.startGfn)}, ${l.N} pages, ${movable ? 'movable' : 'pinned'})` +
          (rejects(l, variant) ? ' = -EINVAL' : ''),
      },
      /** pin_user_pages_fast(): the host's choice, per eligible unit, of a large folio (1G, THP, mTHP) or small pages. */
      mshv_region_pin: {
        choices: (w) => plans(l, w, l.N, o).length,
        run(w, _me, choice) {
          populate(l, w, l.N, choice, o)
          for (let i = 0; i < l.N; i++) w.pages[i] = w.pte[i]
          return afterPin
        },
        text: (w, _me, choice) => `pin_user_pages_fast(${l.N} pages)${planText(l, w, l.N, choice, o)}`,
      },
      /**
       * Encrypted (SNP) partitions only: mshv_map_user_memory releases host access to the region before it
       * maps it (mshv_region_unshare: hv_call_modify_spa_host_access per chunk, through the same stride).
       * On failure the region is destroyed (its pages unpinned) and the ioctl fails.
       */
      ...(encrypted && {
        mshv_region_unshare: {
          run(w: W) {
            const ret = modifySpaHostAccess(l, w, stride, 0, l.N)
            return ret === HV_STATUS_SUCCESS ? 'mshv_region_map' : fail(w, IOCTL_UNSHARE_FAILED)
          },
          text: (w: W) => {
            const ret = modifySpaHostAccess(l, w, stride, 0, l.N)
            return `mshv_region_unshare(${l.N} pages)${ret === HV_STATUS_SUCCESS ? '' : ret === EINVAL ? ' = -EINVAL' : ': HV_STATUS_INVALID_PARAMETER (a large page from a misaligned pfn)'}`
          },
        },
      }),
      mshv_region_map: {
        run(w) {
          const ret = remapPages(l, w, stride, 0, 0, l.N)
          if (ret === HV_STATUS_SUCCESS) return fail(w, IOCTL_OK)
          // errout: mshv_region_destroy() unmaps what was mapped and unpins the pages.
          unmapGpaPages(w.slat as Leaf[], 0, l.N)
          // -EINVAL from the driver itself (mshv_chunk_stride, or a LARGE_PAGE count not 2M-aligned), else the hypercall's error.
          return fail(w, ret === EINVAL ? IOCTL_EINVAL : IOCTL_MAP_FAILED)
        },
        text: (w) => `mshv_region_map(gfn ${hex(l.startGfn)}, ${l.N} pages)${strideErrorText(l, w, stride, 0, l.N)}`,
      },
      /**
       * The movable path of mshv_map_user_memory: after mshv_region_movable_init (the interval notifier's
       * insert, not modelled here), hv_call_map_gpa_pages(..., HV_MAP_GPA_NO_ACCESS, NULL) over the whole
       * region before any page exists.
       */
      hv_call_map_gpa_pages_no_access: {
        run(w) {
          const ret = mapGpaPages(l, w.slat as Leaf[], 0, l.N, HV_MAP_GPA_NO_ACCESS, () => 0)
          return fail(w, ret === HV_STATUS_SUCCESS ? IOCTL_OK : IOCTL_MAP_FAILED)
        },
        text: () => `mshv_region_remap_pages(NO_ACCESS, gfn ${hex(l.startGfn)}, ${l.N} pages)`,
      },
    },
  })
}

export const mshvPinned: Scenario<G> = {
  name: 'mshv-pinned',
  title: 'MSHV region creation and the huge-page stride (seed 000)',
  description:
    'MSHV_GET_GUEST_MEMORY for a pinned region (pin_user_pages_fast, then mshv_region_map through mshv_chunk_stride) and for a movable one (NO_ACCESS remap): does the ioctl\'s result depend on whether the host picked THPs, and how much of the guest gets huge mappings?',
  params: [
    { name: 'H', default: 1, min: 1, max: 3, description: 'huge order: a huge page is 2^H small pages (9 on x86-64)' },
    { name: 'pages', default: 4, min: 1, max: 32, description: 'region size in small pages' },
    { name: 'uaddr_offset', default: 1, min: 0, max: 7, description: 'userspace_addr modulo 2^H (in small pages)' },
    { name: 'gfn_offset', default: 0, min: 0, max: 7, description: 'guest_pfn modulo 2^H' },
    { name: 'populated', default: 0, min: 0, max: 32, description: 'leading pages the VMM touched before the ioctl' },
    { name: 'vma_margin', default: 0, min: 0, max: 1, description: 'the VMA extends past both ends of the region, so a THP may straddle its first or last page' },
    { name: 'mthp', default: 0, min: 0, max: 2, description: 'an mTHP order below H the host may also allocate (alloc_anon_folio; 0: none). Needs H >= 2' },
    { name: 'pud', default: 0, min: 0, max: 1, description: 'the host may back a 2^(2H)-page aligned unit of the VMA with one folio of order 2H (a 1G hugetlbfs page)' },
    { name: 'encrypted', default: 0, min: 0, max: 1, description: 'an encrypted (SNP) partition: mshv_region_unshare through the same stride before the map' },
  ],
  variants: [
    { name: 'as-posted', description: 'mshv_chunk_stride: huge folio, gfn and page count huge-aligned', expect: { violates: ['ioctl-outcome-deterministic'] } },
    {
      name: 'upstream',
      description:
        'the newest kernel (torvalds 0eaed89c): the pfn-aligned stride; pinned regions exist there only for encrypted partitions (or a failed notifier insert), which this scenario does not distinguish',
      expect: { violates: [] },
    },
    {
      name: 'page-head',
      description: 'torvalds d3b402c5 (Jan 2026): a huge stride only from a compound head, and -EINVAL for a head whose order is not PMD_ORDER (an mTHP, a 1G folio)',
      expect: { violates: [] },
    },
    { name: 'pfn-aligned-stride', description: 'seed 000\'s fix (what later kernels carry): also IS_ALIGNED(page_to_pfn(page), PTRS_PER_PMD)', expect: { violates: [] } },
    { name: 'reject-misaligned', description: 'the ioctl refuses a region whose uaddr and gfn differ modulo the huge size, when it could hold a huge page (a huge block wholly inside it: seed 000\'s threshold, which assumes the VMA is the region)', expect: { violates: [] } },
    {
      name: 'reject-misaligned-gfn',
      description: '(mapcheck) the ioctl refuses a misaligned region when mshv_chunk_stride could be asked for a huge stride in it (a huge-aligned gfn with a huge-aligned count left): safe with a VMA larger than the region',
      expect: { violates: [] },
    },
  ],
  memoryMap: (p: Params) => regionMemoryMap(pinnedLayout(p)),
  build(p: Params, variant: string) {
    const HP = 1 << p.H
    if (p.uaddr_offset >= HP || p.gfn_offset >= HP) throw new BadInput(`uaddr_offset and gfn_offset must be below 2^H = ${HP}`)
    if (p.populated > p.pages) throw new BadInput(`populated=${p.populated} is more than pages=${p.pages}`)
    if (p.mthp !== 0 && p.mthp >= p.H) throw new BadInput(`mthp=${p.mthp} must be below H=${p.H} (an mTHP is smaller than a PMD-sized folio)`)
    const l = layout(p.H, p.pages, p.gfn_offset, p.uaddr_offset)
    // The largest folio, and the alignment it may skip, twice over (VMM touch and pin).
    const unit = p.pud ? 1 << (2 * p.H) : HP
    const frames = 2 + 2 * (l.N + 2 * unit)
    if (frames > 255) throw new BadInput(`pages=${p.pages} needs ${frames} frames; at most 255 fit a byte`)
    return {
      globals: globals(l, frames, Math.max(p.mthp, p.pud ? 2 * p.H : 0)),
      init(w: PinnedWorld) {
        initMemory(w as unknown as Memory)
      },
      threads: [{ name: 'vmm', process: vmm(l, variant as PinnedVariant, p.populated, { margin: p.vma_margin === 1, mthp: p.mthp, pud: p.pud === 1 }, p.encrypted === 1) }],
    }
  },
}

export const pinnedLayout = (p: Params): Layout => layout(p.H, p.pages, p.gfn_offset, p.uaddr_offset)
