import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { dfs } from '../../explorer/dfs.js'
import { randomSearch } from '../../explorer/random.js'
import { instantiate } from '../../invariants/scenarios.js'
import { raceDiagram, DIAGRAM_WIDTH, wrap } from '../../traces/diagram.js'
import { minimizeSteps } from '../../traces/minimize.js'
import { recordTrace } from '../../traces/record.js'
import { openTrace, replaySteps, StepNotEnabled } from '../../traces/replay.js'
import { BadInput } from '../../explorer/errors.js'

const buggy = () => instantiate('fault-invalidate', 'no-retry', { P: 2 })

describe('recordTrace and replay', () => {
  it('a BFS trace replays to the same violation at its last step', () => {
    const inst = buggy()
    const x = bfs(inst.model)
    const trace = recordTrace(inst, x, x.violations[0])
    expect(trace.steps.length).toBe(x.violations[0].actions.length)
    const r = replaySteps(inst.model, trace.init, trace.steps, 'no-stale-mapping')
    expect(r.reproduced).toBe(true)
    expect(r.violations[0]).toMatchObject({ invariant: 'no-stale-mapping', step: trace.steps.length })
  })

  it('a trace cut before its last step runs to its end without the violation', () => {
    const inst = buggy()
    const x = bfs(inst.model)
    const trace = recordTrace(inst, x, x.violations[0])
    const r = replaySteps(inst.model, trace.init, trace.steps.slice(0, -1), 'no-stale-mapping')
    expect(r.reproduced).toBe(false)
    expect(r.violations).toEqual([])
  })

  it('a step that is not enabled names the step, the thread and where it is', () => {
    const inst = buggy()
    const x = bfs(inst.model)
    const steps = recordTrace(inst, x, x.violations[0]).steps.slice()
    steps.splice(1, 1) // drop fault0's mmap_read_lock: its hmm_range_fault is then not where it is
    expect(() => replaySteps(inst.model, 0, steps)).toThrow(StepNotEnabled)
    expect(() => replaySteps(inst.model, 0, steps)).toThrow(/^step 2 is not enabled: the trace expects fault0 to take hmm_range_fault, but fault0 is at mmap_read_lock/)
  })

  it('the same trace on the correct variant is not the same model', () => {
    const inst = buggy()
    const x = bfs(inst.model)
    const trace = recordTrace(inst, x, x.violations[0])
    expect(() => openTrace({ ...trace, variant: 'retry' })).toThrow(BadInput)
    expect(() => openTrace({ ...trace, modelHash: '0123456789abcdef' })).toThrow(/recorded on model 0123456789abcdef/)
  })
})

describe('minimize', () => {
  it('brings DFS and random traces down to the BFS shortest length, still reproducing', () => {
    const inst = instantiate('fault-invalidate', 'no-retry', { P: 3, K: 2 })
    const shortest = bfs(inst.model).violations[0].actions.length
    for (const x of [dfs(inst.model), randomSearch(inst.model, { seed: 7 })]) {
      const v = x.violations[0]
      expect(v.invariant).toBe('no-stale-mapping')
      const trace = recordTrace(inst, x, v)
      expect(trace.steps.length).toBe(shortest)
      expect(replaySteps(inst.model, 0, trace.steps, v.invariant).reproduced).toBe(true)
    }
  })

  it('never returns a trace that does not reproduce', () => {
    const inst = buggy()
    const x = dfs(inst.model)
    const s0 = inst.model.initialStates()[0]
    let s = s0
    const steps = x.violations[0].actions.map((a) => {
      const after = inst.model.next(s, a)
      const l = inst.model.describe(a, s, after)
      s = after
      return { thread: l.thread, label: l.label, choice: l.choice }
    })
    const min = minimizeSteps(inst.model, 0, steps, 'no-stale-mapping')
    expect(min.length).toBeLessThanOrEqual(steps.length)
    expect(replaySteps(inst.model, 0, min, 'no-stale-mapping').reproduced).toBe(true)
    expect(() => minimizeSteps(inst.model, 0, steps.slice(0, 3), 'no-stale-mapping')).toThrow(/does not break/)
  })
})

describe('race diagram', () => {
  it('shows the invalidation between hmm_range_fault and the SLAT write, within 80 columns', () => {
    const inst = buggy()
    const x = bfs(inst.model)
    const trace = recordTrace(inst, x, x.violations[0])
    const r = replaySteps(inst.model, 0, trace.steps, 'no-stale-mapping')
    const text = raceDiagram({ title: 'no-retry', steps: r.steps, threadNames: inst.model.threadNames, violation: r.violations[0] })
    const lines = text.split('\n')
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(DIAGRAM_WIDTH)
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l))
    const fault = at(/hmm_range_fault/)
    const zap = at(/zap_pte/)
    const seq = at(/mmu_interval_set_seq/)
    const write = at(/map_gpa_pages/)
    expect(fault).toBeGreaterThan(0)
    expect(zap).toBeGreaterThan(fault)
    expect(seq).toBeGreaterThan(zap)
    expect(write).toBeGreaterThan(seq)
    // The fault's column is left of the invalidator's: its steps start at column 4, the invalidator's further right.
    expect(lines[zap].indexOf('zap_pte')).toBeGreaterThan(lines[fault].indexOf('hmm_range_fault'))
    expect(text).toMatch(/slat\[\d\]: 0 -> 1/)
    expect(text).toMatch(/VIOLATED no-stale-mapping after step 12/)
  })

  it('falls back to one line per step when many threads act, still within 80 columns', () => {
    const inst = instantiate('fault-invalidate', 'retry', { V: 4, I: 3, P: 1 })
    const x = randomSearch(inst.model, { seed: 3, runs: 1, maxDepth: 40 })
    expect(x.violations).toEqual([])
    // Take a long random walk and render it.
    let s = inst.model.initialStates()[0]
    const steps = []
    for (let i = 0; i < 40; i++) {
      const as = inst.model.actions(s)
      if (as.length === 0) break
      const a = as[(i * 7) % as.length]
      const after = inst.model.next(s, a)
      steps.push({ index: i + 1, label: inst.model.describe(a, s, after), before: s, after })
      s = after
    }
    const text = raceDiagram({ title: 'many', steps, threadNames: inst.model.threadNames, violation: null })
    for (const l of text.split('\n')) expect(l.length).toBeLessThanOrEqual(DIAGRAM_WIDTH)
    expect(text).toMatch(/^1\s+(fault|inval)\d \S/m)
  })

  it('wraps words and breaks words longer than a line', () => {
    expect(wrap('aaa bbb ccc', 7)).toEqual(['aaa bbb', 'ccc'])
    expect(wrap('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij'])
  })
})
