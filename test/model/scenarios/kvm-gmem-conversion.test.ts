import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { dfs } from '../../../explorer/dfs.js'
import { instantiate } from '../../../invariants/scenarios.js'
import { recordTrace } from '../../../traces/record.js'
import { unmapGfnRange } from '../../../model/scenarios/kvm-gmem-conversion/world.js'
import { bruteForce, expectedViolations } from '../../support/brute-force.js'
import { expectBackendsAgree } from '../../support/backends.js'

const conversion = (variant: string, params: Record<string, number> = {}) => instantiate('kvm-gmem-conversion', variant, params)
const SERIES = ['split-ept-first', 'split-folio-first', 'contiguous-multi-folio', 'restructure-may-fail', 'contiguous-error-split', 'contiguous-checked']
const broken = (variant: string, params: Record<string, number> = {}) =>
  bfs(conversion(variant, params).model, { allViolations: true })
    .violations.map((v) => v.invariant)
    .sort()
const labels = (variant: string, invariant: string, params: Record<string, number> = {}) => {
  const inst = conversion(variant, params)
  const x = bfs(inst.model, { allViolations: true })
  const v = x.violations.find((r) => r.invariant === invariant)
  if (!v) throw new Error(`${variant} keeps ${invariant}`)
  return recordTrace(inst, x, v).steps
}

describe('kvm-gmem-conversion: the zap', () => {
  it('kvm_mmu_unmap_gfn_range over a 1-page folio takes a 4-page leaf whole (tdp_mmu_zap_leafs: an over-zap, not a surviving mapping; review FV-1)', () => {
    const w: any = { ept: [0, 1, 2, 3].map((g) => ({ pfn: 4 + g, pages: 4, priv: 1 })) }
    expect(unmapGfnRange(w, 2, 3)).toBe(true)
    expect(w.ept.map((e: any) => e.pfn)).toEqual([0, 0, 0, 0])
    expect(unmapGfnRange(w, 2, 3)).toBe(false)
    // A 2-page leaf elsewhere survives a zap of the other half.
    const v: any = { ept: [0, 1, 2, 3].map((g) => ({ pfn: 4 + g, pages: 2, priv: 1 })) }
    unmapGfnRange(v, 3, 4)
    expect(v.ept.map((e: any) => e.pfn)).toEqual([4, 5, 0, 0])
  })
})

describe('kvm-gmem-conversion: upstream', () => {
  it('mainline keeps every invariant: 4K private mappings, and the conversion blocks faults by range', () => {
    expect(broken('upstream')).toEqual([])
    expect(broken('upstream', { conversions: 2 })).toEqual([])
  })

  it('range-precise retry: a fault outside the converted range maps while the conversion runs (the old model retried every fault)', () => {
    const { model } = conversion('upstream', { conversions: 2, memory_failures: 0 })
    let s: any = model.initialStates()[0]
    const take = (thread: string, choice = 0) => {
      const a = model.actions(s).find((x) => {
        const d = model.describe(x, s, model.next(s, x))
        return d.thread === thread && d.choice === choice
      })
      if (a === undefined) throw new Error(`${thread} cannot take choice ${choice}`)
      s = model.next(s, a)
    }
    // gfn 0 -> shared, to the end: the 4-page block is now mixed, and so is the 2-page block 0..1.
    take('convert0', 0)
    for (let k = 0; k < 4; k++) take('convert0')
    expect([...s.lpageMixed]).toEqual([1, 0, 1])
    // gfn 3 -> shared: the invalidation covers gfn 3 and its 2-page block 2..3 (the 4-page block is mixed already).
    take('convert1', 3)
    take('convert1')
    expect([s.mmuInvalidateInProgress, s.mmuInvalidateRangeStart, s.mmuInvalidateRangeEnd]).toEqual([1, 2, 4])
    // A fault at gfn 1 is outside it: it maps while the conversion is in progress.
    take('vcpu0', 1)
    take('vcpu0')
    take('vcpu0')
    take('vcpu0')
    expect(s.ept[1].pfn).not.toBe(0)
    expect(s.mmuInvalidateInProgress).toBe(1)
    // A fault at gfn 2 is inside it: kvm_mmu_faultin_pfn retries.
    take('vcpu0', 2)
    take('vcpu0')
    expect(s.ept[2].pfn).toBe(0)
  })
})

describe('kvm-gmem-conversion: the positions of the thread, checked', () => {
  it('split-ept-first keeps every invariant', () => {
    expect(broken('split-ept-first')).toEqual([])
  })

  it('split-folio-first breaks mapping-within-folio in the window between the folio split and the S-EPT split, and nothing else', () => {
    expect(broken('split-folio-first')).toEqual(['mapping-within-folio'])
    const steps = labels('split-folio-first', 'mapping-within-folio').map((s) => s.label)
    expect(steps.at(-1)).toBe('hugetlb_restructuring_split_folio')
    expect(steps).not.toContain('split_sept')
  })

  it("contiguous-multi-folio keeps mapping-contiguous while breaking mapping-within-folio (the thread's question); memory failure then leaves a poisoned page mapped, through a fault outside the folio's invalidation", () => {
    const ids = broken('contiguous-multi-folio')
    expect(ids).toContain('mapping-within-folio')
    expect(ids).not.toContain('mapping-contiguous')
    expect(ids).toContain('no-freed-page-mapped')
    // Not a leaf kvm_gmem_error_folio left behind (it zaps every overlapping leaf whole): a fault maps one over the page.
    const steps = labels('contiguous-multi-folio', 'no-freed-page-mapped')
    const zap = steps.findIndex((s) => s.label === 'kvm_gmem_invalidate_begin' && s.thread === 'mce')
    const map = steps.findIndex((s) => s.label === 'kvm_tdp_mmu_map')
    expect(zap).toBeGreaterThanOrEqual(0)
    expect(map).toBeGreaterThan(zap)
  })

  it('splitting in kvm_gmem_error_folio is not enough: a later fault maps a contiguous leaf over the poisoned neighbour; checking every folio under the leaf is', () => {
    const steps = labels('contiguous-error-split', 'no-freed-page-mapped')
    const zap = steps.findIndex((s) => s.label === 'kvm_gmem_invalidate_begin' && s.thread === 'mce')
    expect(steps.findIndex((s, k) => k > zap && s.label === 'kvm_tdp_mmu_map')).toBeGreaterThan(zap)
    expect(broken('contiguous-checked')).toEqual(['mapping-within-folio'])
  })

  it('restructure-may-fail keeps every invariant: the S-EPT was split first, so a folio split that stops part way leaves no leaf too large', () => {
    const x = bfs(conversion('restructure-may-fail').model, { allViolations: true })
    expect(x.verdict).toBe('ok')
    // ... and keeps huge mappings where the failed split left 2^H folios, which split-ept-first never does.
    expect(x.metrics['huge-coverage'].max).toBeGreaterThan(bfs(conversion('split-ept-first').model, { allViolations: true }).metrics['huge-coverage'].max)
  })

  it('page-range-only (before the 2025 hugepage ranges): a neighbour fault maps a hugepage over the gfn being converted', () => {
    const ids = broken('page-range-only')
    expect(ids).toContain('homogeneous-attributes')
    expect(ids).toContain('mapping-within-folio')
    const steps = labels('page-range-only', 'homogeneous-attributes')
    const begin = steps.findIndex((s) => s.label === 'kvm_gmem_invalidate_begin')
    const map = steps.findIndex((s) => s.label === 'kvm_tdp_mmu_map')
    expect(begin).toBeGreaterThanOrEqual(0)
    expect(map).toBeGreaterThan(begin)
    // The fault mapped a gfn other than the converted one.
    expect(steps[map].text).toMatch(/S-EPT/)
  })

  it('no series variant maps across mixed attributes or leaves a shared page mapped private, even with two conversions', () => {
    for (const variant of SERIES) {
      const ids = broken(variant, { conversions: 2, faults: 2, memory_failures: 0 })
      for (const id of ['homogeneous-attributes', 'no-shared-mapped-private', 'no-stale-mapping', 'in-progress-balanced', 'no-deadlock']) expect(ids, variant).not.toContain(id)
    }
  })
})

describe('kvm-gmem-conversion: the engine on it', () => {
  it('bfs and dfs agree with an independent enumerator', () => {
    for (const variant of ['upstream', 'split-folio-first', 'contiguous-multi-folio', 'page-range-only']) {
      const { model } = conversion(variant, { faults: 1 })
      const b = bruteForce(model)
      const x = bfs(model, { allViolations: true })
      expect([x.stats.states, x.stats.transitions]).toEqual([b.states, b.edges])
      expect(x.violations.map((v) => v.invariant).sort()).toEqual(expectedViolations(b))
      expect(dfs(model, { allViolations: true }).violations.map((v) => v.invariant).sort()).toEqual(expectedViolations(b))
    }
  })

  it('packed and object backends agree along random walks', () => {
    expectBackendsAgree(conversion('contiguous-checked', { H: 2, vcpus: 2, conversions: 2 }).model, { runs: 30, seed: 3, maxLength: 25 })
  })
})
