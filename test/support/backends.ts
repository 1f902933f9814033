import fc from 'fast-check'
import { expect } from 'vitest'
import type { Model } from '../../explorer/model.js'
import { canonical } from './toy-models.js'

/**
 * The packed backend agrees with the object (immer) backend along random
 * walks: same successors in the same order, same invariant verdicts, same
 * terminal verdict.
 */
export function expectBackendsAgree<S, A>(model: Model<S, A>, options: { runs: number; seed: number; maxLength: number }): void {
  const packed = model.packed!
  const scratch = new Int16Array(packed.stateBytes)
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: options.maxLength }), (walk) => {
      let s = model.initialStates()[0]
      for (const x of walk) {
        const actions = model.actions(s)
        packed.encode(s, scratch)
        packed.cur.set(scratch)
        const succ: string[] = []
        const holds: boolean[][] = []
        packed.expand(() => {
          succ.push(canonical(packed.decode(packed.next)))
          holds.push(model.invariants.map((_, i) => packed.holds(i)))
        })
        const next = actions.map((a) => model.next(s, a))
        expect(succ).toEqual(next.map((t) => canonical(t)))
        expect(holds).toEqual(next.map((t) => model.invariants.map((inv) => inv.check(t) === null)))
        expect(packed.terminal()).toBe(model.terminal?.(s) ?? false)
        if (actions.length === 0) break
        s = next[x % actions.length]
      }
    }),
    { numRuns: options.runs, seed: options.seed },
  )
}
