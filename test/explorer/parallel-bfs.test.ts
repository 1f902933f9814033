/**
 * The parallel BFS (explorer/parallel-bfs.ts) against the sequential one:
 * with 2 workers expanding every level (`parallelFrom: 0`), each search
 * must give the sequential BFS's result, counts, coverage, metrics and the
 * very traces (the levels are laid out by the least edge, as the
 * sequential BFS discovers them), whether it runs to the end, stops at a
 * first violation, or goes on for all of them.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { scenarioRecipe } from '../../cli/model-recipe.js'
import { runCheck } from '../../cli/run.js'
import { openScenarios } from '../../cli/scenarios.js'
import { isModelError, type ModelError } from '../../explorer/errors.js'
import { explore } from '../../explorer/explore.js'
import type { ExploreOptions } from '../../explorer/options.js'
import type { Exploration } from '../../explorer/result.js'
import { catalog, instantiate, type Instance } from '../../invariants/scenarios.js'
import { mapcheck, tempDir } from '../support/cli.js'

/** Everything a search reports but its timing, memory and the parallel note. */
function comparable(e: Exploration<unknown>) {
  // How the search ran (threads, and why POR did not: the parallel BFS does not combine with it) is not what it found.
  const { seconds, statesPerSecond, storeBytes, parallel, por, ...stats } = e.stats
  return {
    verdict: e.verdict,
    incomplete: e.incomplete,
    violations: e.violations.map((v) => ({ invariant: v.invariant, message: v.message, init: v.init, actions: JSON.stringify(v.actions), outcome: v.outcome, witnesses: JSON.stringify(v.witnesses) })),
    stats,
    metrics: e.metrics,
    metricsAll: e.metricsAll,
    coverage: e.coverage,
    outcomes: e.outcomes,
  }
}

/** The sequential BFS without partial-order reduction (which the parallel BFS does not combine with) against 2 workers. */
function both(inst: Instance, options: ExploreOptions = {}) {
  const one = explore(inst.model, { ...options, workers: 1, por: false })
  const two = explore(inst.model, { ...options, workers: 2, recipe: scenarioRecipe(inst), parallelFrom: 0 })
  return { one, two }
}

describe('parallel BFS: every built-in scenario and variant at its defaults', () => {
  for (const s of catalog) {
    it(`${s.name}: 2 workers give the sequential BFS's result, first violation and all violations`, () => {
      for (const v of s.variants) {
        const inst = instantiate(s, v.name, {})
        for (const allViolations of [false, true]) {
          const { one, two } = both(inst, { allViolations })
          const label = `${s.name}/${v.name}${allViolations ? ' --all-violations' : ''}`
          expect(comparable(two), label).toEqual(comparable(one))
          expect(one.stats.parallel, label).toBeUndefined()
          // The workers did expand levels (every level with a parent, unless the initial state is the violation).
          if (one.stats.maxDepth > 0) expect(two.stats.parallel!.levels, label).toBeGreaterThan(0)
          expect(two.stats.parallel!.workers).toBe(2)
        }
      }
    })
  }
})

describe('parallel BFS: the reference model', () => {
  // SPIN's counts for fault_invalidate.pml (shared/reference/README.md; bench/run.ts checks them against SPIN).
  const spin: [string, Record<string, number>, number, number][] = [
    ['2,2,1,1,1', { P: 2, V: 2, I: 1, K: 1, F: 1 }, 4_731, 8_692],
    ['4,2,1,1,1', { P: 4, V: 2, I: 1, K: 1, F: 1 }, 24_633, 46_696],
    ['2,2,1,2,2', { P: 2, V: 2, I: 1, K: 2, F: 2 }, 241_809, 484_612],
  ]
  for (const [size, params, states, transitions] of spin) {
    it(`${size}: SPIN's counts with 2 workers, symmetry off; the same as 1 worker with it on`, () => {
      const inst = instantiate('fault-invalidate', 'retry', params)
      const off = both(inst, { symmetry: false })
      expect(off.two.stats.states).toBe(states)
      expect(off.two.stats.transitions).toBe(transitions)
      expect(comparable(off.two)).toEqual(comparable(off.one))
      expect(off.two.stats.parallel!.levels).toBeGreaterThan(10)
      const on = both(inst)
      expect(comparable(on.two)).toEqual(comparable(on.one))
      expect(on.two.stats.symmetry!.orbitStates).toBe(states)
    })
  }

  it('no-retry: the same violation, trace and counts as 1 worker', () => {
    const inst = instantiate('fault-invalidate', 'no-retry', { P: 4, V: 2, I: 1, K: 2, F: 2 })
    const { one, two } = both(inst, { symmetry: false })
    expect(one.verdict).toBe('violation')
    expect(comparable(two)).toEqual(comparable(one))
    expect(two.stats.parallel!.replayed).toBeGreaterThan(0)
  })
})

describe('parallel BFS: bounds', () => {
  const inst = instantiate('fault-invalidate', 'retry', { P: 2, V: 2, I: 1, K: 2, F: 2 })

  it('--max-states stops where the sequential BFS stops, with its counts', () => {
    for (const maxStates of [1, 5_000, 50_000]) {
      const { one, two } = both(inst, { symmetry: false, maxStates })
      expect(one.verdict).toBe('incomplete')
      expect(comparable(two)).toEqual(comparable(one))
    }
  })

  it('--max-depth cuts at the same depth, with the same counts', () => {
    const { one, two } = both(inst, { symmetry: false, maxDepth: 20 })
    expect(one.incomplete).toBe('max-depth 20 reached')
    expect(comparable(two)).toEqual(comparable(one))
  })

  it('an interrupt during a parallel level ends the search incomplete, its states counted', () => {
    const two = explore(inst.model, { symmetry: false, workers: 2, recipe: scenarioRecipe(inst), parallelFrom: 0, stop: (n) => (n > 20_000 ? 'interrupted' : null) })
    expect(two.verdict).toBe('incomplete')
    expect(two.incomplete).toBe('interrupted')
    expect(two.stats.states).toBeGreaterThan(20_000)
    expect(two.stats.states).toBeLessThan(241_809)
  })
})

describe('parallel BFS: when it is sequential after all', () => {
  const inst = instantiate('fault-invalidate', 'retry', {})

  it('without a recipe (a Model object of the API), and says so', () => {
    const r = explore(inst.model, { workers: 2 })
    expect(r.stats.parallel).toEqual({ workers: 1, levels: 0, replayed: 0, sequential: expect.stringMatching(/^no model recipe/) })
    expect(comparable(r)).toEqual(comparable(explore(inst.model, {})))
  })

  it('with the fingerprint store, and says so', () => {
    const r = explore(inst.model, { workers: 2, recipe: scenarioRecipe(inst), store: 'fingerprint' })
    expect(r.stats.parallel!.sequential).toMatch(/fingerprint store is sequential-only/)
  })

  it('while no level reaches parallelFrom states (no thread is started for small searches)', () => {
    const r = explore(inst.model, { workers: 2, recipe: scenarioRecipe(inst) })
    expect(r.stats.parallel!.levels).toBe(0)
    expect(r.stats.parallel!.sequential).toMatch(/no level reached 10,000 states/)
  })

  it('a scenario object made in code has no recipe', () => {
    const own = { ...catalog[0] }
    expect(scenarioRecipe(instantiate(own, undefined, {}))).toBeUndefined()
    expect(scenarioRecipe(inst)).toBeDefined()
  })

  it('bad --workers values are bad input', () => {
    for (const workers of [0, -1, 1.5, Number.NaN]) expect(() => explore(inst.model, { workers })).toThrow(/--workers .*: expected a whole number/)
  })
})

describe('parallel BFS: a review file', () => {
  it("a worker rebuilds the review file's scenario: the same verdict and trace as 1 worker", async () => {
    const [scenario] = await openScenarios(join(import.meta.dirname, '../../examples/drop-read-retry.ts'))
    const one = runCheck({ scenario, explore: { workers: 1 }, save: false })
    const two = runCheck({ scenario, explore: { workers: 2, parallelFrom: 0 }, save: false })
    expect(one.exploration.verdict).toBe('violation')
    expect(two.exploration.stats.parallel!.levels).toBeGreaterThan(0)
    expect(comparable(two.exploration)).toEqual(comparable(one.exploration))
    expect(two.traces.map((t) => t.trace.steps)).toEqual(one.traces.map((t) => t.trace.steps))
  })
})

describe('parallel BFS: the command line', () => {
  it('bad --workers values: one line on stderr, exit 2', () => {
    const dir = tempDir()
    for (const w of ['0', '-2', 'two', '1.5', '']) {
      const r = mapcheck(['check', 'fault-invalidate', `--workers=${w}`], dir)
      expect(r.status, w).toBe(2)
      expect(r.stderr.trim().split('\n'), w).toEqual([`mapcheck: --workers ${w}: expected an integer >= 1`])
    }
    const r = mapcheck(['compare', 'fault-invalidate', '--workers', '0'], dir)
    expect(r.status).toBe(2)
  })

  it('check --workers 2 on the reference model (4,2,1,2,1, symmetry off): the counts of --workers 1 and SPIN, its levels expanded by the workers', () => {
    const dir = tempDir()
    const args = ['check', 'fault-invalidate', '--param', 'P=4', '--param', 'K=2', '--no-symmetry', '--json']
    const [one, two] = ['1', '2'].map((w) => mapcheck([...args, '--workers', w], dir))
    expect(one.status).toBe(0)
    expect(two.status).toBe(0)
    const [a, b] = [one, two].map((r) => JSON.parse(r.stdout) as { stats: { states: number; transitions: number; maxDepth: number; parallel?: { workers: number; levels: number } } })
    expect(b.stats.states).toBe(177_898)
    expect(b.stats.transitions).toBe(348_758)
    expect([b.stats.states, b.stats.transitions, b.stats.maxDepth]).toEqual([a.stats.states, a.stats.transitions, a.stats.maxDepth])
    expect(a.stats.parallel).toBeUndefined()
    expect(b.stats.parallel!.workers).toBe(2)
    expect(b.stats.parallel!.levels).toBeGreaterThan(0)
  })
})

describe('parallel BFS: a step that throws in a worker', () => {
  it('is a model error with the trace to a state it throws in, at the depth the sequential BFS meets it', async () => {
    const module = new URL('../fixtures/parallel/throwing-model.ts', import.meta.url).href
    const { throwingModel } = (await import(module)) as typeof import('../fixtures/parallel/throwing-model.js')
    const recipe = { module, export: 'throwingModel', args: { atSum: 12 } }
    const model = throwingModel(recipe.args)
    const caught = (f: () => unknown): ModelError => {
      try {
        f()
      } catch (e) {
        expect(isModelError(e), String(e)).toBe(true)
        return e as ModelError
      }
      throw new Error('no model error')
    }
    const one = caught(() => explore(model, { symmetry: false }))
    const two = caught(() => explore(model, { symmetry: false, workers: 2, recipe, parallelFrom: 0 }))
    expect(one.message).toMatch(/^the step broke at cell sum 12$/)
    expect(two.message).toMatch(/^the step broke at cell sum \d+$/)
    expect(two.trace!.steps.length).toBe(one.trace!.steps.length)
    expect(one.trace!.steps.length).toBeGreaterThan(0)
    // The pool that met the error is ended, not kept: the next search starts a fresh one and runs.
    const inst = instantiate('fault-invalidate', 'retry', { P: 2, V: 2, I: 1, K: 2, F: 2 })
    const { one: a, two: b } = both(inst, { symmetry: false })
    expect(comparable(b)).toEqual(comparable(a))
  })
})

describe('parallel BFS: levels that go wide, narrow and wide again', () => {
  it('the workers use the table the calling thread grew while it expanded a narrow level alone', async () => {
    const module = new URL('../fixtures/parallel/hourglass-model.ts', import.meta.url).href
    const { hourglassModel } = (await import(module)) as typeof import('../fixtures/parallel/hourglass-model.js')
    const recipe = { module, export: 'hourglassModel', args: { fan: 1_500, fan2: 600 } }
    const model = hourglassModel(recipe.args)
    const one = explore(model, { symmetry: false, por: false })
    const two = explore(model, { symmetry: false, workers: 2, recipe, parallelFrom: 1_000 })
    // 1 + 1,500 + 8 + 8 x 600 + 25 (the rest of the last level steps back to the 8, or to itself)
    expect(one.stats.states).toBe(1 + 1_500 + 8 + 4_800 + 25)
    expect(two.stats.parallel!.levels).toBe(2)
    expect(comparable(two)).toEqual(comparable(one))
  })
})
