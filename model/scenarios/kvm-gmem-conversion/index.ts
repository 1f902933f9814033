/**
 * KVM private memory on guest_memfd: shared/private conversion, folio
 * splitting and the mapping-size rule (seed 002: "[PATCH v3 00/24] KVM: TDX
 * huge page support for private memory").
 *
 * One guest_memfd range of 2^2H pages (the "1G" page; the scaled 2M is 2^H
 * pages) bound to one memslot, mapped into the guest by (S-)EPT leaves of
 * 1, 2^H or 2^2H pages. Threads: vCPUs faulting gfns (vcpu.ts), conversions
 * of one page (convert.ts), a memory failure (memory-failure.ts). KVM's
 * invalidation bookkeeping (range-precise mmu_invalidate_retry_gfn), the
 * memory attributes and lpage_info's mixed flags are the primitives of
 * model/kvm/.
 *
 * `upstream` is mainline: guest_memfd allocates order-0 folios
 * (kvm_gmem_get_folio), so private memory is mapped 4K, and a conversion is
 * KVM_SET_MEMORY_ATTRIBUTES (kvm_vm_set_mem_attributes, with the 2025
 * hugepage ranges in kvm_arch_pre_set_memory_attributes). A shared page is
 * modelled in place (the same pfn), as the series proposes; mainline backs
 * it elsewhere, which changes none of the invariants checked here. The
 * other variants are the series and the positions of its thread
 * (variants.ts).
 */
import { kvmInvalidationInit, mmuInvalidateRetryGfn } from '../../kvm/invalidation.js'
import { kvmArchPreSetHugepageRanges, kvmMmuInitMemslotMemoryAttributes } from '../../kvm/memory-attributes.js'
import type { Params, Scenario } from '../../scenario.js'
import { convert } from './convert.js'
import { memoryFailure } from './memory-failure.js'
import { conversionPatches } from './variants.js'
import { vcpu } from './vcpu.js'
import { conversionGlobals, conversionLayout, PRIVATE, splitLeaves, type ConversionContext, type ConversionWorld } from './world.js'

export { conversionGlobals, conversionLayout, PRIVATE, SHARED } from './world.js'
export type { ConversionContext, ConversionLayout, ConversionWorld } from './world.js'

export const kvmGmemConversion: Scenario<ConversionContext> = {
  name: 'kvm-gmem-conversion',
  title: 'KVM private memory: conversion, folio splitting and the mapping-size rule (seed 002)',
  description:
    'A guest_memfd range mapped by (S-)EPT leaves while a page is converted between private and shared (mainline; or the series: S-EPT split vs folio split, in either order, or one huge mapping over several contiguous folios) and a page suffers memory failure, with range-precise invalidation and lpage_info lagging the attributes.',
  params: [
    { name: 'H', default: 1, min: 1, max: 2, description: 'a "2M" leaf is 2^H pages, the range ("1G") 2^(2H)' },
    { name: 'vcpus', default: 1, min: 1, max: 2, description: 'vCPU threads' },
    { name: 'faults', default: 2, min: 1, max: 4, description: 'fault attempts per vCPU (a retry or an exit is one)' },
    { name: 'conversions', default: 1, min: 0, max: 2, description: 'page conversions (private <-> shared)' },
    { name: 'memory_failures', default: 1, min: 0, max: 1, description: 'memory failures' },
  ],
  variants: [
    {
      name: 'upstream',
      description: 'mainline: order-0 guest_memfd folios (4K private mappings), KVM_SET_MEMORY_ATTRIBUTES with the hugepage ranges added to the invalidation',
      expect: { violates: [] },
    },
    ...conversionPatches,
  ],
  processes: ['vcpu', 'convert', 'memory_failure'],
  memoryMap: (p: Params) => ({
    rows: conversionLayout(p.H).pages,
    hugePages: 1 << p.H,
    lanes: [
      { kind: 'leaf', label: 'S-EPT', field: 'ept', pfn: 'pfn', pages: 'pages', access: 'priv', accessNames: ['shared', 'private'] },
      { kind: 'folio', label: 'gmem folios', order: 'order', poison: 'hwpoison' },
      { kind: 'value', label: 'attributes', field: 'attr', names: ['shared', 'private'] },
    ],
  }),
  context(p: Params): ConversionContext {
    return {
      l: conversionLayout(p.H),
      folio_order: 0,
      conversion_lock: 'slots_lock',
      restructure: [],
      restructure_may_fail: false,
      split_sept: (l, w) => splitLeaves(w, 0, l.pages, 1),
      // kvm_gmem_get_pfn's max_order: the order of the faulting page's folio (kvm_max_level_for_order).
      kvm_gmem_max_mapping: (_l, w, gfn) => 1 << w.order[gfn],
      leaf_allowed: () => true,
      kvm_arch_pre_set_memory_attributes: kvmArchPreSetHugepageRanges,
      error_folio_splits: false,
      mmu_invalidate_retry_gfn: mmuInvalidateRetryGfn,
    }
  },
  build(p: Params, _variant: string, ctx: ConversionContext) {
    const { l } = ctx
    return {
      globals: conversionGlobals(l),
      init(world) {
        const w = world as ConversionWorld
        for (let g = 0; g < l.pages; g++) {
          w.attr[g] = PRIVATE
          w.order[g] = ctx.folio_order
        }
        kvmInvalidationInit(w)
        kvmMmuInitMemslotMemoryAttributes(l, w)
      },
      threads: [
        ...Array.from({ length: p.vcpus }, (_, k) => ({ name: `vcpu${k}`, process: vcpu(ctx, p.faults) })),
        ...Array.from({ length: p.conversions }, (_, k) => ({ name: `convert${k}`, process: convert(ctx) })),
        ...(p.memory_failures ? [{ name: 'mce', process: memoryFailure(ctx) }] : []),
      ],
    }
  },
}
