import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { dfs } from '../../../explorer/dfs.js'
import { instantiate } from '../../../invariants/scenarios.js'
import { recordTrace } from '../../../traces/record.js'
import { bruteForce, expectedViolations } from '../../support/brute-force.js'
import { expectBackendsAgree } from '../../support/backends.js'

const conversion = (variant: string, params: Record<string, number> = {}) => instantiate('kvm-gmem-conversion', variant, params)
const VARIANTS = ['split-ept-first', 'split-folio-first', 'contiguous-multi-folio', 'restructure-may-fail', 'contiguous-error-split', 'contiguous-checked']
const broken = (variant: string, params: Record<string, number> = {}) =>
  bfs(conversion(variant, params).model, { allViolations: true })
    .violations.map((v) => v.invariant)
    .sort()

describe('kvm-gmem-conversion: the positions of the thread, checked', () => {
  it('split-ept-first keeps every invariant', () => {
    expect(broken('split-ept-first')).toEqual([])
  })

  it('split-folio-first breaks mapping-within-folio in the window between the folio split and the S-EPT split, and nothing else', () => {
    const inst = conversion('split-folio-first')
    const x = bfs(inst.model, { allViolations: true })
    expect(x.violations.map((v) => v.invariant)).toEqual(['mapping-within-folio'])
    const steps = recordTrace(inst, x, x.violations[0]).steps.map((s) => s.label)
    expect(steps.at(-1)).toBe('hugetlb_restructuring_split_folio')
    expect(steps).not.toContain('split_sept')
  })

  it("contiguous-multi-folio keeps mapping-contiguous while breaking mapping-within-folio (the thread's question), and memory failure then leaves a poisoned page mapped", () => {
    const ids = broken('contiguous-multi-folio')
    expect(ids).toContain('mapping-within-folio')
    expect(ids).not.toContain('mapping-contiguous')
    expect(ids).toContain('no-freed-page-mapped')
  })

  it('splitting in kvm_gmem_error_folio is not enough: a later fault maps a contiguous leaf over the poisoned neighbour; checking every folio under the leaf is', () => {
    const inst = conversion('contiguous-error-split')
    const x = bfs(inst.model, { allViolations: true })
    const v = x.violations.find((r) => r.invariant === 'no-freed-page-mapped')!
    const steps = recordTrace(inst, x, v).steps
    expect(steps.at(-1)?.label).toBe('kvm_tdp_mmu_map')
    expect(steps.findIndex((s) => s.label === 'kvm_gmem_error_folio')).toBeLessThan(steps.length - 1)
    expect(broken('contiguous-checked')).toEqual(['mapping-within-folio'])
  })

  it('restructure-may-fail keeps every invariant: the S-EPT was split first, so a folio split that stops part way leaves no leaf too large', () => {
    const x = bfs(conversion('restructure-may-fail').model, { allViolations: true })
    expect(x.verdict).toBe('ok')
    // ... and keeps huge mappings where the failed split left 2^H folios, which split-ept-first never does.
    expect(x.metrics['huge-coverage'].max).toBeGreaterThan(bfs(conversion('split-ept-first').model, { allViolations: true }).metrics['huge-coverage'].max)
  })

  it('no variant maps across mixed attributes or leaves a shared page mapped private, even with two conversions', () => {
    for (const variant of VARIANTS) {
      const ids = broken(variant, { conversions: 2, faults: 2 })
      for (const id of ['homogeneous-attributes', 'no-shared-mapped-private', 'no-stale-mapping', 'no-deadlock']) expect(ids, variant).not.toContain(id)
    }
  })
})

describe('kvm-gmem-conversion: the engine on it', () => {
  it('bfs and dfs agree with an independent enumerator', () => {
    for (const variant of ['split-folio-first', 'contiguous-multi-folio']) {
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
