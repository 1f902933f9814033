import type { Cells, Model, PackedModel } from './model.js'

/**
 * The packed view of any model: its own fast path when it has one, else an
 * interning adapter in which a state's bytes are its index in a table of
 * live state objects (fine for small and toy models, which is what has no
 * packed form).
 */
export function packedOf<S, A>(model: Model<S, A>): PackedModel<S> {
  return model.packed ?? intern(model)
}

/** The interning adapter, even for a model that has a packed form of its own. */
export function intern<S, A>(model: Model<S, A>): PackedModel<S> {
  const states: S[] = []
  const ids = new Map<string, number>()
  // An id is four byte-sized cells, most significant first.
  const cur = new Int16Array(4)
  const next = new Int16Array(4)
  const put = (out: Cells, id: number): void => {
    for (let i = 3; i >= 0; i--, id >>>= 8) out[i] = id & 0xff
  }
  const get = (b: Cells): number => ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0
  const idOf = (s: S): number => {
    const key = model.fingerprint(s)
    let id = ids.get(key)
    if (id === undefined) {
      id = states.length
      states.push(s)
      ids.set(key, id)
    }
    return id
  }
  const terminal = model.terminal
  // The step `emit` is called for, for stepThread/stepProgress (asked only by the livelock search).
  let stepState: S | undefined
  let stepAction: A | undefined
  const threadIds = new Map<string, number>()
  return {
    stateBytes: 4,
    cur,
    next,
    encode: (s, out) => put(out, idOf(s)),
    decode: (b) => states[get(b)],
    initial(emit) {
      for (const s of model.initialStates()) {
        put(next, idOf(s))
        emit()
      }
    },
    expand(emit) {
      const s = states[get(cur)]
      const actions = model.actions(s)
      stepState = s
      for (let k = 0; k < actions.length; k++) {
        stepAction = actions[k]
        put(next, idOf(model.next(s, actions[k])))
        emit(k, model.classOf ? model.classOf(actions[k], s) : 0)
      }
      return actions.length
    },
    stepThread() {
      const name = model.threadOf ? model.threadOf(stepAction!, stepState!) : model.describe(stepAction!, stepState!, stepState!).thread
      let id = threadIds.get(name)
      if (id === undefined) threadIds.set(name, (id = threadIds.size))
      return id
    },
    stepProgress: () => model.progress?.(stepAction!, stepState!) === true,
    holds: (i) => model.invariants[i].check(states[get(next)]) === null,
    facts: (i) => model.evidence![i].facts(states[get(next)]),
    terminal: () => (terminal ? terminal.call(model, states[get(cur)]) : false),
  }
}
