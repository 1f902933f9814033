/**
 * Expected verdicts: each variant may declare the invariants it is known to
 * break (`expect: { violates: [...] }`), which makes the verdict matrix a
 * regression suite. A cell differs from its expectation when the variant
 * breaks an invariant it does not declare (a new violation: a fix that
 * regressed) or keeps, exhaustively, one it declares (a known bug that no
 * longer reproduces: the model changed, or the bounds no longer reach it).
 * An undecided cell (a bound cut the search) is incomplete, not a difference.
 */
import type { Comparison, VariantRow } from './compare.js'

export type MismatchKind = 'new violation' | 'no longer reproduces' | 'not checked'

export interface Mismatch {
  readonly scenario: string
  readonly variant: string
  readonly invariant: string
  readonly kind: MismatchKind
  /** For a new violation: the length of its trace, and the trace file when one was written. */
  readonly steps?: number
  readonly trace?: string
}

/** How a cell stands against its variant's expectation (`none` when the variant declares none). */
export type CellExpectation = 'expected' | 'new' | 'gone' | 'none'

export function cellExpectation(row: VariantRow, invariant: string): CellExpectation {
  if (row.expected === undefined || row.error !== undefined) return 'none'
  const expected = row.expected.includes(invariant)
  if (row.violated.includes(invariant)) return expected ? 'expected' : 'new'
  if (expected && row.holds.includes(invariant)) return 'gone'
  return 'none'
}

/** Every cell of a comparison that differs from its declared expectation. `expect` overrides the declared ones (variant -> invariants it breaks). */
export function mismatches(c: Comparison, expect?: Readonly<Record<string, readonly string[]>>): Mismatch[] {
  const out: Mismatch[] = []
  for (const declared of c.variants) {
    const row: VariantRow = expect && declared.variant in expect ? { ...declared, expected: [...expect[declared.variant]] } : declared
    if (row.expected === undefined || row.error !== undefined) continue
    const base = { scenario: c.scenario, variant: row.variant }
    for (const id of row.violated) {
      if (!row.expected.includes(id)) out.push({ ...base, invariant: id, kind: 'new violation', steps: row.steps[id], ...(row.traces[id] ? { trace: row.traces[id] } : {}) })
    }
    for (const id of row.expected) {
      if (row.holds.includes(id)) out.push({ ...base, invariant: id, kind: 'no longer reproduces' })
      // An expectation naming an invariant the variant does not check can never be met: a typo, or a property since renamed.
      else if (!row.violated.includes(id) && !row.undecided.includes(id)) out.push({ ...base, invariant: id, kind: 'not checked' })
    }
  }
  return out
}

/** One line per mismatch, naming the cell. */
export function mismatchText(m: Mismatch): string {
  const cell = `${m.scenario} ${m.variant} ${m.invariant}`
  switch (m.kind) {
    case 'new violation':
      return `${cell}: new violation${m.steps !== undefined ? ` (${m.steps} steps)` : ''}, not expected`
    case 'no longer reproduces':
      return `${cell}: expected violation no longer reproduces`
    case 'not checked':
      return `${cell}: expected violation of an invariant the variant does not check`
  }
}
