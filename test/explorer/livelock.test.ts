/**
 * The non-progress cycle search against an independent enumeration on small
 * random graphs: for each reachable node, a search of the product of the
 * graph with the set of threads a walk has "excused" (stepped, or seen
 * disabled) for a closed non-progress walk back to the node that excuses
 * every thread. That is the definition of a fair non-progress cycle, with
 * neither SCCs nor the lemma `fairCycle` rests on.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { explore } from '../../explorer/explore.js'
import { findLivelock, NO_LIVELOCK } from '../../explorer/livelock.js'
import type { Model } from '../../explorer/model.js'
import { instantiate } from '../../invariants/scenarios.js'
import retryToy from '../fixtures/livelock/retry-toy.js'

interface Edge {
  readonly from: number
  readonly to: number
  readonly thread: number
  readonly progress: boolean
}

function graphModel(nodes: number, edges: readonly Edge[]): Model<number, number> {
  const from = (s: number) => edges.flatMap((e, i) => (e.from === s ? [i] : []))
  return {
    name: 'graph',
    initialStates: () => [0],
    actions: from,
    next: (_s, a) => edges[a].to,
    progress: (a) => edges[a].progress,
    invariants: [],
    fingerprint: (s) => String(s),
    describe: (a) => ({ thread: `t${edges[a].thread}`, label: `e${a}`, choice: 0, text: `e${a}` }),
  }
}

/** Nodes reachable from 0 (over every edge). */
function reachable(edges: readonly Edge[]): Set<number> {
  const seen = new Set([0])
  const stack = [0]
  while (stack.length) {
    const v = stack.pop()!
    for (const e of edges) if (e.from === v && !seen.has(e.to)) (seen.add(e.to), stack.push(e.to))
  }
  return seen
}

/** Is there a closed walk from `v` over non-progress edges on which every thread steps or is disabled somewhere? */
function fairLoopAt(v: number, edges: readonly Edge[], threads: number): boolean {
  const all = (1 << threads) - 1
  const disabled = (w: number) => {
    let m = 0
    for (let t = 0; t < threads; t++) if (!edges.some((e) => e.from === w && e.thread === t)) m |= 1 << t
    return m
  }
  const seen = new Set<string>()
  const stack: [number, number][] = [[v, disabled(v)]]
  while (stack.length) {
    const [w, m] = stack.pop()!
    for (const e of edges) {
      if (e.from !== w || e.progress) continue
      const m2 = m | (1 << e.thread) | disabled(e.to)
      if (e.to === v && m2 === all) return true
      const key = `${e.to},${m2}`
      if (!seen.has(key)) (seen.add(key), stack.push([e.to, m2]))
    }
  }
  return false
}

const arbGraph = fc.integer({ min: 1, max: 5 }).chain((nodes) =>
  fc.record({
    nodes: fc.constant(nodes),
    threads: fc.integer({ min: 1, max: 3 }),
    edges: fc.array(
      fc.record({ from: fc.nat(nodes - 1), to: fc.nat(nodes - 1), thread: fc.nat(2), progress: fc.boolean() }),
      { maxLength: 9 },
    ),
  }),
).map(({ nodes, threads, edges }) => ({ nodes, threads, edges: edges.map((e) => ({ ...e, thread: e.thread % threads })) }))

describe('findLivelock', () => {
  it('finds a fair non-progress cycle exactly when an independent enumeration does, and its lasso is one', () => {
    let found = 0
    let none = 0
    fc.assert(
      fc.property(arbGraph, ({ nodes, threads, edges }) => {
        const model = graphModel(nodes, edges)
        const r = findLivelock(model)
        const oracle = [...reachable(edges)].some((v) => fairLoopAt(v, edges, threads))
        expect(r.incomplete).toBeNull()
        expect(r.violation !== null).toBe(oracle)
        if (r.violation === null) return void none++
        found++
        const { actions, cycleStart, invariant } = r.violation
        expect(invariant).toBe(NO_LIVELOCK)
        // The lasso: a path from the initial node, then a closed walk of non-progress edges on which every thread is excused.
        let s = 0
        for (const a of actions) {
          expect(edges[a].from).toBe(s)
          s = edges[a].to
        }
        const cycle = actions.slice(cycleStart)
        expect(cycle.length).toBeGreaterThan(0)
        expect(edges[cycle[0]].from).toBe(s)
        expect(cycle.every((a) => !edges[a].progress)).toBe(true)
        const at = cycle.map((a) => edges[a].from)
        for (let t = 0; t < threads; t++) {
          const steps = cycle.some((a) => edges[a].thread === t)
          const disabledSomewhere = at.some((v) => !edges.some((e) => e.from === v && e.thread === t))
          expect(steps || disabledSomewhere).toBe(true)
        }
      }),
      { numRuns: 400, seed: 13 },
    )
    // Both answers were exercised.
    expect(found).toBeGreaterThan(20)
    expect(none).toBeGreaterThan(20)
  })

  it('gives the shortest prefix: the lasso starts at the nearest node on a non-progress cycle', () => {
    // 0 -> 1 -> 2 -> 3 -> 3 (a self-loop, far), and 0 -> 4 -> 5 -> 4 (a loop, near).
    const e = (from: number, to: number): Edge => ({ from, to, thread: 0, progress: false })
    const edges = [e(0, 1), e(1, 2), e(2, 3), e(3, 3), e(0, 4), e(4, 5), e(5, 4)]
    const r = findLivelock(graphModel(6, edges))
    expect(r.violation!.cycleStart).toBe(1)
    expect(r.violation!.actions.map((a) => edges[a].to)).toEqual([4, 5, 4])
  })

  it('reports no cycle whose only way round is a progress step, nor one a thread enabled all along never joins', () => {
    const edges: Edge[] = [
      { from: 0, to: 1, thread: 0, progress: false },
      { from: 1, to: 0, thread: 0, progress: true },
      // Thread 0 spins on 2 while thread 1, enabled there, could leave: unfair, not a livelock.
      { from: 0, to: 2, thread: 1, progress: false },
      { from: 2, to: 2, thread: 0, progress: false },
      { from: 2, to: 3, thread: 1, progress: true },
    ]
    expect(findLivelock(graphModel(4, edges)).violation).toBeNull()
    // Once thread 1 has nowhere to go from 2, the spin is a livelock.
    expect(findLivelock(graphModel(4, edges.slice(0, 4))).violation).not.toBeNull()
  })

  it('is incomplete, not ok, when a bound cuts the graph before its cycle', () => {
    const e = (from: number, to: number): Edge => ({ from, to, thread: 0, progress: false })
    const model = graphModel(4, [e(0, 1), e(1, 2), e(2, 3), e(3, 2)])
    expect(findLivelock(model).violation).not.toBeNull()
    const cut = findLivelock(model, { maxStates: 2 })
    expect(cut.violation).toBeNull()
    expect(cut.incomplete).toMatch(/max-states 2/)
    const stopped = explore(model, { livelock: true, stop: (n) => (n > 2 ? 'interrupted' : null) })
    expect(stopped.verdict).toBe('incomplete')
  })
})

describe('findLivelock on packed states (the compiled models) and on objects (interned) agree', () => {
  // The same model searched twice: through its packed form (stepThread/stepProgress) and through its
  // object form alone (Model.threadOf/progress, interned). Same states, same lasso, or none in both.
  const cases: [Parameters<typeof instantiate>[0], string, Record<string, number>][] = [
    [retryToy, 'leaks-count', { faults: 2 }],
    [retryToy, 'ends', { faults: 2 }],
    ['kvm-mmu-notifier', 'hlist-no-end-after-eagain', { pages: 1, oom_reaps: 1, subscribers: 2 }],
    ['kvm-mmu-notifier', 'upstream', { pages: 1, oom_reaps: 1, subscribers: 2 }],
    ['mshv-movable', 'upstream-fixed', {}],
  ]
  it.each(cases)('%s %s', (scenario, variant, params) => {
    const model = instantiate(scenario, variant, params).model
    expect(model.packed?.stepThread).toBeDefined()
    const packed = findLivelock(model)
    const objects = findLivelock({ ...model, packed: undefined })
    expect(packed.states).toBe(objects.states)
    expect(packed.incomplete).toBeNull()
    expect(packed.violation?.actions ?? null).toEqual(objects.violation?.actions ?? null)
    expect(packed.violation?.cycleStart).toBe(objects.violation?.cycleStart)
    expect(packed.violation?.message).toBe(objects.violation?.message)
  })

  it('both forms found a livelock where one is seeded (the cases above are not all "none")', () => {
    expect(findLivelock(instantiate(retryToy, 'leaks-count', {}).model).violation).not.toBeNull()
    expect(findLivelock(instantiate('kvm-mmu-notifier', 'hlist-no-end-after-eagain', { pages: 1, oom_reaps: 1, subscribers: 2 }).model).violation).not.toBeNull()
  })
})
