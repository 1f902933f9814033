import type { EvidenceProperty } from '../explorer/model.js'
import { orderBytes, type LockDecl, type LockWorld } from '../model/primitives/locks.js'

/**
 * `lock-order-consistent`: lockdep's rule across the whole exploration. Each
 * state shows the dependencies its run has recorded (lock j taken while
 * holding lock i: the `lockOrder` ghost), one fact per edge i -> j (fact
 * i * n + j); a cycle in the graph of every edge seen, on any runs, of any
 * length (A -> B -> A, A -> B -> C -> A, ...), is a possible deadlock even
 * if no run deadlocked. The shortest cycle is reported, one run per edge:
 * each run's trace ends with its edge recorded.
 */
export function lockOrderConsistent(decls: readonly LockDecl[]): EvidenceProperty<Pick<LockWorld, 'lockOrder'>> {
  const n = decls.length
  const row = orderBytes(n)
  const names = Array.from({ length: n * n }, (_, k) => `${decls[Math.floor(k / n)].name} -> ${decls[k % n].name}`)
  const none: readonly number[] = []
  return {
    id: 'lock-order-consistent',
    description: 'the locks taken while holding others, on all runs together, form no cycle (lockdep)',
    names,
    facts(w) {
      let out: number[] | null = null
      for (let i = 0; i < n; i++) {
        for (let b = 0; b < row; b++) {
          const bits = w.lockOrder[i * row + b]
          if (bits === 0) continue
          for (let j = b * 8; j < Math.min(n, b * 8 + 8); j++) if (j !== i && bits & (1 << (j & 7))) (out ??= []).push(i * n + j)
        }
      }
      return out ?? none
    },
    conflict(seen) {
      return shortestCycle(n, seen)
    },
    message(conflict) {
      const from = (k: number) => decls[Math.floor(k / n)].name
      if (conflict.length === 2) {
        return `lock order inversion: ${names[conflict[0]]} on one run, ${names[conflict[1]]} on another (possible ABBA deadlock)`
      }
      const cycle = [...conflict.map(from), from(conflict[0])].join(' -> ')
      return `lock order cycle ${cycle}: each edge taken on some run (possible deadlock of ${conflict.length} threads)`
    },
  }
}

/**
 * The shortest cycle in the graph of `n` nodes whose edges i -> j are the
 * facts i * n + j in `edges`, as its edges in order, starting from its
 * smallest node; empty when the graph is acyclic.
 */
export function shortestCycle(n: number, edges: ReadonlySet<number>): readonly number[] {
  const succ: number[][] = Array.from({ length: n }, () => [])
  for (const k of edges) {
    const i = Math.floor(k / n)
    const j = k % n
    if (i !== j) succ[i].push(j)
  }
  for (const s of succ) s.sort((a, b) => a - b)
  let best: number[] = []
  for (let start = 0; start < n; start++) {
    // BFS from `start` back to itself: the shortest cycle through it.
    const parent = new Int32Array(n).fill(-1)
    const queue = [start]
    let found = -1
    for (let q = 0; q < queue.length && found < 0; q++) {
      const u = queue[q]
      for (const v of succ[u]) {
        if (v === start) {
          found = u
          break
        }
        if (parent[v] < 0 && v !== start) {
          parent[v] = u
          queue.push(v)
        }
      }
    }
    if (found < 0) continue
    const nodes = [found]
    while (nodes[0] !== start) nodes.unshift(parent[nodes[0]])
    if (best.length === 0 || nodes.length < best.length) {
      best = nodes.map((u, i) => u * n + nodes[(i + 1) % nodes.length])
    }
  }
  return best
}
