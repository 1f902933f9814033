import { ModelError } from './errors.js'
import { FingerprintStore } from './fingerprint-store.js'
import type { Cells, Model, PackedModel } from './model.js'
import type { StateStore } from './state-store.js'

/** How states become stored words: bit-packing, and the least image under thread symmetry when reduced. */
export interface StateEncoder {
  readonly words: number
  encode(cells: Cells, out: Uint32Array): boolean
  /** The cells of stored words (the representative itself). */
  decode(words: Uint32Array, out: Cells): void
  /** Are stored states orbit representatives (symmetry reduction)? */
  readonly symmetric: boolean
}

/** A visited set kept elsewhere (the parallel BFS's shared one): what a search reads of it. */
export interface StoreView {
  readonly size: number
  readonly full: boolean
  /** How many states it can hold (what `full` means). */
  readonly capacity: number
  readonly bytes: number
  get(idx: number, out: Uint32Array): void
  /** The chain of indices from an initial state to `idx`. */
  path(idx: number): number[]
}

/**
 * Turns a stored state's parent chain back into model actions, by
 * re-execution: starting from the initial state, at each edge the
 * successor of the current (real) state whose stored form is the next
 * state's is taken. With symmetry reduction the stored states are orbit
 * representatives and the real run is a renaming of them; the walk follows
 * the real run. A full store has each state's words; a fingerprint store
 * has which successor each state was, and the stored forms along the chain
 * are recomputed from the initial state. Paid once per counterexample.
 */
export function actionPath<S, A>(
  model: Model<S, A>,
  packed: PackedModel<S>,
  encoder: StateEncoder,
  store: StateStore | FingerprintStore | StoreView,
  idx: number,
): { init: number; actions: A[]; last: S } {
  const chain = store.path(idx)
  const w = encoder.words
  const n = packed.stateBytes
  const stored: Uint32Array[] = store instanceof FingerprintStore ? storedForms(packed, encoder, store, chain) : chain.map((i) => {
    const out = new Uint32Array(w)
    store.get(i, out)
    return out
  })
  const got = new Uint32Array(w)
  const matches = (want: Uint32Array): boolean => {
    if (!encoder.encode(packed.next, got)) return false
    for (let i = 0; i < w; i++) if (got[i] !== want[i]) return false
    return true
  }
  const real = new Int16Array(n)
  let init = -1
  let count = 0
  packed.initial(() => {
    if (init < 0 && matches(stored[0])) {
      init = count
      real.set(packed.next)
    }
    count++
  })
  const ks: number[] = []
  for (let e = 1; e < chain.length; e++) {
    packed.cur.set(real)
    let found = -1
    packed.expand((k) => {
      if (found < 0 && matches(stored[e])) {
        found = k
        real.set(packed.next)
      }
    })
    if (found < 0) {
      // Under symmetry reduction the real run is a renaming of the stored one; if no successor matches, the renaming was not one.
      if (encoder.symmetric) {
        throw new ModelError(
          `${model.name}: the threads declared interchangeable are not: a stored state has no renamed counterpart on the real run (a field holding a thread id not declared threadId/threadRef, or a step that tells the threads apart); run with symmetry off`,
        )
      }
      throw new Error(`actionPath: state ${chain[e]} is not a successor of its parent`)
    }
    ks.push(found)
  }
  return { init, ...actionsOf(model, init, ks) }
}

/** A fingerprint store's chain: each state's stored form, from its parent's by the successor index it records. */
function storedForms<S>(packed: PackedModel<S>, encoder: StateEncoder, store: FingerprintStore, chain: readonly number[]): Uint32Array[] {
  const n = packed.stateBytes
  const cells = new Int16Array(n)
  const forms: Uint32Array[] = []
  let count = 0
  const first = store.successor(chain[0])
  packed.initial(() => {
    if (count++ === first) cells.set(packed.next)
  })
  // The search expanded the stored form (a representative), so its successor k is taken from there.
  const take = (): void => {
    const out = new Uint32Array(encoder.words)
    encoder.encode(cells, out)
    forms.push(out)
  }
  take()
  const rep = new Int16Array(n)
  for (let e = 1; e < chain.length; e++) {
    encoder.decode(forms[e - 1], rep)
    packed.cur.set(rep)
    const want = store.successor(chain[e])
    packed.expand((k) => {
      if (k === want) cells.set(packed.next)
    })
    take()
  }
  return forms
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
