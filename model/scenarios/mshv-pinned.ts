/**
 * Creating an MSHV region and mapping it into the guest, as argued in seed
 * 000 ("[PATCH] mshv: Align huge page stride with guest mapping").
 *
 * The VMM's ioctl (MSHV_GET_GUEST_MEMORY / mshv_map_user_memory) creates a
 * region at (userspace_addr, guest_pfn, size). A pinned region is populated
 * first, without looking at the gfn: mshv_prepare_pinned_region ->
 * mshv_region_pin -> pin_user_pages_fast, where the host picks, for every
 * huge-aligned uaddr block wholly inside the range, a THP or small pages.
 * Then mshv_region_map -> mshv_chunk_stride -> HVCALL_MAP_GPA_PAGES; with
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
import { regionMemoryMap, remapPages, type StridePolicy } from '../drivers/mshv-regions.js'
import { allocHuge, initMemory, memoryFields, type Memory } from '../primitives/folio.js'
import { faultHuge, faultSmall, hostPageTableFields, thpEligible, type HostPageTable } from '../primitives/host-page-table.js'
import { blockInVma, layout, type Layout } from '../primitives/layout.js'
import { REGION_MOVABLE, REGION_PINNED, regionFields, type Region } from '../primitives/region.js'
import { HV_MAP_GPA_NO_ACCESS, HV_STATUS_SUCCESS, mapGpaPages, slatFields, unmapGpaPages, type Leaf } from '../primitives/slat.js'
import { process } from '../process.js'
import type { Params, Scenario } from '../scenario.js'
import { u8, type ValueOf } from '../schema.js'

export type PinnedVariant = 'as-posted' | 'upstream' | 'pfn-aligned-stride' | 'reject-misaligned'

export const IOCTL_PENDING = 0
export const IOCTL_OK = 1
/** Rejected up front (-EINVAL) by reject-misaligned. */
export const IOCTL_REJECTED = 2
/** HVCALL_MAP_GPA_PAGES failed: the ioctl fails. */
export const IOCTL_MAP_FAILED = 3
export const OUTCOME_NAMES = ['pending', 'ok', 'rejected (-EINVAL)', 'map hypercall failed'] as const

function globals(l: Layout, frames: number) {
  return {
    ...memoryFields(frames),
    ...hostPageTableFields(l),
    ...slatFields(l),
    ...regionFields(l),
    /** The ioctl's result. */
    ioctl: u8(IOCTL_MAP_FAILED),
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
 * The eligible blocks among the first `upTo` pages: aligned, inside the VMA
 * and range, nothing mapped yet. With `margin`, the VMA is larger than the
 * region (seed 000: VMMs map more than one region per VMA), so a block that
 * straddles the region's first or last page may get a THP too
 * (thp_vma_allowable_order looks at the VMA, not at the region).
 */
function eligible(l: Layout, w: W, upTo: number, margin: boolean): number[] {
  const out: number[] = []
  for (let b = 0; b < l.blocks; b++) {
    const first = (l.startUaddr & ~(l.HP - 1)) + b * l.HP - l.startUaddr
    if (margin) {
      const lo = Math.max(first, 0)
      const hi = Math.min(first + l.HP, l.N)
      if (first + l.HP <= upTo + (upTo === l.N ? l.HP : 0) && Array.from({ length: hi - lo }, (_, k) => w.pte[lo + k]).every((x) => x === 0)) out.push(b)
    } else if (first + l.HP <= upTo && thpEligible(l, w, b)) out.push(b)
  }
  return out
}

/** Faults pages [0, upTo): the blocks picked by `choice`'s bits get a THP, the rest small pages. */
function populate(l: Layout, w: W, upTo: number, choice: number, margin: boolean): void {
  eligible(l, w, upTo, margin).forEach((b, k) => {
    if (!((choice >> k) & 1)) return
    const first = (l.startUaddr & ~(l.HP - 1)) + b * l.HP - l.startUaddr
    if (first >= 0 && first + l.HP <= l.N) return faultHuge(l, w, w, b)
    // A THP straddling the region's edge: the region's pages are some of its pages, from a tail on.
    const head = allocHuge(w, l.H)
    for (let i = Math.max(first, 0); i < Math.min(first + l.HP, l.N); i++) w.pte[i] = head + (i - first)
  })
  for (let i = 0; i < upTo; i++) faultSmall(w, w, i)
}

const hex = (n: number): string => `0x${n.toString(16)}`

function vmm(l: Layout, variant: PinnedVariant, populated: number, margin: boolean) {
  // The newest kernel (torvalds 0eaed89c, mshv_chunk_stride) carries seed 000's pfn alignment test.
  const stride: StridePolicy = { pfnAlignedStride: variant === 'pfn-aligned-stride' || variant === 'upstream' }
  const fail = (w: W, result: number): string => {
    w.ioctl = result
    return 'done'
  }
  return process<W, Record<string, never>>({
    name: 'vmm',
    locals: {},
    start: populated > 0 ? 'vmm_populates' : 'mshv_map_user_memory',
    steps: {
      /** The VMM touched part of its memory before the ioctl (the host chose THP or small pages then). */
      ...(populated > 0 && {
        vmm_populates: {
          choices: (w: W) => 1 << eligible(l, w, populated, margin).length,
          run(w: W, _me: unknown, choice: number) {
            populate(l, w, populated, choice, margin)
            return 'mshv_map_user_memory'
          },
          text: (_w: W, _me: unknown, choice: number) => `VMM touches uaddr ${hex(l.startUaddr)}..${hex(l.startUaddr + populated - 1)}${choice ? ' (THP)' : ''}`,
        },
      }),
      /** The ioctl; its input is the region kind (pinned, or movable when unpinned memory is enabled). */
      mshv_map_user_memory: {
        choices: () => 2,
        run(w, _me, movable) {
          w.regionKind = movable ? REGION_MOVABLE : REGION_PINNED
          if (variant === 'reject-misaligned' && misaligned(l) && canHoldHugePage(l)) return fail(w, IOCTL_REJECTED)
          return movable ? 'hv_call_map_gpa_pages_no_access' : 'mshv_region_pin'
        },
        text: (_w, _me, movable) =>
          `mshv_map_user_memory(uaddr ${hex(l.startUaddr)}, gfn ${hex(l.startGfn)}, ${l.N} pages, ${movable ? 'movable' : 'pinned'})` +
          (variant === 'reject-misaligned' && misaligned(l) && canHoldHugePage(l) ? ' = -EINVAL' : ''),
      },
      /** pin_user_pages_fast(): the host's choice, per eligible block, of a THP or small pages. */
      mshv_region_pin: {
        choices: (w) => 1 << eligible(l, w, l.N, margin).length,
        run(w, _me, choice) {
          populate(l, w, l.N, choice, margin)
          for (let i = 0; i < l.N; i++) w.pages[i] = w.pte[i]
          return 'mshv_region_map'
        },
        text: (w, _me, choice) => {
          const thp = eligible(l, w, l.N, margin).filter((_, k) => (choice >> k) & 1)
          return `pin_user_pages_fast(${l.N} pages)${thp.length ? `: THP at uaddr ${thp.map((b) => hex((l.startUaddr & ~(l.HP - 1)) + b * l.HP)).join(', ')}` : ''}`
        },
      },
      mshv_region_map: {
        run(w) {
          if (remapPages(l, w, stride, 0, 0, l.N) === HV_STATUS_SUCCESS) return fail(w, IOCTL_OK)
          // errout: mshv_region_destroy() unmaps what was mapped and unpins the pages.
          unmapGpaPages(w.slat as Leaf[], 0, l.N)
          return fail(w, IOCTL_MAP_FAILED)
        },
        text: () => `mshv_region_map(gfn ${hex(l.startGfn)}, ${l.N} pages)`,
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
  ],
  variants: [
    { name: 'as-posted', description: 'mshv_chunk_stride: huge folio, gfn and page count huge-aligned', expect: { violates: ['ioctl-outcome-deterministic'] } },
    {
      name: 'upstream',
      description:
        'the newest kernel (torvalds 0eaed89c): the pfn-aligned stride; pinned regions exist there only for encrypted partitions (or a failed notifier insert), which this scenario does not distinguish',
      expect: { violates: [] },
    },
    { name: 'pfn-aligned-stride', description: 'seed 000\'s fix (what later kernels carry): also IS_ALIGNED(page_to_pfn(page), PTRS_PER_PMD)', expect: { violates: [] } },
    { name: 'reject-misaligned', description: 'the ioctl refuses a region whose uaddr and gfn differ modulo the huge size, when it could hold a huge page', expect: { violates: [] } },
  ],
  memoryMap: (p: Params) => regionMemoryMap(pinnedLayout(p)),
  build(p: Params, variant: string) {
    const HP = 1 << p.H
    if (p.uaddr_offset >= HP || p.gfn_offset >= HP) throw new BadInput(`uaddr_offset and gfn_offset must be below 2^H = ${HP}`)
    if (p.populated > p.pages) throw new BadInput(`populated=${p.populated} is more than pages=${p.pages}`)
    const l = layout(p.H, p.pages, p.gfn_offset, p.uaddr_offset)
    const frames = 2 + 2 * (l.N + 2 * HP)
    if (frames > 255) throw new BadInput(`pages=${p.pages} needs ${frames} frames; at most 255 fit a byte`)
    return {
      globals: globals(l, frames),
      init(w: PinnedWorld) {
        initMemory(w as unknown as Memory)
      },
      threads: [{ name: 'vmm', process: vmm(l, variant as PinnedVariant, p.populated, p.vma_margin === 1) }],
    }
  },
}

export const pinnedLayout = (p: Params): Layout => layout(p.H, p.pages, p.gfn_offset, p.uaddr_offset)
