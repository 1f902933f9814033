import { raceDiagram } from '../traces/diagram.js'
import { replaySteps } from '../traces/replay.js'
import { paramsText, statsLine, verdictColour } from './format.js'
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
      violations: exploration.violations.map((v, i) => ({
        invariant: v.invariant,
        message: traces[i].trace.violation.message,
        trace: traces[i].file,
        steps: traces[i].trace.steps.length,
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
    for (const { trace, file } of traces) {
      lines.push(`${verdictColour('VIOLATED')} ${trace.violation.invariant}: ${trace.violation.message}`)
      lines.push(`  trace: ${trace.steps.length} steps${file ? `, written to ${file}` : ''}`)
    }
    if (firstTrace) {
      const r = replaySteps(instance.model, firstTrace.trace.init, firstTrace.trace.steps, firstTrace.trace.violation.invariant)
      lines.push(
        '',
        raceDiagram({
          title: `${instance.scenario} --variant ${instance.variant}  ${paramsText(instance.params)}`,
          steps: r.steps,
          threadNames: instance.model.threadNames,
          violation: r.violations.find((v) => v.invariant === firstTrace.trace.violation.invariant) ?? null,
        }),
      )
    }
    process.stdout.write(`${lines.join('\n')}\n`)
  }
  return exploration.verdict === 'violation' ? 1 : 0
}
