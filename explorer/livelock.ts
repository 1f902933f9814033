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
 * cycle of real states), so it is sound whatever the safety search reduces;
 * like the safety search it runs on packed states (see `findLivelock`).
 *
 * The answer is a lasso: the shortest prefix to the nearest state on any
 * fair non-progress cycle, then such a cycle through that state.
 */
import { BitLayout } from './bit-layout.js'
import { BadInput } from './errors.js'
import { IntList } from './int-list.js'
import type { Model, PackedModel } from './model.js'
import { intern } from './packing.js'
import { actionsOf } from './path.js'
import type { Violation } from './result.js'
import { NO_PARENT, StateStore } from './state-store.js'

export const NO_LIVELOCK = 'no-livelock'

export interface LivelockResult<A> {
  /** The lasso, when there is a fair non-progress cycle. */
  readonly violation: (Violation<A> & { readonly cycleStart: number }) | null
  /** Why the graph was not searched whole (a bound), when it was not. */
  readonly incomplete: string | null
  readonly states: number
}

/** Threads per state as a bit mask: the fairness bookkeeping's limit. */
const MAX_THREADS = 32

/**
 * The search runs on the packed view, as the safety search does: states
 * bit-packed in a `StateStore` (full, exact: a fingerprint collision here
 * could merge two states into a false cycle), the graph's non-progress
 * edges in flat arrays. A packed model says which thread took each step
 * (`PackedModel.stepThread`); any other model is searched through its
 * object form (`packedOf`'s interning adapter, asking `Model.threadOf`).
 */
export function findLivelock<S, A>(model: Model<S, A>, options: { maxStates?: number; stop?: (states: number) => string | null } = {}): LivelockResult<A> {
  const maxStates = options.maxStates ?? 5_000_000
  const own = model.packed
  const packed: PackedModel<S> = own?.stepThread && own.stepProgress ? own : intern(model)
  const layout = BitLayout.of(packed)
  const store = new StateStore(layout.words)
  const words = new Uint32Array(layout.words)
  const curWords = new Uint32Array(layout.words)
  // Per state: the action index (in model.actions(parent)) that reached it, or the initial state's number.
  const via = new IntList()
  let init = 0
  packed.initial(() => {
    if (!layout.pack(packed.next, words)) throw new RangeError(`${model.name}: an initial state has a cell outside its range`)
    if (store.insert(words, NO_PARENT) >= 0) via.push(init)
    init++
  })
  // The non-progress edges, grouped by source in expansion order (CSR): first[i] .. first[i + 1].
  const first = new IntList()
  const to = new IntList()
  const ks = new IntList()
  const ts = new IntList()
  // Per expanded state: the threads with a step enabled there (progress or not).
  const enabled = new IntList()
  let threads = 0
  let incomplete: string | null = null
  let i = 0
  let mask = 0
  const emit = (k: number): void => {
    const t = packed.stepThread!()
    if (t >= MAX_THREADS) throw new BadInput(`--livelock: ${model.name} has more than ${MAX_THREADS} threads, which the fairness bookkeeping does not support`)
    if (t >= threads) threads = t + 1
    mask |= 1 << t
    // A successor outside the state space (a cell out of range) is the safety search's field-in-range violation, not a state.
    if (!layout.pack(packed.next, words)) return
    let j = store.insert(words, i)
    if (j >= 0) via.push(k)
    else j = -j - 1
    if (packed.stepProgress!()) return
    to.push(j)
    ks.push(k)
    ts.push(t)
  }
  for (; i < store.size; i++) {
    if (store.size >= maxStates || store.full) {
      incomplete = `max-states ${Math.min(maxStates, store.size)} reached in the livelock search`
      break
    }
    const stop = options.stop?.(store.size)
    if (stop) {
      incomplete = stop
      break
    }
    store.get(i, curWords)
    layout.unpack(curWords, 0, packed.cur)
    first.push(to.length)
    mask = 0
    packed.expand(emit)
    enabled.push(mask)
  }
  first.push(to.length)
  // Only expanded states have edges: a cut search finds the cycles among them, which are real all the same.
  const graph: Graph = { nodes: enabled.length, first: first.view(), to: to.view(), k: ks.view(), thread: ts.view(), enabled: enabled.view(), threads }
  const lasso = fairCycle(graph)
  if (lasso === null) return { violation: null, incomplete, states: store.size }
  const { start, cycle } = lasso
  const prefix: number[] = []
  let root = start
  for (; store.parent(root) !== NO_PARENT; root = store.parent(root)) prefix.push(via.get(root))
  prefix.reverse()
  const initial = via.get(root)
  const steps = [...prefix, ...cycle]
  const { actions } = actionsOf(model, initial, steps)
  store.get(start, curWords)
  const startCells = new Int16Array(packed.stateBytes)
  layout.unpack(curWords, 0, startCells)
  const message = livelockMessage(prefix.length + 1, steps.length, model.whereIs?.(packed.decode(startCells)))
  return { violation: { invariant: NO_LIVELOCK, message, init: initial, actions, cycleStart: prefix.length }, incomplete, states: store.size }
}

/**
 * The non-progress subgraph of a state graph, nodes numbered in BFS order,
 * edges grouped by source: node v's are `first[v] .. first[v + 1]`.
 */
export interface Graph {
  readonly nodes: number
  readonly first: Int32Array
  /** Per edge: its target (a target >= nodes was not expanded: a cut search), action index and thread (0..threads-1). */
  readonly to: Int32Array
  readonly k: Int32Array
  readonly thread: Int32Array
  /** Per node: the threads with a step enabled there (progress or not), as a bit mask. */
  readonly enabled: Int32Array
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
  const { comp, count } = tarjan(g)
  const n = g.nodes
  const all = g.threads === 32 ? -1 : (1 << g.threads) - 1
  // Per component: has an internal edge; which threads are covered (disabled somewhere, or a step inside).
  const internal = new Uint8Array(count)
  const covered = new Int32Array(count)
  for (let v = 0; v < n; v++) {
    const c = comp[v]
    covered[c] |= ~g.enabled[v] & all
    for (let e = g.first[v]; e < g.first[v + 1]; e++) {
      const w = g.to[e]
      if (w >= n || comp[w] !== c) continue
      internal[c] = 1
      covered[c] |= 1 << g.thread[e]
    }
  }
  let start = -1
  for (let v = 0; v < n && start < 0; v++) if (internal[comp[v]] && covered[comp[v]] === all) start = v
  if (start < 0) return null
  const c = comp[start]
  let pending = all
  const visit = (v: number): void => {
    pending &= g.enabled[v]
  }
  const cycle: number[] = []
  const nodes: number[] = [start]
  visit(start)
  let cur = start
  // A walk: the nearest node or edge that covers a pending thread, until none is pending and the walk is back at start.
  while (pending !== 0 || cur !== start || cycle.length === 0) {
    const done = pending === 0
    const path = bfsIn(g, comp, c, cur, (v, e) => {
      if (done) return e >= 0 && g.to[e] === start
      if (e < 0) return (pending & ~g.enabled[v]) !== 0
      return (pending & (1 << g.thread[e])) !== 0
    })
    for (const e of path) {
      cycle.push(g.k[e])
      pending &= ~(1 << g.thread[e])
      cur = g.to[e]
      nodes.push(cur)
      visit(cur)
    }
  }
  nodes.pop()
  return { start, cycle, nodes }
}

/**
 * Shortest path within component `c` from `from` to the first node (e < 0)
 * or edge e (of node v) that `goal` accepts, as edge indices, ending with
 * the accepted edge when it was an edge. `from` itself is never a node goal.
 */
function bfsIn(g: Graph, comp: Int32Array, c: number, from: number, goal: (v: number, e: number) => boolean): number[] {
  // Node -> the edge that reached it.
  const prev = new Map<number, number>()
  const queue = [from]
  const seen = new Set([from])
  const pathTo = (v: number): number[] => {
    const p: number[] = []
    for (let x = v; x !== from; ) {
      const e = prev.get(x)!
      p.push(e)
      x = source(g, e)
    }
    return p.reverse()
  }
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q]
    if (q > 0 && goal(v, -1)) return pathTo(v)
    for (let e = g.first[v]; e < g.first[v + 1]; e++) {
      const w = g.to[e]
      if (w >= g.nodes || comp[w] !== c) continue
      if (goal(v, e)) return [...pathTo(v), e]
      if (seen.has(w)) continue
      seen.add(w)
      prev.set(w, e)
      queue.push(w)
    }
  }
  throw new Error('fairCycle: a strongly connected component has no path to its goal')
}

/** The node edge e leaves (binary search in `first`). */
function source(g: Graph, e: number): number {
  let lo = 0
  let hi = g.nodes - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (g.first[mid] <= e) lo = mid
    else hi = mid - 1
  }
  return lo
}

export function livelockMessage(from: number, to: number, where?: string): string {
  return `steps ${from}–${to} repeat forever and none of them is a progress step${where ? `; where the cycle starts: ${where}` : ''}`
}

/** Strongly connected components (Tarjan's algorithm, iterative): component number per node, and how many. */
export function tarjan(g: Pick<Graph, 'nodes' | 'first' | 'to'>): { comp: Int32Array; count: number } {
  const n = g.nodes
  const idx = new Int32Array(n).fill(-1)
  const low = new Int32Array(n)
  const comp = new Int32Array(n).fill(-1)
  const onStack = new Uint8Array(n)
  const stack = new Int32Array(n)
  let sp = 0
  const call = new Int32Array(n) // node
  const edge = new Int32Array(n) // next edge to try
  let depth = 0
  let counter = 0
  let comps = 0
  for (let r = 0; r < n; r++) {
    if (idx[r] >= 0) continue
    call[0] = r
    edge[0] = g.first[r]
    depth = 1
    idx[r] = low[r] = counter++
    stack[sp++] = r
    onStack[r] = 1
    while (depth > 0) {
      const v = call[depth - 1]
      const e = edge[depth - 1]
      if (e < g.first[v + 1]) {
        edge[depth - 1] = e + 1
        const w = g.to[e]
        if (w >= n) continue // not expanded (a cut search)
        if (idx[w] < 0) {
          idx[w] = low[w] = counter++
          stack[sp++] = w
          onStack[w] = 1
          call[depth] = w
          edge[depth] = g.first[w]
          depth++
        } else if (onStack[w]) {
          low[v] = Math.min(low[v], idx[w])
        }
        continue
      }
      depth--
      if (depth > 0) {
        const u = call[depth - 1]
        low[u] = Math.min(low[u], low[v])
      }
      if (low[v] === idx[v]) {
        for (;;) {
          const w = stack[--sp]
          onStack[w] = 0
          comp[w] = comps
          if (w === v) break
        }
        comps++
      }
    }
  }
  return { comp, count: comps }
}
