import fc from 'fast-check'
import { Coverage } from './coverage.js'
import { MetricRanges } from './metric-ranges.js'
import type { Model } from './model.js'
import { DEFAULT_BOUNDS, type ExploreOptions } from './options.js'
import { packedOf } from './packing.js'
import { OutcomeWatch } from './outcomes.js'
import { actionsOf } from './path.js'
import type { Exploration, Violation } from './result.js'
import { deadlockMessage, NO_DEADLOCK } from './search.js'
import { NO_PARENT, StateStore } from './state-store.js'
import { BitLayout } from './bit-layout.js'

/** Longest schedule of one random run when no depth bound is given. */
const DEFAULT_RUN_LENGTH = 200

/**
 * Random exploration driven by fast-check. A run is a schedule: an array of
 * numbers drawn from the seed, the i-th picking the (x mod n)-th of the n
 * actions enabled at step i; a run ends when its schedule does or nothing is
 * enabled. The first run that breaks an invariant is shrunk by fast-check
 * (shorter schedules, smaller choices) while the *same* invariant stays
 * broken. The seed, and fast-check's replay path, reproduce the run.
 *
 * Random search proves nothing: without a violation its verdict is
 * `incomplete`, never `ok`.
 */
export function randomSearch<S, A>(model: Model<S, A>, options: ExploreOptions = {}): Exploration<A> & { path: string | null } {
  const started = performance.now()
  const packed = packedOf(model)
  const n = packed.stateBytes
  const layout = BitLayout.of(packed)
  const store = new StateStore(layout.words)
  const words = new Uint32Array(layout.words)
  const coverage = new Coverage(model as Model<unknown, unknown>)
  const metricRanges = new MetricRanges(model, packed)
  const maxStates = options.maxStates ?? DEFAULT_BOUNDS.maxStates
  const runLength = options.maxDepth ?? DEFAULT_RUN_LENGTH
  const runs = options.runs ?? DEFAULT_BOUNDS.runs
  const maxMs = (options.maxSeconds ?? DEFAULT_BOUNDS.maxSeconds) * 1000
  const seed = options.seed ?? Math.floor(Math.random() * 0x7fffffff)
  const inits: Int16Array[] = []
  packed.initial(() => inits.push(packed.next.slice()))
  const chosen = new Int16Array(n)
  let transitions = 0
  let maxDepth = 0
  let lastReport = started
  let timedOut = false
  /** Why `options.stop` ended the runs early, if it did. */
  let stopped: string | null = null
  /** Once a run has failed, shrinking keeps only schedules that break this same invariant. */
  let target: string | null = null
  // Outcome properties: each run's end state is observed; the run that first ends differently is the violation.
  const watch = new OutcomeWatch(model)
  const endings: { init: number; ks: number[] }[] = []

  interface Outcome {
    readonly invariant: string
    readonly ks: number[]
    readonly init: number
  }

  /** Runs one schedule; returns the first violation, if any. */
  const simulate = (schedule: readonly number[], record: boolean): Outcome | null => {
    const init = schedule.length > 0 ? schedule[0] % inits.length : 0
    packed.cur.set(inits[init])
    const ks: number[] = []
    const check = (): string | null => {
      packed.next.set(packed.cur)
      for (let i = 0; i < model.invariants.length; i++) if (!packed.holds(i)) return model.invariants[i].id
      return null
    }
    let broken = check()
    for (let step = 1; broken === null && step <= schedule.length; step++) {
      const count = packed.expand(noop)
      if (count === 0) {
        if (!packed.terminal()) broken = NO_DEADLOCK
        else if (record && watch.active) {
          endings.push({ init, ks: ks.slice() })
          watch.observe(packed.decode(packed.cur), endings.length - 1)
        }
        break
      }
      const pick = schedule[step - 1] % count
      let violated: string | null = null
      packed.expand((k, c) => {
        if (k !== pick) return
        if (record && coverage.counts.length > 0) coverage.counts[c]++
        chosen.set(packed.next)
        if (packed.outOfRange?.()) {
          violated = model.rangeInvariant!
          return
        }
        if (record) metricRanges.observeNext()
        for (let i = 0; i < model.invariants.length; i++) {
          if (!packed.holds(i)) {
            violated = model.invariants[i].id
            break
          }
        }
      })
      packed.cur.set(chosen)
      ks.push(pick)
      if (record) {
        transitions++
        if (step > maxDepth) maxDepth = step
        if (store.size < maxStates && !store.full && violated !== model.rangeInvariant) {
          if (layout.pack(chosen, words)) store.insert(words, NO_PARENT)
        }
      }
      broken = violated
    }
    return broken === null ? null : { invariant: broken, ks, init }
  }

  const property = fc.property(fc.array(fc.nat(0xffff), { maxLength: runLength, size: 'max' }), (schedule) => {
    if (target === null) {
      if (timedOut || performance.now() - started > maxMs) {
        timedOut = true
        return true
      }
      stopped ??= options.stop?.(store.size) ?? null
      if (stopped) return true
      const out = simulate(schedule, true)
      report()
      if (out === null) return true
      target = out.invariant
      return false
    }
    return simulate(schedule, false)?.invariant !== target
  })

  const report = (): void => {
    const now = performance.now()
    if (!options.onProgress || now - lastReport < 250) return
    lastReport = now
    const seconds = (now - started) / 1000
    options.onProgress({ states: store.size, transitions, depth: maxDepth, queue: 0, seconds, statesPerSecond: store.size / seconds })
  }

  const details = fc.check(property, { seed, numRuns: runs, endOnFailure: false })
  const violations: Violation<A>[] = []
  if (details.failed && details.counterexample) {
    const out = simulate(details.counterexample[0], false)
    if (out) violations.push(toViolation(model, out.init, out.ks, out.invariant))
  }
  for (const [i, b] of watch.broken) {
    const id = model.outcomes![i].id
    const message = watch.message(i)
    const run = (key: number, outcome: string): Violation<A> => ({
      ...toViolation(model, endings[key].init, endings[key].ks, id),
      message,
      outcome,
    })
    violations.push({ ...run(b.second, b.secondOutcome), witnesses: [run(b.first, b.firstOutcome)] })
  }
  const seconds = (performance.now() - started) / 1000
  return {
    verdict: violations.length > 0 ? 'violation' : 'incomplete',
    violations,
    incomplete:
      violations.length > 0
        ? null
        : `random: ${details.numRuns} runs of at most ${runLength} steps${timedOut ? ` (max-seconds ${options.maxSeconds} reached)` : ''}${stopped ? ` (${stopped})` : ''}, not exhaustive`,
    mode: 'random',
    seed,
    metrics: { ...watch.metrics },
    metricsAll: metricRanges.toRecord(),
    coverage: coverage.toRecord(),
    outcomes: watch.outcomes,
    path: details.counterexamplePath ?? null,
    stats: {
      states: store.size,
      transitions,
      maxDepth,
      seconds,
      statesPerSecond: seconds > 0 ? store.size / seconds : 0,
      storeBytes: store.bytes,
    },
  }
}

/** Replays action indices on the object backend to get the model's actions and the violation's message. */
function toViolation<S, A>(model: Model<S, A>, init: number, ks: readonly number[], invariant: string): Violation<A> {
  const { actions, last: s } = actionsOf(model, init, ks)
  const message =
    invariant === NO_DEADLOCK
      ? deadlockMessage(model, s)
      : (model.invariants.find((i) => i.id === invariant)?.check(s) ?? '')
  return { invariant, message, init, actions }
}

function noop(): void {}
