/**
 * Invariants of kvm-gmem-conversion: the (S-)EPT over one guest_memfd folio,
 * each record {pfn, pages, priv} of the leaf covering a gfn.
 */
import type { Invariant, Metric } from '../explorer/model.js'
import { PRIVATE, SHARED, type ConversionLayout, type ConversionWorld } from '../model/scenarios/kvm-gmem-conversion/index.js'

type World = Pick<ConversionWorld, 'ept' | 'attr' | 'order' | 'hwpoison' | 'mcePending'>
const kind = (a: number): string => (a === PRIVATE ? 'private' : 'shared')

/** Calls `bad` on each leaf (by its first gfn) until it returns a message. */
function eachLeaf(l: ConversionLayout, w: World, bad: (start: number, pages: number) => string | null): string | null {
  for (let g = 0; g < l.pages; g++) {
    const e = w.ept[g]
    if (e.pfn === 0 || g % e.pages !== 0) continue
    const msg = bad(g, e.pages)
    if (msg) return msg
  }
  return null
}

/** `mapping-within-folio`: mapping size never exceeds folio size (KVM's rule, and what the TDX cache flush per folio relies on). */
export function septMappingWithinFolio(l: ConversionLayout): Invariant<World> {
  return {
    id: 'mapping-within-folio',
    description: 'no leaf is larger than the folio it maps',
    check: (w) =>
      eachLeaf(l, w, (start, pages) => {
        for (let g = start; g < start + pages; g++) {
          if (1 << w.order[g] < pages) return `the ${pages}-page leaf at gfn ${start} maps pfn ${w.ept[g].pfn} of an order-${w.order[g]} folio`
        }
        return null
      }),
  }
}

/** `homogeneous-attributes`: no leaf spans private and shared pages (KVM_LPAGE_MIXED_FLAG). */
export function homogeneousAttributes(l: ConversionLayout): Invariant<World> {
  return {
    id: 'homogeneous-attributes',
    description: 'no leaf spans private and shared pages',
    check: (w) =>
      eachLeaf(l, w, (start, pages) => {
        for (let g = start + 1; g < start + pages; g++) {
          if (w.attr[g] !== w.attr[start]) return `the ${pages}-page leaf at gfn ${start} spans ${kind(w.attr[start])} gfn ${start} and ${kind(w.attr[g])} gfn ${g}`
        }
        return null
      }),
  }
}

/** `mapping-contiguous`: a leaf maps physically contiguous, aligned memory (what TDX actually needs). */
export function mappingContiguous(l: ConversionLayout): Invariant<World> {
  return {
    id: 'mapping-contiguous',
    description: 'a leaf covers physically contiguous memory, aligned to its size',
    check: (w) =>
      eachLeaf(l, w, (start, pages) => {
        const pfn = w.ept[start].pfn
        if (pfn % pages !== 0) return `the ${pages}-page leaf at gfn ${start} starts at pfn ${pfn}, not ${pages}-aligned`
        for (let k = 1; k < pages; k++) {
          if (w.ept[start + k].pfn !== pfn + k) return `the ${pages}-page leaf at gfn ${start} maps pfn ${w.ept[start + k].pfn} at gfn ${start + k}, not contiguous`
        }
        return null
      }),
  }
}

/** `no-freed-page-mapped`: once kvm_gmem_error_folio has run, no leaf maps a page memory failure took away. */
export function noPoisonedPageMapped(l: ConversionLayout): Invariant<World> {
  return {
    id: 'no-freed-page-mapped',
    description: 'once memory failure is handled, no leaf maps a hwpoisoned page',
    check(w) {
      if (w.mcePending) return null
      for (let g = 0; g < l.pages; g++) {
        if (w.ept[g].pfn !== 0 && w.hwpoison[g]) return `gfn ${g} still maps pfn ${w.ept[g].pfn} (in a ${w.ept[g].pages}-page leaf) after memory failure`
      }
      return null
    },
  }
}

/** `no-stale-mapping`: no shared mapping survives the page becoming private. */
export function septNoStaleMapping(l: ConversionLayout): Invariant<World> {
  return {
    id: 'no-stale-mapping',
    description: 'no shared mapping of a page that is now private',
    check(w) {
      for (let g = 0; g < l.pages; g++) {
        if (w.ept[g].pfn !== 0 && w.ept[g].priv === SHARED && w.attr[g] === PRIVATE) return `gfn ${g} is private but still mapped shared (pfn ${w.ept[g].pfn})`
      }
      return null
    },
  }
}

/** `no-shared-mapped-private`: no private (S-EPT) mapping of a page that is now shared. */
export function noSharedMappedPrivate(l: ConversionLayout): Invariant<World> {
  return {
    id: 'no-shared-mapped-private',
    description: 'no shared page is mapped private',
    check(w) {
      for (let g = 0; g < l.pages; g++) {
        if (w.ept[g].pfn !== 0 && w.ept[g].priv === PRIVATE && w.attr[g] === SHARED) return `gfn ${g} is shared but still mapped private (pfn ${w.ept[g].pfn})`
      }
      return null
    },
  }
}

/** `huge-coverage`: the share of the folio the guest maps with huge leaves. */
export function septHugeCoverage(l: ConversionLayout): Metric<World> {
  return {
    id: 'huge-coverage',
    description: 'share of the folio mapped with huge leaves',
    unit: 'share',
    measure(w) {
      let huge = 0
      for (let g = 0; g < l.pages; g++) if (w.ept[g].pfn !== 0 && w.ept[g].pages > 1) huge++
      return huge / l.pages
    },
  }
}
