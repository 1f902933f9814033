import type { Model, PackedModel } from './model.js'
import type { StateStore } from './state-store.js'

/**
 * Turns a stored state's parent chain back into model actions: for each
 * edge, re-expand the parent and find which successor is the child. Only
 * indices are stored per state, so this is paid once per counterexample.
 */
export function actionPath<S, A>(
  model: Model<S, A>,
  packed: PackedModel<S>,
  store: StateStore,
  idx: number,
): { init: number; actions: A[]; last: S } {
  const chain = store.path(idx)
  const n = packed.stateBytes
  const want = new Int16Array(n)
  const matches = (): boolean => {
    for (let i = 0; i < n; i++) if (packed.next[i] !== want[i]) return false
    return true
  }
  store.get(chain[0], want)
  let init = -1
  let count = 0
  packed.initial(() => {
    if (init < 0 && matches()) init = count
    count++
  })
  const ks: number[] = []
  for (let e = 1; e < chain.length; e++) {
    store.get(chain[e - 1], packed.cur)
    store.get(chain[e], want)
    let found = -1
    packed.expand((k) => {
      if (found < 0 && matches()) found = k
    })
    if (found < 0) throw new Error(`actionPath: state ${chain[e]} is not a successor of its parent`)
    ks.push(found)
  }
  return { init, ...actionsOf(model, init, ks) }
}

/** The model actions that the successor indices `ks` pick from initial state `init`, and the state they reach. */
export function actionsOf<S, A>(model: Model<S, A>, init: number, ks: readonly number[]): { actions: A[]; last: S } {
  let s = model.initialStates()[init]
  const actions: A[] = []
  for (const k of ks) {
    const a = model.actions(s)[k]
    actions.push(a)
    s = model.next(s, a)
  }
  return { actions, last: s }
}
