/**
 * KVM private memory on a hugetlb-backed guest_memfd: shared/private
 * conversion, folio splitting and the mapping-size rule (seed 002: "[PATCH
 * v3 00/24] KVM: TDX huge page support for private memory").
 *
 * One guest_memfd folio of order 2H (the "1G" page, H a parameter: the
 * scaled 2M is 2^H pages), physically contiguous, mapped into the guest by
 * EPT/S-EPT leaves of 1, 2^H or 2^2H pages. Each small page is private or
 * shared. Threads:
 * - vCPUs fault gfns: kvm_faultin_pfn -> the largest level whose range has
 *   homogeneous attributes (KVM_LPAGE_MIXED_FLAG, hugepage_set_mixed) and
 *   lies in one folio (or, for `contiguous-multi-folio`, is physically
 *   contiguous), no hwpoisoned page (kvm_gmem_get_pfn: -EHWPOISON) ->
 *   kvm_tdp_mmu_map under mmu_lock, retrying while an invalidation is in
 *   progress or the invalidate seq moved (mmu_invalidate_retry);
 * - a conversion of one page (KVM_SET_MEMORY_ATTRIBUTES2 on the gmem fd,
 *   __kvm_gmem_set_attributes): filemap_invalidate_lock,
 *   kvm_gmem_invalidate_begin, then the variant's order of S-EPT split and
 *   folio split (hugetlb_restructuring_split_folio, 2^2H -> 4K uniformly, as
 *   the thread proposes for sharing), zap of the converted page, attribute
 *   update, kvm_gmem_invalidate_end;
 * - memory failure on one page: memory_failure -> kvm_gmem_error_folio,
 *   which zaps the folio's range under the invalidate lock and, as posted,
 *   does not split private mappings larger than the folio. Idealised: this
 *   model leaves such a larger leaf mapped; the kernel's
 *   kvm_mmu_unmap_gfn_range (tdp_mmu_zap_leafs) zaps every leaf that
 *   intersects the range, whole (an over-zap). Fidelity review FV-1.
 */
import { process } from '../process.js'
import type { Params, Scenario } from '../scenario.js'
import { array, struct, u8, type ValueOf } from '../schema.js'

export type ConversionVariant =
  | 'split-ept-first'
  | 'split-folio-first'
  | 'contiguous-multi-folio'
  | 'restructure-may-fail'
  | 'contiguous-error-split'
  | 'contiguous-checked'

/** What each variant changes. */
interface Policy {
  /** Split the S-EPT before the folio (else after). */
  readonly septFirst: boolean
  /** One leaf may span several folios when they are contiguous and homogeneous; conversions split only around the page. */
  readonly contiguous: boolean
  /** The folio split can fail part way. */
  readonly mayFail: boolean
  /** kvm_gmem_error_folio splits the S-EPT to the folio's size before zapping. */
  readonly errorSplits: boolean
  /** A fault checks every folio under the leaf for hwpoison, not just the faulting page's. */
  readonly poisonChecked: boolean
}

const policies: Record<ConversionVariant, Policy> = {
  'split-ept-first': { septFirst: true, contiguous: false, mayFail: false, errorSplits: false, poisonChecked: false },
  'split-folio-first': { septFirst: false, contiguous: false, mayFail: false, errorSplits: false, poisonChecked: false },
  'contiguous-multi-folio': { septFirst: false, contiguous: true, mayFail: false, errorSplits: false, poisonChecked: false },
  'restructure-may-fail': { septFirst: true, contiguous: false, mayFail: true, errorSplits: false, poisonChecked: false },
  'contiguous-error-split': { septFirst: false, contiguous: true, mayFail: false, errorSplits: true, poisonChecked: false },
  'contiguous-checked': { septFirst: false, contiguous: true, mayFail: false, errorSplits: true, poisonChecked: true },
}

export const SHARED = 0
export const PRIVATE = 1

export interface ConversionLayout {
  readonly H: number
  /** Leaf sizes in pages: 1, 2^H, 2^2H. */
  readonly levels: readonly number[]
  /** gfns (and file pages) of the one 2^2H folio. */
  readonly pages: number
  /** The folio's first pfn (aligned). */
  readonly basePfn: number
}

export function conversionLayout(H: number): ConversionLayout {
  const pages = 1 << (2 * H)
  return { H, levels: [1, 1 << H, pages], pages, basePfn: pages }
}

function globals(l: ConversionLayout) {
  return {
    /** KVM_MEMORY_ATTRIBUTE_PRIVATE per gfn. */
    attr: array(l.pages, u8(PRIVATE)),
    /** Per file page: the order of the folio holding it (folios are naturally aligned; pfn = basePfn + page). */
    order: array(l.pages, u8()),
    hwpoison: array(l.pages, u8(1)),
    /** Ghost: a memory failure whose kvm_gmem_error_folio has not run yet (the page is poisoned but may still be mapped). */
    mcePending: u8(1),
    /** The (S-)EPT: per gfn, the pfn mapped (0 = none), the leaf's size in pages, and whether it is private. */
    ept: array(l.pages, struct({ pfn: u8(), pages: u8(), priv: u8(1) })),
    /** mmu_invalidate_in_progress and mmu_invalidate_seq. */
    inProgress: u8(),
    invalidateSeq: u8(),
    /** filemap_invalidate_lock of the gmem inode (held by conversions and kvm_gmem_error_folio). */
    invalidateLock: u8(1),
  }
}
type G = ReturnType<typeof globals>
export type ConversionWorld = ValueOf<G>
type W = ConversionWorld

const alignDown = (x: number, n: number): number => x - (x % n)

/** The largest leaf a fault at gfn may install, per KVM's rules and the variant's. */
export function faultLevel(l: ConversionLayout, w: W, gfn: number, pol: Pick<Policy, 'contiguous' | 'poisonChecked'>): number {
  for (const pages of [...l.levels].reverse()) {
    const start = alignDown(gfn, pages)
    let ok = true
    for (let g = start; g < start + pages && ok; g++) {
      // Never over mixed attributes (KVM_LPAGE_MIXED_FLAG). Within one folio, or, as proposed, over any
      // contiguous folios (the memory of a split hugetlb folio stays contiguous), which then leaves the
      // hwpoison check (per folio, in kvm_gmem_get_pfn) to cover only the faulting page's folio.
      if (w.attr[g] !== w.attr[gfn] || (!pol.contiguous && 1 << w.order[g] < pages) || (pol.poisonChecked && w.hwpoison[g])) ok = false
    }
    if (ok) return pages
  }
  return 1
}

/** kvm_gmem_get_pfn: -EHWPOISON when the folio holding the page is poisoned (folio_test_hwpoison). */
function folioPoisoned(w: W, p: number): boolean {
  const { first, n } = folioOf(w, p)
  for (let g = first; g < first + n; g++) if (w.hwpoison[g]) return true
  return false
}

/** Demote every leaf of more than `to` pages in [lo, hi) to leaves of `to` pages (tdx_sept_split_private_spte / tdp_mmu_split_huge_page). */
function splitLeaves(w: W, lo: number, hi: number, to: number): void {
  for (let g = lo; g < hi; g++) if (w.ept[g].pages > to) w.ept[g].pages = to
}

/** Clears gfn's EPT record (field by field: the record may be a packed view). */
function unmap(w: W, g: number): void {
  const e = w.ept[g]
  e.pfn = 0
  e.pages = 0
  e.priv = 0
}

/** Demote the leaves around gfn, level by level, until the one holding gfn has at most `to` pages. */
function splitAround(l: ConversionLayout, w: W, gfn: number, to: number): void {
  for (let k = l.levels.length - 1; k > 0 && l.levels[k] > to; k--) {
    const lo = alignDown(gfn, l.levels[k])
    splitLeaves(w, lo, lo + l.levels[k], l.levels[k - 1])
  }
}

/** The folio containing page p: [first, first + n). */
const folioOf = (w: W, p: number): { first: number; n: number } => {
  const n = 1 << w.order[p]
  return { first: alignDown(p, n), n }
}

type VcpuLocals = { gfn: number; pages: number; seq: number; faults: number }

function vcpu(l: ConversionLayout, pol: Policy, faults: number) {
  const finish = (me: VcpuLocals): string => {
    me.gfn = 0
    me.pages = 0
    me.seq = 0
    me.faults++
    return me.faults < faults ? 'kvm_mmu_page_fault' : 'done'
  }
  return process<W, VcpuLocals>({
    name: 'vcpu',
    locals: { gfn: u8(), pages: u8(), seq: u8(), faults: u8() },
    start: 'kvm_mmu_page_fault',
    steps: {
      kvm_mmu_page_fault: {
        choices: () => l.pages,
        run(w, me, gfn) {
          if (w.ept[gfn].pfn !== 0) return finish(me) // mapped: spurious
          me.gfn = gfn
          me.seq = w.invalidateSeq
          return 'kvm_faultin_pfn'
        },
        text: (w, _me, gfn) => `${w.attr[gfn] === PRIVATE ? 'private' : 'shared'} fault at gfn ${gfn}${w.ept[gfn].pfn ? ' (mapped: spurious)' : ''}`,
      },
      kvm_faultin_pfn: {
        run(w, me) {
          if (folioPoisoned(w, me.gfn)) return finish(me)
          me.pages = faultLevel(l, w, me.gfn, pol)
          return 'kvm_tdp_mmu_map'
        },
        text: (w, me) =>
          folioPoisoned(w, me.gfn) ? `kvm_gmem_get_pfn(gfn ${me.gfn}) = -EHWPOISON` : `kvm_faultin_pfn(gfn ${me.gfn}): ${faultLevel(l, w, me.gfn, pol)}-page leaf`,
      },
      kvm_tdp_mmu_map: {
        run(w, me) {
          // mmu_invalidate_retry_gfn: an invalidation in progress or completed since the fault began.
          if (w.inProgress > 0 || w.invalidateSeq !== me.seq || w.ept[me.gfn].pfn !== 0) return finish(me)
          const start = alignDown(me.gfn, me.pages)
          for (let k = 0; k < me.pages; k++) {
            w.ept[start + k].pfn = l.basePfn + start + k
            w.ept[start + k].pages = me.pages
            w.ept[start + k].priv = w.attr[me.gfn]
          }
          return finish(me)
        },
        text: (w, me) =>
          w.inProgress > 0 || w.invalidateSeq !== me.seq
            ? 'kvm_tdp_mmu_map: invalidation raced, RET_PF_RETRY'
            : `kvm_tdp_mmu_map(gfn ${alignDown(me.gfn, me.pages)}, ${me.pages} pages, ${w.attr[me.gfn] === PRIVATE ? 'S-EPT' : 'shared EPT'})`,
      },
    },
  })
}

type ConvLocals = { target: number; to: number }

/** One conversion of one page, as __kvm_gmem_set_attributes orders it under the variant. */
function converter(l: ConversionLayout, pol: Policy) {
  const toShared = (me: ConvLocals) => me.to === SHARED
  /** What the conversion does before the zap, in the variant's order. */
  const order = pol.septFirst ? ['split_sept', 'hugetlb_restructuring_split_folio'] : ['hugetlb_restructuring_split_folio', 'split_sept']
  const mayFail = pol.mayFail
  const after = (label: string, me: ConvLocals): string => {
    // Only private -> shared restructures (a shared page needs its own 4K folio for refcounting).
    if (!toShared(me)) return 'kvm_gmem_zap'
    const i = order.indexOf(label)
    return i + 1 < order.length ? order[i + 1] : 'kvm_gmem_zap'
  }
  return process<W, ConvLocals>({
    name: 'convert',
    locals: { target: u8(), to: u8(1) },
    start: 'filemap_invalidate_lock',
    steps: {
      filemap_invalidate_lock: {
        guard: (w) => w.invalidateLock === 0,
        choices: () => l.pages,
        run(w, me, page) {
          w.invalidateLock = 1
          me.target = page
          me.to = w.attr[page] === PRIVATE ? SHARED : PRIVATE
          return 'kvm_gmem_invalidate_begin'
        },
        text: (w, _me, page) => `KVM_SET_MEMORY_ATTRIBUTES2(gfn ${page} -> ${w.attr[page] === PRIVATE ? 'shared' : 'private'}): filemap_invalidate_lock`,
      },
      kvm_gmem_invalidate_begin: {
        run(w, me) {
          w.inProgress++
          return toShared(me) ? order[0] : 'kvm_gmem_zap'
        },
      },
      /**
       * Split the S-EPT so no leaf is larger than the folios will be: everywhere in the
       * folio for the uniform split, or (contiguous-multi-folio) only around the target.
       */
      split_sept: {
        run(w, me) {
          if (pol.contiguous) splitAround(l, w, me.target, 1)
          else splitLeaves(w, 0, l.pages, 1)
          return after('split_sept', me)
        },
        text: () => (pol.contiguous ? 'split the S-EPT leaves around the page' : 'split the S-EPT leaves to 4K'),
      },
      /** 2^2H -> 4K uniformly; restructure-may-fail may stop after the first 2^H block (-ENOMEM) and the conversion fails. */
      hugetlb_restructuring_split_folio: {
        choices: () => (mayFail ? 2 : 1),
        run(w, me, fail) {
          if (fail) {
            for (let p = 0; p < l.pages; p++) w.order[p] = p < l.levels[1] ? 0 : l.H
            return 'kvm_gmem_invalidate_end'
          }
          for (let p = 0; p < l.pages; p++) w.order[p] = 0
          return after('hugetlb_restructuring_split_folio', me)
        },
        text: (_w, _me, fail) => (fail ? 'hugetlb_restructuring_split_folio: fails part way (-ENOMEM)' : 'hugetlb_restructuring_split_folio: to 4K folios'),
      },
      /** kvm_gmem_zap -> kvm_mmu_unmap_gfn_range: every leaf that covers the page goes. */
      kvm_gmem_zap: {
        run(w, me) {
          const e = w.ept[me.target]
          if (e.pfn !== 0) {
            const start = alignDown(me.target, e.pages)
            for (let k = 0; k < e.pages; k++) unmap(w, start + k)
          }
          return 'kvm_vm_set_mem_attributes'
        },
        text: (_w, me) => `kvm_gmem_zap(gfn ${me.target})`,
      },
      kvm_vm_set_mem_attributes: {
        run(w, me) {
          w.attr[me.target] = me.to
          return 'kvm_gmem_invalidate_end'
        },
        text: (_w, me) => `attributes(gfn ${me.target}) = ${me.to === PRIVATE ? 'private' : 'shared'}`,
      },
      kvm_gmem_invalidate_end: {
        run(w) {
          w.inProgress--
          w.invalidateSeq++
          w.invalidateLock = 0
          return 'done'
        },
        text: () => 'kvm_gmem_invalidate_end; filemap_invalidate_unlock',
      },
    },
  })
}

/** memory_failure() on one page, then kvm_gmem_error_folio(): zap the folio's range under the invalidate lock. */
function memoryFailure(l: ConversionLayout, pol: Policy) {
  return process<W, { page: number }>({
    name: 'memory_failure',
    locals: { page: u8() },
    start: 'memory_failure',
    steps: {
      memory_failure: {
        choices: () => l.pages,
        run(w, me, page) {
          w.hwpoison[page] = 1
          w.mcePending = 1
          me.page = page
          return 'kvm_gmem_error_folio'
        },
        text: (_w, _me, page) => `memory_failure(pfn ${l.basePfn + page})`,
      },
      kvm_gmem_error_folio: {
        guard: (w) => w.invalidateLock === 0,
        run(w, me) {
          const { first, n } = folioOf(w, me.page)
          // contiguous-error-split: split the S-EPT to the folio's size first (what the thread says smaller folios would require).
          if (pol.errorSplits) splitAround(l, w, first, n)
          // As posted: zap the leaves inside the folio's range; a larger private leaf is not split, so it stays.
          for (let g = first; g < first + n; g++) {
            const e = w.ept[g]
            if (e.pfn !== 0 && e.pages <= n) unmap(w, g)
          }
          w.invalidateSeq++
          w.mcePending = 0
          return 'done'
        },
        text: (w, me) => `kvm_gmem_error_folio(folio of ${folioOf(w, me.page).n} pages at pfn ${l.basePfn + folioOf(w, me.page).first})`,
      },
    },
  })
}

export const kvmGmemConversion: Scenario<G> = {
  name: 'kvm-gmem-conversion',
  title: 'KVM private memory: conversion, folio splitting and the mapping-size rule (seed 002)',
  description:
    'A hugetlb-backed guest_memfd folio mapped by huge (S-)EPT leaves while a page is converted between private and shared (S-EPT split vs folio split, in either order, or one huge mapping over several contiguous folios) and a page suffers memory failure.',
  params: [
    { name: 'H', default: 1, min: 1, max: 2, description: 'a "2M" leaf is 2^H pages, the folio ("1G") 2^(2H)' },
    { name: 'vcpus', default: 1, min: 1, max: 2, description: 'vCPU threads' },
    { name: 'faults', default: 2, min: 1, max: 4, description: 'faults per vCPU' },
    { name: 'conversions', default: 1, min: 0, max: 2, description: 'page conversions (private <-> shared)' },
    { name: 'memory_failures', default: 1, min: 0, max: 1, description: 'memory failures' },
  ],
  variants: [
    { name: 'split-ept-first', description: 'split the S-EPT to 4K, then the folio (mapping never exceeds folio)', expect: { violates: [] } },
    { name: 'split-folio-first', description: 'split the folio, then the S-EPT (a window where mapping > folio)', expect: { violates: ['mapping-within-folio'] } },
    { name: 'contiguous-multi-folio', description: 'one huge mapping may span split folios that are contiguous and homogeneous; only the leaves around the converted page are split', expect: { violates: ['mapping-within-folio', 'no-freed-page-mapped'] } },
    { name: 'restructure-may-fail', description: 'split-ept-first where the folio split can fail part way (-ENOMEM) and the conversion is abandoned', expect: { violates: [] } },
    {
      name: 'contiguous-error-split',
      description: 'contiguous-multi-folio, plus kvm_gmem_error_folio splitting the S-EPT to the folio size before zapping (what Yan says smaller folios would require)',
      expect: { violates: ['mapping-within-folio', 'no-freed-page-mapped'] },
    },
    {
      name: 'contiguous-checked',
      description: 'contiguous-error-split, plus the fault checking every folio under the leaf for hwpoison',
      expect: { violates: ['mapping-within-folio'] },
    },
  ],
  memoryMap: (p: Params) => ({
    rows: conversionLayout(p.H).pages,
    hugePages: 1 << p.H,
    lanes: [
      { kind: 'leaf', label: 'S-EPT', field: 'ept', pfn: 'pfn', pages: 'pages', access: 'priv', accessNames: ['shared', 'private'] },
      { kind: 'folio', label: 'gmem folios', order: 'order', poison: 'hwpoison' },
      { kind: 'value', label: 'attributes', field: 'attr', names: ['shared', 'private'] },
    ],
  }),
  build(p: Params, variant: string) {
    const l = conversionLayout(p.H)
    const pol = policies[variant as ConversionVariant]
    return {
      globals: globals(l),
      init(w: W) {
        for (let g = 0; g < l.pages; g++) {
          w.attr[g] = PRIVATE
          w.order[g] = 2 * l.H
        }
      },
      threads: [
        ...Array.from({ length: p.vcpus }, (_, k) => ({ name: `vcpu${k}`, process: vcpu(l, pol, p.faults) })),
        ...Array.from({ length: p.conversions }, (_, k) => ({ name: `convert${k}`, process: converter(l, pol) })),
        ...(p.memory_failures ? [{ name: 'mce', process: memoryFailure(l, pol) }] : []),
      ],
    }
  },
}
