import type { Scenario } from '../model/scenario.js'
import type { Trace } from './format.js'
import { raceDiagram } from './diagram.js'
import { replayTrace } from './replay.js'

/** The race diagram of a trace file, by replaying it (so the diffs are the model's, not the file's). */
export function renderTrace(trace: Trace, scenario?: Scenario): string {
  const r = replayTrace(trace, scenario)
  const params = Object.entries(trace.params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
  const seen = r.violations.find((v) => v.invariant === trace.violation.invariant) ?? r.violations[0] ?? null
  const { invariant, outcome, message } = trace.violation
  return raceDiagram({
    title: `${trace.scenario} --variant ${trace.variant}  ${params}  (${trace.search.mode}${trace.search.seed !== null ? `, seed ${trace.search.seed}` : ''}, ${trace.steps.length} steps)`,
    steps: r.steps,
    threadNames: r.instance.model.threadNames,
    violation: seen,
    outcome: outcome !== undefined && r.reproduced ? { invariant, outcome, message } : undefined,
    ...(r.cycle ? { cycle: r.cycle } : {}),
  })
}
