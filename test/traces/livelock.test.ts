/**
 * A seeded livelock (test/fixtures/livelock/retry-toy.ts: a fault retrying
 * on -EAGAIN while an error path leaked the invalidation count) found,
 * recorded as a lasso, replayed and drawn; none reported where the
 * invalidation ends; and the lasso's replay fails when the cycle is broken.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { NO_LIVELOCK } from '../../explorer/livelock.js'
import * as api from '../../index.js'
import { runCheck } from '../../cli/run.js'
import { renderTrace } from '../../traces/render.js'
import { replaySteps, replayTrace } from '../../traces/replay.js'
import { instantiate, kvmMmuNotifier } from '../../invariants/scenarios.js'
import type { Trace } from '../../traces/format.js'
import { cliInProcess } from '../support/cli-in-process.js'
import retryToy from '../fixtures/livelock/retry-toy.js'

const check = (variant: string, explore: object, params: Record<string, number> = {}) =>
  runCheck({ scenario: retryToy, variant, params, explore, save: false })

describe('no-livelock on the retry toy', () => {
  it('finds the fault retrying forever behind a leaked invalidation count, as a lasso that replays and draws', () => {
    for (const mode of ['bfs', 'dfs'] as const) {
      const { exploration, traces } = check('leaks-count', { livelock: true, mode })
      expect(exploration.verdict).toBe('violation')
      expect(traces.map((t) => t.trace.violation.invariant)).toEqual([NO_LIVELOCK])
      const trace = traces[0].trace
      const start = trace.cycleStart!
      // The cycle is the fault's retry loop alone; the invalidator's last step (the leak) is in the prefix.
      const cycle = trace.steps.slice(start)
      expect(cycle.map((s) => s.label).sort()).toEqual(['check_retry', 'read_seq'])
      expect(trace.steps.slice(0, start).map((s) => s.label)).toContain('invalidate_range_start')
      const r = replayTrace(trace, retryToy)
      expect(r.reproduced).toBe(true)
      expect(r.cycle).toEqual({ from: start + 1, to: trace.steps.length })
      const text = renderTrace(trace, retryToy)
      expect(text).toContain(`steps ${start + 1}–${trace.steps.length} repeat forever`)
      expect(text).toContain(`VIOLATED ${NO_LIVELOCK}`)
    }
  })

  it('is off by default: the same variant is ok without --livelock', async () => {
    expect(check('leaks-count', {}).exploration.verdict).toBe('ok')
    // The public API: the same option.
    expect((await api.check(retryToy, { variant: 'leaks-count' })).result).toBe('ok')
    expect((await api.check(retryToy, { variant: 'leaks-count', livelock: true })).invariant).toBe(NO_LIVELOCK)
  })

  it('reports none where the invalidation ends (the fault spins only while the invalidator, enabled, is not run)', () => {
    for (const faults of [1, 2]) {
      const { exploration } = check('ends', { livelock: true }, { faults })
      expect(exploration.violations).toEqual([])
      expect(exploration.verdict).toBe('ok')
    }
  })

  it('finds it with two faults too, the same lasso with symmetry reduction on and off', () => {
    const on = check('leaks-count', { livelock: true }, { faults: 2 })
    const off = check('leaks-count', { livelock: true, symmetry: false }, { faults: 2 })
    expect(on.exploration.stats.symmetry).toBeDefined()
    expect(on.exploration.stats.states).toBeLessThan(off.exploration.stats.states)
    expect(on.traces[0].trace.violation.invariant).toBe(NO_LIVELOCK)
    expect(on.traces[0].trace.steps).toEqual(off.traces[0].trace.steps)
    expect(on.traces[0].trace.cycleStart).toBe(off.traces[0].trace.cycleStart)
    for (const symmetry of [true, false]) expect(check('ends', { livelock: true, symmetry }, { faults: 2 }).exploration.verdict).toBe('ok')
  })

  it('does not reproduce a lasso whose cycle does not close, whose cycle is unfair, or that takes a progress step', () => {
    const trace = check('leaks-count', { livelock: true }).traces[0].trace
    const start = trace.cycleStart!
    // One step short: the cycle ends elsewhere than it started.
    expect(replayTrace({ ...trace, steps: trace.steps.slice(0, -1) }, retryToy).reproduced).toBe(false)
    // The cycle moved one step earlier: it now includes the leak, which does not repeat.
    expect(replayTrace({ ...trace, cycleStart: start - 1 }, retryToy).reproduced).toBe(false)
    expect(() => replayTrace({ ...trace, cycleStart: trace.steps.length }, retryToy)).toThrow(/no cycle starts there/)
    // In `ends` the same steps are no livelock: the invalidator, enabled all along the cycle, never runs in it.
    const ends = replaySteps(instantiate(retryToy, 'ends', {}).model, trace.init, trace.steps, NO_LIVELOCK, undefined, start)
    expect(ends.steps).toHaveLength(trace.steps.length)
    expect(ends.reproduced).toBe(false)
    // With every step a progress step, the same cycle is progress, not a livelock.
    const model = instantiate(retryToy, 'leaks-count', {}).model
    expect(replaySteps(model, trace.init, trace.steps, NO_LIVELOCK, undefined, start).reproduced).toBe(true)
    expect(replaySteps({ ...model, progress: () => true }, trace.init, trace.steps, NO_LIVELOCK, undefined, start).reproduced).toBe(false)
  })

  it('check --livelock, replay and show from the command line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'livelock-'))
    const out = join(dir, 'lasso.json')
    const file = 'test/fixtures/livelock/retry-toy.ts'
    const found = await cliInProcess(['check', file, '--variant', 'leaks-count', '--livelock', '--out', out])
    expect(found.status).toBe(1)
    expect(found.stdout).toContain(`VIOLATED ${NO_LIVELOCK}`)
    const trace = JSON.parse(readFileSync(out, 'utf8')) as Trace
    expect(trace.cycleStart).toBeGreaterThan(0)
    const replay = await cliInProcess(['replay', out])
    expect(replay.status).toBe(1)
    expect(replay.stdout).toMatch(/^reproduced: no-livelock/)
    const mail = await cliInProcess(['show', out, '--format', 'mail'])
    expect(mail.stdout).toContain('--livelock')
    expect(mail.stdout).toContain('repeat forever')
    const show = await cliInProcess(['show', out])
    expect(show.status).toBe(0)
    expect(show.stdout).toContain(`steps ${trace.cycleStart! + 1}–${trace.steps.length} repeat forever`)
    writeFileSync(out, JSON.stringify({ ...trace, steps: trace.steps.slice(0, -1) }))
    const broken = await cliInProcess(['replay', out])
    expect(broken.stdout).toMatch(/^not reproduced: no-livelock/)
    expect((await cliInProcess(['check', file, '--variant', 'ends', '--livelock'])).status).toBe(0)
    const random = await cliInProcess(['check', file, '--livelock', '--mode', 'random'])
    expect(random.status).toBe(2)
    expect(random.stderr.trim().split('\n')).toHaveLength(1)
  })
})

describe('no-livelock on kvm-mmu-notifier (progress: kvm_tdp_mmu_map, kvm_mmu_invalidate_end)', () => {
  // The 2021 core bug: KVM's invalidate_range_start left unpaired after another subscriber's -EAGAIN, so the vCPU's fault retries forever.
  const params = { pages: 1, oom_reaps: 1, subscribers: 2 }
  it('finds the vCPU retrying forever in hlist-no-end-after-eagain, and none upstream at the same bounds', () => {
    const bug = runCheck({ scenario: kvmMmuNotifier, variant: 'hlist-no-end-after-eagain', params, explore: { livelock: true, allViolations: true }, save: false })
    const lasso = bug.traces.find((t) => t.trace.violation.invariant === NO_LIVELOCK)!.trace
    const r = replayTrace(lasso)
    expect(r.reproduced).toBe(true)
    expect(lasso.steps.slice(lasso.cycleStart).every((s) => s.thread.startsWith('vcpu'))).toBe(true)
    const upstream = runCheck({ scenario: kvmMmuNotifier, variant: 'upstream', params, explore: { livelock: true }, save: false })
    expect(upstream.exploration.verdict).toBe('ok')
    expect(upstream.exploration.stats.livelock!.states).toBeGreaterThan(0)
  })
})
