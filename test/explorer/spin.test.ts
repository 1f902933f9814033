/**
 * mapcheck against SPIN on the reference model (shared/reference/): for each
 * parameter set of the reference README's table but the two largest, SPIN's
 * `pan -DNOREDUCE` state and transition counts are generated here, on this
 * machine, and compared with bfs() on fault-invalidate/retry. SPIN's
 * `transitions` counts one more than the edges (README: "transitions = edges + 1").
 * The buggy variant: SPIN (breadth-first pan, so its trail is shortest) and
 * mapcheck must both find the stale mapping, with paths of the same length
 * and the same sequence of fault/invalidator steps.
 */
import { execFile, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { instantiate } from '../../invariants/scenarios.js'

const run = promisify(execFile)
const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')
const pml = resolve(repoRoot, '../shared/reference/fault_invalidate.pml')

const onPath = (cmd: string, arg: string): boolean => {
  const r = spawnSync(cmd, [arg], { stdio: 'ignore' })
  return !r.error
}
const missing = [
  ...(onPath('spin', '-V') ? [] : ['spin']),
  ...(onPath('gcc', '--version') ? [] : ['gcc']),
  ...(existsSync(pml) ? [] : [pml]),
]
const skipReason = missing.length ? ` (skipped: ${missing.join(', ')} not found)` : ''
const itSpin = missing.length ? it.skip : it

/** The README table's parameter sets (P,V,I,K,F), without 4,2,1,2,2 and 4,3,1,2,1. */
const SIZES: readonly (readonly [number, number, number, number, number])[] = [
  [2, 2, 1, 1, 1],
  [4, 2, 1, 1, 1],
  [4, 2, 1, 2, 1],
  [3, 2, 2, 1, 1],
  [2, 2, 1, 2, 2],
]
const defines = ([P, V, I, K, F]: readonly number[]) => [`-DP=${P}`, `-DV=${V}`, `-DI=${I}`, `-DK=${K}`, `-DF=${F}`]
const params = ([P, V, I, K, F]: readonly number[]) => ({ P, V, I, K, F })

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** Generates, compiles and runs pan in a fresh temp dir (holding a copy of the model, so the trail lands there too). */
async function pan(size: readonly number[], opts: { buggy?: boolean; bfs?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mapcheck-spin-'))
  dirs.push(dir)
  copyFileSync(pml, join(dir, 'fault_invalidate.pml'))
  const spinDefs = [...(opts.buggy ? ['-DBUGGY'] : []), ...defines(size)]
  await run('spin', [...spinDefs, '-a', 'fault_invalidate.pml'], { cwd: dir })
  await run('gcc', ['-O2', '-DSAFETY', '-DNOREDUCE', ...(opts.bfs ? ['-DBFS'] : []), '-o', 'pan', 'pan.c'], { cwd: dir })
  // pan exits non-zero on some errors; its report is what counts.
  const out = await run('./pan', ['-m1000000'], { cwd: dir, maxBuffer: 1 << 24 }).catch(
    (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
  )
  const num = (re: RegExp): number => {
    const m = re.exec(out.stdout)
    if (!m) throw new Error(`pan output lacks ${re}:\n${out.stdout}`)
    return Number(m[1])
  }
  return {
    dir,
    spinDefs,
    stdout: out.stdout,
    states: num(/(\d+) states, stored/),
    transitions: num(/(\d+) transitions/),
    errors: num(/errors: (\d+)/),
  }
}

/** The process names of the steps of a trail (`spin -t -p`), one per step, the Monitor's left out. */
function trailSteps(text: string): string[] {
  const steps = new Map<number, string>()
  for (const line of text.split('\n')) {
    if (/trail ends after/.test(line)) break
    const m = /^\s*(\d+):\s+proc\s+\d+\s+\((\w+):\d+\)/.exec(line)
    if (m && !steps.has(Number(m[1]))) steps.set(Number(m[1]), m[2])
  }
  return [...steps.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, p]) => p)
    .filter((p) => p !== 'Monitor')
}

describe(`SPIN -DNOREDUCE and mapcheck bfs count the same state space${skipReason}`, () => {
  // Start every SPIN run at once (pan.c compiles dominate); each test awaits its own.
  const runs = missing.length ? [] : SIZES.map((s) => pan(s))
  runs.forEach((p) => p.catch(() => {})) // reported by the test that awaits it
  SIZES.forEach((size, n) => {
    itSpin(`P,V,I,K,F = ${size.join(',')}`, async () => {
      const spin = await runs[n]
      expect(spin.errors, spin.stdout).toBe(0)
      const model = instantiate('fault-invalidate', 'retry', params(size)).model
      const r = bfs(model, { symmetry: false, por: false })
      expect(r.verdict).toBe('ok')
      expect(r.stats.states).toBe(spin.states)
      expect(r.stats.transitions).toBe(spin.transitions - 1)
      // With symmetry over the fault threads: the orbit sizes of the stored states add up to SPIN's count.
      const reduced = bfs(model)
      expect(reduced.stats.states).toBeLessThan(spin.states)
      expect(reduced.stats.symmetry?.orbitStates).toBe(spin.states)
    })
  })
})

describe(`SPIN -DBUGGY and mapcheck no-retry agree on the counterexample${skipReason}`, () => {
  itSpin('P,V,I,K,F = 2,2,1,1,1', async () => {
    const size = [2, 2, 1, 1, 1] as const
    const spin = await pan(size, { buggy: true, bfs: true })
    expect(spin.errors, spin.stdout).toBe(1)
    expect(spin.stdout).toMatch(/assertion violated/)
    const trail = await run('spin', [...spin.spinDefs, '-t', '-p', 'fault_invalidate.pml'], { cwd: spin.dir, maxBuffer: 1 << 24 })
    const steps = trailSteps(trail.stdout)
    expect(steps.length, trail.stdout).toBeGreaterThan(0)

    const model = instantiate('fault-invalidate', 'no-retry', params(size)).model
    const r = bfs(model, { symmetry: false, por: false })
    expect(bfs(model).violations.map((v) => v.actions.length), 'as long with symmetry').toEqual(r.violations.map((v) => v.actions.length))
    expect(r.verdict).toBe('violation')
    expect(r.violations.map((v) => v.invariant)).toEqual(['no-stale-mapping'])
    const v = r.violations[0]
    expect(v.actions.length, 'shortest path length as SPIN breadth-first trail').toBe(steps.length)
    // Same sequence of fault / invalidator steps (which thread of a kind may differ).
    let s = model.initialStates()[v.init]
    const kinds: string[] = []
    for (const a of v.actions) {
      const after = model.next(s, a)
      kinds.push(model.describe(a, s, after).thread.startsWith('fault') ? 'Fault' : 'Inval')
      s = after
    }
    expect(kinds).toEqual(steps)
  })
})
