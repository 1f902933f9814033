import { BadInput } from '../explorer/errors.js'
import type { Model, StepLabel } from '../explorer/model.js'
import { livelockMessage, NO_LIVELOCK } from '../explorer/livelock.js'
import { deadlockMessage, NO_DEADLOCK } from '../explorer/search.js'
import { instantiate, type Instance } from '../invariants/scenarios.js'
import type { Scenario } from '../model/scenario.js'
import type { Trace, TraceStep } from './format.js'

export interface ReplayedStep<S> {
  /** 1-based, as the race diagram numbers steps. */
  readonly index: number
  readonly label: StepLabel
  readonly before: S
  readonly after: S
}

export interface SeenViolation {
  readonly invariant: string
  readonly message: string
  /** The step after which it first held (0: the initial state). */
  readonly step: number
}

export interface Replay<S> {
  readonly initial: S
  readonly steps: readonly ReplayedStep<S>[]
  /** The first violation of each invariant seen, in order. */
  readonly violations: readonly SeenViolation[]
  /** Did `expect` break? (Replay stops at that step.) For an outcome property: did the run end, terminal, with the expected outcome? */
  readonly reproduced: boolean
  /** When the replay ends in a terminal state: each outcome property's outcome there. */
  readonly outcomes: Readonly<Record<string, string>>
  /** A lasso trace: the steps that repeat forever (1-based, inclusive), when they return to the cycle's first state with no progress step and no thread left enabled all along but never run. */
  readonly cycle?: { readonly from: number; readonly to: number }
}

/** A step of the trace that the model does not offer where the trace says it should. */
export class StepNotEnabled extends BadInput {}

/**
 * Re-executes `steps` from initial state `init` on the object backend,
 * checking every invariant (and deadlock at the end) after every step.
 * Stops at the step where `expect` breaks. A step the model does not offer
 * is a `StepNotEnabled` naming the step, the thread and where it is.
 */
export function replaySteps<S, A>(
  model: Model<S, A>,
  init: number,
  steps: readonly TraceStep[],
  expect?: string,
  expectOutcome?: string,
  cycleStart?: number,
): Replay<S> {
  if (cycleStart !== undefined && cycleStart >= steps.length) {
    throw new BadInput(`cycleStart ${cycleStart}: the trace has ${steps.length} steps, so no cycle starts there`)
  }
  const inits = model.initialStates()
  if (init >= inits.length) throw new BadInput(`initial state ${init} does not exist (the model has ${inits.length})`)
  let s = inits[init]
  const seen = new Map<string, SeenViolation>()
  const checkAll = (state: S, step: number): boolean => {
    for (const inv of model.invariants) {
      if (seen.has(inv.id)) continue
      const message = inv.check(state)
      if (message !== null) seen.set(inv.id, { invariant: inv.id, message, step })
    }
    return expect !== undefined && seen.has(expect)
  }
  const out: ReplayedStep<S>[] = []
  let cycleFirst: string | null = cycleStart === 0 ? model.fingerprint(s) : null
  let progressInCycle = false
  let done = checkAll(s, 0)
  for (let i = 0; !done && i < steps.length; i++) {
    const want = steps[i]
    let found: { a: A; after: S; label: StepLabel } | null = null
    for (const a of model.actions(s)) {
      const after = model.next(s, a)
      const label = model.describe(a, s, after)
      if (label.thread === want.thread && label.label === want.label && label.choice === want.choice) {
        found = { a, after, label }
        break
      }
    }
    if (!found) {
      const where = model.whereIs?.(s, want.thread) ?? `${want.thread} offers no such step`
      throw new StepNotEnabled(
        `step ${i + 1} is not enabled: the trace expects ${want.thread} to take ${want.label}` +
          `${want.choice > 0 ? ` (choice ${want.choice})` : ''}, but ${where}`,
      )
    }
    out.push({ index: i + 1, label: found.label, before: s, after: found.after })
    if (cycleStart !== undefined && i >= cycleStart && model.progress?.(found.a, s) === true) progressInCycle = true
    s = found.after
    if (cycleStart !== undefined && i + 1 === cycleStart) cycleFirst = model.fingerprint(s)
    done = checkAll(s, i + 1)
  }
  const ended = !done && model.actions(s).length === 0
  const terminal = model.terminal?.(s) ?? false
  if (ended && !terminal) {
    seen.set(NO_DEADLOCK, { invariant: NO_DEADLOCK, message: deadlockMessage(model, s), step: out.length })
  }
  const outcomes: Record<string, string> = ended && terminal ? Object.fromEntries((model.outcomes ?? []).map((p) => [p.id, p.outcome(s)])) : {}
  const isOutcome = (model.outcomes ?? []).some((p) => p.id === expect)
  const evidence = model.evidence?.find((p) => p.id === expect)
  // An evidence property's run reproduces when its last state shows the recorded fact.
  const showsFact = (): boolean => {
    const fact = evidence && expectOutcome !== undefined ? evidence.names.indexOf(expectOutcome) : -1
    return fact >= 0 && evidence!.facts(s).includes(fact)
  }
  // A lasso reproduces when the whole trace ran, its cycle ends in the state it started from, and no step of it is a progress step.
  const closes =
    cycleStart !== undefined && out.length === steps.length && !progressInCycle && model.fingerprint(s) === cycleFirst && fair(model, out.slice(cycleStart))
  const cycle = closes ? { from: cycleStart + 1, to: steps.length } : undefined
  if (cycle) {
    seen.set(NO_LIVELOCK, { invariant: NO_LIVELOCK, message: livelockMessage(cycle.from, cycle.to, model.whereIs?.(s)), step: out.length })
  }
  const reproduced =
    expect !== undefined &&
    (expect === NO_LIVELOCK
      ? cycle !== undefined
      : evidence ? showsFact() : isOutcome ? outcomes[expect] !== undefined && outcomes[expect] === expectOutcome : seen.has(expect))
  return { initial: inits[init], steps: out, violations: [...seen.values()], reproduced, outcomes, ...(cycle ? { cycle } : {}) }
}

/** Weak fairness of a cycle: no thread is enabled in every state of it without taking one of its steps. */
function fair<S, A>(model: Model<S, A>, cycle: readonly ReplayedStep<S>[]): boolean {
  const stepped = new Set(cycle.map((r) => r.label.thread))
  const enabledAt = cycle.map((r) => new Set(model.actions(r.before).map((a) => model.describe(a, r.before, r.before).thread)))
  const always = [...(enabledAt[0] ?? [])].filter((t) => enabledAt.every((here) => here.has(t)))
  return always.every((t) => stepped.has(t))
}

/**
 * The model a trace was recorded on; a foreign model hash is bad input.
 * `scenario` is the scenario object when it is not a built-in (a review file's).
 */
export function openTrace(trace: Trace, scenario?: Scenario): Instance {
  const inst = instantiate(scenario ?? trace.scenario, trace.variant, trace.params)
  if (inst.hash !== trace.modelHash) {
    throw new BadInput(
      `trace was recorded on model ${trace.modelHash} but ${trace.scenario}/${trace.variant} with these parameters is model ${inst.hash}`,
    )
  }
  return inst
}

export function replayTrace(trace: Trace, scenario?: Scenario): Replay<unknown> & { instance: Instance } {
  const instance = openTrace(trace, scenario)
  return { instance, ...replaySteps(instance.model, trace.init, trace.steps, trace.violation.invariant, trace.violation.outcome, trace.cycleStart) }
}
