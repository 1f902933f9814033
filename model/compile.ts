/**
 * Compiles a `Program` (world shape + threads of labelled steps) into the
 * engine's `Model`, with both backends: plain objects under immer for
 * replay and traces, and a packed byte form for the hot loop. Both
 * enumerate actions in the same order (threads in order, choices ascending),
 * so the k-th packed successor is the k-th action.
 */
import { produce } from 'immer'
import { ModelError } from '../explorer/errors.js'
import type { Cells, EvidenceProperty, Invariant, Metric, Model, OutcomeProperty, PackedModel, StepClass, StepLabel } from '../explorer/model.js'
import { literalsOf } from './labels.js'
import { DONE, type Process, type ProcessAction, type Program, type State, type Step, type ThreadState } from './process.js'
import { Recorder, recordingView, recordThreads } from './footprint.js'
import { threadSymmetry } from './symmetry.js'
import { boundThreadIds, cells, decode, encode, sizeOf, struct, type Fields, type StructField, type ValueOf, view, zero } from './schema.js'

/** The built-in invariant every compiled model has: every field within its declared range. */
export const FIELD_IN_RANGE = 'field-in-range'

type AnyStep = Step<any, any>

export interface CompiledModel<W> extends Model<State<W>, ProcessAction> {
  /**
   * What replay depends on, for model hashes: the world's shape, the threads,
   * their processes and labels, and the initial state. Not the properties
   * checked, so adding an invariant or a metric keeps existing traces valid.
   */
  readonly structure: string
  readonly threadNames: readonly string[]
  /** Each thread's process name. */
  readonly processNames: readonly string[]
}

interface ThreadLayout {
  readonly name: string
  readonly labels: readonly string[]
  readonly pcOf: Readonly<Record<string, number>>
  readonly steps: readonly (AnyStep | undefined)[]
  readonly isEnd: readonly boolean[]
  /** Step class (coverage) of each label with a step. */
  readonly classes: readonly number[]
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
  const given = 'invariants' in properties ? properties : { invariants: properties }
  const { outcomes = [], evidence = [], metrics = [] } = given
  type W = ValueOf<G>
  // A thread-id field holds one of this program's threads (boundThreadIds).
  const globals = boundThreadIds(struct(program.globals), program.threads.length)
  const fieldInRange: Invariant<State<W>> = {
    id: FIELD_IN_RANGE,
    description: 'every field of the world and of every thread holds a value within its declared range (a counter never goes below its minimum)',
    check(s) {
      try {
        encodeState(s, new Int16Array(stateBytes))
        return null
      } catch (e) {
        if (e instanceof RangeError) return e.message
        throw e
      }
    },
  }
  const invariants = [...given.invariants.filter((i) => i.id !== FIELD_IN_RANGE), fieldInRange]
  for (const t of program.threads) checkLabels(name, t.process)
  const stepClasses: StepClass[] = []
  const classOf = new Map<string, number>()
  let offset = sizeOf(globals)
  const threads: ThreadLayout[] = program.threads.map(({ name: tname, process: p }) => {
    const labels = [...new Set<string>([p.start, ...Object.keys(p.steps), ...(p.ends ?? []), DONE])]
    const layout = {
      name: tname,
      labels,
      pcOf: Object.fromEntries(labels.map((l, i) => [l, i])) as Record<string, number>,
      steps: labels.map((l) => p.steps[l]),
      isEnd: labels.map((l) => !(l in p.steps) || (p.ends ?? []).includes(l)),
      classes: labels.map((l) => {
        const key = `${p.name}\t${l}`
        if (!(l in p.steps)) return -1
        if (!classOf.has(key)) {
          classOf.set(key, stepClasses.length)
          stepClasses.push({ group: p.name, name: l })
        }
        return classOf.get(key)!
      }),
      locals: boundThreadIds(struct(p.locals), program.threads.length),
      base: offset,
    }
    offset += 1 + sizeOf(layout.locals)
    return layout
  })
  const stateBytes = offset
  program.threads.forEach(({ name: tname, process: p, locals }) => {
    for (const k of Object.keys(locals ?? {})) {
      if (!(k in p.locals)) throw new ModelError(`${name}: thread ${tname} initialises '${k}', which is not a local of ${p.name}`)
    }
  })
  if (threads.some((t) => t.labels.length > 255)) throw new ModelError(`${name}: a process has more than 255 labels`)

  /** A goto's label: a step or an end label of the thread's process; anything else is a model error, never a silent end. */
  const pcOf = (t: ThreadLayout, label: string, from?: string): number => {
    const pc = t.pcOf[label]
    if (pc !== undefined) return pc
    throw new ModelError(
      `${name}: ${t.name}${from !== undefined ? ` at ${from}` : ''} goes to '${label}', which is neither a step nor an end label of its process (labels: ${t.labels.join(', ')})`,
    )
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
      const th = threads[a.thread]
      if (!step) throw new ModelError(`${th.name} has no step at ${me.pc}`)
      const from = me.pc
      let to: string
      try {
        to = step.run(d, me, a.choice)
      } catch (e) {
        throw stepFailed(th, from, e)
      }
      pcOf(th, to, from)
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

  /** An exception thrown by a step's code: a model error naming the thread and the step. */
  const stepFailed = (t: ThreadLayout, label: string, e: unknown): Error => {
    if (e instanceof ModelError) return e
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    return new ModelError(`${name}: ${t.name} at ${label} threw ${what}`)
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
    const cur = new Int16Array(stateBytes)
    const nxt = new Int16Array(stateBytes)
    // Properties see the world with its threads (a read of `threads` is noted: partial-order reduction
    // needs to know); steps see the globals without `threads`, and the threads only as their own `me`.
    const propertyRead = new Uint8Array(1)
    const worldView = (buf: Cells) => {
      const sw = view(globals, buf, 0) as W
      const w = view(globals, buf, 0) as W & { threads: unknown[] }
      const ts = threads.map((t) => view(t.locals, buf, t.base + 1))
      recordThreads(w, ts, propertyRead)
      return { w, ts, sw }
    }
    const c = worldView(cur)
    const n = worldView(nxt)
    // Footprints: a step re-run on a copy of `cur` through a view that records its shared reads.
    const scratch = new Int16Array(stateBytes)
    const recorder = new Recorder(stateBytes)
    const rw = recordingView(globals, scratch, 0, recorder) as W
    const rts = threads.map((t) => view(t.locals, scratch, t.base + 1))
    const sharedReads = (t: number): readonly number[] | null => {
      const step = threads[t].steps[cur[base[t]]]
      if (step === undefined) return null
      scratch.set(cur)
      recorder.reset()
      const me = rts[t]
      if (step.guard !== undefined && !step.guard(rw, me)) return null
      const choices = step.choices === undefined ? 1 : step.choices(rw, me)
      for (let ch = 0; ch < choices && !recorder.wrote; ch++) {
        scratch.set(cur)
        step.run(rw, me, ch)
      }
      return recorder.wrote ? null : recorder.reads
    }
    const owner = new Int32Array(stateBytes).fill(-1)
    threads.forEach((t, i) => owner.fill(i, t.base, t.base + 1 + sizeOf(t.locals)))
    const T = threads.length
    const base = threads.map((t) => t.base)
    const hot = threads.map((t) => t.steps.map((step, pc) => (step === undefined ? null : new HotStep(step, t.labels[pc], t.classes[pc]))))
    const init = new Int16Array(stateBytes)
    encodeState(initialState, init)
    // field-in-range is checked on every successor before it is stored (`outOfRange`); a stored state holds it.
    const checks = invariants.map((inv) => (inv === fieldInRange ? () => null : (inv.check as (w: unknown) => string | null)))
    const measures = metrics.map((m) => m.measure as (w: unknown) => number)
    const evidenceFacts = evidence.map((e) => e.facts as (w: unknown) => readonly number[])
    // A value written outside its field's range is not a state: the successor breaks field-in-range and is
    // never stored. The engine checks the ranges as it packs each successor (cellRanges); outOfRange is for random runs.
    const cellList = [
      ...cells(globals, ''),
      ...threads.flatMap((t) => [{ path: `${t.name}.pc`, min: 0, max: t.labels.length - 1 }, ...cells(t.locals, t.name)]),
    ]
    const cellMax = Int16Array.from(cellList, (c) => c.max)
    const cellMin = Int16Array.from(cellList, (c) => c.min)
    const signedCells = cellList.flatMap((c, i) => (c.min < 0 ? [i] : []))
    const symmetry = threadSymmetry({
      model: name,
      groups: program.symmetric ?? [],
      threads: threads.map((t, i) => ({ name: t.name, process: program.threads[i].process, base: t.base, size: 1 + sizeOf(t.locals) })),
      cells: cellList,
      init,
    })
    // The step being emitted, for stepThread/stepProgress and POR's actingThread (-1 outside expand).
    let stepT = -1
    let stepIsProgress = false
    const outOfRange = (): boolean => {
      for (let i = 0; i < stateBytes; i++) if (nxt[i] > cellMax[i] || nxt[i] < cellMin[i]) return true
      return false
    }
    return {
      stateBytes,
      signedCells,
      cellRanges: cellList.map(({ min, max }) => ({ min, max })),
      ...(symmetry ? { symmetry } : {}),
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
          const h = hot[t][cur[base[t]]]
          if (h === null) continue
          const me = c.ts[t]
          if (h.guard !== undefined && !h.guard.call(h.step, c.sw, me)) continue
          const choices = h.choices === undefined ? 1 : h.choices.call(h.step, c.sw, me)
          stepT = t
          stepIsProgress = h.progress
          for (let ch = 0; ch < choices; ch++) {
            nxt.set(cur)
            let to: string
            try {
              to = h.run.call(h.step, n.sw, n.ts[t], ch)
            } catch (e) {
              throw stepFailed(threads[t], h.label, e)
            }
            if (to !== h.lastTo) {
              h.lastPc = pcOf(threads[t], to, h.label)
              h.lastTo = to
            }
            nxt[base[t]] = h.lastPc
            emit(k++, h.cls)
          }
        }
        stepT = -1
        return k
      },
      outOfRange,
      stepThread: () => stepT,
      stepProgress: () => stepIsProgress,
      holds: (i) => checks[i](n.w) === null,
      measure: (i) => measures[i](n.w),
      facts: (i) => evidenceFacts[i](n.w),
      terminal() {
        for (let t = 0; t < T; t++) if (!threads[t].isEnd[cur[base[t]]]) return false
        return true
      },
      por: {
        owner,
        pcCell: Int32Array.from(base),
        actingThread: () => stepT,
        sharedReads,
        propertiesReadOwned() {
          const r = propertyRead[0] === 1
          propertyRead[0] = 0
          return r
        },
      },
    }
  })()

  const initCells = new Int16Array(stateBytes)
  encodeState(initialState, initCells)
  // A field's thread-id declaration only matters to symmetry reduction, not to replay: it is left out.
  const structure = JSON.stringify(
    {
      globals: program.globals,
      threads: threads.map((t, i) => ({ name: t.name, process: program.threads[i].process.name, labels: Object.keys(program.threads[i].process.steps), locals: program.threads[i].process.locals })),
      init: Array.from(initCells),
    },
    (k, v) => (k === 'thread' ? undefined : v),
  )

  return {
    name,
    structure,
    threadNames: threads.map((t) => t.name),
    processNames: program.threads.map((t) => t.process.name),
    stepClasses,
    classOf: (a, s) => threads[a.thread].classes[pcOf(threads[a.thread], s.threads[a.thread].pc)],
    rangeInvariant: FIELD_IN_RANGE,
    initialStates: () => [initialState],
    actions,
    next,
    invariants,
    outcomes,
    evidence,
    metrics,
    fingerprint: (s) => {
      const b = new Int16Array(stateBytes)
      encodeState(s, b)
      return Buffer.from(b).toString('latin1')
    },
    describe,
    progress: (a, s) => stepOf(s, a.thread)?.progress === true,
    threadOf: (a) => threads[a.thread].name,
    terminal: terminalState,
    whereIs,
    packed,
  }
}

/**
 * A step as the packed backend's hot loop calls it: every step the same
 * shape (a scenario's steps are object literals of many shapes, with and
 * without guard, choices, text: reading those off them is a megamorphic
 * property load per thread per state), with its class and the label it
 * last went to (most steps have one or two gotos) and that label's pc.
 * The step's own functions are called with the step as `this`.
 */
const NOT_RUN = Symbol('not run yet')
class HotStep {
  readonly guard: AnyStep['guard']
  readonly choices: AnyStep['choices']
  readonly run: AnyStep['run']
  readonly progress: boolean
  /** The label the step last went to (before its first run, a value no step returns: a step returning null still meets pcOf's error) and its pc. */
  lastTo: unknown = NOT_RUN
  lastPc = -1

  constructor(
    readonly step: AnyStep,
    readonly label: string,
    readonly cls: number,
  ) {
    this.guard = step.guard
    this.choices = step.choices
    this.run = step.run
    this.progress = step.progress === true
  }
}

/**
 * The build's label check (see labels.ts): every goto a step's code names is
 * a label of its process, and every step is named by some goto (or is the
 * start, or is listed in `gotos`).
 */
export function checkLabels(model: string, p: Process<any, any>): void {
  const declared = new Set([...Object.keys(p.steps), ...(p.ends ?? []), DONE])
  const named = new Set<string>([p.start, ...(p.gotos ?? [])])
  for (const [label, step] of Object.entries(p.steps)) {
    for (const source of step.targets ?? [step.run]) {
      const { returned, all } = typeof source === 'string' ? { returned: [source], all: [source] } : literalsOf(source)
      for (const to of returned) {
        if (!declared.has(to)) {
          throw new ModelError(`${model}: process ${p.name}, step ${label}: goto '${to}' is not a label of the process (steps: ${Object.keys(p.steps).join(', ')}; ends: ${[...(p.ends ?? []), DONE].join(', ')})`)
        }
      }
      for (const l of all) named.add(l)
    }
  }
  if (!(p.start in p.steps) && !declared.has(p.start)) throw new ModelError(`${model}: process ${p.name} starts at '${p.start}', which has no step`)
  for (const label of Object.keys(p.steps)) {
    if (!named.has(label)) {
      throw new ModelError(`${model}: process ${p.name}, step ${label}: no goto reaches it (a mistyped label? a computed goto is listed in the process's gotos; a step a patch leaves unreached is removed with ${label}: null)`)
    }
  }
}
