import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { abbreviations, fitTable, legend } from '../../cli/fit-table.js'
import { builtIns } from '../../cli/scenarios.js'
import { sweepCommand } from '../../cli/sweep.js'
import { loadTrace } from '../../traces/file.js'
import { renderTrace } from '../../traces/render.js'

const lines = (s: string): string[] => stripVTControlCharacters(s).split('\n')
const maxWidth = (s: string): number => Math.max(...lines(s).map((l) => l.length))

describe('fitTable', () => {
  const rows = [
    ['name', 'a-long-header', 'text'],
    ['one', 'x', 'the quick brown fox jumps over the lazy dog'],
    ['two', 'yy', 'short'],
  ]

  it('leaves a table that fits as it is', () => {
    expect(fitTable(rows, { width: 100 })).toBe('name  a-long-header  text\none   x              the quick brown fox jumps over the lazy dog\ntwo   yy             short')
  })

  it('wraps a wrappable column onto several lines, words whole, to fit', () => {
    const out = fitTable(rows, { width: 40, wrap: [2] })
    expect(maxWidth(out)).toBeLessThanOrEqual(40)
    expect(lines(out).join(' ').replace(/\s+/g, ' ')).toContain('the quick brown fox')
    expect(lines(out)[0]).toBe('name  a-long-header  text')
    expect(lines(out).length).toBeGreaterThan(3)
  })

  it('splits the columns when wrapping is not allowed, repeating the kept first column', () => {
    const out = fitTable(rows, { width: 40, keep: 1 })
    const parts = out.split('\n\n')
    expect(parts).toHaveLength(2)
    for (const p of parts) expect(lines(p).map((l) => l.split(/\s+/)[0])).toEqual(['name', 'one', 'two'])
    expect(maxWidth(parts[0])).toBeLessThanOrEqual(40)
  })

  it('abbreviates names uniquely and spells them out in a legend', () => {
    const a = abbreviations(['no-stale-mapping', 'no-sleep-mapping', 'field-in-range'])
    expect([...a.values()]).toEqual(['nsm', 'nsm2', 'fir'])
    expect(legend(a, 30).join(' ')).toBe('nsm=no-stale-mapping, nsm2=no-sleep-mapping, fir=field-in-range')
    for (const l of legend(a, 30)) expect(l.length).toBeLessThanOrEqual(30)
  })
})

describe('sweep', () => {
  /** sweepCommand's text and status, in-process. */
  function sweepText(scenario: (typeof builtIns extends () => readonly (infer S)[] ? S : never), specs: Record<string, string>): string {
    let out = ''
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true))
    try {
      expect(sweepCommand(scenario, specs, {}, false)).toBe(0)
    } finally {
      spy.mockRestore()
    }
    return out
  }

  it('fits in 100 columns for every built-in scenario (at its default parameters: the cells of every variant)', () => {
    for (const s of builtIns()) {
      const p = s.params[0]
      const out = sweepText(s, { [p.name]: String(p.default) })
      expect(maxWidth(out), `${s.name}\n${out}`).toBeLessThanOrEqual(100)
      for (const v of s.variants) expect(out).toContain(v.name)
    }
  })

  it("mshv-pinned's long outcome cells wrap, and a broken invariant's name stays whole", () => {
    const pinned = builtIns().find((s) => s.name === 'mshv-pinned')!
    const out = sweepText(pinned, { uaddr_offset: '0,1', pages: '3..4' })
    expect(maxWidth(out)).toBeLessThanOrEqual(100)
    expect(out).toContain('ioctl-outcome-deterministic')
    expect(out).toMatch(/rejected/)
  })
})

describe('race diagrams', () => {
  const dir = join(import.meta.dirname, '../../traces/corpus')
  it('of every corpus trace (every scenario with a known bug) stay within 80 columns', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'))
    const scenarios = new Set<string>()
    for (const f of files) {
      const trace = loadTrace(join(dir, f))
      scenarios.add(trace.scenario)
      const text = renderTrace(trace)
      expect(maxWidth(text), f).toBeLessThanOrEqual(80)
      expect(text).toContain(trace.violation.invariant)
    }
    // Every built-in scenario has a trace in the corpus, so every one is covered.
    expect([...scenarios].sort()).toEqual(builtIns().map((s) => s.name).sort())
  })
})
