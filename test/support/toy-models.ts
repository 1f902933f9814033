/**
 * Small toy models written directly against explorer/model.ts (plain
 * objects, no process machinery, no packed form: the engine explores them
 * through its interning adapter). Each is small enough to be enumerated by a
 * test's own brute force, which is the independent evidence the engine's
 * counts and counterexamples are compared with.
 */
import type { Model, StepLabel } from '../../explorer/model.js'

/** A canonical key of a plain JSON-able value: object keys sorted, so it does not depend on insertion order. */
export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  const o = v as Record<string, unknown>
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`
}

function label(thread: string, text: string, choice = 0): StepLabel {
  return { thread, label: text, choice, text }
}

function toy<S, A>(m: Omit<Model<S, A>, 'fingerprint' | 'describe'> & Partial<Pick<Model<S, A>, 'describe'>>): Model<S, A> {
  return {
    fingerprint: (s) => canonical(s),
    describe: (a) => label('t', canonical(a)),
    ...m,
  }
}

// ---------------------------------------------------------------------------
// Counter race: each thread does `tmp = counter; tmp++; counter = tmp` (three
// atomic steps) `rounds` times. `done` counts completed increments. Unlocked,
// two threads lose an update and `counter-matches-done` breaks; locked (an
// acquire step before the read, a release after the write) it holds.
// `counter-not-above-done` holds in both.

export interface CounterThread {
  readonly pc: number
  readonly tmp: number
  readonly left: number
}
export interface CounterState {
  readonly counter: number
  readonly done: number
  readonly lock: number
  readonly threads: readonly CounterThread[]
}

const C_ACQUIRE = 0
const C_READ = 1
const C_INC = 2
const C_WRITE = 3
const C_RELEASE = 4
const C_DONE = 5

export function counterRace(opts: { threads?: number; rounds?: number; locked: boolean }): Model<CounterState, number> {
  const T = opts.threads ?? 2
  const rounds = opts.rounds ?? 1
  const locked = opts.locked
  const start = locked ? C_ACQUIRE : C_READ
  const setThread = (s: CounterState, t: number, th: CounterThread, g: Partial<CounterState> = {}): CounterState => ({
    ...s,
    ...g,
    threads: s.threads.map((x, i) => (i === t ? th : x)),
  })
  return toy<CounterState, number>({
    name: `counter-race/${locked ? 'locked' : 'unlocked'}`,
    initialStates: () => [
      { counter: 0, done: 0, lock: 0, threads: Array.from({ length: T }, () => ({ pc: start, tmp: 0, left: rounds })) },
    ],
    actions(s) {
      const out: number[] = []
      s.threads.forEach((th, t) => {
        if (th.pc === C_DONE) return
        if (th.pc === C_ACQUIRE && s.lock !== 0) return
        out.push(t)
      })
      return out
    },
    next(s, t) {
      const th = s.threads[t]
      switch (th.pc) {
        case C_ACQUIRE:
          return setThread(s, t, { ...th, pc: C_READ }, { lock: t + 1 })
        case C_READ:
          return setThread(s, t, { ...th, pc: C_INC, tmp: s.counter })
        case C_INC:
          return setThread(s, t, { ...th, pc: C_WRITE, tmp: th.tmp + 1 })
        case C_WRITE: {
          const left = th.left - 1
          const after = locked ? C_RELEASE : left > 0 ? start : C_DONE
          return setThread(s, t, { pc: after, tmp: 0, left }, { counter: th.tmp, done: s.done + 1 })
        }
        case C_RELEASE:
          return setThread(s, t, { ...th, pc: th.left > 0 ? start : C_DONE }, { lock: 0 })
        default:
          throw new Error(`counter-race: thread ${t} has no step at pc ${th.pc}`)
      }
    },
    invariants: [
      {
        id: 'counter-matches-done',
        description: 'counter == number of completed increments',
        check: (s) => (s.counter === s.done ? null : `counter ${s.counter} but ${s.done} increments done`),
      },
      {
        id: 'counter-not-above-done',
        description: 'counter <= number of completed increments',
        check: (s) => (s.counter <= s.done ? null : `counter ${s.counter} above ${s.done}`),
      },
    ],
    terminal: (s) => s.threads.every((th) => th.pc === C_DONE),
    describe: (t, before) => label(`t${t}`, `pc${before.threads[t].pc}`),
  })
}

// ---------------------------------------------------------------------------
// Lock order: two threads, locks A and B. Thread 0 takes A then B; thread 1
// takes B then A (`abba`, a deadlock when each holds its first lock) or A
// then B (no deadlock). Each releases in reverse order and finishes.
// `terminal` is true only when both threads have finished.

export interface LockState {
  /** Owner + 1 of lock A / B, 0 = free. */
  readonly a: number
  readonly b: number
  readonly pcs: readonly number[]
}
const L_DONE = 4

export function lockOrder(opts: { abba: boolean }): Model<LockState, number> {
  // per thread: the locks in acquisition order (0 = A, 1 = B)
  const order = [
    [0, 1],
    opts.abba ? [1, 0] : [0, 1],
  ]
  const get = (s: LockState, l: number) => (l === 0 ? s.a : s.b)
  const set = (s: LockState, l: number, v: number): LockState => (l === 0 ? { ...s, a: v } : { ...s, b: v })
  return toy<LockState, number>({
    name: `lock-order/${opts.abba ? 'ab-ba' : 'ab-ab'}`,
    initialStates: () => [{ a: 0, b: 0, pcs: [0, 0] }],
    actions(s) {
      const out: number[] = []
      for (let t = 0; t < 2; t++) {
        const pc = s.pcs[t]
        if (pc === L_DONE) continue
        if (pc < 2 && get(s, order[t][pc]) !== 0) continue // blocked acquire
        out.push(t)
      }
      return out
    },
    next(s, t) {
      const pc = s.pcs[t]
      const pcs = s.pcs.map((p, i) => (i === t ? p + 1 : p))
      // pc 0,1: acquire order[pc]; pc 2: release order[1]; pc 3: release order[0]
      const lock = pc < 2 ? order[t][pc] : order[t][3 - pc]
      return { ...set(s, lock, pc < 2 ? t + 1 : 0), pcs }
    },
    invariants: [
      {
        id: 'mutual-exclusion',
        description: 'a lock has at most one owner (always holds: a sanity invariant)',
        check: (s) => (s.a >= 0 && s.a <= 2 && s.b >= 0 && s.b <= 2 ? null : 'bad owner'),
      },
    ],
    terminal: (s) => s.pcs.every((p) => p === L_DONE),
    describe: (t, before) => label(`t${t}`, `pc${before.pcs[t]}`),
  })
}

// ---------------------------------------------------------------------------
// Several initial states (one a duplicate): `lane` is fixed by the initial
// state, x climbs by 1 or 2 up to 4. The bug (lane 2 at x 3) is reachable
// only from the third initial state, which is not the first.

export interface LaneState {
  readonly lane: number
  readonly x: number
}
export type LaneAction = 'inc1' | 'inc2'

export function multiInit(): Model<LaneState, LaneAction> {
  return toy<LaneState, LaneAction>({
    name: 'multi-init',
    initialStates: () => [
      { lane: 0, x: 0 },
      { lane: 1, x: 1 },
      { lane: 0, x: 0 },
      { lane: 2, x: 0 },
    ],
    actions(s) {
      const out: LaneAction[] = []
      if (s.x < 4) out.push('inc1')
      if (s.x <= 2) out.push('inc2')
      return out
    },
    next: (s, a) => ({ ...s, x: s.x + (a === 'inc1' ? 1 : 2) }),
    invariants: [
      {
        id: 'lane2-below-3',
        description: 'lane 2 never reaches x = 3',
        check: (s) => (s.lane === 2 && s.x === 3 ? 'lane 2 at x 3' : null),
      },
    ],
    terminal: (s) => s.x === 4,
  })
}

// ---------------------------------------------------------------------------
// A grid walk: from (0,0), `right` (i+1, while i < W) and `down` (j+1, while
// j < H). A state's depth is exactly i+j; the bug is at (bi, bj), so it is
// only visible to a search whose depth bound is at least bi+bj.

export interface GridState {
  readonly i: number
  readonly j: number
}
export type GridAction = 'right' | 'down'

export function grid(opts: { W: number; H: number; bug?: readonly [number, number] }): Model<GridState, GridAction> {
  const { W, H, bug } = opts
  return toy<GridState, GridAction>({
    name: `grid/${W}x${H}`,
    initialStates: () => [{ i: 0, j: 0 }],
    actions(s) {
      const out: GridAction[] = []
      if (s.i < W) out.push('right')
      if (s.j < H) out.push('down')
      return out
    },
    next: (s, a) => (a === 'right' ? { i: s.i + 1, j: s.j } : { i: s.i, j: s.j + 1 }),
    invariants: bug
      ? [
          {
            id: 'avoid-cell',
            description: `never at (${bug[0]},${bug[1]})`,
            check: (s) => (s.i === bug[0] && s.j === bug[1] ? `at (${s.i},${s.j})` : null),
          },
        ]
      : [],
    terminal: (s) => s.i === W && s.j === H,
  })
}

// ---------------------------------------------------------------------------
// A tree: from the root pick one of B branches, then take L binary steps
// (`bits` records them). The bug is at one leaf of the last branch: DFS
// (first action first) reaches it after every other branch, BFS at depth L+1.

export interface TreeState {
  readonly branch: number
  readonly depth: number
  readonly bits: number
}

export function deepBranchBug(opts: { B: number; L: number; bugBits: number }): Model<TreeState, number> {
  const { B, L, bugBits } = opts
  return toy<TreeState, number>({
    name: `deep-branch/${B}x${L}`,
    initialStates: () => [{ branch: -1, depth: 0, bits: 0 }],
    actions: (s) => (s.branch < 0 ? Array.from({ length: B }, (_, b) => b) : s.depth < L ? [0, 1] : []),
    next: (s, a) => (s.branch < 0 ? { branch: a, depth: 0, bits: 0 } : { branch: s.branch, depth: s.depth + 1, bits: s.bits * 2 + a }),
    invariants: [
      {
        id: 'no-bad-leaf',
        description: 'the bad leaf of the last branch is never reached',
        check: (s) => (s.branch === B - 1 && s.depth === L && s.bits === bugBits ? `bad leaf ${s.bits}` : null),
      },
    ],
    terminal: (s) => s.branch >= 0 && s.depth === L,
  })
}

// ---------------------------------------------------------------------------
// A cyclic graph with paths of many lengths to one state: (a, b) mod M with
// `a = a+1 mod M` and `b = a+b mod M`. Nothing is terminal and no state is
// stuck. Exercises DFS re-parenting under a depth bound.

export interface ModState {
  readonly a: number
  readonly b: number
}

export function modCounter(M: number): Model<ModState, 'inc' | 'mix'> {
  return toy<ModState, 'inc' | 'mix'>({
    name: `mod-counter/${M}`,
    initialStates: () => [{ a: 0, b: 0 }],
    actions: () => ['inc', 'mix'],
    next: (s, act) => (act === 'inc' ? { a: (s.a + 1) % M, b: s.b } : { a: s.a, b: (s.a + s.b) % M }),
    invariants: [],
  })
}

// ---------------------------------------------------------------------------
// A chain s0 -> s1 -> ... -> sN where sN has no action. `stuckIsTerminal`
// decides whether sN is a finished state or a deadlock; `withTerminal: false`
// leaves `terminal` out altogether (every stuck state is then a deadlock).

export function chain(opts: { N: number; stuckIsTerminal: boolean; withTerminal?: boolean }): Model<number, 'step'> {
  const { N, stuckIsTerminal } = opts
  const m = toy<number, 'step'>({
    name: `chain/${N}`,
    initialStates: () => [0],
    actions: (s) => (s < N ? ['step'] : []),
    next: (s) => s + 1,
    invariants: [],
    terminal: (s) => stuckIsTerminal && s === N,
  })
  if (opts.withTerminal === false) {
    const { terminal: _drop, ...rest } = m
    return rest
  }
  return m
}

/** Every toy, with whether a violation (of an invariant or no-deadlock) is expected. */
export function allToys(): { readonly model: Model<any, any>; readonly buggy: boolean }[] {
  return [
    { model: counterRace({ locked: false }), buggy: true },
    { model: counterRace({ locked: true }), buggy: false },
    { model: counterRace({ locked: true, threads: 3, rounds: 2 }), buggy: false },
    { model: counterRace({ locked: false, threads: 2, rounds: 2 }), buggy: true },
    { model: lockOrder({ abba: true }), buggy: true },
    { model: lockOrder({ abba: false }), buggy: false },
    { model: multiInit(), buggy: true },
    { model: grid({ W: 5, H: 4 }), buggy: false },
    { model: grid({ W: 5, H: 4, bug: [3, 4] }), buggy: true },
    { model: deepBranchBug({ B: 3, L: 6, bugBits: 45 }), buggy: true },
    { model: modCounter(7), buggy: false },
    { model: chain({ N: 5, stuckIsTerminal: true }), buggy: false },
    { model: chain({ N: 5, stuckIsTerminal: false }), buggy: true },
  ]
}
