import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { builtIns } from '../../cli/scenarios.js'
import { findScenario, instantiate } from '../../invariants/scenarios.js'
import { inferredMemoryMap } from '../../model/memory-map.js'
import { scenario as defineScenario, variant } from '../../model/scenario.js'
import { faultInvalidate } from '../../invariants/scenarios.js'
import { loadTrace } from '../../traces/file.js'
import { htmlReport, memoryMapOf } from '../../traces/html-report.js'
import { memoryMapSvg, namedEntries } from '../../traces/memory-map-svg.js'
import { mapcheck, tempDir } from '../support/cli.js'

const corpus = join(import.meta.dirname, '../../traces/corpus')
const partialThp = join(corpus, 'mshv-movable-upstream-partial-thp-no-stale-mapping.json')

/** The markup of the step view at the violating step. */
const violatingView = (html: string): string => {
  const start = html.indexOf('<div class="step-view violating"')
  return html.slice(start, html.indexOf('</svg>', start))
}

describe('the memory map', () => {
  it('every built-in scenario declares one, and its picture of the initial state has every declared lane and a row per gfn', () => {
    for (const s of builtIns()) {
      expect(s.memoryMap, s.name).toBeDefined()
      const inst = instantiate(s)
      const map = memoryMapOf(s, inst.params, null)
      expect(map.rows, s.name).toBeGreaterThan(0)
      const svg = memoryMapSvg(map, inst.model.initialStates()[0])
      expect(svg.match(/class="gfn-label"/g)).toHaveLength(map.rows)
      for (const lane of map.lanes) expect(svg, `${s.name}: ${lane.kind}`).toContain(`data-lane="`)
      expect(new Set([...svg.matchAll(/data-lane="([^"]+)"/g)].map((m) => m[1])).size).toBe(map.lanes.length)
    }
  })

  it('finds the entries a message names: gfns (absolute or ranges), pages (rows) and pfns', () => {
    expect(namedEntries('gfn 0x3 maps pfn 0x3 but the host maps pfn 0x4 at uaddr 0x3', { rows: 4, firstGfn: 2 })).toEqual({ rows: [1], pfns: [3, 4] })
    expect(namedEntries('page 0: SLAT maps pfn 1 but the host maps nothing', { rows: 2 })).toEqual({ rows: [0], pfns: [1] })
    expect(namedEntries('gfn 2..3 is mapped', { rows: 8 })).toEqual({ rows: [2, 3], pfns: [] })
    expect(namedEntries('vp0 used the region after vfree()', { rows: 4 })).toEqual({ rows: [], pfns: [] })
  })

  it('a huge leaf, a PMD and a huge folio are each one box over their pages, with their order', () => {
    const trace = loadTrace(partialThp)
    const html = htmlReport({ title: 't', traces: [trace], scenario: findScenario(trace.scenario) })
    const view = violatingView(html)
    // The SLAT's order-1 leaf at gfn 0x2..0x3: one cell spanning both rows, pfns 0x2..0x3.
    expect(view).toMatch(/data-lane="SLAT" data-rows="0 1" data-pfns="2 3">.*?pfn 0x2\.\.0x3 RW.*?huge leaf, order 1/)
    expect(view).toMatch(/class="folio-boundary">.*?order 1</)
    expect(view).toContain('class="huge-boundary"')
  })

  it('outlines the entry that breaks the invariant and writes its message beside it, at the violating step only', () => {
    const trace = loadTrace(partialThp)
    const html = htmlReport({ title: 't', traces: [trace], scenario: findScenario(trace.scenario) })
    const view = violatingView(html)
    // gfn 0x3 (row 1): the SLAT leaf over it maps pfn 0x3, the host PTE pfn 0x4.
    expect(view).toMatch(/<rect class="violating-row" data-row="1"/)
    expect(view).toMatch(/<g class="cell violating" data-lane="SLAT" data-rows="0 1"/)
    expect(view).toMatch(/<g class="cell violating" data-lane="host page table" data-rows="1" data-pfns="4"/)
    expect(view).toMatch(/<g class="frame violating" data-pfn="3"/)
    // The message beside it, word-wrapped over several lines of the note.
    const note = /<g class="violation-note">(.*?)<\/g>/.exec(view)![1].replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim()
    expect(note).toBe(`no-stale-mapping: ${trace.violation.message}`)
    // Every other step's picture has no highlight.
    const others = html.split('<div class="step-view').filter((v) => !v.startsWith(' violating'))
    for (const v of others) expect(v).not.toMatch(/class="(cell|frame) violating"|violating-row|violation-note/)
  })

  it('a scenario that declares no layout still gets a picture, from its arrays', () => {
    const map = inferredMemoryMap({ host: [0, 1], slat: [1, 0], seq: 3, threads: [{ pc: 'x' }], odd: [1, 2, 3] })
    expect(map).toEqual({ rows: 2, lanes: [{ kind: 'value', label: 'host', field: 'host' }, { kind: 'value', label: 'slat', field: 'slat' }] })
    const { memoryMap: _omit, ...bare } = faultInvalidate
    const s = defineScenario({ ...bare, name: 'bare' })
    const trace = { ...loadTrace(join(corpus, 'fault-invalidate-no-retry-no-stale-mapping.json')), scenario: 'bare', modelHash: instantiate(s, 'no-retry').hash }
    const html = htmlReport({ title: 't', traces: [trace], scenario: s })
    expect(violatingView(html)).toMatch(/data-lane="slat" data-rows="0"[^>]*>/)
    // A review file's variant of a built-in keeps its base's layout.
    const v = variant(faultInvalidate, { name: 'x', description: 'x' })
    expect(v.base.memoryMap).toBe(faultInvalidate.memoryMap)
  })
})

describe('the report page', () => {
  it('is self-contained: no stylesheet, script or image fetched from anywhere', () => {
    const trace = loadTrace(partialThp)
    const html = htmlReport({ title: 't', traces: [trace], scenario: findScenario(trace.scenario) })
    expect(html).not.toMatch(/<link\b|<script [^>]*src=|<img\b|@import|url\(/i)
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:\/\//)
    // A link per step, #step-N for the first trace.
    for (let n = 0; n <= trace.steps.length; n++) expect(html).toContain(`id="step-${n}"`)
  })

  it('`mapcheck report` writes the matrix and a section per violation; unexpected violations are marked; bad input writes nothing', () => {
    const dir = tempDir()
    const r = mapcheck(['report', 'fault-invalidate', '--out', 'r.html'], dir)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('report: r.html (2 variants, 1 violation trace)\n')
    const html = readFileSync(join(dir, 'r.html'), 'utf8')
    expect(html).toMatch(/<th>no-retry<\/th><td class="violated"><a href="#step-0" data-trace="0">VIOLATED \(12 steps\)<\/a>/)
    expect(html.match(/<section class="trace"/g)).toHaveLength(1)
    expect(readdirSync(dir)).toEqual(['r.html'])
    const flipped = mapcheck(['report', join(import.meta.dirname, '../fixtures/expect/flipped.ts'), '--variant', 'no-retry', '--out', 'f.html'], dir)
    expect(flipped.status).toBe(1)
    expect(readFileSync(join(dir, 'f.html'), 'utf8')).toMatch(/<td class="new"><a [^>]*>NEW: VIOLATED \(12 steps\)/)
    const bad = mapcheck(['report', 'fault-invalidate', '--variant', 'nope', '--out', 'bad.html'], dir)
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/^mapcheck: unknown variant 'nope'/)
    expect(existsSync(join(dir, 'bad.html'))).toBe(false)
  })

  it('`check --html` writes the page of that run; `show --format html` that of a trace', () => {
    const dir = tempDir()
    const r = mapcheck(['check', 'fault-invalidate', '--variant', 'no-retry', '--html', 'c.html'], dir)
    expect(r.status).toBe(1)
    const html = readFileSync(join(dir, 'c.html'), 'utf8')
    expect(html).toContain('<h2>no-retry: no-stale-mapping</h2>')
    expect(html).toContain('data-violation-step="12"')
    const shown = mapcheck(['show', partialThp, '--format', 'html'], dir)
    expect(shown.status).toBe(0)
    expect(shown.stdout).toContain('data-violation-step="28"')
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })
})
