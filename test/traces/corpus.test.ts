import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadTrace } from '../../traces/file.js'
import { replayTrace } from '../../traces/replay.js'

// Every known bug's trace is a regression test: it must still reproduce its recorded violation.
const dir = join(import.meta.dirname, '../../traces/corpus')
const files = readdirSync(dir).filter((f) => f.endsWith('.json'))

describe('traces/corpus', () => {
  it('is not empty', () => {
    expect(files.length).toBeGreaterThan(0)
  })
  for (const file of files) {
    it(`${file} reproduces its violation`, () => {
      const trace = loadTrace(join(dir, file))
      const r = replayTrace(trace)
      expect(r.reproduced).toBe(true)
      if ((r.instance.model.evidence ?? []).some((e) => e.id === trace.violation.invariant)) {
        // One run per fact of an evidence property's conflict (lockdep: one per edge): it ends showing its fact.
        expect(r.steps).toHaveLength(trace.steps.length)
        return
      }
      if (trace.violation.outcome !== undefined) {
        // One of an outcome property's two runs: it ends, terminal, with its recorded outcome.
        expect(r.outcomes[trace.violation.invariant]).toBe(trace.violation.outcome)
        expect(r.steps).toHaveLength(trace.steps.length)
        return
      }
      const seen = r.violations.find((v) => v.invariant === trace.violation.invariant)!
      expect(seen.step).toBe(trace.steps.length)
      expect(seen.message).toBe(trace.violation.message)
    })
  }
})
