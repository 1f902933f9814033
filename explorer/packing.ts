import type { Model, PackedModel } from './model.js'

/**
 * The packed view of any model: its own fast path when it has one, else an
 * interning adapter in which a state's bytes are its index in a table of
 * live state objects (fine for small and toy models, which is what has no
 * packed form).
 */
export function packedOf<S, A>(model: Model<S, A>): PackedModel<S> {
  return model.packed ?? intern(model)
}

function intern<S, A>(model: Model<S, A>): PackedModel<S> {
  const states: S[] = []
  const ids = new Map<string, number>()
  const cur = new Uint8Array(4)
  const next = new Uint8Array(4)
  const curView = new DataView(cur.buffer)
  const nextView = new DataView(next.buffer)
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
  return {
    stateBytes: 4,
    cur,
    next,
    encode: (s, out) => new DataView(out.buffer, out.byteOffset, 4).setUint32(0, idOf(s)),
    decode: (b) => states[new DataView(b.buffer, b.byteOffset, 4).getUint32(0)],
    initial(emit) {
      for (const s of model.initialStates()) {
        nextView.setUint32(0, idOf(s))
        emit()
      }
    },
    expand(emit) {
      const s = states[curView.getUint32(0)]
      const actions = model.actions(s)
      for (let k = 0; k < actions.length; k++) {
        nextView.setUint32(0, idOf(model.next(s, actions[k])))
        emit(k)
      }
      return actions.length
    },
    holds: (i) => model.invariants[i].check(states[nextView.getUint32(0)]) === null,
    terminal: () => (terminal ? terminal.call(model, states[curView.getUint32(0)]) : false),
  }
}
