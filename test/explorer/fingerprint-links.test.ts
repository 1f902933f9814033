/**
 * The fingerprint store's parent links on disk (the default) in a real
 * search: the reference model's seeded bug gets the same trace rebuilt from
 * disk links as from memory links and from the full store; the link file is
 * open while the search runs and gone when it ends, whether it ends
 * exhaustively, cut short, or by a step that throws (whose trace is also
 * rebuilt from disk); a temp dir that cannot be written keeps the links in
 * memory and says so.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { ModelError } from '../../explorer/errors.js'
import type { Model } from '../../explorer/model.js'
import type { ExploreOptions } from '../../explorer/options.js'
import { instantiate } from '../../invariants/scenarios.js'
import { tempDir } from '../support/cli.js'
import { canSeeFds, namedLinkFiles, openLinkFiles } from '../support/link-files.js'

afterAll(() => {
  expect(namedLinkFiles()).toEqual([])
  if (canSeeFds) expect(openLinkFiles()).toEqual([])
})

const LINK_PAGE = 65_536

/** The reference model at 4,2,1,2,1 without symmetry: 177,898 states, so two pages of links go to disk. */
const retry = () => instantiate('fault-invalidate', 'retry', { P: 4, V: 2, I: 1, K: 2, F: 1 }).model
const PLAIN: ExploreOptions = { store: 'fingerprint', symmetry: false, por: false }

/** Link files this process has open each time `stop` is asked past `from` states (the first sighting only). */
function watching(from: number, stopAt = Infinity): { stop: (states: number) => string | null; seen: () => number | null } {
  let seen: number | null = null
  return {
    stop: (states) => {
      if (states >= from && seen === null) seen = openLinkFiles().length
      return states >= stopAt ? 'interrupted' : null
    },
    seen: () => seen,
  }
}

/** `model` whose steps throw once, in the expansion after the first `after` (the error's trace is rebuilt by re-executing the steps, which then succeed). */
function throwingAfter<S, A>(model: Model<S, A>, after: number): Model<S, A> {
  const packed = model.packed!
  let expanded = 0
  const throwing = Object.create(packed) as typeof packed
  throwing.expand = (emit) => {
    if (++expanded === after + 1) throw new Error('step failed')
    return packed.expand(emit)
  }
  return { ...model, packed: throwing }
}

describe('fingerprint store, parent links on disk', () => {
  it('the reference model\'s seeded bug (4,2,1,2,2, all violations): the trace rebuilt from disk links equals those from memory links and the full store', () => {
    const model = instantiate('fault-invalidate', 'no-retry', { P: 4, V: 2, I: 1, K: 2, F: 2 }).model
    const disk = bfs(model, { store: 'fingerprint', allViolations: true })
    const memory = bfs(model, { store: 'fingerprint', links: 'memory', allViolations: true })
    const full = bfs(model, { allViolations: true })
    expect(disk.verdict).toBe('violation')
    expect(disk.violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
    expect(disk.violations).toEqual(memory.violations)
    expect(disk.violations).toEqual(full.violations)
    expect(disk.stats.states).toBe(full.stats.states)
    // Every full page of links but the last went to disk, and the trace's states are in the first page.
    expect(disk.stats.diskBytes).toBe(Math.floor((disk.stats.states - 1) / LINK_PAGE) * LINK_PAGE * 4)
    expect(disk.stats.diskBytes).toBeGreaterThan(0)
    expect(memory.stats.diskBytes).toBe(0)
    expect(memory.stats.storeBytes - disk.stats.storeBytes).toBe(disk.stats.diskBytes)
    expect(disk.stats.linksFallback).toBeUndefined()
  })

  it.runIf(canSeeFds)('the link file is open during the search and gone after it: exhaustive, cut short by a bound or an interrupt', () => {
    const model = retry()
    const whole = watching(100_000)
    const r = bfs(model, { ...PLAIN, stop: whole.stop })
    expect(r.verdict).toBe('ok')
    expect(r.stats.states).toBeGreaterThan(2 * LINK_PAGE)
    expect(whole.seen()).toBe(1)
    expect(openLinkFiles()).toEqual([])

    const cut = watching(100_000, 120_000)
    const c = bfs(model, { ...PLAIN, stop: cut.stop })
    expect(c.incomplete).toBe('interrupted')
    expect(cut.seen()).toBe(1)
    expect(openLinkFiles()).toEqual([])

    const bounded = bfs(model, { ...PLAIN, maxStates: 150_000 })
    expect(bounded.incomplete).toMatch(/^max-states 150000/)
    expect(bounded.stats.diskBytes).toBeGreaterThan(0)
    expect(openLinkFiles()).toEqual([])
    expect(namedLinkFiles()).toEqual([])
  })

  it('a step that throws midway: the error\'s trace is rebuilt from disk links (as from memory links), and the file is gone', () => {
    const thrown = (links: 'disk' | 'memory'): ModelError => {
      try {
        bfs(throwingAfter(retry(), 100_000), { ...PLAIN, links })
      } catch (e) {
        if (e instanceof ModelError) return e
        throw e
      }
      throw new Error('no ModelError')
    }
    const fromDisk = thrown('disk')
    if (canSeeFds) expect(openLinkFiles()).toEqual([])
    const fromMemory = thrown('memory')
    expect(fromDisk.message).toBe('step failed')
    expect(fromDisk.trace).toEqual(fromMemory.trace)
    // State 100,000 is deep in the search: a long trace, from pages on disk.
    expect(fromDisk.trace!.steps.length).toBeGreaterThan(20)
  })

  it('a temp dir that cannot be written: the links stay in memory, the stats say why, the verdict and traces are the same', () => {
    const notDir = join(tempDir(), 'a-file')
    writeFileSync(notDir, '')
    const model = instantiate('fault-invalidate', 'no-retry', { P: 4, V: 2, I: 1, K: 2, F: 2 }).model
    const saved = process.env.TMPDIR
    process.env.TMPDIR = notDir
    let r
    try {
      r = bfs(model, { store: 'fingerprint', allViolations: true })
    } finally {
      if (saved === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = saved
    }
    expect(r.stats.linksFallback).toMatch(/^kept in memory: ENOTDIR: not a directory, open '.*a-file\/mapcheck-links-/)
    expect(r.stats.diskBytes).toBe(0)
    expect(r.violations).toEqual(bfs(model, { store: 'fingerprint', links: 'memory', allViolations: true }).violations)
  })
})
