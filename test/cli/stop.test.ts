/**
 * The CLI's reasons to end a search early (cli/stop.ts): the memory bound,
 * measured every 1024 states, and the interrupt flag, asked every state.
 * Here with a fake memory probe that grows with the states stored.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { BadInput } from '../../explorer/errors.js'
import { instantiate } from '../../invariants/scenarios.js'
import { defaultMaxMemory, INTERRUPTED, searchStop, setInterruptSource, sizeOption, type MemoryProbe } from '../../cli/stop.js'
import { totalmem } from 'node:os'

const MiB = 2 ** 20

/** 100 MiB, plus 1 KiB per state stored; the JS heap far from its limit. */
function growing(): MemoryProbe & { states: number; measured: number } {
  const probe = {
    states: 0,
    measured: 0,
    rss: () => (probe.measured++, 100 * MiB + probe.states * 1024),
    heap: () => ({ used: 10 * MiB, limit: 4096 * MiB }),
  }
  return probe
}

afterEach(() => setInterruptSource(() => false))

describe('searchStop', () => {
  it('ends a search once the memory reaches the bound, measuring every 1024 states', () => {
    const model = instantiate('fault-invalidate', 'retry', { P: 4 }).model
    // Symmetry off: the state count is the unreduced one this test sizes its bound by.
    const full = bfs(model, { symmetry: false, por: false })
    const probe = growing()
    // Reached at 100 MiB + 10,000 KiB: some 10,000 states, fewer than the full space.
    const limit = 100 * MiB + 10_000 * 1024
    const stop = searchStop(limit, probe)
    const r = bfs(model, { symmetry: false, por: false, stop: (states) => ((probe.states = states), stop(states)) })
    expect(full.stats.states).toBeGreaterThan(20_000)
    expect(r.verdict).toBe('incomplete')
    expect(r.incomplete).toMatch(/^memory bound 109\.8 MiB reached at [\d,]+ states \(resident 1\d\d\.\d MiB\)$/)
    const at = Number(/reached at ([\d,]+) states/.exec(r.incomplete!)![1].replace(/,/g, ''))
    expect(at).toBe(r.stats.states)
    expect(at).toBeGreaterThanOrEqual(10_000)
    // Measured once per 1024 states asked: overshoot of at most one period's successors.
    expect(probe.measured).toBeLessThanOrEqual(Math.ceil(r.stats.states / 1024) + 1)
    expect(r.stats.states).toBeLessThan(full.stats.states)
  })

  it('ends a search when the JS heap nears its limit, whatever the bound', () => {
    const probe = { rss: () => MiB, heap: () => ({ used: 900 * MiB, limit: 1000 * MiB }) }
    const stop = searchStop(2 ** 40, probe)
    const reasons = Array.from({ length: 1024 }, (_, i) => stop(i + 1))
    expect(reasons.slice(0, 1023).every((r) => r === null)).toBe(true)
    expect(reasons[1023]).toBe('memory bound reached at 1,024 states (JS heap 900 MiB of its 1000 MiB limit)')
  })

  it('measures also every 65,536 states stored, however rarely asked (the parallel BFS asks a few times a second)', () => {
    const probe = growing()
    const stop = searchStop(2 ** 40, probe)
    expect(stop(1_000)).toBeNull()
    expect(probe.measured).toBe(0)
    expect(stop(70_000)).toBeNull()
    expect(probe.measured).toBe(1)
    expect(stop(100_000)).toBeNull()
    expect(probe.measured).toBe(1)
  })

  it('stays silent below the bound', () => {
    const stop = searchStop(2 ** 40, growing())
    for (let i = 1; i <= 5000; i++) expect(stop(i)).toBeNull()
  })

  it('says interrupted at the very next state once the flag is set', () => {
    let flag = false
    setInterruptSource(() => flag)
    const stop = searchStop(2 ** 40, growing())
    expect(stop(1)).toBeNull()
    flag = true
    expect(stop(2)).toBe(INTERRUPTED)
  })
})

describe('--max-memory sizes', () => {
  it('reads bytes and binary units', () => {
    expect(sizeOption('1048576')).toBe(MiB)
    expect(sizeOption('512M')).toBe(512 * MiB)
    expect(sizeOption('4G')).toBe(4 * 2 ** 30)
    expect(sizeOption('1.5GiB')).toBe(1.5 * 2 ** 30)
    expect(sizeOption('64k')).toBe(64 * 1024)
    expect(sizeOption(undefined)).toBeUndefined()
  })

  it('refuses anything else in one line', () => {
    for (const bad of ['', '0', 'lots', '-1G', '4X', '1e9', '99999999999T']) {
      expect(() => sizeOption(bad), bad).toThrow(BadInput)
      expect(() => sizeOption(bad), bad).toThrow(/^--max-memory .*: expected a size such as 512M or 4G$/)
    }
  })

  it('defaults to half the machine (or of a smaller container limit)', () => {
    expect(defaultMaxMemory()).toBeLessThanOrEqual(totalmem() / 2)
    expect(defaultMaxMemory()).toBeGreaterThan(0)
  })
})
