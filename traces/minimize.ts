import type { Model } from '../explorer/model.js'
import type { TraceStep } from './format.js'
import { replaySteps, StepNotEnabled } from './replay.js'

/**
 * Delta debugging (Zeller's ddmin) over a trace's steps: the smallest
 * subsequence found that still replays (every step enabled) and still
 * breaks the same invariant. A candidate is also cut right after the step
 * where the invariant breaks. BFS traces are already shortest; random ones
 * go through this before being saved.
 */
export function minimizeSteps<S, A>(
  model: Model<S, A>,
  init: number,
  steps: readonly TraceStep[],
  invariant: string,
  outcome?: string,
): TraceStep[] {
  const reproduces = (candidate: readonly TraceStep[]): TraceStep[] | null => {
    try {
      const r = replaySteps(model, init, candidate, invariant, outcome)
      return r.reproduced ? candidate.slice(0, r.steps.length) : null
    } catch (e) {
      if (e instanceof StepNotEnabled) return null
      throw e
    }
  }
  let current = reproduces(steps)
  if (current === null) throw new Error(`minimize: the trace does not break ${invariant}`)
  for (let changed = true; changed; ) {
    const before: number = current.length
    current = ddmin(current, reproduces)
    current = dropThreadTails(current, reproduces)
    changed = current.length < before
  }
  return current
}

type Reproduces = (candidate: readonly TraceStep[]) => TraceStep[] | null

/**
 * Interleaved threads defeat plain ddmin: a thread's steps are scattered, and
 * dropping one (say mmap_read_lock) without its partner (mmap_read_unlock)
 * breaks the replay. So also try dropping the tail of one thread's steps, from
 * its k-th step on, for each thread and k, earliest first.
 */
function dropThreadTails(steps: TraceStep[], reproduces: Reproduces): TraceStep[] {
  let current = steps
  for (const thread of new Set(current.map((s) => s.thread))) {
    const positions = current.flatMap((s, i) => (s.thread === thread ? [i] : []))
    for (const from of positions) {
      const kept = reproduces(current.filter((s, i) => s.thread !== thread || i < from))
      if (kept !== null) {
        current = kept
        break
      }
    }
  }
  return current
}

/** Zeller's ddmin, complements only (subsets of an interleaving rarely replay on their own). */
function ddmin(steps: TraceStep[], reproduces: Reproduces): TraceStep[] {
  let current = steps
  let n = 2
  while (current.length >= 2) {
    const chunk = Math.ceil(current.length / n)
    let reduced = false
    // Try each complement (the trace without one chunk).
    for (let start = 0; start < current.length; start += chunk) {
      const candidate = [...current.slice(0, start), ...current.slice(start + chunk)]
      const kept = reproduces(candidate)
      if (kept !== null) {
        current = kept
        n = Math.max(n - 1, 2)
        reduced = true
        break
      }
    }
    if (!reduced) {
      if (n >= current.length) break
      n = Math.min(n * 2, current.length)
    }
  }
  return current
}
