import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { hugepageAllowed, kvmLimitsAllow, type Binding, type BindingPolicy } from '../../../model/kvm/gmem-binding-rules.js'
import { alignedBlocks, analyzeSlot, POLICIES, totals, X86_LEVELS, type Level, type LayoutSlot } from '../../../model/kvm/layout-analysis.js'
import { loadQemuMemslotTrace } from '../../../model/kvm/qemu-memslot-trace.js'

const fixture = join(import.meta.dirname, '../../fixtures/seed-003-qemu.log')
const MiB2 = 0x200000
const GiB = 0x40000000

/**
 * Per page, straight from the rules: is the page's aligned range one huge leaf, and does that leaf map the wrong file page?
 * KVM's ua rule is checked here, per page, for every slot and policy (the page's gfn and its own user address congruent
 * modulo the level, KVM's `(gfn ^ ugfn) & (level - 1)`), not through the rules' `ugfn`: the binding leaves it out.
 */
function bruteForce(slot: LayoutSlot, level: number, policy: BindingPolicy): { allowedPages: number; unsafePages: number } {
  const binding: Binding = { baseGfn: slot.baseGfn, npages: slot.npages, pgoff: slot.gmem?.pgoff ?? 0 }
  let allowedPages = 0
  let unsafePages = 0
  for (let gfn = slot.baseGfn; gfn < slot.baseGfn + slot.npages; gfn++) {
    const start = gfn - (gfn % level)
    const uaOfGfn = slot.uaPage + (gfn - slot.baseGfn)
    const uaOk = ((gfn ^ uaOfGfn) & (level - 1)) === 0
    const allowed = uaOk && (slot.gmem ? hugepageAllowed(policy, binding, start, level, level) : kvmLimitsAllow(binding, start, level))
    if (!allowed) continue
    allowedPages++
    // The leaf maps the aligned file range holding index(start); it is this page's own only if index and gfn agree modulo the level.
    if (slot.gmem && (slot.gmem.pgoff + (gfn - slot.baseGfn)) % level !== gfn % level) unsafePages++
  }
  return { allowedPages, unsafePages }
}

const SMALL: readonly Level[] = [
  { name: '4', pages: 4 },
  { name: '16', pages: 16 },
]

/** ua - gfn (in pages, plus 96 to keep ua >= 0): any, or a multiple of 16 half the time, so that ua is often congruent at both levels. */
const uaShift = fc.oneof(fc.integer({ min: 0, max: 160 }), fc.integer({ min: 0, max: 10 }).map((k) => 16 * k))

const smallSlot = fc
  .record({
    baseGfn: fc.nat(80),
    npages: fc.integer({ min: 1, max: 100 }),
    uaShift,
    gmem: fc.option(fc.record({ pgoff: fc.nat(48) }), { nil: null }),
  })
  .map(({ baseGfn, npages, uaShift, gmem }): LayoutSlot => ({ baseGfn, npages, uaPage: baseGfn + uaShift, gmem }))

/** Slots whose gmem pgoff and npages are aligned to the levels, so that whole-binding maps something (when ua allows it). */
const alignedBinding = fc
  .record({ baseGfn: fc.nat(80), blocks: fc.integer({ min: 1, max: 8 }), pgoffBlocks: fc.nat(3), uaShift })
  .map(({ baseGfn, blocks, pgoffBlocks, uaShift }): LayoutSlot => ({ baseGfn, npages: blocks * 16, uaPage: baseGfn + uaShift, gmem: { pgoff: pgoffBlocks * 16 } }))

describe('the analyzer against a per-page brute force (small levels: 4 and 16 pages)', () => {
  for (const [what, slots] of [
    ['random slots', smallSlot],
    ['aligned bindings', alignedBinding],
  ] as const) {
    it(`${what}: allowed and unsafe pages per policy and level`, () => {
      // Both sides of the ua rule must come up: levels with aligned ranges it zeroes, and ones where a policy maps.
      let zeroedByUa = 0
      let mapped = 0
      fc.assert(
        fc.property(slots, (slot) => {
          const a = analyzeSlot(slot, SMALL)
          SMALL.forEach(({ pages }, i) => {
            for (const policy of POLICIES) {
              const got = a.levels[i].policies[policy]
              expect({ allowedPages: got.allowedPages, unsafePages: got.unsafePages }).toEqual(bruteForce(slot, pages, policy))
              expect(got.share).toBe(got.allowedPages / slot.npages)
            }
            const ua = (slot.uaPage - slot.baseGfn) % pages === 0
            expect(a.levels[i].uaCongruent).toBe(ua)
            if (!ua) for (const policy of POLICIES) expect(a.levels[i].policies[policy].allowedPages).toBe(0)
            if (!ua && a.levels[i].alignedBlocks > 0) zeroedByUa++
            if (a.levels[i].policies['whole-binding'].allowedPages > 0) mapped++
          })
        }),
        { numRuns: 2000, seed: 3 },
      )
      expect(zeroedByUa).toBeGreaterThan(100)
      expect(mapped).toBeGreaterThan(100)
    })
  }

  it('the rules do not depend on where the aligned range is, beyond kvmLimitsAllow (what the closed form relies on)', () => {
    fc.assert(
      fc.property(smallSlot, fc.constantFrom(...POLICIES), fc.constantFrom(4, 16), (slot, policy, level) => {
        const binding: Binding = { baseGfn: slot.baseGfn, npages: slot.npages, pgoff: slot.gmem?.pgoff ?? 0, ugfn: slot.uaPage }
        const verdicts = new Set<boolean>()
        for (let start = 0; start < slot.baseGfn + slot.npages; start += level) {
          if (kvmLimitsAllow(binding, start, level)) verdicts.add(hugepageAllowed(policy, binding, start, level, level))
        }
        expect(verdicts.size).toBeLessThanOrEqual(1)
      }),
      { numRuns: 2000, seed: 5 },
    )
  })

  it('alignedBlocks counts the aligned ranges inside the slot', () => {
    for (let base = 0; base < 40; base++)
      for (let n = 0; n < 40; n++) {
        let blocks = 0
        for (let s = 0; s + 8 <= base + n; s += 8) if (s >= base) blocks++
        expect(alignedBlocks(base, n, 8).blocks).toBe(blocks)
      }
  })
})

describe('seed 003 at full scale (4 KiB pages, 2M = 512, 1G = 262144)', () => {
  const trace = loadQemuMemslotTrace(fixture)
  const slot5 = trace.slots.find((s) => s.slot === 5)!
  // The numbers of slot 5's trace line.
  const gpa = 0x100000
  const size = 0x7ff00000
  const offset = 0x100000
  const ua = 0x7f24afd00000
  /** Bytes of the slot in aligned huge ranges: from gpa rounded up to gpa + size rounded down. */
  const alignedBytes = (huge: number): number => Math.floor((gpa + size) / huge) * huge - Math.ceil(gpa / huge) * huge
  /** KVM's ua rule: gpa and ua congruent modulo the huge size, else no leaf of that size in the slot. */
  const uaOk = (huge: number): boolean => (ua - gpa) % huge === 0
  /** Bytes KVM's own limits leave to a policy: the aligned ranges, if the ua rule allows the size at all. */
  const limitBytes = (huge: number): number => (uaOk(huge) ? alignedBytes(huge) : 0)
  const share = (huge: number): number => limitBytes(huge) / size
  const a = analyzeSlot(slot5)
  const [m2, g1] = a.levels

  it('slot 5, interior-hugepages: every aligned range inside the slot at 2M ((0x80000000 - 0x200000) / 0x7ff00000), none at 1G (ua)', () => {
    expect(share(MiB2)).toBe((0x80000000 - 0x200000) / 0x7ff00000)
    expect(m2.policies['interior-hugepages'].share).toBe(share(MiB2))
    expect((m2.policies['interior-hugepages'].share * 100).toFixed(2)).toBe('99.95')
    expect(g1.policies['interior-hugepages'].share).toBe(share(GiB))
    expect(g1.policies['interior-hugepages'].allowedPages).toBe(limitBytes(GiB) / 4096)
    // One aligned 1G range lies inside the slot; the ua rule alone takes it away.
    expect(g1.alignedPages).toBe(alignedBytes(GiB) / 4096)
    expect(alignedBytes(GiB)).toBe(GiB)
  })

  it('slot 5, whole-binding: nothing, the offset is not a multiple of the folio', () => {
    expect(offset % MiB2).not.toBe(0)
    expect(m2.policies['whole-binding']).toEqual({ allowedPages: 0, share: 0, unsafePages: 0 })
    expect(g1.policies['whole-binding']).toEqual({ allowedPages: 0, share: 0, unsafePages: 0 })
  })

  it('slot 5, no-clamp: as much as interior-hugepages, and safe (gpa and offset congruent)', () => {
    expect((gpa - offset) % GiB).toBe(0)
    for (const l of [m2, g1]) expect(l.policies['no-clamp']).toEqual(l.policies['interior-hugepages'])
  })

  it("slot 5's ua is 2M- but not 1G-congruent with its gpa: KVM's ua rule makes 1G 0% under every policy, gmem slot included", () => {
    expect([m2.uaCongruent, g1.uaCongruent]).toEqual([uaOk(MiB2), uaOk(GiB)])
    expect([m2.uaCongruent, g1.uaCongruent]).toEqual([true, false])
    for (const p of POLICIES) expect(g1.policies[p]).toEqual({ allowedPages: 0, share: 0, unsafePages: 0 })
    // The same slot with a ua congruent at 1G too (moved down by (ua - gpa) mod 1G): the 1G range comes back.
    const moved = analyzeSlot({ ...slot5, uaPage: (ua - ((ua - gpa) % GiB)) / 4096 }).levels[1]
    expect(moved.uaCongruent).toBe(true)
    expect(moved.policies['interior-hugepages'].allowedPages).toBe(alignedBytes(GiB) / 4096)
    expect(moved.policies['whole-binding'].allowedPages).toBe(0)
  })

  it('slots 0, 3 and 4 are smaller than 2M: no huge leaf at all', () => {
    for (const s of trace.slots.filter((s) => s.slot !== 5)) {
      for (const l of analyzeSlot(s).levels) for (const p of POLICIES) expect(l.policies[p].allowedPages).toBe(0)
    }
  })

  it('totals: pages and allowed pages summed over the final slots', () => {
    const t = totals(trace.slots.map((s) => analyzeSlot(s)))
    const bytes = 0xc0000 + 0x20000 + 0x20000 + size
    expect(t.npages).toBe(bytes / 4096)
    expect(t.levels[0].policies['interior-hugepages']).toEqual({ allowedPages: limitBytes(MiB2) / 4096, share: limitBytes(MiB2) / bytes, unsafePages: 0 })
    expect(t.levels[1].policies['interior-hugepages'].share).toBe(limitBytes(GiB) / bytes)
    expect(t.levels[1].policies['whole-binding'].allowedPages).toBe(0)
  })

  it('whole-binding maps wrong pages when an aligned pgoff hides a misaligned base_gfn', () => {
    // The seed's slot 5 had QEMU bound it at offset 0 and 2 GiB long: pgoff and npages aligned, base_gfn 0x100 not
    // (its ua, 2M-congruent with its gpa, lets 2M through).
    expect(uaOk(MiB2)).toBe(true)
    const a = analyzeSlot({ baseGfn: gpa / 4096, npages: 0x80000000 / 4096, uaPage: ua / 4096, gmem: { pgoff: 0 } })
    const wb = a.levels[0].policies['whole-binding']
    expect(wb.allowedPages).toBe((0x80000000 - 0x200000) / 4096)
    expect(wb.unsafePages).toBe(wb.allowedPages)
    expect(a.levels[0].policies['interior-hugepages'].allowedPages).toBe(0)
  })

  it("plain slots: KVM's own limits for every policy (gfn and ua congruent)", () => {
    const congruentSlot = analyzeSlot({ baseGfn: 0x100, npages: 0x7ff00, uaPage: 0x7f24afd00, gmem: null })
    expect(POLICIES.map((p) => congruentSlot.levels[0].policies[p].share)).toEqual(POLICIES.map(() => share(MiB2)))
    const shifted = analyzeSlot({ baseGfn: 0x100, npages: 0x7ff00, uaPage: 0x7f24afd01, gmem: null })
    expect(POLICIES.map((p) => shifted.levels[0].policies[p].allowedPages)).toEqual([0, 0, 0])
  })

  it('full-scale counts agree with iterating over the 2M and 1G blocks of multi-GiB slots', () => {
    // ua - gfn: any, or a multiple of 2M or of 1G, so that the ua rule passes at 2M and at 1G often enough.
    const uaShift = fc.oneof(fc.nat(1 << 30), fc.nat(1 << 12).map((k) => k * 512), fc.nat(1 << 4).map((k) => k * 262144))
    let zeroedByUa = 0
    let mapped1G = 0
    fc.assert(
      fc.property(
        fc.record({ baseGfn: fc.nat(1 << 22), npages: fc.integer({ min: 1, max: 1 << 21 }), uaShift, pgoff: fc.nat(1 << 20), gmem: fc.boolean() }),
        ({ baseGfn, npages, uaShift, pgoff, gmem }) => {
          const uaPage = baseGfn + uaShift
          const slot: LayoutSlot = { baseGfn, npages, uaPage, gmem: gmem ? { pgoff } : null }
          // No ugfn: the ua rule is checked below, per block, as KVM writes it.
          const binding: Binding = { baseGfn, npages, pgoff }
          const a = analyzeSlot(slot)
          X86_LEVELS.forEach(({ pages: level }, i) => {
            for (const policy of POLICIES) {
              let allowed = 0
              for (let start = Math.ceil(baseGfn / level) * level; start + level <= baseGfn + npages; start += level) {
                const uaOk = ((start ^ (uaPage + start - baseGfn)) & (level - 1)) === 0
                const ok = uaOk && (gmem ? hugepageAllowed(policy, binding, start, level, level) : kvmLimitsAllow(binding, start, level))
                if (ok) allowed += level
              }
              expect(a.levels[i].policies[policy].allowedPages).toBe(allowed)
            }
            if (!a.levels[i].uaCongruent && a.levels[i].alignedBlocks > 0) zeroedByUa++
            if (level === 262144 && a.levels[i].policies['no-clamp'].allowedPages > 0) mapped1G++
          })
        },
      ),
      { numRuns: 200, seed: 7 },
    )
    expect(zeroedByUa).toBeGreaterThan(20)
    expect(mapped1G).toBeGreaterThan(20)
  })
})
