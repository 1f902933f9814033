import { unreached, untaken } from '../explorer/coverage.js'
import { renderTrace } from '../traces/render.js'
import { metricText, paramsText, statsLine, verdictColour } from './format.js'
import { writeCheckReport } from './report.js'
import { EXIT, verdictStatus, wasInterrupted, writeErrorLine } from './exit.js'
import { runCheck, type CheckOutcome, type CheckRequest } from './run.js'

/** What `check --json` prints, and what the public API's `check` returns. */
export function checkReport({ instance, exploration, traces }: CheckOutcome) {
  const firstTrace = traces[0]
  // The first trace is the shortest violation's (cli/run.ts): `invariant` and `message` name that one.
  const first = firstTrace?.trace.violation ?? exploration.violations[0]
  return {
    scenario: instance.name,
    ...(instance.scenario.source ? { source: instance.scenario.source.file } : {}),
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
    metricsAllStates: exploration.metricsAll,
    violations: traces.map(({ trace, file }) => ({
      invariant: trace.violation.invariant,
      message: trace.violation.message,
      ...(trace.violation.outcome !== undefined ? { outcome: trace.violation.outcome } : {}),
      trace: file,
      steps: trace.steps.length,
    })),
    /** The traces that could not be written: one line each, naming the path and the reason. */
    writeErrors: traces.flatMap((t) => (t.writeError ? [t.writeError] : [])),
    coverage: exploration.coverage,
    unreached: unreached(exploration.coverage),
    /** The steps this variant's patch changes (`process.label`), and those of them never taken. */
    patched: instance.patched,
    patchUnreached: untaken(instance.patched, exploration.coverage),
    stats: exploration.stats,
  }
}

export type CheckReport = ReturnType<typeof checkReport>

/**
 * `mapcheck check`: exit 0 when every invariant holds and the search was
 * exhaustive, 1 on a violation, 3 when incomplete (a bound, an interrupt);
 * 2 when a trace could not be written (the verdict is printed all the same).
 */
export function checkCommand(req: CheckRequest & { json: boolean; html?: string }): number {
  const outcome = runCheck({ ...req, progress: !req.json })
  if (req.html !== undefined) writeCheckReport(req.html, outcome)
  const { instance, exploration, traces } = outcome
  const report = checkReport(outcome)
  const firstTrace = traces[0]
  if (req.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  } else {
    const units = Object.fromEntries((instance.model.metrics ?? []).map((m) => [m.id, m.unit]))
    const lines = [
      `${instance.name}${instance.scenario.source ? ` (${instance.scenario.source.file})` : ''} --variant ${instance.variant}  ${paramsText(instance.params)}  (${exploration.mode}${exploration.seed !== null ? `, seed ${exploration.seed}` : ''})`,
      `${verdictColour(exploration.verdict === 'incomplete' && wasInterrupted(exploration.incomplete) ? 'incomplete (interrupted)' : exploration.verdict)}  ${statsLine(exploration.stats)}`,
    ]
    if (exploration.incomplete) lines.push(`not exhaustive: ${exploration.incomplete}`)
    for (const [id, r] of Object.entries(exploration.metricsAll)) {
      const terminal = exploration.metrics[id]
      lines.push(`metric ${id}: ${terminal ? `${metricText(terminal, units[id])} over the terminal states, ` : ''}${metricText(r, units[id])} over all states`)
    }
    lines.push(coverageLine(report.coverage, report.unreached))
    // A violation is not vacuous; a verdict that holds while the patch's steps never ran may be.
    if (report.patchUnreached.length > 0 && exploration.verdict !== 'violation') {
      lines.push(verdictColour(`vacuous? ${report.patchUnreached.length} of the ${report.patched.length} steps this variant's patch changes were never taken: ${report.patchUnreached.join(', ')}`))
    }
    let last = ''
    for (const { trace, file } of traces) {
      // An outcome property's two runs share one VIOLATED line.
      const { invariant, message, outcome: ending } = trace.violation
      if (invariant !== last) lines.push(`${verdictColour('VIOLATED')} ${invariant}: ${message}`)
      last = invariant
      lines.push(`  trace${ending !== undefined ? ` of a run ending "${ending}"` : ''}: ${trace.steps.length} steps${file ? `, written to ${file}` : ''}`)
    }
    if (firstTrace) lines.push('', renderTrace(firstTrace.trace, instance.scenario))
    process.stdout.write(`${lines.join('\n')}\n`)
  }
  if (outcome.checkpointNote) process.stderr.write(`mapcheck: ${outcome.checkpointNote}\n`)
  writeErrorLine(report.writeErrors)
  return report.writeErrors.length > 0 ? EXIT.badInput : verdictStatus(exploration.verdict)
}

/** `coverage: 23 of 25 steps taken; never: vp.wait_event, vmm.vfree` */
export function coverageLine(coverage: Readonly<Record<string, Readonly<Record<string, number>>>>, never: readonly string[]): string {
  const total = Object.values(coverage).reduce((n, byLabel) => n + Object.keys(byLabel).length, 0)
  return `coverage: ${total - never.length} of ${total} steps taken${never.length ? `; never taken: ${never.join(', ')}` : ''}`
}
