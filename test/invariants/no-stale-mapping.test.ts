/**
 * `no-stale-mapping` against the reference README's definition, restated
 * here: for every page n, slat[n] == 0 || slat[n] == host[n] || pending == n+1.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { noStaleMappingPages } from '../../invariants/no-stale-mapping.js'

const inv = noStaleMappingPages()
const world = fc.integer({ min: 1, max: 8 }).chain((P) =>
  fc.record({
    host: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: P, maxLength: P }),
    slat: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: P, maxLength: P }),
    pending: fc.integer({ min: 0, max: P + 1 }),
  }),
)

describe('no-stale-mapping', () => {
  it('holds exactly when every page is empty, current or pending', () => {
    fc.assert(
      fc.property(world, (w) => {
        const ok = w.slat.every((pfn, n) => pfn === 0 || pfn === w.host[n] || w.pending === n + 1)
        const msg = inv.check(w)
        expect(msg === null).toBe(ok)
        if (!ok) {
          const n = w.slat.findIndex((pfn, i) => !(pfn === 0 || pfn === w.host[i] || w.pending === i + 1))
          expect(msg).toMatch(new RegExp(`^page ${n}: SLAT maps pfn ${w.slat[n]}\\b`))
        }
      }),
      { numRuns: 500 },
    )
  })

  it('works on byte views as well as arrays', () => {
    const w = { host: Uint8Array.of(0, 2), slat: Uint8Array.of(0, 1), pending: 0 }
    expect(inv.check(w)).toMatch(/page 1: SLAT maps pfn 1 but the host maps pfn 2/)
    expect(inv.check({ ...w, pending: 2 })).toBeNull()
    expect(inv.check({ ...w, pending: 1 })).not.toBeNull()
  })
})
