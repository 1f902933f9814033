/**
 * Invariants over KVM's EPT and guest_memfd bindings (kvm-gmem-binding): each
 * EPT record is {pfn, pages, slot}: the pfn a gfn maps, the size of the leaf
 * that covers it (1 or a huge level), and 1 + the memslot it was faulted through.
 */
import type { Invariant, Metric } from '../explorer/model.js'
import { SLOT_NONE, type GmemLayout, type GmemWorld } from '../model/scenarios/kvm-gmem-binding.js'

type Leafs = Pick<GmemWorld, 'ept' | 'slot' | 'filePfn' | 'fileOrder'>

const leafStart = (gfn: number, pages: number): number => gfn - (gfn % pages)

/** `huge-mapping-aligned`: a huge leaf starts at a gfn and a pfn both aligned to its size. */
export function eptHugeMappingAligned(l: GmemLayout): Invariant<Leafs> {
  return {
    id: 'huge-mapping-aligned',
    description: 'a huge EPT leaf starts at a gfn and a pfn both aligned to its size',
    check(w) {
      for (let g = 0; g < l.gfns; g++) {
        const e = w.ept[g]
        if (e.pages <= 1) continue
        const start = leafStart(g, e.pages)
        const pfn = w.ept[start].pfn
        if (start + e.pages > l.gfns || pfn % e.pages !== 0 || w.ept[start].pages !== e.pages || e.pfn !== pfn + (g - start)) {
          return `the ${e.pages}-page leaf at gfn ${start} maps pfn ${pfn}, not a ${e.pages}-aligned run`
        }
      }
      return null
    },
  }
}

/**
 * `mapping-within-folio`: a huge leaf's whole gfn range maps one folio at the
 * matching offset: each gfn maps the pfn its slot binds it to, and that
 * folio is at least as large as the leaf.
 */
export function eptMappingWithinFolio(l: GmemLayout): Invariant<Leafs> {
  return {
    id: 'mapping-within-folio',
    description: "a huge leaf's whole gfn range maps one folio, each gfn at its file index",
    check(w) {
      for (let g = 0; g < l.gfns; g++) {
        const e = w.ept[g]
        if (e.pages <= 1 || e.slot === 0) continue
        const s = w.slot[e.slot - 1]
        if (s.state === SLOT_NONE) continue // no-stale-mapping's to report
        const index = s.pgoff + g - s.base
        const want = index < l.gfns ? w.filePfn[index] : 0
        if (want !== e.pfn || 1 << w.fileOrder[index] < e.pages) {
          return `gfn ${g} (file index ${index}) is in a ${e.pages}-page leaf mapping pfn ${e.pfn}, but index ${index} is ${want ? `pfn ${want} in an order-${w.fileOrder[index]} folio` : 'not in the file'}`
        }
      }
      return null
    },
  }
}

/** `mapping-within-slot`: no leaf covers gfns outside the memslot it was faulted through. */
export function mappingWithinSlot(l: GmemLayout): Invariant<Leafs> {
  return {
    id: 'mapping-within-slot',
    description: 'no EPT leaf covers gfns outside its memslot',
    check(w) {
      for (let g = 0; g < l.gfns; g++) {
        const e = w.ept[g]
        if (e.slot === 0) continue
        const s = w.slot[e.slot - 1]
        if (s.state !== SLOT_NONE && (g < s.base || g >= s.base + s.npages)) {
          return `gfn ${g} is mapped by a ${e.pages}-page leaf of slot ${l.slots[e.slot - 1]}, which covers gfns ${s.base}..${s.base + s.npages - 1}`
        }
      }
      return null
    },
  }
}

/** `no-stale-mapping`: once a memslot is deleted, no leaf faulted through it remains. */
export function eptNoStaleMapping(l: GmemLayout): Invariant<Leafs> {
  return {
    id: 'no-stale-mapping',
    description: 'no EPT leaf outlives the deletion of its memslot',
    check(w) {
      for (let g = 0; g < l.gfns; g++) {
        const e = w.ept[g]
        if (e.slot !== 0 && w.slot[e.slot - 1].state === SLOT_NONE) {
          return `gfn ${g} still maps pfn ${e.pfn} through slot ${l.slots[e.slot - 1]}, which was deleted`
        }
      }
      return null
    },
  }
}

/** `huge-coverage`: the share of guest RAM mapped by huge leaves. */
export function eptHugeCoverage(l: GmemLayout): Metric<Leafs> {
  return {
    id: 'huge-coverage',
    description: 'share of guest RAM the EPT maps with huge leaves',
    unit: 'share',
    measure(w) {
      let huge = 0
      for (let g = 0; g < l.gfns; g++) if (w.ept[g].pages > 1) huge++
      return huge / l.gfns
    },
  }
}
