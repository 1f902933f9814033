/**
 * Invariants of KVM's ordinary-memory MMU (the SPTEs of model/kvm/tdp-fault.ts
 * against the host page table and folios) and of its invalidation
 * bookkeeping (model/kvm/invalidation.ts). Each returns null or a message
 * naming the gfn, pfn or counter.
 */
import type { Invariant } from '../explorer/model.js'
import { folioHead, FRAME_FREED, FRAME_HUGE, type Memory } from '../model/primitives/folio.js'
import type { HostPageTable } from '../model/primitives/host-page-table.js'
import { blockOf, type Layout } from '../model/primitives/layout.js'
import type { KvmInvalidation } from '../model/kvm/invalidation.js'
import { MEMSLOT_NONE, type MemslotWorld } from '../model/kvm/memslot-update.js'
import { gfnToMemslot, type Memslot } from '../model/kvm/memslots.js'
import { PG_LEVEL_2M, type Sptes } from '../model/kvm/tdp-fault.js'

const hex = (n: number): string => `0x${n.toString(16)}`

/**
 * `no-stale-mapping`: an SPTE maps only the pfn the host maps at that hva.
 * KVM zaps the SPTEs of a range in invalidate_range_start, before the host
 * changes it, and no fault installs one for a gfn of the range until the
 * host is done: so this holds in every state, not only after the callback.
 * Given the memslots (and a world with memslot updates), also: no SPTE
 * outlives its memslot (kvm_arch_flush_shadow_memslot zaps them before
 * kvm_delete_memslot swaps the slot out, and synchronize_srcu keeps a
 * fault that looked the old slot up from mapping after that).
 */
export function kvmNoStaleMapping(l: Layout, slots?: readonly Memslot[]): Invariant<Sptes & HostPageTable & Partial<MemslotWorld>> {
  return {
    id: 'no-stale-mapping',
    description: 'every present SPTE maps the pfn the host maps at its hva, in a memslot that exists',
    check(w) {
      for (let i = 0; i < l.N; i++) {
        if (w.spte[i] === 0 || !slots || !w.memslotState) continue
        const s = gfnToMemslot(slots, l.startGfn + i)
        if (!s || w.memslotState[s.id] === MEMSLOT_NONE) return `gfn ${hex(l.startGfn + i)} maps pfn ${hex(w.spte[i])} but ${s ? `memslot ${s.id} was deleted` : 'no memslot holds it'}`
      }
      for (let i = 0; i < l.N; i++) {
        if (w.spte[i] !== 0 && w.spte[i] !== w.pte[i]) {
          return `gfn ${hex(l.startGfn + i)} maps pfn ${hex(w.spte[i])} but the host maps ${w.pte[i] ? `pfn ${hex(w.pte[i])}` : 'nothing'} at hva ${hex(l.startUaddr + i)}`
        }
      }
      return null
    },
  }
}

/** `no-freed-page-mapped`: no SPTE maps a pfn the host has freed. */
export function kvmNoFreedPageMapped(l: Layout): Invariant<Sptes & Memory> {
  return {
    id: 'no-freed-page-mapped',
    description: 'no present SPTE maps a pfn the host has freed',
    check(w) {
      for (let i = 0; i < l.N; i++) {
        if (w.spte[i] !== 0 && w.frame[w.spte[i]] === FRAME_FREED) return `gfn ${hex(l.startGfn + i)} maps pfn ${hex(w.spte[i])}, which the host has freed`
      }
      return null
    },
  }
}

/**
 * `mapping-within-folio`: a huge SPTE maps one huge folio, page for page,
 * and the host maps that folio with a PMD at the block (the level
 * host_pfn_mapping_level reports): never a PTE-mapped THP, never small folios.
 */
export function kvmMappingWithinFolio(l: Layout): Invariant<Sptes & Memory & HostPageTable> {
  return {
    id: 'mapping-within-folio',
    description: 'a huge SPTE maps one huge folio page for page, which the host maps with a PMD',
    check(w) {
      for (let i = 0; i < l.N; i++) {
        if (w.spte[i] === 0 || w.spteLevel[i] !== PG_LEVEL_2M || w.frame[w.spte[i]] === FRAME_FREED) continue
        const offset = (l.startGfn + i) & (l.HP - 1)
        if (w.frame[w.spte[i]] !== FRAME_HUGE || folioHead(w, w.spte[i], l.H) !== w.spte[i] - offset) {
          return `gfn ${hex(l.startGfn + i)} is mapped by a 2M SPTE but pfn ${hex(w.spte[i])} is ${w.frame[w.spte[i]] === FRAME_HUGE ? 'at the wrong offset of its folio' : 'in an order-0 folio'}`
        }
        if (w.pmd[blockOf(l, i)] !== 1) return `gfn ${hex(l.startGfn + i)} is mapped by a 2M SPTE but the host maps hva ${hex(l.startUaddr + i)} with PTEs (host mapping level 4K)`
      }
      return null
    },
  }
}

/**
 * `in-progress-balanced`: mmu_invalidate_in_progress never goes below 0
 * (a signed field: -1 is a value this reports, before field-in-range's
 * -128 would), never exceeds the host invalidations between range_start
 * and range_end (the `invalidating` ghost), and when none is (quiescent)
 * it and mn_active_invalidate_count are 0.
 */
export function inProgressBalanced(): Invariant<KvmInvalidation & { invalidating: number }> {
  return {
    id: 'in-progress-balanced',
    description: 'mmu_invalidate_in_progress is never negative, and with no invalidation between range_start and range_end, it and mn_active_invalidate_count are 0',
    check(w) {
      if (w.mmuInvalidateInProgress < 0) return `mmu_invalidate_in_progress is ${w.mmuInvalidateInProgress}`
      if (w.mmuInvalidateInProgress > w.invalidating) return `mmu_invalidate_in_progress is ${w.mmuInvalidateInProgress} with ${w.invalidating} invalidations between range_start and range_end`
      if (w.invalidating === 0 && w.mnActiveInvalidateCount !== 0) return `no invalidation runs but mn_active_invalidate_count is ${w.mnActiveInvalidateCount}`
      return null
    },
  }
}
