import { renderTrace } from '../traces/render.js'
import { metricText, paramsText, statsLine, verdictColour } from './format.js'
import { runCheck, type CheckRequest } from './run.js'

/** `mapcheck check`: exit 0 when every invariant holds within the bounds, 1 on a violation. */
export function checkCommand(req: CheckRequest & { json: boolean }): number {
  const { instance, exploration, traces } = runCheck({ ...req, progress: !req.json })
  const first = exploration.violations[0]
  const firstTrace = traces[0]
  if (req.json) {
    const out = {
      scenario: instance.scenario,
      variant: instance.variant,
      params: instance.params,
      mode: exploration.mode,
      seed: exploration.seed,
      result: exploration.verdict,
      invariant: first?.invariant ?? null,
      message: first?.message ?? null,
      trace: firstTrace?.file ?? null,
      steps: firstTrace?.trace.steps.length ?? null,
      incomplete: exploration.incomplete,
      metrics: exploration.metrics,
      violations: traces.map(({ trace, file }) => ({
        invariant: trace.violation.invariant,
        message: trace.violation.message,
        ...(trace.violation.outcome !== undefined ? { outcome: trace.violation.outcome } : {}),
        trace: file,
        steps: trace.steps.length,
      })),
      stats: exploration.stats,
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
  } else {
    const lines = [
      `${instance.scenario} --variant ${instance.variant}  ${paramsText(instance.params)}  (${exploration.mode}${exploration.seed !== null ? `, seed ${exploration.seed}` : ''})`,
      `${verdictColour(exploration.verdict)}  ${statsLine(exploration.stats)}`,
    ]
    if (exploration.incomplete) lines.push(`not exhaustive: ${exploration.incomplete}`)
    for (const [id, r] of Object.entries(exploration.metrics)) lines.push(`metric ${id}: ${metricText(r, instance.model.metrics?.find((m) => m.id === id)?.unit)} over the terminal states`)
    let last = ''
    for (const { trace, file } of traces) {
      // An outcome property's two runs share one VIOLATED line.
      const { invariant, message, outcome } = trace.violation
      if (invariant !== last) lines.push(`${verdictColour('VIOLATED')} ${invariant}: ${message}`)
      last = invariant
      lines.push(`  trace${outcome !== undefined ? ` of a run ending "${outcome}"` : ''}: ${trace.steps.length} steps${file ? `, written to ${file}` : ''}`)
    }
    if (firstTrace) lines.push('', renderTrace(firstTrace.trace))
    process.stdout.write(`${lines.join('\n')}\n`)
  }
  return exploration.verdict === 'violation' ? 1 : 0
}
