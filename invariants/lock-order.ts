import type { EvidenceProperty } from '../explorer/model.js'
import type { LockDecl, LockWorld } from '../model/primitives/locks.js'

/**
 * `lock-order-consistent`: lockdep's rule across the whole exploration. Each
 * state shows the dependencies its run has recorded (lock j taken while
 * holding lock i: the `lockOrder` ghost); two locks taken in opposite
 * orders, on any runs, are a possible ABBA deadlock even if no run
 * deadlocked. The two runs are the witnesses. (Longer cycles, A->B->C->A,
 * are not looked for yet.)
 */
export function lockOrderConsistent(decls: readonly LockDecl[]): EvidenceProperty<Pick<LockWorld, 'lockOrder'>> {
  const n = decls.length
  const bit = (i: number, j: number) => 1 << (i * n + j)
  const names = Array.from({ length: n * n }, (_, k) => `${decls[Math.floor(k / n)].name} -> ${decls[k % n].name}`)
  return {
    id: 'lock-order-consistent',
    description: 'no two runs take two locks in opposite orders (lockdep)',
    names,
    facts(w) {
      let f = 0
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j && w.lockOrder[i] & (1 << j)) f |= bit(i, j)
      return f
    },
    conflict(seen) {
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (seen & bit(i, j) && seen & bit(j, i)) return bit(i, j) | bit(j, i)
      return 0
    },
    message(conflict) {
      const edges = names.filter((_, k) => conflict & (1 << k))
      return `lock order inversion: ${edges.join(' on one run, ')} on another (possible ABBA deadlock)`
    },
  }
}
