import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { dfs } from '../../../explorer/dfs.js'
import { instantiate } from '../../../invariants/scenarios.js'
import { congruent, hugepageAllowed, kvmLimitsAllow, type Binding, type BindingPolicy } from '../../../model/kvm/gmem-binding-rules.js'
import { gmemLayout, SLOT_INVALID } from '../../../model/scenarios/kvm-gmem-binding.js'
import { recordTrace } from '../../../traces/record.js'
import { bruteForce, expectedViolations } from '../../support/brute-force.js'
import { expectBackendsAgree } from '../../support/backends.js'

const gmem = (variant: string, params: Record<string, number> = {}) => instantiate('kvm-gmem-binding', variant, params)

describe('kvm-gmem-binding rules', () => {
  const binding = fc.record({ baseGfn: fc.nat(64), npages: fc.integer({ min: 1, max: 64 }), pgoff: fc.nat(64) })
  it('every policy keeps a huge leaf inside the slot; interior-hugepages also keeps it inside one folio', () => {
    fc.assert(
      fc.property(binding, fc.constantFrom(2, 4, 8), fc.nat(80), (slot: Binding, level, at) => {
        const start = at - (at % level)
        for (const policy of ['whole-binding', 'interior-hugepages', 'no-clamp'] as BindingPolicy[]) {
          if (hugepageAllowed(policy, slot, start, level, level)) expect(kvmLimitsAllow(slot, start, level)).toBe(true)
        }
        if (hugepageAllowed('interior-hugepages', slot, start, level, level)) expect(congruent(slot, level)).toBe(true)
        // No policy maps huge over a folio smaller than the leaf.
        expect(hugepageAllowed('no-clamp', slot, start, level, level / 2)).toBe(false)
      }),
    )
  })

  it("whole-binding is the 2023 patch's test: pgoff and npages aligned, nothing about base_gfn", () => {
    const aligned = { baseGfn: 1, npages: 6, pgoff: 2 }
    expect(hugepageAllowed('whole-binding', aligned, 2, 2, 2)).toBe(true)
    expect(congruent(aligned, 2)).toBe(false)
    expect(hugepageAllowed('whole-binding', { baseGfn: 1, npages: 7, pgoff: 1 }, 2, 2, 2)).toBe(false)
    expect(hugepageAllowed('interior-hugepages', { baseGfn: 1, npages: 7, pgoff: 1 }, 2, 2, 2)).toBe(true)
  })
})

describe('kvm-gmem-binding exploration', () => {
  it('agrees with an independent enumerator on a small layout, for every variant', () => {
    for (const variant of ['upstream', 'whole-binding', 'interior-hugepages', 'no-clamp', 'no-synchronize-srcu']) {
      const { model } = gmem(variant, { ram: 2, faults: 1, offset_shift: 1 })
      const b = bruteForce(model)
      const x = bfs(model, { allViolations: true })
      const d = dfs(model, { allViolations: true })
      expect([x.stats.states, x.stats.transitions, x.stats.maxDepth]).toEqual([b.states, b.edges, b.eccentricity])
      expect(d.stats.states).toBe(b.states)
      expect(x.violations.map((v) => v.invariant).sort()).toEqual(expectedViolations(b))
      expect(d.violations.map((v) => v.invariant).sort()).toEqual(expectedViolations(b))
    }
  })

  it('packed and object backends agree along random walks', () => {
    expectBackendsAgree(gmem('no-clamp', { H: 2, ram: 2, low: 3, offset_shift: 1, vcpus: 2, faults: 2 }).model, { runs: 30, seed: 7, maxLength: 30 })
  })

  it("on the seed's layout every variant keeps every invariant, and interior-hugepages maps strictly more huge than whole-binding", () => {
    const whole = bfs(gmem('whole-binding').model, { allViolations: true })
    const interior = bfs(gmem('interior-hugepages').model, { allViolations: true })
    expect(whole.verdict).toBe('ok')
    expect(interior.verdict).toBe('ok')
    expect(interior.metrics['huge-coverage'].max).toBeGreaterThan(whole.metrics['huge-coverage'].max)
    // The seed's slot 5 is bound at gmem offset = gpa: gfn and index congruent, so even no clamp maps nothing wrong.
    expect(bfs(gmem('no-clamp').model, { allViolations: true }).verdict).toBe('ok')
  })

  it('a binding whose gfn and file index are not congruent: no-clamp maps the wrong pages, and so does whole-binding once pgoff and npages happen to be aligned', () => {
    const params = { offset_shift: 1 }
    const l = gmemLayout({ H: 1, ram: 4, low: 1, offset_shift: 1, vcpus: 1, faults: 2 })
    const slot5 = l.ops[2] as Binding & { kind: 'create' }
    expect(slot5.pgoff % 2).toBe(0)
    expect(slot5.npages % 2).toBe(0)
    for (const variant of ['no-clamp', 'whole-binding']) {
      const inst = gmem(variant, params)
      const x = bfs(inst.model)
      expect(x.violations.map((v) => v.invariant)).toEqual(['mapping-within-folio'])
      const steps = recordTrace(inst, x, x.violations[0]).steps
      expect(steps.at(-1)?.label).toBe('kvm_tdp_mmu_map')
    }
    expect(bfs(gmem('interior-hugepages', params).model, { allViolations: true }).verdict).toBe('ok')
  })

  it('slot deletion zaps: no leaf outlives its slot, with two vCPUs racing the split', () => {
    const x = bfs(gmem('interior-hugepages', { vcpus: 2, faults: 1 }).model, { allViolations: true })
    expect(x.verdict).toBe('ok')
    expect(x.incomplete).toBeNull()
  })

  it('upstream (order-0 folios) maps only 4K and keeps every invariant, even on a binding that is not congruent', () => {
    for (const params of [{}, { offset_shift: 1 }] as Record<string, number>[]) {
      const x = bfs(gmem('upstream', params).model, { allViolations: true })
      expect(x.verdict).toBe('ok')
      expect(x.metrics['huge-coverage'].max).toBe(0)
    }
  })

  it("KVM's hva rule is exercised: with the RAM's hva not congruent to its gpa, no variant maps huge, and no-clamp's wrong mapping disappears", () => {
    expect(bfs(gmem('interior-hugepages').model).metrics['huge-coverage'].max).toBeGreaterThan(0)
    for (const variant of ['whole-binding', 'interior-hugepages', 'no-clamp']) {
      const x = bfs(gmem(variant, { ua_offset: 1 }).model, { allViolations: true })
      expect(x.metrics['huge-coverage'].max, variant).toBe(0)
    }
    expect(bfs(gmem('no-clamp', { offset_shift: 1 }).model).verdict).toBe('violation')
    expect(bfs(gmem('no-clamp', { offset_shift: 1, ua_offset: 1 }).model).verdict).toBe('ok')
    // A shift by a whole "2M" keeps the hva congruent: huge again.
    expect(bfs(gmem('interior-hugepages', { ua_offset: 2 }).model).metrics['huge-coverage'].max).toBeGreaterThan(0)
  })

  it('SRCU: a fault that looked its slot up before the INVALID swap still maps from it (the window the kernel has), and synchronize_srcu keeps the zap after it', () => {
    const { model } = gmem('interior-hugepages')
    // Reachable: a leaf of a slot that is KVM_MEMSLOT_INVALID (the map-time recheck the model used to make is gone).
    const window = { id: 'no-leaf-of-an-invalid-slot', description: 'probe', check: (w: any) => (w.ept.some((e: any) => e.slot !== 0 && w.slot[e.slot - 1].state === SLOT_INVALID) ? 'found' : null) }
    const probe = bfs({ ...model, invariants: [window], packed: undefined } as typeof model)
    expect(probe.violations.map((v) => v.invariant)).toEqual(['no-leaf-of-an-invalid-slot'])
    // Without the grace period the flush can run before that fault maps: a leaf outlives its slot.
    const inst = gmem('no-synchronize-srcu')
    const x = bfs(inst.model)
    expect(x.violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
    const steps = recordTrace(inst, x, x.violations[0]).steps.map((st) => st.label)
    expect(steps.indexOf('kvm_tdp_mmu_map')).toBeGreaterThan(steps.indexOf('kvm_arch_flush_shadow_memslot'))
  })
})
