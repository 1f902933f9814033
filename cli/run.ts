/**
 * One check as every command runs it: instantiate the scenario, explore,
 * turn each violation into a (minimized) trace and save it atomically.
 */
import { join } from 'node:path'
import { explore } from '../explorer/explore.js'
import { defaultWorkers } from '../explorer/parallel-bfs.js'
import { scenarioRecipe } from './model-recipe.js'
import type { ExploreOptions } from '../explorer/options.js'
import { runsOf, type Exploration } from '../explorer/result.js'
import { instantiate, type Instance } from '../invariants/scenarios.js'
import type { ProcessAction } from '../model/process.js'
import type { Scenario } from '../model/scenario.js'
import { saveTrace } from '../traces/file.js'
import type { Trace } from '../traces/format.js'
import { recordTrace } from '../traces/record.js'
import { isFileWriteError } from '../traces/write.js'
import { checkpointing, type CheckpointFlags } from './checkpoint.js'
import { progressLine } from './progress.js'

export interface CheckRequest {
  readonly scenario: Scenario
  readonly variant?: string
  readonly params?: Readonly<Record<string, string | number>>
  readonly explore?: ExploreOptions
  /** Where to write the trace of the shortest violation; others go beside it. Default: traces/<scenario>-<variant>-<invariant>.json */
  readonly out?: string
  readonly traceDir?: string
  readonly progress?: boolean
  /** Prefixes the progress line (compare: the variant being checked). */
  readonly progressLabel?: string
  /** Write trace files (default true). */
  readonly save?: boolean
  /** `check --checkpoint/--resume` (BFS). */
  readonly checkpoint?: CheckpointFlags
}

export interface SavedTrace {
  readonly trace: Trace
  /** Where it was written; null when it was not (not asked, or the write failed). */
  readonly file: string | null
  /** Why it could not be written: one line naming the path and the reason. */
  readonly writeError?: string
}

export interface CheckOutcome {
  readonly instance: Instance
  readonly exploration: Exploration<ProcessAction> & { path?: string | null }
  /** One per run of each violation, the shortest violation's first. */
  readonly traces: readonly SavedTrace[]
  /** Where the final checkpoint of a search cut short was written (`--checkpoint`), to say so. */
  readonly checkpointNote?: string | null
}

const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'outcome'

export function runCheck(req: CheckRequest): CheckOutcome {
  const instance = instantiate(req.scenario, req.variant, req.params ?? {})
  const progress = progressLine(req.progress ?? false, req.progressLabel)
  const ckpt = checkpointing(req.checkpoint, instance)
  let exploration
  try {
    // Workers rebuild the model from its recipe (parallel BFS); the API's default is the cores, as the CLI's.
    exploration = explore(instance.model, { workers: defaultWorkers(), recipe: scenarioRecipe(instance), ...req.explore, onProgress: progress.update, ...(ckpt.options ? { checkpoint: ckpt.options } : {}) })
  } finally {
    progress.stop()
    ckpt.close()
  }
  // A property of the whole exploration is broken by several runs (one per outcome, one per fact of the conflict): each gets its own trace.
  // The violation with the shortest trace comes first: it is the one `--out` names.
  const recorded = exploration.violations
    .map((v) => runsOf(v).map((run) => ({ run, trace: recordTrace(instance, exploration, run) })))
    .map((runs, order) => ({ runs, order, steps: Math.min(...runs.map((r) => r.trace.steps.length)) }))
    .sort((a, b) => a.steps - b.steps || a.order - b.order)
    .flatMap((v) => v.runs)
  const used = new Set<string>()
  const traces = recorded.map(({ run: v, trace }, i): SavedTrace => {
    if (req.save === false) return { trace, file: null }
    const suffix = v.outcome !== undefined ? `-${slug(v.outcome)}` : ''
    let file = req.out
      ? i === 0
        ? req.out
        : req.out.replace(/(\.json)?$/, `-${v.invariant}${suffix}.json`)
      : join(req.traceDir ?? 'traces', `${instance.name}-${instance.variant}-${v.invariant}${suffix}.json`)
    // Two runs that would share a name (same invariant and outcome) get -2, -3 rather than overwrite each other.
    for (let k = 2; used.has(file); k++) file = file.replace(/(-\d+)?\.json$/, `-${k}.json`)
    used.add(file)
    try {
      saveTrace(file, trace)
      return { trace, file }
    } catch (e) {
      if (!isFileWriteError(e)) throw e
      return { trace, file: null, writeError: e.message }
    }
  })
  return { instance, exploration, traces, checkpointNote: ckpt.note() }
}
