/**
 * check's --store, --no-symmetry and --no-por: a fingerprint run finds the same
 * violation, writes a trace that replays, and reports its collision
 * estimate; symmetry is reported and can be turned off (then the counts
 * are the unreduced ones); a fingerprint store with DFS is bad input.
 */
import { describe, expect, it } from 'vitest'
import { mapcheck, tempDir } from '../support/cli.js'

describe('check --store and --no-symmetry', () => {
  it('--store fingerprint: same violation, a trace that replays, the collision estimate in text and JSON', () => {
    const dir = tempDir()
    const r = mapcheck(['check', 'fault-invalidate', '--variant', 'no-retry', '--store', 'fingerprint', '--out', 'fp.json'], dir)
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/VIOLATED no-stale-mapping/)
    expect(r.stdout).toMatch(/fingerprints: probability a collision hid a state ~ \d\.\de-\d+/)
    expect(mapcheck(['replay', 'fp.json'], dir).status).toBe(1)
    const j = JSON.parse(mapcheck(['check', 'fault-invalidate', '--store', 'fingerprint', '--json'], dir).stdout)
    expect(j.result).toBe('ok')
    expect(j.stats.collisionProbability).toBeGreaterThan(0)
    expect(j.stats.collisionProbability).toBeLessThan(1e-9)
    const full = JSON.parse(mapcheck(['check', 'fault-invalidate', '--json'], dir).stdout)
    expect(full.stats.states).toBe(j.stats.states)
    expect(full.stats.collisionProbability).toBeUndefined()
  })

  it('symmetry: on by default where declared, reported; --no-symmetry gives the unreduced counts', () => {
    const dir = tempDir()
    const on = JSON.parse(mapcheck(['check', 'fault-invalidate', '--param', 'V=3', '--json'], dir).stdout)
    const off = JSON.parse(mapcheck(['check', 'fault-invalidate', '--param', 'V=3', '--no-symmetry', '--json'], dir).stdout)
    expect(on.result).toBe('ok')
    expect(off.result).toBe('ok')
    expect(on.stats.symmetry).toEqual({ renamings: 6, orbitStates: off.stats.states })
    expect(on.stats.states).toBeLessThan(off.stats.states)
    expect(off.stats.symmetry).toBeUndefined()
    const text = mapcheck(['check', 'fault-invalidate', '--param', 'V=3'], dir)
    expect(text.stdout).toMatch(/symmetry: 6 renamings, the states stand for [\d,]+/)
  })

  it('--no-por: partial-order reduction is off, and the counts are those of a run where it did not pay', () => {
    const dir = tempDir()
    // POR's adaptive default is tried by the sequential BFS (--workers 1); the parallel BFS does not combine with it.
    const on = JSON.parse(mapcheck(['check', 'mshv-mmio', '--workers', '1', '--json'], dir).stdout)
    const off = JSON.parse(mapcheck(['check', 'mshv-mmio', '--workers', '1', '--no-por', '--json'], dir).stdout)
    // By default it ran only far enough to see it would not pay, and says so.
    expect(on.stats.por.off).toMatch(/by one thread's step alone/)
    expect(off.stats.por).toBeUndefined()
    expect(on.stats.states).toBe(off.stats.states)
    expect(on.result).toBe(off.result)
  })

  it('bad input: --store fingerprint with DFS, an unknown store', () => {
    const dir = tempDir()
    const dfs = mapcheck(['check', 'fault-invalidate', '--store', 'fingerprint', '--mode', 'dfs'], dir)
    expect(dfs.status).toBe(2)
    expect(dfs.stderr.trim().split('\n')).toHaveLength(1)
    expect(dfs.stderr).toMatch(/--store fingerprint.*BFS/)
    const bad = mapcheck(['check', 'fault-invalidate', '--store', 'bitstate'], dir)
    expect(bad.status).toBe(2)
  })
})
