/**
 * MSHV movable (unpinned) memory regions: "[PATCH v6 5/5] Drivers: hv: Add
 * support for movable memory regions" as reviewed in seed 001, with the
 * huge-page stride rule of seed 000.
 *
 * VP threads take the GPA intercept path of the patch (vp.ts). Host mm
 * threads invalidate through the interval notifier and change the host
 * page table (host-events.ts). A VMM thread destroys the region (vmm.ts).
 * The world, the locks and the context are in world.ts; `build` makes v6
 * as posted, and every other variant is a patch of it (variants.ts).
 *
 * Scaled down: a huge page is 2^H small pages (H = 9 on x86-64).
 * MSHV_MAP_FAULT_IN_PAGES = PTRS_PER_PMD = 2^H.
 */
import { BadInput } from '../../../explorer/errors.js'
import { chunkStride, regionMemoryMap, remapPages, type RemapFailures, type StridePolicy } from '../../drivers/mshv-regions.js'
import { initMemory } from '../../primitives/folio.js'
import { vmaInit } from '../../primitives/host-page-table.js'
import { notifierInsert } from '../../primitives/mmu-notifier.js'
import { REGION_LISTED, REGION_MOVABLE } from '../../primitives/region.js'
import type { Params, Scenario } from '../../scenario.js'
import { hostEvents } from './host-events.js'
import { movablePatches } from './variants.js'
import { vmm } from './vmm.js'
import { vmmMm } from './vmm-mm.js'
import { vp } from './vp.js'
import { movableGlobals, movableLayout, movableLocks, REGION_MUTEX, type MovableContext, type MovableWorld } from './world.js'

export { EBUSY, EFAULT, EPERM, MMAP_LOCK, REGION_MUTEX, movableGlobals, movableLayout, movableLocks } from './world.js'
export type { EventLocals, MovableContext, MovableGlobals, MovableWorld, VmmLabel, VmmLocals, VmmStep, VpLabel, VpLocals, VpStep } from './world.js'

export type MovableVariant = 'v6' | 'no-seq-retry' | 'fixed' | 'pfn-aligned-stride' | 'region-ref' | 'fixed-teardown'

/** mshv_chunk_stride() as posted: no pfn alignment. */
const AS_POSTED: StridePolicy = { pfnAlignedStride: false }

/** Host events of one kind (zap0, zap1, ...) run one process: interchangeable, as the VPs are. */
function sameProcess(events: readonly { name: string; process: unknown }[]): string[][] {
  const groups = new Map<unknown, string[]>()
  for (const e of events) groups.set(e.process, [...(groups.get(e.process) ?? []), e.name])
  return [...groups.values()].filter((g) => g.length > 1)
}

export const mshvMovable: Scenario<MovableContext> = {
  name: 'mshv-movable',
  title: 'MSHV movable regions: GPA intercept vs mmu_interval_notifier (seeds 001, 000)',
  description:
    'The fault path of MSHV movable regions, as posted in "[PATCH v6 5/5]" (v6) and as torvalds 0eaed89c has it (upstream): mmu_interval_read_begin, hmm_range_fault page by page, region->mutex, mmu_interval_read_retry, pages[] and mshv_region_remap_pages through mshv_chunk_stride (hv_do_map_gpa_hcall with deposits and failures), against the host mm (MADV_DONTNEED and the OOM reaper over any sub-range, migration, __split_huge_pmd, split_folio, khugepaged as an rwsem writer, the VMM\'s munmap and mprotect, direct reclaim from the deposit; mTHPs and a VMA larger than the region on request) and region destruction (the release by the last putter upstream).',
  params: [
    { name: 'H', default: 1, min: 1, max: 3, description: 'huge order: a huge page is 2^H small pages (9 on x86-64)' },
    { name: 'pages', default: 4, min: 1, max: 16, description: 'region size in small pages (nr_pages)' },
    { name: 'gfn_offset', default: 0, min: 0, max: 7, description: 'start_gfn modulo 2^H' },
    { name: 'uaddr_offset', default: 0, min: 0, max: 7, description: 'start_uaddr modulo 2^H (in small pages)' },
    { name: 'vps', default: 1, min: 1, max: 4, description: 'VP threads (2 for VP-against-VP races; the main job uses 1 to stay fast)' },
    { name: 'touches', default: 1, min: 1, max: 3, description: 'gfns each VP touches' },
    { name: 'zaps', default: 1, min: 0, max: 3, description: 'MADV_DONTNEED zaps' },
    { name: 'migrations', default: 0, min: 0, max: 2, description: 'page migrations' },
    { name: 'splits', default: 0, min: 0, max: 2, description: 'PMD splits (__split_huge_pmd: the THP stays whole, PTE-mapped)' },
    { name: 'folio_splits', default: 0, min: 0, max: 2, description: 'folio splits (split_folio, then deferred split frees the unmapped pages)' },
    { name: 'collapses', default: 0, min: 0, max: 2, description: 'khugepaged collapses' },
    { name: 'reclaims', default: 0, min: 0, max: 2, description: 'OOM-reaper unmaps (non-blockable invalidation)' },
    { name: 'destroy', default: 0, min: 0, max: 1, description: 'the VMM destroys the region' },
    { name: 'deposits', default: 0, min: 0, max: 1, description: 'a map hypercall may return HV_STATUS_INSUFFICIENT_MEMORY: hv_call_deposit_pages (GFP_KERNEL) and retry' },
    {
      name: 'map_failures',
      default: 0,
      min: 0,
      max: 1,
      description: "the invalidate callback's NO_ACCESS map hypercall may fail at any of its pages (a hypervisor error; hv_do_map_gpa_hcall unmaps the batches done before it)",
    },
    { name: 'munmap', default: 0, min: 0, max: 1, description: "the VMM munmaps the region's memory (an invalidation of the whole region, the VMA gone: hmm_range_fault returns -EFAULT)" },
    { name: 'mprotect', default: 0, min: 0, max: 1, description: "the VMM mprotects the region's memory PROT_READ (an invalidation, the VMA read-only: hmm_range_fault returns -EPERM)" },
    {
      name: 'mthp',
      default: 0,
      min: 0,
      max: 2,
      description: 'an mTHP order below H a PTE fault may allocate (alloc_anon_folio, PTE-mapped; 0: none). Needs H >= 2',
    },
    {
      name: 'pud',
      default: 0,
      min: 0,
      max: 1,
      description:
        'a PTE fault may back a 2^(2H)-page aligned unit of the VMA inside the region with one folio of order 2H (a 1G folio, PTE-mapped: the page table has no PUD level); upstream\'s mshv_chunk_stride maps it as 2M chunks',
    },
    {
      name: 'direct_reclaim',
      default: 0,
      min: 0,
      max: 1,
      description: "with deposits, the deposit's GFP_KERNEL allocation may enter direct reclaim, which unmaps a folio of this region through its own invalidate callback, in the allocating VP",
    },
    { name: 'map_fixed', default: 0, min: 0, max: 2, description: 'mmap(MAP_FIXED) replacements of part of the region: its old pages unmapped and freed under the mmap write lock' },
    {
      name: 'vma_margin',
      default: 0,
      min: 0,
      max: 1,
      description: "the VMA extends past the region's first and last blocks (VMMs map more than one region per VMA), so a THP (or with mthp an mTHP) may straddle the region's first or last page",
    },
  ],
  variants: [{ name: 'v6', description: 'as posted in [PATCH v6 5/5]', expect: { violates: ['no-stale-mapping'] } }, ...movablePatches],
  memoryMap: (p: Params) => regionMemoryMap(movableLayout(p)),
  context(p: Params): MovableContext {
    const HP = 1 << p.H
    if (p.gfn_offset >= HP || p.uaddr_offset >= HP) {
      throw new BadInput(`gfn_offset and uaddr_offset must be below 2^H = ${HP}`)
    }
    if (p.mthp !== 0 && p.mthp >= p.H) throw new BadInput(`mthp=${p.mthp} must be below H=${p.H} (an mTHP is smaller than a PMD-sized folio)`)
    const l = movableLayout(p)
    // Frames for every allocation the bounds allow: faults (each event can make pages fault again) and new folios.
    const eventCount = p.zaps + p.migrations + p.collapses + p.reclaims + p.map_fixed
    // A 1G folio (pud) is aligned to 2^(2H) pfns: up to twice its size per allocation, per unit of the region, each time it can fault again or migrate.
    const unit = 1 << (2 * p.H)
    const pudFrames = p.pud ? 2 * unit * (Math.ceil(l.N / unit) * (1 + eventCount) + p.migrations) : 0
    const frames = 2 + 2 * HP + 2 * (l.N + HP) * (1 + eventCount) + HP * (p.migrations + p.collapses) + pudFrames
    if (frames > 255) throw new BadInput(`these bounds need ${frames} frames; at most 255 fit a byte: lower pages, H or the event counts`)
    // `map_failures` is read here until MovableContext declares it (mshv-regions.ts RemapFailures).
    const ctx: MovableContext & RemapFailures = {
      l,
      touches: p.touches,
      mthp: p.mthp,
      pud: p.pud === 1,
      frames,
      deposits: p.deposits === 1,
      directReclaim: p.deposits === 1 && p.direct_reclaim === 1,
      map_failures: p.map_failures === 1,
      mshv_chunk_stride: (l, w, i, remaining) => chunkStride(l, w, AS_POSTED, i, remaining),
      /** mshv_region_remap_pages (0eaed89c mshv_region_process_range / process_chunk / chunk_remap); `failAt`: an injected failure at that rep. */
      mshv_region_remap_pages(w: MovableWorld, flags: number, off: number, cnt: number, failAt: number = -1) {
        return remapPages(this.l, w, this.mshv_chunk_stride, flags, off, cnt, failAt)
      },
    }
    return ctx
  },
  /** v6 as posted (every other variant is a patch of it). */
  build(p: Params, _variant: string, ctx: MovableContext) {
    const fault = vp(ctx)
    const events = hostEvents(ctx, p)
    const threads = [
      ...Array.from({ length: p.vps }, (_, k) => ({ name: `vp${k}`, process: fault })),
      ...events,
      ...(p.destroy ? [{ name: 'vmm', process: vmm(ctx) }] : []),
      ...vmmMm(ctx, p),
    ].map((t, tid) => ({ ...t, locals: { tid } }))
    return {
      globals: movableGlobals(ctx.l, ctx.frames, ctx.pud ? 2 * ctx.l.H : ctx.mthp),
      init(world) {
        const w = world as MovableWorld
        initMemory(w)
        vmaInit(w)
        notifierInsert(w)
        // mmu_notifier_register primes lockdep: reclaim may invalidate, and the callback takes region->mutex.
        movableLocks.primeReclaim(w, [REGION_MUTEX])
        w.regionKind = REGION_MOVABLE
        w.regionState = REGION_LISTED
      },
      threads,
      // The VPs run one process and are told apart only by their tid (declared threadId) and the fields naming a thread (threadRef).
      symmetric: [Array.from({ length: p.vps }, (_, k) => `vp${k}`), ...sameProcess(events)],
    }
  },
}
