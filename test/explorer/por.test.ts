/**
 * Partial-order reduction: on random small programs (threads of local and
 * shared steps, loops, guards that can block forever) the reduced BFS
 * reports exactly the invariants and deadlocks a brute force of the full
 * graph finds, with traces that replay; it reduces where steps are local,
 * by the count the theory gives; a property that reads a thread's locals
 * makes it search again unreduced; an interleaving bug is still found.
 */
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { bfs, POR_SEED } from '../../explorer/bfs.js'

const seedDefaults = { ...POR_SEED }
import type { Invariant, Model } from '../../explorer/model.js'
import { compile } from '../../model/compile.js'
import { process, type Program, type State, type Step } from '../../model/process.js'
import { array, u8, type ValueOf } from '../../model/schema.js'
import { bruteForce, expectedViolations } from '../support/brute-force.js'
import { replayViolation } from '../support/replay.js'

type AnyModel = Model<any, any>

// ---- random programs -------------------------------------------------------

const G = 3
const globals = { g: array(G, u8(2)) }
type W = ValueOf<typeof globals>
interface L {
  x: number
  y: number
}

/** One step of a random program: what it does, and where it goes. */
type Op =
  | { kind: 'local'; k: number; choices: number } // me.x = (me.x + k + choice) % 3
  | { kind: 'copy' } // me.y = me.x ? 1 : 0
  | { kind: 'write'; i: number; k: number } // w.g[i] = (me.x + k) % 3
  | { kind: 'read'; i: number } // me.x = w.g[i]
  | { kind: 'wait-global'; i: number; v: number } // guard w.g[i] === v
  | { kind: 'wait-local'; v: number } // guard me.x === v (may block forever: a deadlock)
type Instr = { op: Op; back: number | null } // goto: the next label, or back to label `back` when me.y === 1

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('local' as const), k: fc.integer({ min: 0, max: 2 }), choices: fc.integer({ min: 1, max: 2 }) }),
  fc.constant({ kind: 'copy' as const }),
  fc.record({ kind: fc.constant('write' as const), i: fc.integer({ min: 0, max: G - 1 }), k: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('read' as const), i: fc.integer({ min: 0, max: G - 1 }) }),
  fc.record({ kind: fc.constant('wait-global' as const), i: fc.integer({ min: 0, max: G - 1 }), v: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('wait-local' as const), v: fc.integer({ min: 0, max: 2 }) }),
)
const threadArb = fc.array(fc.record({ op: opArb, back: fc.option(fc.nat(), { nil: null }) }), { minLength: 1, maxLength: 4 })
const invArb = fc.record({ i: fc.integer({ min: 0, max: G - 1 }), v: fc.integer({ min: 1, max: 2 }), j: fc.integer({ min: 0, max: G - 1 }), u: fc.integer({ min: 0, max: 2 }) })
const programArb = fc.record({
  threads: fc.array(threadArb, { minLength: 2, maxLength: 3 }),
  invariants: fc.array(invArb, { minLength: 1, maxLength: 3 }),
})

function randomProcess(t: number, code: readonly Instr[]) {
  const steps: Record<string, Step<W, L>> = {}
  code.forEach(({ op, back }, pc) => {
    const next = (me: L): string => (back !== null && me.y === 1 ? `s${back % (pc + 1)}` : pc + 1 < code.length ? `s${pc + 1}` : 'done')
    switch (op.kind) {
      case 'local':
        steps[`s${pc}`] = {
          choices: () => op.choices,
          run(_w, me, c) {
            me.x = (me.x + op.k + c) % 3
            return next(me)
          },
        }
        break
      case 'copy':
        steps[`s${pc}`] = {
          run(_w, me) {
            me.y = me.x === 0 ? 0 : 1
            return next(me)
          },
        }
        break
      case 'write':
        steps[`s${pc}`] = {
          run(w, me) {
            w.g[op.i] = (me.x + op.k) % 3
            return next(me)
          },
        }
        break
      case 'read':
        steps[`s${pc}`] = {
          run(w, me) {
            me.x = w.g[op.i]
            return next(me)
          },
        }
        break
      case 'wait-global':
        steps[`s${pc}`] = { guard: (w) => w.g[op.i] === op.v, run: (_w, me) => next(me) }
        break
      case 'wait-local':
        steps[`s${pc}`] = { guard: (_w, me) => me.x === op.v, run: (_w, me) => next(me) }
        break
    }
  })
  return process<W, L>({
    name: `p${t}`,
    locals: { x: u8(2), y: u8(1) },
    start: 's0',
    steps,
    gotos: code.map((_, pc) => `s${pc}`),
  })
}

function randomProgram(p: { threads: Instr[][]; invariants: { i: number; v: number; j: number; u: number }[] }): AnyModel {
  const program: Program<typeof globals> = {
    globals,
    threads: p.threads.map((code, t) => ({ name: `t${t}`, process: randomProcess(t, code) })),
  }
  const invariants: Invariant<State<W>>[] = p.invariants.map(({ i, v, j, u }, n) => ({
    id: `inv${n}`,
    description: `not (g[${i}] = ${v} and g[${j}] = ${u})`,
    check: (s) => (s.g[i] === v && s.g[j] === u ? `g[${i}] = ${v} and g[${j}] = ${u}` : null),
  }))
  // A metric per pair of globals: its range over the states reached says which pairs of values were.
  const metrics = [0, 1, 2].map((i) => ({ id: `g${i}g${(i + 1) % G}`, description: 'a pair of globals', unit: 'count' as const, measure: (s: State<W>) => s.g[i] * 3 + s.g[(i + 1) % G] }))
  return compile('random', program, { invariants, metrics })
}

const ids = (r: ReturnType<typeof bfs>): string[] => r.violations.map((v) => v.invariant).sort()

describe('random programs of local and shared steps, against a brute force of the full graph', () => {
  afterEach(() => Object.assign(POR_SEED, seedDefaults))
  for (const seeded of [true, false]) {
  it(`the reduced search reports every invariant violation and deadlock the full one does, with traces that replay (${seeded ? 'footprints seen first' : 'footprints learned by restarting'})`, () => {
    if (!seeded) Object.assign(POR_SEED, { states: 0, walks: 0 })
    let reducedSomewhere = 0
    let restarted = 0
    fc.assert(
      fc.property(programArb, (p) => {
        const model = randomProgram(p)
        const full = bruteForce(model)
        const on = bfs(model, { allViolations: true, por: true })
        if (on.stats.por && 'restarts' in on.stats.por && on.stats.por.restarts > 0) restarted++
        const off = bfs(model, { allViolations: true, por: false })
        expect(off.stats.states).toBe(full.states)
        expect(ids(off)).toEqual(expectedViolations(full))
        expect(ids(on)).toEqual(expectedViolations(full))
        expect(on.incomplete).toBeNull()
        expect(on.stats.states).toBeLessThanOrEqual(off.stats.states)
        for (const v of on.violations) replayViolation(model, v)
        // What properties see is reached alike: each (pair of) global value(s), mid-run and at the end.
        expect(on.metricsAll).toEqual(off.metricsAll)
        expect(on.metrics).toEqual(off.metrics)
        if (on.stats.states < off.stats.states) reducedSomewhere++
      }),
      { seed: 1313, numRuns: 300 },
    )
    // The property above would hold trivially if nothing were ever reduced, or (unseeded) never relearned.
    expect(reducedSomewhere).toBeGreaterThan(50)
    if (!seeded) expect(restarted).toBeGreaterThan(50)
  })
  }
})

describe('the conditions, one by one', () => {
  it('cycle proviso: a thread spinning in local steps forever does not hide the other threads', () => {
    // t0: x = 1, y = 1, then x = x and back to y = 1, forever: a loop of local steps only.
    const spin: Instr[] = [
      { op: { kind: 'local', k: 1, choices: 1 }, back: null },
      { op: { kind: 'copy' }, back: null },
      { op: { kind: 'local', k: 0, choices: 1 }, back: 1 },
    ]
    const writer: Instr[] = [{ op: { kind: 'write', i: 0, k: 2 }, back: null }]
    const model = randomProgram({ threads: [spin, writer], invariants: [{ i: 0, v: 2, j: 0, u: 2 }] })
    const on = bfs(model, { allViolations: true, por: true })
    expect(ids(on)).toEqual(expectedViolations(bruteForce(model)))
    expect(ids(on)).toContain('inv0')
    expect(on.stats.por).toMatchObject({ reduced: expect.any(Number) })
  })

  it('C1: a thread blocked on a local condition another thread cannot change is a deadlock found with the reduction on', () => {
    const stuck: Instr[] = [{ op: { kind: 'wait-local', v: 1 }, back: null }]
    const other: Instr[] = [
      { op: { kind: 'local', k: 1, choices: 2 }, back: null },
      { op: { kind: 'write', i: 1, k: 0 }, back: null },
    ]
    const model = randomProgram({ threads: [stuck, other], invariants: [{ i: 0, v: 1, j: 0, u: 1 }] })
    const on = bfs(model, { allViolations: true, por: true })
    expect(on.stats.por).toMatchObject({ reduced: expect.any(Number) })
    expect(ids(on)).toEqual(['no-deadlock'])
    for (const v of on.violations) replayViolation(model, v)
  })
})

describe('by default', () => {
  it('a reduced search that finds a violation runs again without the reduction, so that its traces are shortest', () => {
    // t0 runs two local steps, t1 writes g[0] = 1: forced, the reduction runs t0 first and the trace is 3 steps.
    const t0: Instr[] = [
      { op: { kind: 'local', k: 1, choices: 1 }, back: null },
      { op: { kind: 'local', k: 1, choices: 1 }, back: null },
    ]
    const t1: Instr[] = [{ op: { kind: 'write', i: 0, k: 1 }, back: null }]
    const model = randomProgram({ threads: [t0, t1], invariants: [{ i: 0, v: 1, j: 0, u: 1 }] })
    const forced = bfs(model, { por: true })
    const plain = bfs(model)
    expect(forced.violations.map((v) => v.actions.length)).toEqual([3])
    expect(plain.violations.map((v) => v.actions.length)).toEqual([bruteForce(model).violationDepth.get('inv0')])
    expect(plain.violations[0].actions).toHaveLength(1)
    expect(plain.stats.por).toMatchObject({ off: expect.stringContaining('shortest traces') })
  })
})

describe('visibility and the amount reduced', () => {
  it('C2: an invariant that reads a thread\'s locals makes the search run again unreduced, and its violation is found', () => {
    // Broken only while t0 has x = 1 and t1 has written g[0] = 1: a reduction that ran t0's two
    // local steps first (x = 1, then x = 2) before t1 would never see it.
    const t0: Instr[] = [
      { op: { kind: 'local', k: 1, choices: 1 }, back: null },
      { op: { kind: 'local', k: 1, choices: 1 }, back: null },
    ]
    const t1: Instr[] = [{ op: { kind: 'write', i: 0, k: 1 }, back: null }]
    const base = randomProgram({ threads: [t0, t1], invariants: [{ i: 0, v: 2, j: 0, u: 2 }] })
    const local: Invariant<State<W>> = { id: 'x-one-g-one', description: 't0.x = 1 and g[0] = 1', check: (s) => (s.threads[0].x === 1 && s.g[0] === 1 ? 'both 1' : null) }
    const model = compile('visibility', { globals, threads: [t0, t1].map((code, t) => ({ name: `t${t}`, process: randomProcess(t, code) })) }, [local])
    const on = bfs(model, { allViolations: true })
    expect(ids(on)).toEqual(expectedViolations(bruteForce(model)))
    expect(ids(on)).toContain('x-one-g-one')
    expect(on.stats.por).toMatchObject({ off: expect.stringContaining("reads a thread's own cells") })
    // The same program with an invariant over the globals only is reduced: t0's two steps alone, then t1 alone.
    expect(bfs(base, { allViolations: true }).stats.por).toMatchObject({ reduced: 2, full: 0 })
  })

  it('N threads of k local steps: the full graph has (k + 1)^N states, the reduced one a single run of N k + 1', () => {
    for (const [n, k] of [
      [2, 2],
      [3, 2],
      [3, 3],
    ]) {
      const code: Instr[] = Array.from({ length: k }, () => ({ op: { kind: 'local', k: 1, choices: 1 }, back: null }))
      const model = randomProgram({ threads: Array.from({ length: n }, () => code), invariants: [{ i: 0, v: 1, j: 0, u: 1 }] })
      const off = bfs(model, { por: false })
      const on = bfs(model)
      expect(off.stats.states).toBe((k + 1) ** n)
      expect(on.stats.states).toBe(n * k + 1)
      expect(on.verdict).toBe('ok')
      // Every state of the run but the last thread's own is expanded by one local step.
      expect(on.stats.por).toMatchObject({ reduced: (n - 1) * k, full: 0 })
    }
  })
})
