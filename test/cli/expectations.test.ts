import { join } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { expectVerdicts, VerdictMismatch } from '../../cli/api.js'
import { checkAllCommand, compareCommand, compareScenario, comparisonTable, type Comparison } from '../../cli/compare.js'
import { cellExpectation, mismatches } from '../../cli/expectations.js'
import { builtIns } from '../../cli/scenarios.js'
import { ModelError } from '../../explorer/errors.js'
import { faultInvalidate } from '../../invariants/scenarios.js'
import { expectationAt, resolveParams, scenario, variant, type Scenario } from '../../model/scenario.js'
import { mapcheck, tempDir } from '../support/cli.js'

const flippedFile = join(import.meta.dirname, '../fixtures/expect/flipped.ts')

/** fault-invalidate with the given expectations (variant -> invariants it breaks). */
const withExpect = (e: Record<string, string[] | undefined>): Scenario => ({
  ...faultInvalidate,
  variants: faultInvalidate.variants.map((v) => ({ ...v, expect: e[v.name] === undefined ? undefined : { violates: e[v.name] } })),
})

/** Runs the no-argument command in-process on `scenarios`: its status and its text without colours. */
function checkAll(scenarios: readonly Scenario[], expectations = true): { status: number; out: string } {
  let out = ''
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true))
  try {
    const status = checkAllCommand(scenarios, {}, false, { expect: expectations })
    return { status, out: stripVTControlCharacters(out) }
  } finally {
    spy.mockRestore()
  }
}

describe('declared expectations of the built-in scenarios', () => {
  const comparisons: Comparison[] = builtIns().map((s) => compareScenario(s, {}, {}, { save: false }))

  it('every built-in variant declares what it breaks', () => {
    for (const s of builtIns()) for (const v of s.variants) expect(expectationAt(s, v.name, resolveParams(s, {}))?.violates, `${s.name} ${v.name}`).toBeDefined()
  })

  it('every cell of the default matrix is as declared (what `npm start` gates on)', () => {
    for (const c of comparisons) {
      expect(mismatches(c), c.scenario).toEqual([])
      // Not vacuous: the declarations name real violations, each of them seen.
      for (const row of c.variants) expect([...row.violated].sort(), `${c.scenario} ${row.variant}`).toEqual([...(row.expected ?? [])].sort())
    }
    expect(comparisons.flatMap((c) => c.variants.flatMap((r) => r.violated)).length).toBeGreaterThan(0)
  })

  it('the matrix of every built-in scenario fits in 100 columns, with and without expectations', () => {
    for (const c of comparisons) {
      for (const e of [true, false]) {
        const lines = stripVTControlCharacters(comparisonTable(c, { expect: e })).split('\n')
        for (const line of lines) expect(line.length, `${c.scenario}: ${line}`).toBeLessThanOrEqual(100)
        // Every variant is still named, every invariant still named or spelled out in the legend.
        const text = lines.join('\n')
        for (const row of c.variants) expect(text).toContain(row.variant)
        for (const id of c.invariants) expect(text).toContain(id)
      }
    }
  })

  it('`mapcheck` with no arguments exits 0 on the built-in scenarios as they are', () => {
    const r = mapcheck([], tempDir())
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^fault-invalidate P=2/m)
    expect(r.stdout).not.toMatch(/NEW|GONE|differs/)
  })
})

describe('a cell that differs from its expectation', () => {
  it('flipping one expectation makes the matrix exit 1 and names the cell as a new violation', () => {
    const r = checkAll([withExpect({ retry: [], 'no-retry': [] })])
    expect(r.status).toBe(1)
    expect(r.out).toMatch(/^no-retry\s+VIOLATED \(12 steps\) NEW/m)
    expect(r.out).toMatch(/^  fault-invalidate no-retry no-stale-mapping: new violation \(12 steps\), not expected$/m)
    expect(r.out).toMatch(/1 cell differs from the expected verdicts/)
    expect(r.out).not.toMatch(/GONE/)
  })

  it('a declared violation that does not happen is named as no longer reproducing', () => {
    const r = checkAll([withExpect({ retry: ['no-stale-mapping'], 'no-retry': ['no-stale-mapping'] })])
    expect(r.status).toBe(1)
    expect(r.out).toMatch(/^retry\s+holds GONE/m)
    expect(r.out).toMatch(/fault-invalidate retry no-stale-mapping: expected violation no longer reproduces/)
    // The expected violation is drawn as a known one, not as new.
    expect(r.out).toMatch(/^no-retry\s+VIOLATED \(12 steps\)\s+holds/m)
  })

  it('--no-expect (expectations off) is the old behaviour: exit 0, no marks', () => {
    const r = checkAll([withExpect({ retry: [], 'no-retry': [] })], false)
    expect(r.status).toBe(0)
    expect(r.out).not.toMatch(/NEW|GONE|differs/)
  })

  it('a variant without a declaration is not gated', () => {
    const r = checkAll([withExpect({})])
    expect(r.status).toBe(0)
    expect(r.out).toMatch(/^no-retry\s+VIOLATED \(12 steps\)\s+holds/m)
  })

  it('an expectation naming an invariant the variant does not check is a difference', () => {
    const c = compareScenario(withExpect({ retry: ['no-stale-mapings'] }), {}, {}, { save: false })
    expect(mismatches(c)).toEqual([{ scenario: 'fault-invalidate', variant: 'retry', invariant: 'no-stale-mapings', kind: 'not checked' }])
  })

  it('an expectation holds at its parameters only; elsewhere the variant is not gated, and the matrix says so', () => {
    const s: Scenario = {
      ...faultInvalidate,
      variants: faultInvalidate.variants.map((v) => ({ ...v, expect: v.name === 'retry' ? [{ violates: [] }, { violates: ['no-stale-mapping'], params: { P: 1 } }] : { violates: ['no-stale-mapping'] } })),
    }
    // At P=1 retry is declared (wrongly) to break no-stale-mapping; no-retry declares nothing there.
    const atP1 = compareScenario(s, { P: 1 }, {}, { save: false })
    expect(mismatches(atP1)).toEqual([{ scenario: 'fault-invalidate', variant: 'retry', invariant: 'no-stale-mapping', kind: 'no longer reproduces' }])
    expect(atP1.ungated).toEqual(['no-retry'])
    expect(mismatches(compareScenario(s, {}, {}, { save: false }))).toEqual([])
    // Given explicitly at its default, a parameter is the default.
    expect(mismatches(compareScenario(s, { P: 2 }, {}, { save: false }))).toEqual([])
    let out = ''
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((x) => ((out += String(x)), true))
    try {
      expect(compareCommand(s, { P: '1' }, {}, false)).toBe(1)
    } finally {
      spy.mockRestore()
    }
    expect(stripVTControlCharacters(out)).toMatch(/not gated: no-retry declares expected verdicts at other parameters only/)
  })

  it('an undecided cell (bound reached) is not a difference', () => {
    const c = compareScenario(withExpect({ retry: [], 'no-retry': ['no-stale-mapping'] }), {}, { maxStates: 5 }, { save: false })
    expect(c.variants.every((r) => r.undecided.length > 0)).toBe(true)
    expect(mismatches(c)).toEqual([])
    expect(cellExpectation(c.variants[1], 'no-stale-mapping')).toBe('none')
  })

  it('`mapcheck compare` on a review file with flipped expectations exits 1 naming both cells; --no-expect exits 0', () => {
    const dir = tempDir()
    const r = mapcheck(['compare', flippedFile], dir)
    expect(r.status, r.stderr).toBe(1)
    expect(r.stdout).toMatch(/fault-invalidate no-retry no-stale-mapping: new violation/)
    expect(r.stdout).toMatch(/fault-invalidate retry no-stale-mapping: expected violation no longer reproduces/)
    const json = JSON.parse(mapcheck(['compare', flippedFile, '--json'], dir).stdout)
    expect(json.mismatches.map((m: { variant: string; kind: string }) => `${m.variant}: ${m.kind}`).sort()).toEqual(['no-retry: new violation', 'retry: no longer reproduces'])
    const off = mapcheck(['compare', flippedFile, '--no-expect'], dir)
    expect(off.status, off.stderr).toBe(0)
    expect(off.stdout).not.toMatch(/NEW|GONE/)
  })
})

describe('declaring expectations', () => {
  it('scenario() and variant() reject a malformed expect with one clear error', () => {
    const bad = { ...faultInvalidate, variants: [{ ...faultInvalidate.variants[0], expect: { violates: 'no-stale-mapping' } }] } as unknown as Scenario
    expect(() => scenario(bad)).toThrow(ModelError)
    expect(() => scenario(bad)).toThrow(/variant retry: expect must be \{ violates:/)
    expect(() => variant(faultInvalidate, { name: 'x', description: 'x', expect: { violate: [] } as never })).toThrow(/variant x: expect must be/)
    expect(() => scenario(withExpect({ retry: [] }))).not.toThrow()
    const listed = { ...faultInvalidate, variants: [{ ...faultInvalidate.variants[0], expect: [{ violates: [] }, { violates: ['x'], params: { P: 'one' } }] }] } as unknown as Scenario
    expect(() => scenario(listed)).toThrow(/expect must be/)
  })
})

describe('expectVerdicts (public API)', () => {
  it('resolves when every cell is as declared', async () => {
    const c = await expectVerdicts(faultInvalidate)
    expect(c.variants.map((r) => r.variant)).toEqual(['retry', 'no-retry'])
  })

  it('throws naming the cell when an override differs, and resolves when it matches', async () => {
    await expect(expectVerdicts(faultInvalidate, { expect: { 'no-retry': [] } })).rejects.toThrow(VerdictMismatch)
    await expect(expectVerdicts(faultInvalidate, { expect: { 'no-retry': [] } })).rejects.toThrow(/fault-invalidate no-retry no-stale-mapping: new violation/)
    await expect(expectVerdicts('fault-invalidate', { expect: { retry: [], 'no-retry': ['no-stale-mapping'] } })).resolves.toBeDefined()
  })

  it('takes a review file and its declarations', async () => {
    await expect(expectVerdicts(flippedFile)).rejects.toThrow(/2 verdicts differ/)
  })

  it('an incomplete search fails the gate; an unknown variant is bad input', async () => {
    await expect(expectVerdicts(faultInvalidate, { maxStates: 5 })).rejects.toThrow(/undecided \(a bound cut the search\)/)
    await expect(expectVerdicts(faultInvalidate, { expect: { nope: [] } })).rejects.toThrow(/unknown variant 'nope'/)
  })
})
