/**
 * Replays a reported violation with the model's object backend only
 * (`initialStates`, `actions`, `next`), checking that every action is
 * enabled where it is taken and that the path really ends in a violation of
 * the reported kind, which held (or, for a deadlock, did not yet happen)
 * before the last state.
 */
import { expect } from 'vitest'
import type { Model } from '../../explorer/model.js'
import type { Violation } from '../../explorer/result.js'
import { canonical } from './toy-models.js'

export function replayViolation<S, A>(model: Model<S, A>, v: Violation<A>): S {
  const inits = model.initialStates()
  expect(v.init, 'init index in range').toBeGreaterThanOrEqual(0)
  expect(v.init).toBeLessThan(inits.length)
  let s = inits[v.init]
  const inv = model.invariants.find((i) => i.id === v.invariant)
  if (v.invariant !== 'no-deadlock') expect(inv, `invariant ${v.invariant} exists`).toBeDefined()
  for (const [j, a] of v.actions.entries()) {
    if (inv) expect(inv.check(s), `${v.invariant} already broken before step ${j}`).toBeNull()
    const enabled = model.actions(s).map(canonical)
    expect(enabled, `step ${j} (${canonical(a)}) is enabled`).toContain(canonical(a))
    s = model.next(s, a)
  }
  if (inv) {
    const msg = inv.check(s)
    expect(msg, `${v.invariant} broken at the end of the path`).not.toBeNull()
    expect(v.message).toBe(msg)
  } else {
    expect(model.actions(s), 'deadlock: no action at the end').toHaveLength(0)
    expect(model.terminal?.(s) ?? false, 'deadlock: end state is not terminal').toBe(false)
  }
  return s
}
