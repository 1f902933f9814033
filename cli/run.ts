/**
 * One check as every command runs it: instantiate the scenario, explore,
 * turn each violation into a (minimized) trace and save it atomically.
 */
import { join } from 'node:path'
import { explore } from '../explorer/explore.js'
import type { ExploreOptions } from '../explorer/options.js'
import { runsOf, type Exploration } from '../explorer/result.js'
import { instantiate, type Instance } from '../invariants/scenarios.js'
import type { ProcessAction } from '../model/process.js'
import type { Scenario } from '../model/scenario.js'
import { saveTrace } from '../traces/file.js'
import type { Trace } from '../traces/format.js'
import { recordTrace } from '../traces/record.js'
import { progressLine } from './progress.js'

export interface CheckRequest {
  readonly scenario: Scenario
  readonly variant?: string
  readonly params?: Readonly<Record<string, string | number>>
  readonly explore?: ExploreOptions
  /** Where to write the trace of the first violation; others go beside it. Default: traces/<scenario>-<variant>-<invariant>.json */
  readonly out?: string
  readonly traceDir?: string
  readonly progress?: boolean
  /** Write trace files (default true). */
  readonly save?: boolean
}

export interface CheckOutcome {
  readonly instance: Instance
  readonly exploration: Exploration<ProcessAction> & { path?: string | null }
  readonly traces: readonly { readonly trace: Trace; readonly file: string | null }[]
}

const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'outcome'

export function runCheck(req: CheckRequest): CheckOutcome {
  const instance = instantiate(req.scenario, req.variant, req.params ?? {})
  const progress = progressLine(req.progress ?? false)
  let exploration
  try {
    exploration = explore(instance.model, { ...req.explore, onProgress: progress.update })
  } finally {
    progress.stop()
  }
  // A property of the whole exploration is broken by several runs (one per outcome, one per fact of the conflict): each gets its own trace.
  const runs = exploration.violations.flatMap((v) => runsOf(v))
  const traces = runs.map((v, i) => {
    const trace = recordTrace(instance, exploration, v)
    if (req.save === false) return { trace, file: null }
    const suffix = v.outcome !== undefined ? `-${slug(v.outcome)}` : ''
    const file = req.out
      ? i === 0
        ? req.out
        : req.out.replace(/(\.json)?$/, `${suffix || `-${v.invariant}`}.json`)
      : join(req.traceDir ?? 'traces', `${instance.name}-${instance.variant}-${v.invariant}${suffix}.json`)
    saveTrace(file, trace)
    return { trace, file }
  })
  return { instance, exploration, traces }
}
