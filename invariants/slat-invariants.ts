/**
 * Invariants over the kernel primitives (SLAT leaves, folios, the host page
 * table, regions, locks), for every scenario built on them. Each returns
 * null or a message naming the gfn, pfn or thread.
 */
import type { Invariant } from '../explorer/model.js'
import { folioHead, folioOrder, folioPages, FRAME_FREED, type Memory } from '../model/primitives/folio.js'
import type { HostPageTable } from '../model/primitives/host-page-table.js'
import { isAligned, type Layout } from '../model/primitives/layout.js'
import { sleepReason, type LockWorld } from '../model/primitives/locks.js'
import type { Region } from '../model/primitives/region.js'
import { ACCESS_RW, type Leaf } from '../model/primitives/slat.js'

interface SlatWorld {
  readonly slat: ArrayLike<Leaf>
}
const hex = (n: number): string => `0x${n.toString(16)}`
/** A thread's name from its tid (the ghosts record tid + 1). */
export type ThreadName = (tid: number) => string
const defaultName: ThreadName = (tid) => `thread ${tid}`

/**
 * `no-stale-mapping`: invalidated pages are never left mapped. Once the
 * invalidation callback for a page has returned, no accessible SLAT leaf maps
 * a pfn the host no longer maps at that uaddr. (While a callback is pending,
 * `invalPending`, the host may already differ: that window is the
 * callback's to close.)
 */
export function noStaleMapping(l: Layout): Invariant<SlatWorld & HostPageTable & { invalPending: ArrayLike<number> }> {
  return {
    id: 'no-stale-mapping',
    description: 'once an invalidation callback has returned, no accessible SLAT leaf maps a pfn the host no longer maps there',
    check(w) {
      for (let i = 0; i < l.N; i++) {
        const leaf = w.slat[i]
        if (leaf.access === ACCESS_RW && leaf.pfn !== w.pte[i] && w.invalPending[i] === 0) {
          return `gfn ${hex(l.startGfn + i)} maps pfn ${hex(leaf.pfn)} but the host maps ${w.pte[i] ? `pfn ${hex(w.pte[i])}` : 'nothing'} at uaddr ${hex(l.startUaddr + i)}`
        }
      }
      return null
    },
  }
}

/** `no-freed-page-mapped`: no accessible SLAT leaf maps a freed pfn. */
export function noFreedPageMapped(l: Layout): Invariant<SlatWorld & Memory> {
  return {
    id: 'no-freed-page-mapped',
    description: 'no accessible SLAT leaf maps a pfn the host has freed',
    check(w) {
      for (let i = 0; i < l.N; i++) {
        const leaf = w.slat[i]
        if (leaf.access === ACCESS_RW && w.frame[leaf.pfn] === FRAME_FREED) {
          return `gfn ${hex(l.startGfn + i)} maps pfn ${hex(leaf.pfn)}, which the host has freed`
        }
      }
      return null
    },
  }
}

/**
 * `mapping-within-folio`: mapping size never exceeds folio size. A huge
 * accessible leaf's whole gfn range maps one huge folio at the matching offset.
 */
export function mappingWithinFolio(l: Layout): Invariant<SlatWorld & Memory> {
  return {
    id: 'mapping-within-folio',
    description: 'mapping size never exceeds folio size: a huge leaf maps pages of one folio at least as large, page for page',
    check(w) {
      for (let i = 0; i < l.N; i++) {
        const leaf = w.slat[i]
        // A freed pfn is no-freed-page-mapped's to report; this judges live folios.
        if (leaf.access !== ACCESS_RW || leaf.order === 0 || w.frame[leaf.pfn] === FRAME_FREED) continue
        const offset = (l.startGfn + i) & (l.HP - 1)
        // The leaf's 2^H pages, from leaf.pfn - offset, must all be pages of pfn's folio (of order H, or larger: a 1G folio mapped as 2M leaves).
        const order = folioOrder(w, leaf.pfn, l.H)
        const head = folioHead(w, leaf.pfn, l.H)
        const base = leaf.pfn - offset
        if (order < l.H || base < head || base + l.HP > head + folioPages(w, leaf.pfn, l.H)) {
          return `gfn ${hex(l.startGfn + i)} is mapped by an order-${leaf.order} leaf but pfn ${hex(leaf.pfn)} is ${order >= l.H ? 'at the wrong offset of its folio' : `in an order-${order} folio`}`
        }
      }
      return null
    },
  }
}

/** `huge-mapping-aligned`: the hardware rule, a huge leaf has its gfn and pfn aligned to its size. */
export function hugeMappingAligned(l: Layout): Invariant<SlatWorld> {
  return {
    id: 'huge-mapping-aligned',
    description: 'a huge SLAT leaf starts at a gfn and a pfn both aligned to its size',
    check(w) {
      for (let i = 0; i < l.N; i++) {
        const leaf = w.slat[i]
        if (leaf.access === 0 || leaf.order === 0) continue
        const offset = (l.startGfn + i) & (l.HP - 1)
        // A no-access leaf carries no pfn (the driver sends 0): only its gfn range is checked.
        const pfnMisaligned = leaf.access === ACCESS_RW && !isAligned(leaf.pfn - offset, l.HP)
        if (pfnMisaligned || i - offset < 0 || i - offset + l.HP > l.N) {
          return `the order-${leaf.order} leaf at gfn ${hex(l.startGfn + i - offset)} maps pfn ${hex(leaf.pfn - offset)}, not aligned to ${l.HP} pages`
        }
      }
      return null
    },
  }
}

/** `map-hypercall-succeeds`: no HVCALL_MAP_GPA_PAGES in the fault path fails (the patch's WARN_ONCE, access not handled). */
export function mapHypercallSucceeds(thread: ThreadName = defaultName): Invariant<{ faultMapFailed: number }> {
  return {
    id: 'map-hypercall-succeeds',
    description: 'no map hypercall in the fault path fails (else the guest access is not handled)',
    check: (w) => (w.faultMapFailed ? `HVCALL_MAP_GPA_PAGES failed in ${thread(w.faultMapFailed - 1)}'s fault path: GPA intercept failed (WARN_ONCE)` : null),
  }
}

/** `no-region-use-after-free`: nothing dereferences a region after vfree(). */
export function noRegionUseAfterFree(thread: ThreadName = defaultName): Invariant<Region> {
  return {
    id: 'no-region-use-after-free',
    description: 'no thread uses a region after it was freed',
    check: (w) => (w.regionUseAfterFree ? `${thread(w.regionUseAfterFree - 1)} used the region after vfree()` : null),
  }
}

/**
 * `no-sleep-in-atomic`: nothing that may sleep runs in atomic context (a
 * spinlock held, a non-blockable invalidation: see `Locks.mightSleep`). The
 * message names the thread, what may sleep and the context, e.g. `vp0 may
 * sleep in atomic context: mutex_lock(&region->mutex) while holding
 * spin_lock(&pt_mem_regions_lock)`.
 */
export function noSleepInAtomic(thread: ThreadName = defaultName): Invariant<LockWorld> {
  return {
    id: 'no-sleep-in-atomic',
    description: 'no sleeping lock is taken (nor anything that may sleep done) in atomic context',
    check(w) {
      if (!w.sleptInAtomic) return null
      const why = sleepReason(w.sleptWhy)
      return `${thread(w.sleptInAtomic - 1)} may sleep in atomic context${why ? `: ${why}` : ''}`
    },
  }
}
