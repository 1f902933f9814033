/**
 * Symmetry reduction: with it on and off, the same invariants are broken
 * with BFS traces of the same length (that replay on the object backend);
 * the orbit sizes of the stored states add up exactly to the unreduced
 * count (brute force, or the unreduced search) on the reference model, a
 * toy program and mshv-movable with two VPs; a model that tells its
 * "interchangeable" threads apart is refused, never silently reduced.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { dfs } from '../../explorer/dfs.js'
import { ModelError } from '../../explorer/errors.js'
import type { Invariant, Model } from '../../explorer/model.js'
import { catalog, instantiate } from '../../invariants/scenarios.js'
import { compile } from '../../model/compile.js'
import { process, type Program, type State } from '../../model/process.js'
import { threadId, threadRef, u8, type ValueOf } from '../../model/schema.js'
import { bruteForce, expectedViolations } from '../support/brute-force.js'
import { replayViolation } from '../support/replay.js'

type AnyModel = Model<any, any>

/** On vs off: same broken invariants, same shortest-trace lengths, exact orbit sum; reduced traces replay. */
function onVsOff(model: AnyModel, opts: { store?: 'full' | 'fingerprint' } = {}): { off: number; on: number } {
  const off = bfs(model, { ...opts, symmetry: false, por: false, allViolations: true })
  const on = bfs(model, { ...opts, allViolations: true })
  expect(on.verdict).toBe(off.verdict)
  expect(on.incomplete).toBeNull()
  expect(on.violations.map((v) => [v.invariant, v.actions.length])).toEqual(off.violations.map((v) => [v.invariant, v.actions.length]))
  for (const v of on.violations) replayViolation(model, v)
  expect(on.stats.symmetry?.orbitStates, 'sum of orbit sizes = unreduced states').toBe(off.stats.states)
  expect(on.stats.states).toBeLessThan(off.stats.states)
  // The first violation a plain BFS stops at: same invariant, same length.
  const first = [bfs(model, { ...opts, symmetry: false, por: false }), bfs(model, opts)].map((r) => r.violations.map((v) => [v.invariant, v.actions.length]))
  expect(first[1]).toEqual(first[0])
  return { off: off.stats.states, on: on.stats.states }
}

describe('reference model: symmetry over the fault threads (and the invalidators)', () => {
  const sizes = [
    { P: 2, V: 2, I: 1, K: 1, F: 1 },
    { P: 1, V: 3, I: 1, K: 1, F: 2 },
    { P: 2, V: 2, I: 2, K: 1, F: 1 },
    { P: 4, V: 2, I: 1, K: 2, F: 1 },
  ]
  for (const p of sizes) {
    for (const variant of ['retry', 'no-retry']) {
      it(`${variant} ${Object.values(p).join(',')}: on = off, orbit sum = brute-force count`, () => {
        const model = instantiate('fault-invalidate', variant, p).model
        const { off, on } = onVsOff(model)
        if (off < 200_000) expect(off).toBe(bruteForce(model).states)
        // renamings: V! * I!
        const fact = (n: number): number => (n <= 1 ? 1 : n * fact(n - 1))
        expect(bfs(model, { maxStates: 10 }).stats.symmetry?.renamings).toBe(fact(p.V) * fact(p.I))
        expect(on).toBeGreaterThanOrEqual(off / (fact(p.V) * fact(p.I)))
      })
    }
  }

  it('fingerprint store and DFS with symmetry: the same verdicts and orbit sums', () => {
    const model = instantiate('fault-invalidate', 'no-retry', { P: 2, V: 3, I: 1, K: 1, F: 1 }).model
    onVsOff(model, { store: 'fingerprint' })
    const d = [dfs(model, { symmetry: false, por: false, allViolations: true }), dfs(model, { allViolations: true })]
    expect(d[1].violations.map((v) => v.invariant)).toEqual(d[0].violations.map((v) => v.invariant))
    expect(d[1].stats.symmetry?.orbitStates).toBe(d[0].stats.states)
    for (const v of d[1].violations) replayViolation(model, v)
  })
})

// ---- a toy program: N workers take a mutex (owner = tid + 1), bump a counter, and record who went last ----

const globals = { owner: threadRef(4), count: u8(3), last: threadRef(4) }
type W = ValueOf<typeof globals>
const locals = { tid: threadId(3), done: u8(1) }

function worker(buggy: boolean) {
  return process<W, { tid: number; done: number }>({
    name: 'worker',
    locals,
    start: 'lock',
    steps: {
      lock: {
        guard: (w) => w.owner === 0,
        run(w, me) {
          w.owner = me.tid + 1
          return 'bump'
        },
      },
      bump: {
        run(w, me) {
          w.count++
          w.last = me.tid + 1
          // The bug: the second worker to bump, whoever it is, finishes without its unlock.
          if (buggy && w.count === 2) {
            me.done = 1
            return 'end'
          }
          return 'unlock'
        },
      },
      unlock: {
        run(w, me) {
          w.owner = 0
          me.done = 1
          return 'end'
        },
      },
    },
    ends: ['end'],
  })
}

// Both read a thread through a thread-id field (the packed view has the locals, not the pc).
const toyInvariants: Invariant<State<W>>[] = [
  {
    id: 'owner-not-finished',
    description: 'no finished worker owns the mutex',
    check: (s) => (s.owner !== 0 && s.threads[s.owner - 1].done === 1 ? `w${s.owner - 1} finished holding the mutex` : null),
  },
  {
    id: 'last-owns-or-finished',
    description: 'the last worker to bump still owns the mutex or has finished',
    check: (s) => (s.last === 0 || s.owner === s.last || s.threads[s.last - 1].done === 1 ? null : `w${s.last - 1} bumped last but neither owns the mutex nor has finished`),
  },
]

function toy(n: number, buggy: boolean, symmetric = true, invariants = toyInvariants): AnyModel {
  const p = worker(buggy)
  const program: Program<typeof globals> = {
    globals,
    threads: Array.from({ length: n }, (_, t) => ({ name: `w${t}`, process: p, locals: { tid: t } })),
    symmetric: symmetric ? [Array.from({ length: n }, (_, t) => `w${t}`)] : [],
  }
  return compile(`toy-${n}${buggy ? '-buggy' : ''}`, program, invariants)
}

describe('a toy program with thread-id fields, against a brute force', () => {
  for (const n of [2, 3]) {
    for (const buggy of [false, true]) {
      it(`${n} workers${buggy ? ' (buggy)' : ''}: orbit sum = brute force, same violations, renamed owner and last`, () => {
        const model = toy(n, buggy)
        const b = bruteForce(model)
        const on = bfs(model, { allViolations: true })
        expect(on.stats.symmetry?.orbitStates).toBe(b.states)
        expect(on.stats.states).toBeLessThan(b.states)
        expect(on.violations.map((v) => v.invariant).sort()).toEqual(expectedViolations(b))
        expect(expectedViolations(b).length > 0).toBe(buggy)
        for (const v of on.violations) {
          const want = v.invariant === 'no-deadlock' ? b.deadlockDepth : b.violationDepth.get(v.invariant)
          expect(v.actions.length).toBe(want)
          replayViolation(model, v)
        }
      })
    }
  }

  it('without the thread-id declarations the renamed states are wrong, and the engine says so', () => {
    // `last` as a plain u8: renaming the workers leaves it naming the old thread, so the initial state
    // is still fixed (0) but reached states are renamed inconsistently. The orbit sum then disagrees with the truth.
    const plain = { ...globals, owner: u8(4), last: u8(4) }
    const p = worker(false) as any
    const program: Program<typeof plain> = {
      globals: plain,
      threads: Array.from({ length: 3 }, (_, t) => ({ name: `w${t}`, process: p, locals: { tid: t } })),
      symmetric: [['w0', 'w1', 'w2']],
    }
    // tid is still declared threadId, so the start is alike; the invariants read `owner` and `last`, which are
    // no longer renamed: checking them on every renaming catches the asymmetry.
    const model = compile('toy-undeclared', program, toyInvariants as any)
    // The reduced search then reports a violation the real runs do not have; rebuilding its trace finds no real
    // run for it, and says why.
    expect(bfs(model, { symmetry: false, por: false }).verdict).toBe('ok')
    expect(() => bfs(model)).toThrow(/threads declared interchangeable are not/)
  })
})

describe('models that are not symmetric are refused', () => {
  it('an invariant that names one thread is not symmetric: a model error, not a missed violation', () => {
    const asym: Invariant<State<W>> = { id: 'w0-never-first', description: 'w0 never takes the mutex', check: (s) => (s.owner === 1 ? 'w0 holds the mutex' : null) }
    expect(toy(3, false).packed?.symmetry?.count).toBe(5)
    expect(() => bfs(toy(3, false, true, [asym]))).toThrow(ModelError)
    expect(() => bfs(toy(3, false, true, [asym]))).toThrow(/w0-never-first is not symmetric/)
    // Without symmetry it is an ordinary violation.
    expect(bfs(toy(3, false, false, [asym])).violations.map((v) => v.invariant)).toEqual(['w0-never-first'])
    expect(bfs(toy(3, false, true, [asym]), { symmetry: false, por: false }).violations.map((v) => v.invariant)).toEqual(['w0-never-first'])
  })

  it('an invariant that reads one thread\'s locals is caught too, whatever the thread-id fields hold', () => {
    const asym: Invariant<State<W>> = {
      id: 'w0-finishes-last',
      description: 'w0 does not finish before w1',
      check: (s) => (s.threads[0].done === 1 && s.threads[1].done === 0 ? 'w0 finished first' : null),
    }
    expect(() => bfs(toy(2, false, true, [asym]))).toThrow(/w0-finishes-last is not symmetric/)
    expect(bfs(toy(2, false, false, [asym])).violations.map((v) => v.invariant)).toEqual(['w0-finishes-last'])
  })

  it('an invariant that singles out w0 by a thread id, reading a thread only for the others, is refused', () => {
    // Reads no thread while w0 (or nobody) bumped last; under a renaming `last` names another worker, whose block it then
    // reads: the engine shows it the renamed ids first and the whole image once it reads a thread.
    const w0Special: Invariant<State<W>> = {
      id: 'only-w0-finishes-last',
      description: 'a worker that bumped last and finished is w0',
      check: (s) => (s.last === 0 || s.last === 1 ? null : s.threads[s.last - 1].done === 1 ? `w${s.last - 1} bumped last and finished` : null),
    }
    expect(() => bfs(toy(2, false, true, [w0Special]))).toThrow(/only-w0-finishes-last is not symmetric/)
    expect(bfs(toy(2, false, false, [w0Special])).violations.map((v) => v.invariant)).toEqual(['only-w0-finishes-last'])
  })

  it('an invariant that reads no thread is evaluated only under the renamings that change a thread id it could read', () => {
    // Symmetric, reads the globals only: on a state whose owner and last are 0 no renaming can change its answer.
    let calls = 0
    const globalOnly: Invariant<State<W>> = {
      id: 'owner-in-range',
      description: 'owner names a worker or none',
      check: (s) => {
        calls++
        return s.owner <= 3 ? null : 'owner out of range'
      },
    }
    const model = toy(3, false, true, [globalOnly])
    const r = bfs(model, { allViolations: true })
    expect(r.verdict).toBe('ok')
    const renamings = model.packed!.symmetry!.count
    // Each new state: once as itself, once in checkNext's own pass, and under a renaming only where needed.
    expect(calls).toBeGreaterThan(2 * r.stats.states)
    expect(calls).toBeLessThan((2 + renamings) * r.stats.states)
  })

  it('threads that start differently, or run different processes, cannot be declared interchangeable', () => {
    const p = worker(false)
    const differentStart: Program<typeof globals> = {
      globals,
      threads: [
        { name: 'w0', process: p, locals: { tid: 0, done: 1 } },
        { name: 'w1', process: p, locals: { tid: 1 } },
      ],
      symmetric: [['w0', 'w1']],
    }
    expect(() => compile('bad', differentStart, toyInvariants)).toThrow(/do not start alike.*done/)
    const differentProcess: Program<typeof globals> = { ...differentStart, threads: [{ name: 'w0', process: p, locals: { tid: 0 } }, { name: 'w1', process: worker(true), locals: { tid: 1 } }] }
    expect(() => compile('bad', differentProcess, toyInvariants)).toThrow(/same process/)
    expect(() => compile('bad', { ...differentProcess, symmetric: [['w0', 'w9']] }, toyInvariants)).toThrow(/no thread w9/)
  })
})

describe('the catalog: where symmetry is declared, and mshv-movable with two VPs', () => {
  it('at the defaults only the reference model has interchangeable threads (mshv-movable has one VP): elsewhere on = off by construction', () => {
    for (const s of catalog) {
      for (const v of s.variants) {
        const model = instantiate(s.name, v.name, {}).model
        expect(model.packed?.symmetry !== undefined, `${s.name}/${v.name}`).toBe(s.name === 'fault-invalidate')
      }
    }
  })

  const movable = catalog.find((s) => s.name === 'mshv-movable')!
  for (const v of movable.variants) {
    it(`mshv-movable/${v.name} vps=2 pages=2: on = off, orbit sum exact`, () => {
      const model = instantiate('mshv-movable', v.name, { vps: 2, pages: 2 }).model
      expect(model.packed?.symmetry?.count).toBe(1)
      onVsOff(model)
    })
  }

  // Host events of one kind run one process: two zaps (or two migrations, ...) are interchangeable too.
  for (const v of movable.variants) {
    it(`mshv-movable/${v.name} zaps=2 pages=1: the two zaps are one group, on = off, orbit sum exact`, () => {
      const model = instantiate('mshv-movable', v.name, { zaps: 2, pages: 1 }).model
      expect(model.packed?.symmetry?.count).toBe(1)
      onVsOff(model)
    })
  }
  const eventSets: Record<string, number>[] = [
    { zaps: 0, migrations: 2, pages: 2 },
    { zaps: 0, splits: 2, pages: 2 },
    { zaps: 0, folio_splits: 2, pages: 2 },
    { zaps: 0, collapses: 2, pages: 2 },
    { zaps: 0, reclaims: 2, pages: 2 },
    { zaps: 0, map_fixed: 2, pages: 2 },
    { vps: 2, zaps: 2, pages: 1 },
  ]
  for (const variant of ['v6', 'upstream']) {
    for (const p of eventSets) {
      const groups = Object.entries(p).filter(([k, n]) => n === 2 && k !== 'pages').length
      it(`mshv-movable/${variant} ${JSON.stringify(p)}: ${groups} group(s) of two, on = off, orbit sum exact`, () => {
        const model = instantiate('mshv-movable', variant, p).model
        // Renamings besides the identity: each group of two swaps or not.
        expect(model.packed?.symmetry?.count).toBe(2 ** groups - 1)
        onVsOff(model)
      })
    }
  }
})
