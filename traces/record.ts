import type { Exploration, Violation } from '../explorer/result.js'
import type { ProcessAction } from '../model/process.js'
import type { Instance } from '../invariants/scenarios.js'
import { TRACE_FORMAT, TRACE_VERSION, type Trace, type TraceStep } from './format.js'
import { minimizeSteps } from './minimize.js'
import { replaySteps } from './replay.js'

/**
 * A violation found by the explorer as a trace file's content. BFS paths are
 * already shortest; DFS and random ones are minimized by delta debugging.
 * The message is the one the minimized trace ends with. A violation of a
 * property of the whole exploration is several runs (the violation and its
 * `witnesses`, see `runsOf`): record each as its own trace.
 */
export function recordTrace(
  inst: Instance,
  exploration: Exploration<ProcessAction> & { path?: string | null },
  violation: Violation<ProcessAction>,
): Trace {
  const model = inst.model
  let s = model.initialStates()[violation.init]
  let steps: TraceStep[] = violation.actions.map((a) => {
    const after = model.next(s, a)
    const { thread, label, choice } = model.describe(a, s, after)
    s = after
    return { thread, label, choice }
  })
  const { invariant, outcome, cycleStart } = violation
  // A lasso is already a shortest prefix and a shortest cycle through its state; delta debugging would cut the cycle open.
  if (exploration.mode !== 'bfs' && cycleStart === undefined) steps = minimizeSteps(model, violation.init, steps, invariant, outcome)
  const replay = replaySteps(model, violation.init, steps, invariant, outcome, cycleStart)
  if (!replay.reproduced) throw new Error(`recordTrace: the trace does not reproduce ${invariant}`)
  // An outcome property's message is the exploration's (it compares runs); an invariant's is the state's.
  const message = outcome !== undefined ? violation.message : replay.violations.find((v) => v.invariant === invariant)!.message
  return {
    format: TRACE_FORMAT,
    version: TRACE_VERSION,
    scenario: inst.name,
    ...(inst.scenario.source ? { source: { ...inst.scenario.source } } : {}),
    variant: inst.variant,
    params: { ...inst.params },
    modelHash: inst.hash,
    search: { mode: exploration.mode, seed: exploration.seed, path: exploration.path ?? null },
    init: violation.init,
    steps: replay.steps.map((r) => ({ thread: r.label.thread, label: r.label.label, choice: r.label.choice, text: r.label.text })),
    ...(cycleStart !== undefined ? { cycleStart } : {}),
    violation: outcome !== undefined ? { invariant, message, outcome } : { invariant, message },
  }
}
