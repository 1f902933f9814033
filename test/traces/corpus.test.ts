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
      const seen = r.violations.find((v) => v.invariant === trace.violation.invariant)!
      expect(seen.step).toBe(trace.steps.length)
      expect(seen.message).toBe(trace.violation.message)
    })
  }
})
