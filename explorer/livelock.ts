/**
 * Non-progress cycles (SPIN's -l): a reachable cycle in the state graph on
 * which no step is a progress step (`Model.progress`) is a livelock, e.g. a
 * fault retrying forever on -EAGAIN while an invalidation never ends.
 * Under weak fairness (SPIN's -f, per thread): a cycle on which a thread is
 * enabled all along and never scheduled is not one. Without it every spin
 * loop would be a livelock (a fault retrying while an invalidator that
 * could end it is simply never run), which is not what the kernel does.
 *
 * A search of its own, after the safety search: BFS over the whole reachable
 * graph (shortest prefixes), keeping the non-progress edges; Tarjan's SCC
 * algorithm on that subgraph; a component with an edge inside it holds a
 * non-progress cycle. It works on the model's states themselves, never on
 * symmetry-reduced representatives (a cycle of representatives need not be a
 * cycle of real states), so it is sound whatever the safety search reduces.
 *
 * The answer is a lasso: the shortest prefix to the nearest state on any
 * fair non-progress cycle, then such a cycle through that state.
 */
import type { Model } from './model.js'
import type { Violation } from './result.js'

export const NO_LIVELOCK = 'no-livelock'

export interface LivelockResult<A> {
  /** The lasso, when there is a fair non-progress cycle. */
  readonly violation: (Violation<A> & { readonly cycleStart: number }) | null
  /** Why the graph was not searched whole (a bound), when it was not. */
  readonly incomplete: string | null
  readonly states: number
}

export function findLivelock<S, A>(model: Model<S, A>, options: { maxStates?: number; stop?: (states: number) => string | null } = {}): LivelockResult<A> {
  const maxStates = options.maxStates ?? 5_000_000
  const index = new Map<string, number>()
  const states: S[] = []
  const parent: number[] = []
  const via: number[] = [] // the action index (in model.actions(parent)) that reached the state
  const threadIds = new Map<string, number>()
  const threadOf = (a: A, s: S): number => {
    const t = model.threadOf?.(a, s) ?? model.describe(a, s, s).thread
    let id = threadIds.get(t)
    if (id === undefined) threadIds.set(t, (id = threadIds.size))
    return id
  }
  // Non-progress edges, per state: target, action index, thread; and the threads enabled in the state.
  const out: number[][] = []
  const outK: number[][] = []
  const outT: number[][] = []
  const enabled: Set<number>[] = []
  const add = (s: S, from: number, k: number): number => {
    const fp = model.fingerprint(s)
    const seen = index.get(fp)
    if (seen !== undefined) return seen
    const i = states.length
    index.set(fp, i)
    states.push(s)
    parent.push(from)
    via.push(k)
    out.push([])
    outK.push([])
    outT.push([])
    enabled.push(new Set())
    return i
  }
  model.initialStates().forEach((s, n) => add(s, -1, n))
  let incomplete: string | null = null
  let expanded = 0
  for (; expanded < states.length; expanded++) {
    if (states.length >= maxStates) {
      incomplete = `max-states ${maxStates} reached in the livelock search`
      break
    }
    const stop = options.stop?.(states.length)
    if (stop) {
      incomplete = stop
      break
    }
    const i = expanded
    const s = states[i]
    model.actions(s).forEach((a, k) => {
      const t = threadOf(a, s)
      enabled[i].add(t)
      const j = add(model.next(s, a), i, k)
      if (model.progress?.(a, s) === true) return
      out[i].push(j)
      outK[i].push(k)
      outT[i].push(t)
    })
  }
  // Only expanded states have edges: a cut search finds the cycles among them, which are real all the same.
  const graph: Graph = { out, outK, outT, enabled, threads: threadIds.size }
  const lasso = fairCycle(graph)
  if (lasso === null) return { violation: null, incomplete, states: states.length }
  const { start, cycle } = lasso
  const prefix: number[] = []
  for (let i = start; parent[i] !== -1; i = parent[i]) prefix.push(via[i])
  prefix.reverse()
  let root = start
  while (parent[root] !== -1) root = parent[root]
  const init = via[root]
  const ks = [...prefix, ...cycle]
  let s = model.initialStates()[init]
  const actions: A[] = []
  for (const k of ks) {
    const a = model.actions(s)[k]
    actions.push(a)
    s = model.next(s, a)
  }
  const message = livelockMessage(prefix.length + 1, ks.length, model.whereIs?.(states[start]))
  return { violation: { invariant: NO_LIVELOCK, message, init, actions, cycleStart: prefix.length }, incomplete, states: states.length }
}

/** The non-progress subgraph of a state graph, nodes numbered in BFS order. */
export interface Graph {
  /** Per node: targets, action indices, and the thread (0..threads-1) of each non-progress edge. */
  readonly out: readonly (readonly number[])[]
  readonly outK: readonly (readonly number[])[]
  readonly outT: readonly (readonly number[])[]
  /** Per node: the threads with a step enabled there (progress or not). */
  readonly enabled: readonly ReadonlySet<number>[]
  readonly threads: number
}

/**
 * A fair non-progress cycle: within a strongly connected component of the
 * non-progress subgraph, a cycle through every edge is fair (weak fairness:
 * no thread enabled all along it without taking a step) iff every thread is
 * disabled somewhere in the component or has an edge in it, and if that
 * fails for a thread, every cycle of the component fails it too. So a
 * component either has a fair cycle or none. The answer starts at the
 * lowest-numbered (in BFS order: nearest) node of such a component and is a
 * walk in it back to that node, taking for each thread a state where it is
 * disabled or one of its steps. Null when there is none.
 */
export function fairCycle(g: Graph): { start: number; cycle: number[]; nodes: number[] } | null {
  const comp = tarjan(g.out)
  const n = g.out.length
  // Per component: has an internal edge; which threads are covered (disabled somewhere, or step inside).
  const internal = new Map<number, boolean>()
  const covered = new Map<number, Set<number>>()
  for (let v = 0; v < n; v++) {
    const c = comp[v]
    let cov = covered.get(c)
    if (!cov) covered.set(c, (cov = new Set()))
    for (let t = 0; t < g.threads; t++) if (!g.enabled[v].has(t)) cov.add(t)
    g.out[v].forEach((w, e) => {
      if (comp[w] !== c) return
      internal.set(c, true)
      cov!.add(g.outT[v][e])
    })
  }
  let start = -1
  for (let v = 0; v < n && start < 0; v++) {
    const c = comp[v]
    if (internal.get(c) && covered.get(c)!.size === g.threads) start = v
  }
  if (start < 0) return null
  const c = comp[start]
  const pending = new Set<number>()
  for (let t = 0; t < g.threads; t++) pending.add(t)
  const visit = (v: number): void => {
    for (let t = 0; t < g.threads; t++) if (!g.enabled[v].has(t)) pending.delete(t)
  }
  const cycle: number[] = []
  const nodes: number[] = [start]
  visit(start)
  let cur = start
  // A walk: the nearest node or edge that covers a pending thread, until none is pending and the walk is back at start.
  while (pending.size > 0 || cur !== start || cycle.length === 0) {
    const done = pending.size === 0
    const path = bfsIn(g, comp, c, cur, (v, e) => {
      if (done) return e >= 0 && g.out[v][e] === start
      if (e < 0) return [...pending].some((t) => !g.enabled[v].has(t))
      return pending.has(g.outT[v][e])
    })
    for (const [v, e] of path) {
      cycle.push(g.outK[v][e])
      pending.delete(g.outT[v][e])
      cur = g.out[v][e]
      nodes.push(cur)
      visit(cur)
    }
  }
  nodes.pop()
  return { start, cycle, nodes }
}

/**
 * Shortest path within component `c` from `from` to the first node (e < 0)
 * or edge (v, e) that `goal` accepts, as (node, edge index) pairs, ending
 * with the accepted edge when it was an edge. `from` itself is never a node goal.
 */
function bfsIn(g: Graph, comp: Int32Array, c: number, from: number, goal: (v: number, e: number) => boolean): [number, number][] {
  const prev = new Map<number, [number, number]>()
  const queue = [from]
  const seen = new Set([from])
  const pathTo = (v: number): [number, number][] => {
    const p: [number, number][] = []
    for (let x = v; x !== from; ) {
      const step = prev.get(x)!
      p.push(step)
      x = step[0]
    }
    return p.reverse()
  }
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q]
    if (q > 0 && goal(v, -1)) return pathTo(v)
    for (let e = 0; e < g.out[v].length; e++) {
      const w = g.out[v][e]
      if (comp[w] !== c) continue
      if (goal(v, e)) return [...pathTo(v), [v, e]]
      if (seen.has(w)) continue
      seen.add(w)
      prev.set(w, [v, e])
      queue.push(w)
    }
  }
  throw new Error('fairCycle: a strongly connected component has no path to its goal')
}

export function livelockMessage(from: number, to: number, where?: string): string {
  return `steps ${from}–${to} repeat forever and none of them is a progress step${where ? `; where the cycle starts: ${where}` : ''}`
}

/** Strongly connected components (Tarjan's algorithm, iterative): component number per node. */
export function tarjan(out: readonly (readonly number[])[]): Int32Array {
  const n = out.length
  const idx = new Int32Array(n).fill(-1)
  const low = new Int32Array(n)
  const comp = new Int32Array(n).fill(-1)
  const onStack = new Uint8Array(n)
  const stack: number[] = []
  const call: number[] = [] // node
  const edge: number[] = [] // next edge to try
  let counter = 0
  let comps = 0
  for (let r = 0; r < n; r++) {
    if (idx[r] >= 0) continue
    call.push(r)
    edge.push(0)
    idx[r] = low[r] = counter++
    stack.push(r)
    onStack[r] = 1
    while (call.length > 0) {
      const v = call[call.length - 1]
      const e = edge[edge.length - 1]
      if (e < out[v].length) {
        edge[edge.length - 1] = e + 1
        const w = out[v][e]
        if (w >= n) continue // not expanded (a cut search)
        if (idx[w] < 0) {
          idx[w] = low[w] = counter++
          stack.push(w)
          onStack[w] = 1
          call.push(w)
          edge.push(0)
        } else if (onStack[w]) {
          low[v] = Math.min(low[v], idx[w])
        }
        continue
      }
      call.pop()
      edge.pop()
      if (call.length > 0) {
        const u = call[call.length - 1]
        low[u] = Math.min(low[u], low[v])
      }
      if (low[v] === idx[v]) {
        for (;;) {
          const w = stack.pop()!
          onStack[w] = 0
          comp[w] = comps
          if (w === v) break
        }
        comps++
      }
    }
  }
  return comp
}

