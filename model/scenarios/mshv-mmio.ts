/**
 * MSHV MMIO passthrough (seed 004: "[PATCH v0 15/15] mshv: Populate mmio
 * mappings for PCI passthru").
 *
 * A VP takes the unmapped-GPA intercept: mshv_handle_unmapped_gpa does an
 * unlocked fast-path lookup of the region list, then
 * mshv_chk_get_mmio_start_pfn (v0: under pt_mem_regions_lock, a spinlock,
 * it takes mmap_read_lock, vma_lookup, follow_pfnmap_start), then
 * hv_call_map_mmio_pages for the whole region (or one page with
 * hv_nofull_mmio), using the region found by the fast path. The VMM replaces
 * the MMIO region (the list mutation under pt_mem_regions_lock, then the
 * SLAT unmap and vfree), and VFIO tears the BAR's VMA down (munmap of the
 * VMA backing the region). The hypervisor silently accepts a map of an
 * already-mapped GPA.
 */
import { lockFields, lockLocals, Locks, type LockHolder } from '../primitives/locks.js'
import { access, lockset, type Lockset } from '../primitives/lockset.js'
import { REGION_FREED, REGION_LISTED, REGION_UNLINKED } from '../primitives/region.js'
import { process } from '../process.js'
import type { Params, Scenario } from '../scenario.js'
import { array, struct, u8, type ValueOf } from '../schema.js'

export type MmioVariant = 'v0' | 'no-spinlock' | 'locked-lookup-notifier'

export const PT_LOCK = 0
export const MMAP_LOCK = 1
export const mmioLocks = new Locks([
  { name: 'pt_mem_regions_lock', kind: 'spinlock' },
  { name: 'mmap_lock', kind: 'rwsem' },
])


/** Static layout: gfns of the MMIO range, the two regions (old and its replacement) and their BARs. */
export interface MmioLayout {
  readonly gfns: number
  /** Per region: the BAR (VMA) it is backed by; both cover gfns 0..gfns-1. */
  readonly regions: number
  /** Per BAR k: its first pfn. */
  readonly barPfn: readonly number[]
}

export const mmioLayout = (gfns: number): MmioLayout => ({ gfns, regions: 2, barPfn: [16, 32] })

function globals(l: MmioLayout) {
  return {
    ...lockFields(mmioLocks.decls),
    /** The partition's region list, as Eraser sees it. */
    regionList: lockset(),
    region: array(l.regions, struct({ state: u8(REGION_FREED), refs: u8() })),
    /** The VMM's VMAs mapping each BAR (VFIO). */
    vmaPresent: array(l.regions, u8(1)),
    /** SLAT over the MMIO gfns: pfn (0 = none). */
    slat: array(l.gfns, u8()),
    /** Ghost: tid + 1 of a thread that used a region after vfree(). */
    regionUseAfterFree: u8(),
  }
}
type G = ReturnType<typeof globals>
export type MmioWorld = ValueOf<G>
type W = MmioWorld & { regionList: Lockset }

const listed = (w: W, gfn: number, l: MmioLayout): number => {
  for (let r = 0; r < l.regions; r++) if (w.region[r].state === REGION_LISTED && gfn < l.gfns) return r
  return -1
}

function use(w: W, r: number, me: LockHolder): void {
  if (w.region[r].state === REGION_FREED && w.regionUseAfterFree === 0) w.regionUseAfterFree = me.tid + 1
}

/**
 * mshv_region_put (locked-lookup-notifier): the last reference releases the
 * region, and the release unmaps its GPAs, so a VP still holding a reference
 * cannot map after the unmap.
 */
function put(l: MmioLayout, w: W, r: number): void {
  w.region[r].refs--
  if (w.region[r].refs !== 0 || w.region[r].state !== REGION_UNLINKED) return
  unmapBar(l, w, r)
  w.region[r].state = REGION_FREED
}

/** hv_call_unmap_gpa_pages for the GPAs that map region r's BAR (the replacement may already map the same gfns). */
function unmapBar(l: MmioLayout, w: W, r: number): void {
  for (let g = 0; g < l.gfns; g++) if (w.slat[g] >= l.barPfn[r] && w.slat[g] < l.barPfn[r] + l.gfns) w.slat[g] = 0
}

type VpLocals = LockHolder & { gfn: number; fast: number; mreg: number; pfn: number }

function vp(l: MmioLayout, variant: MmioVariant, full: boolean) {
  const done = (me: VpLocals): string => {
    me.gfn = 0
    me.fast = 0
    me.mreg = 0
    me.pfn = 0
    return 'done'
  }
  const notifier = variant === 'locked-lookup-notifier'
  return process<W, VpLocals>({
    name: 'vp',
    locals: { ...lockLocals, gfn: u8(), fast: u8(), mreg: u8(), pfn: u8() },
    start: 'mshv_handle_unmapped_gpa',
    steps: {
      /** HVMSG_UNMAPPED_GPA; v0 and no-spinlock first look the region up with no lock held (the "fast check"). */
      mshv_handle_unmapped_gpa: {
        choices: () => l.gfns,
        run(w, me, gfn) {
          me.gfn = gfn
          if (notifier) return 'spin_lock'
          access(w.regionList, me, false)
          const r = listed(w, gfn, l)
          if (r < 0) return done(me)
          me.fast = r + 1
          return variant === 'v0' ? 'spin_lock' : 'mmap_read_lock'
        },
        text: (_w, _me, gfn) => `mshv_handle_unmapped_gpa(gfn ${gfn})${notifier ? '' : ': mshv_partition_region_by_gfn, no lock'}`,
      },
      spin_lock: mmioLocks.lockStep(PT_LOCK, 'mshv_partition_region_by_gfn'),
      /** The lookup again, under pt_mem_regions_lock (v0), or under it with a reference (locked-lookup-notifier), or under mmap_lock (no-spinlock). */
      mshv_partition_region_by_gfn: {
        run(w, me) {
          access(w.regionList, me, false)
          const r = listed(w, me.gfn, l)
          if (r < 0) return variant === 'no-spinlock' ? 'mmap_read_unlock' : 'spin_unlock'
          me.mreg = r + 1
          if (notifier) w.region[r].refs++
          return variant === 'v0' ? 'mmap_read_lock' : variant === 'no-spinlock' ? 'follow_pfnmap_start' : 'spin_unlock'
        },
        text: () => (notifier ? 'mshv_partition_region_by_gfn_get (under the spinlock)' : 'mshv_partition_region_by_gfn (again, locked)'),
      },
      mmap_read_lock: {
        guard: (w) => mmioLocks.readable(w, MMAP_LOCK),
        run(w, me) {
          mmioLocks.readLock(w, me, MMAP_LOCK)
          return variant === 'no-spinlock' ? 'mshv_partition_region_by_gfn' : 'follow_pfnmap_start'
        },
        text: () => 'mmap_read_lock(current->mm)',
      },
      /** vma_lookup + follow_pfnmap_start (or fixup_user_fault first): the BAR pfn, if the region's VMA is still there. */
      follow_pfnmap_start: {
        run(w, me) {
          const r = me.mreg - 1
          use(w, r, me)
          me.pfn = w.vmaPresent[r] ? l.barPfn[r] + me.gfn : 0
          // locked-lookup-notifier maps under mmap_read_lock, so a VMA teardown cannot slip in between.
          return notifier && me.pfn ? 'hv_call_map_mmio_pages' : 'mmap_read_unlock'
        },
        text: (w, me) => `vma_lookup + follow_pfnmap_start(gfn ${me.gfn})${w.vmaPresent[me.mreg - 1] ? ` = pfn ${l.barPfn[me.mreg - 1] + me.gfn}` : ': no VMA, fail'}`,
      },
      mmap_read_unlock: {
        run(w, me) {
          mmioLocks.readUnlock(w, me, MMAP_LOCK)
          if (variant === 'v0') return 'spin_unlock'
          if (notifier) return 'mshv_region_put'
          return me.pfn ? 'hv_call_map_mmio_pages' : done(me)
        },
        text: () => 'mmap_read_unlock(current->mm)',
      },
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me) => {
        if (notifier) return me.mreg ? 'mmap_read_lock' : done(me)
        return me.pfn ? 'hv_call_map_mmio_pages' : done(me)
      }),
      /** The whole region by default (start_gfn and nr_pages read from the fast path's region), or one page with hv_nofull_mmio. */
      hv_call_map_mmio_pages: {
        run(w, me) {
          const r = notifier ? me.mreg - 1 : me.fast - 1
          use(w, r, me)
          const first = full ? 0 : me.gfn
          const count = full ? l.gfns : 1
          const spa = me.pfn - (me.gfn - first)
          for (let k = 0; k < count; k++) w.slat[first + k] = spa + k
          return notifier ? 'mmap_read_unlock' : done(me)
        },
        text: (_w, me) => `hv_call_map_mmio_pages(gfn ${full ? 0 : me.gfn}, pfn ${me.pfn - (full ? me.gfn : 0)}, ${full ? l.gfns : 1} pages)`,
      },
      mshv_region_put: {
        run(w, me) {
          put(l, w, me.mreg - 1)
          return done(me)
        },
      },
    },
  })
}

type VmmLocals = LockHolder & { step: number }

/** The VMM replaces region 0 by region 1 (MSHV_SET_GUEST_MEMORY: unmap the old, map the new). */
function vmm(l: MmioLayout, variant: MmioVariant) {
  const notifier = variant === 'locked-lookup-notifier'
  return process<W, VmmLocals>({
    name: 'vmm',
    locals: { ...lockLocals, step: u8() },
    start: 'spin_lock',
    steps: {
      spin_lock: mmioLocks.lockStep(PT_LOCK, (_w, me) => (me.step === 0 ? 'hlist_del' : 'hlist_add')),
      hlist_del: {
        run(w, me) {
          access(w.regionList, me, true)
          w.region[0].state = REGION_UNLINKED
          return 'spin_unlock'
        },
        text: () => 'mshv_unmap_user_memory: hlist_del(old region)',
      },
      spin_unlock: mmioLocks.unlockStep(PT_LOCK, (_w, me) => (me.step === 0 ? (notifier ? 'mshv_region_put' : 'hv_call_unmap_gpa_pages') : 'done')),
      hv_call_unmap_gpa_pages: {
        run(w) {
          for (let g = 0; g < l.gfns; g++) w.slat[g] = 0
          return 'vfree'
        },
        text: () => `hv_call_unmap_gpa_pages(gfn 0, ${l.gfns} pages)`,
      },
      vfree: {
        run(w, me) {
          w.region[0].state = REGION_FREED
          me.step = 1
          return 'spin_lock'
        },
        text: () => 'vfree(old region)',
      },
      /** locked-lookup-notifier: drop the list's reference; the last one unmaps and frees. */
      mshv_region_put: {
        run(w, me) {
          put(l, w, 0)
          me.step = 1
          return 'spin_lock'
        },
      },
      hlist_add: {
        run(w, me) {
          access(w.regionList, me, true)
          w.region[1].state = REGION_LISTED
          w.region[1].refs = notifier ? 1 : 0
          return 'spin_unlock'
        },
        text: () => 'mshv_map_user_memory: hlist_add(new region)',
      },
    },
  })
}

/** VFIO tears down the BAR mapping of region 0 (munmap of its VMA). */
function vfio(l: MmioLayout, variant: MmioVariant) {
  const notifier = variant === 'locked-lookup-notifier'
  return process<W, LockHolder>({
    name: 'vfio',
    locals: lockLocals,
    start: 'mmap_write_lock',
    steps: {
      // The MMU notifier runs from munmap before the VMA and its PTEs are gone (mmu_notifier_invalidate_range_start).
      mmap_write_lock: mmioLocks.lockStep(MMAP_LOCK, notifier ? 'spin_lock' : 'unmap_vma'),
      unmap_vma: {
        run(w) {
          w.vmaPresent[0] = 0
          return 'mmap_write_unlock'
        },
        text: () => 'munmap(BAR VMA of region 0)',
      },
      /** locked-lookup-notifier: the MMU notifier on VMA detach unmaps the GPAs of every region still backed by it. */
      ...(notifier && {
        spin_lock: mmioLocks.lockStep<W, LockHolder>(PT_LOCK, 'mshv_mmio_region_invalidate'),
        mshv_mmio_region_invalidate: {
          run(w: W) {
            if (w.region[0].state !== REGION_FREED) unmapBar(l, w, 0)
            return 'spin_unlock'
          },
          text: () => 'MMU notifier: unmap the region\'s GPAs',
        },
        spin_unlock: mmioLocks.unlockStep<W, LockHolder>(PT_LOCK, 'unmap_vma'),
      }),
      mmap_write_unlock: mmioLocks.unlockStep(MMAP_LOCK, 'done'),
    },
  })
}

export const mshvMmio: Scenario<G> = {
  name: 'mshv-mmio',
  title: 'MSHV MMIO passthrough: region-list races, sleeping in atomic context, dangling mappings (seed 004)',
  description:
    "mshv_handle_unmapped_gpa's unlocked fast-path lookup and mshv_chk_get_mmio_start_pfn (mmap_read_lock under pt_mem_regions_lock) against the VMM replacing the MMIO region and VFIO tearing down the BAR's VMA.",
  params: [
    { name: 'gfns', default: 2, min: 1, max: 4, description: 'pages of the MMIO region' },
    { name: 'vps', default: 1, min: 1, max: 2, description: 'VP threads' },
    { name: 'replace', default: 1, min: 0, max: 1, description: 'the VMM replaces the region' },
    { name: 'bar_unmap', default: 1, min: 0, max: 1, description: "VFIO unmaps the region's BAR" },
    { name: 'nofull_mmio', default: 0, min: 0, max: 1, description: 'hv_nofull_mmio: map one page per intercept, not the whole region' },
  ],
  variants: [
    { name: 'v0', description: 'as posted' },
    { name: 'no-spinlock', description: "Mukesh's rethink: no pt_mem_regions_lock in mshv_chk_get_mmio_start_pfn, rely on mmap_lock" },
    { name: 'locked-lookup-notifier', description: "Stanislav's suggestion: lookup under the lock with a reference, no sleeping lock under the spinlock, teardown by an MMU notifier on VMA detach" },
  ],
  build(p: Params, variant: string) {
    const l = mmioLayout(p.gfns)
    const v = variant as MmioVariant
    const threads = [
      ...Array.from({ length: p.vps }, (_, k) => ({ name: `vp${k}`, process: vp(l, v, !p.nofull_mmio) })),
      ...(p.replace ? [{ name: 'vmm', process: vmm(l, v) }] : []),
      ...(p.bar_unmap ? [{ name: 'vfio', process: vfio(l, v) }] : []),
    ].map((t, tid) => ({ ...t, locals: { tid } }))
    return {
      globals: globals(l),
      init(w: MmioWorld) {
        w.region[0].state = REGION_LISTED
        w.region[0].refs = v === 'locked-lookup-notifier' ? 1 : 0
        w.vmaPresent[0] = 1
        w.vmaPresent[1] = 1
      },
      threads,
    }
  },
}
