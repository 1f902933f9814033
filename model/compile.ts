/**
 * Compiles a `Program` (world shape + threads of labelled steps) into the
 * engine's `Model`, with both backends: plain objects under immer for
 * replay and traces, and a packed byte form for the hot loop. Both
 * enumerate actions in the same order (threads in order, choices ascending),
 * so the k-th packed successor is the k-th action.
 */
import { produce } from 'immer'
import { ModelError } from '../explorer/errors.js'
import type { Cells, EvidenceProperty, Invariant, Metric, Model, OutcomeProperty, PackedModel, StepLabel } from '../explorer/model.js'
import type { ProcessAction, Program, State, Step, ThreadState } from './process.js'
import { cells, decode, encode, sizeOf, struct, type Fields, type StructField, type ValueOf, view, zero } from './schema.js'

type AnyStep = Step<any, any>

export interface CompiledModel<W> extends Model<State<W>, ProcessAction> {
  /** A canonical description of the compiled shape (globals, threads, labels, invariants), for model hashes. */
  readonly structure: string
  readonly threadNames: readonly string[]
}

interface ThreadLayout {
  readonly name: string
  readonly labels: readonly string[]
  readonly pcOf: Readonly<Record<string, number>>
  readonly steps: readonly (AnyStep | undefined)[]
  readonly isEnd: readonly boolean[]
  readonly locals: StructField
  /** Byte offset of the thread's pc; its locals follow. */
  readonly base: number
}

export interface Properties<S> {
  readonly invariants: readonly Invariant<S>[]
  readonly outcomes?: readonly OutcomeProperty<S>[]
  readonly evidence?: readonly EvidenceProperty<S>[]
  readonly metrics?: readonly Metric<S>[]
}

export function compile<G extends Fields>(
  name: string,
  program: Program<G>,
  properties: readonly Invariant<State<ValueOf<G>>>[] | Properties<State<ValueOf<G>>>,
): CompiledModel<ValueOf<G>> {
  const { invariants, outcomes = [], evidence = [], metrics = [] } = 'invariants' in properties ? properties : { invariants: properties }
  type W = ValueOf<G>
  const globals = struct(program.globals)
  let offset = sizeOf(globals)
  const threads: ThreadLayout[] = program.threads.map(({ name: tname, process: p }) => {
    // Labels with no step (`done`) are registered by `pcOf` when a step first returns them.
    const labels = [...new Set<string>([p.start, ...Object.keys(p.steps)])]
    const layout = {
      name: tname,
      labels,
      pcOf: Object.fromEntries(labels.map((l, i) => [l, i])) as Record<string, number>,
      steps: labels.map((l) => p.steps[l]),
      isEnd: labels.map((l) => !(l in p.steps) || (p.ends ?? []).includes(l)),
      locals: struct(p.locals),
      base: offset,
    }
    offset += 1 + sizeOf(layout.locals)
    return layout
  })
  const stateBytes = offset
  program.threads.forEach(({ name: tname, process: p, locals }) => {
    for (const k of Object.keys(locals ?? {})) {
      if (!(k in p.locals)) throw new Error(`${name}: thread ${tname} initialises '${k}', which is not a local of ${p.name}`)
    }
  })
  if (threads.some((t) => t.labels.length > 255)) throw new Error(`${name}: a process has more than 255 labels`)

  /** A goto to a label with no step: the thread's end. Registered on first use so `done`-style labels need no declaration. */
  const pcOf = (t: ThreadLayout, label: string): number => {
    const pc = t.pcOf[label]
    if (pc !== undefined) return pc
    const mutable = t as { -readonly [K in keyof ThreadLayout]: any }
    mutable.labels.push(label)
    mutable.pcOf[label] = mutable.labels.length - 1
    mutable.steps.push(undefined)
    mutable.isEnd.push(true)
    return mutable.labels.length - 1
  }

  // ---- object backend -------------------------------------------------
  const initialState: State<W> = produce(
    {
      ...(zero(globals) as W),
      threads: threads.map(
        (t, i): ThreadState => ({
          pc: program.threads[i].process.start,
          ...(zero(t.locals) as Record<string, number>),
          ...program.threads[i].locals,
        }),
      ),
    } as State<W>,
    (d: any) => {
      program.init?.(d as W)
    },
  )

  const stepOf = (s: State<W>, t: number): AnyStep | undefined => {
    const th = threads[t]
    return th.steps[pcOf(th, s.threads[t].pc)]
  }

  const actions = (s: State<W>): ProcessAction[] => {
    const out: ProcessAction[] = []
    for (let t = 0; t < threads.length; t++) {
      const step = stepOf(s, t)
      if (!step) continue
      const me = s.threads[t]
      if (step.guard && !step.guard(s, me)) continue
      const n = step.choices ? step.choices(s, me) : 1
      for (let c = 0; c < n; c++) out.push({ thread: t, choice: c })
    }
    return out
  }

  const next = (s: State<W>, a: ProcessAction): State<W> =>
    produce(s, (d: any) => {
      const me = d.threads[a.thread] as ThreadState
      const step = stepOf(s, a.thread)
      if (!step) throw new Error(`${threads[a.thread].name} has no step at ${me.pc}`)
      const to = step.run(d, me, a.choice)
      pcOf(threads[a.thread], to)
      me.pc = to
    })

  const encodeState = (s: State<W>, out: Cells): void => {
    encode(globals, s, out, 0, '')
    threads.forEach((t, i) => {
      const th = s.threads[i]
      out[t.base] = pcOf(t, th.pc)
      encode(t.locals, th, out, t.base + 1, t.name)
    })
  }

  const decodeState = (b: Cells): State<W> => ({
    ...(decode(globals, b, 0) as W),
    threads: threads.map((t): ThreadState => ({ pc: t.labels[b[t.base]], ...(decode(t.locals, b, t.base + 1) as Record<string, number>) })),
  }) as State<W>

  const blocked = (s: State<W>, t: number): boolean => {
    const step = stepOf(s, t)
    return !!step && !!step.guard && !step.guard(s, s.threads[t])
  }

  const terminalState = (s: State<W>): boolean => threads.every((t, i) => t.isEnd[pcOf(t, s.threads[i].pc)])

  const whereIs = (s: State<W>, thread?: string): string => {
    const one = (i: number): string => {
      const t = threads[i]
      const pc = s.threads[i].pc
      if (!t.steps[pcOf(t, pc)]) return `${t.name} has finished (at ${pc})`
      return `${t.name} is at ${pc}${blocked(s, i) ? ', blocked' : ''}`
    }
    if (thread !== undefined) {
      const i = threads.findIndex((t) => t.name === thread)
      return i < 0 ? `there is no thread ${thread}` : one(i)
    }
    return threads.map((_, i) => one(i)).join('; ')
  }

  const describe = (a: ProcessAction, before: State<W>): StepLabel => {
    const me = before.threads[a.thread]
    const step = stepOf(before, a.thread)
    const n = step?.choices ? step.choices(before, me) : 1
    const text = step?.text ? step.text(before, me, a.choice) : n > 1 ? `${me.pc}(${a.choice})` : me.pc
    return { thread: threads[a.thread].name, label: me.pc, choice: a.choice, text }
  }

  // ---- packed backend -------------------------------------------------
  const packed = ((): PackedModel<State<W>> => {
    const cur = new Uint16Array(stateBytes)
    const nxt = new Uint16Array(stateBytes)
    const worldView = (buf: Cells) => {
      const w = view(globals, buf, 0) as W & { threads: unknown[] }
      const ts = threads.map((t) => view(t.locals, buf, t.base + 1))
      Object.defineProperty(w, 'threads', { value: ts })
      return { w, ts }
    }
    const c = worldView(cur)
    const n = worldView(nxt)
    const T = threads.length
    const base = threads.map((t) => t.base)
    const init = new Uint16Array(stateBytes)
    encodeState(initialState, init)
    const checks = invariants.map((inv) => inv.check as (w: unknown) => string | null)
    const evidenceFacts = evidence.map((e) => e.facts as (w: unknown) => number)
    // A value written past its field's maximum is a modelling error, not a state; one written below 0
    // wraps to 65535 or so in a 16-bit cell and fails the same test.
    const cellList = [
      ...cells(globals, ''),
      ...threads.flatMap((t) => [{ path: `${t.name}.pc`, max: 255 }, ...cells(t.locals, t.name)]),
    ]
    const cellMax = Uint16Array.from(cellList, (c) => c.max)
    const overflow = (t: number, i: number): never => {
      const v = nxt[i] > 0x7fff ? nxt[i] - 0x10000 : nxt[i]
      throw new ModelError(
        `${name}: step ${threads[t].name} ${threads[t].labels[cur[base[t]]]} sets ${cellList[i].path} = ${v}, outside 0..${cellList[i].max}`,
      )
    }
    return {
      stateBytes,
      cur,
      next: nxt,
      encode: encodeState,
      decode: decodeState,
      initial(emit) {
        nxt.set(init)
        emit()
      },
      expand(emit) {
        let k = 0
        for (let t = 0; t < T; t++) {
          const th = threads[t]
          const step = th.steps[cur[base[t]]]
          if (step === undefined) continue
          const me = c.ts[t]
          if (step.guard !== undefined && !step.guard(c.w, me)) continue
          const choices = step.choices === undefined ? 1 : step.choices(c.w, me)
          for (let ch = 0; ch < choices; ch++) {
            nxt.set(cur)
            const to = step.run(n.w, n.ts[t], ch)
            const pc = th.pcOf[to]
            nxt[base[t]] = pc === undefined ? pcOf(th, to) : pc
            for (let i = 0; i < stateBytes; i++) if (nxt[i] > cellMax[i]) overflow(t, i)
            emit(k++)
          }
        }
        return k
      },
      holds: (i) => checks[i](n.w) === null,
      facts: (i) => evidenceFacts[i](n.w),
      terminal() {
        for (let t = 0; t < T; t++) if (!threads[t].isEnd[cur[base[t]]]) return false
        return true
      },
    }
  })()

  const structure = JSON.stringify({
    name,
    globals: program.globals,
    threads: threads.map((t, i) => ({ name: t.name, process: program.threads[i].process.name, labels: Object.keys(program.threads[i].process.steps), locals: program.threads[i].process.locals })),
    invariants: invariants.map((i) => i.id),
    outcomes: outcomes.map((o) => o.id),
    ...(evidence.length ? { evidence: evidence.map((e) => e.id) } : {}),
    metrics: metrics.map((m) => m.id),
  })

  return {
    name,
    structure,
    threadNames: threads.map((t) => t.name),
    initialStates: () => [initialState],
    actions,
    next,
    invariants,
    outcomes,
    evidence,
    metrics,
    fingerprint: (s) => {
      const b = new Uint16Array(stateBytes)
      encodeState(s, b)
      return Buffer.from(b).toString('latin1')
    },
    describe,
    terminal: terminalState,
    whereIs,
    packed,
  }
}
