import { changes } from '../traces/diagram.js'
import { loadTrace } from '../traces/file.js'
import { htmlReport } from '../traces/html-report.js'
import { toItf } from '../traces/itf.js'
import { mailText } from '../traces/mail.js'
import { renderTrace } from '../traces/render.js'
import { replayTrace } from '../traces/replay.js'
import { BadInput } from '../explorer/errors.js'
import { NO_LIVELOCK } from '../explorer/livelock.js'
import { NO_DEADLOCK } from '../explorer/search.js'
import { EXIT } from './exit.js'
import { scenarioOfTrace } from './scenarios.js'

/** What `replay --json` prints, and what the public API's `replay` returns. */
export async function replayReport(file: string, options: { force?: boolean } = {}) {
  const trace = loadTrace(file)
  const scenario = await scenarioOfTrace(trace, options)
  const r = replayTrace(trace, scenario)
  // A trace naming a property the model does not check can never reproduce: bad input, not a verdict.
  const m = r.instance.model
  const known = [...m.invariants.map((i) => i.id), ...(m.outcomes ?? []).map((o) => o.id), ...(m.evidence ?? []).map((e) => e.id), NO_DEADLOCK, ...(trace.cycleStart !== undefined ? [NO_LIVELOCK] : [])]
  if (!known.includes(trace.violation.invariant)) {
    throw new BadInput(`${file}: names invariant '${trace.violation.invariant}', which ${trace.scenario}/${trace.variant} does not check (it checks: ${known.join(', ')})`)
  }
  return {
    trace: file,
    scenario: trace.scenario,
    ...(trace.source ? { source: trace.source.file } : {}),
    variant: trace.variant,
    expected: trace.violation.invariant,
    ...(trace.violation.outcome !== undefined ? { outcome: trace.violation.outcome } : {}),
    reproduced: r.reproduced,
    violations: r.violations,
    steps: r.steps.length,
    recordedSteps: trace.steps.length,
    ...(trace.cycleStart !== undefined ? { cycleStart: trace.cycleStart } : {}),
  }
}

/** `mapcheck replay`: 1 if the recorded violation happens, 5 if another one does instead, 0 if the trace runs to its end without one. */
export async function replayCommand(file: string, json: boolean, force: boolean): Promise<number> {
  const report = await replayReport(file, { force })
  const first = report.violations[0] ?? null
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  } else if (report.reproduced && report.outcome !== undefined) {
    process.stdout.write(`reproduced: ${report.expected}: this run ends with "${report.outcome}" (${report.recordedSteps} steps)\n`)
  } else if (report.reproduced) {
    const v = report.violations.find((x) => x.invariant === report.expected)!
    process.stdout.write(`reproduced: ${v.invariant} after step ${v.step} of ${report.recordedSteps}: ${v.message}\n`)
  } else if (report.expected === NO_LIVELOCK) {
    process.stdout.write(`not reproduced: ${NO_LIVELOCK}: the steps from ${report.cycleStart === undefined ? '(no cycleStart recorded)' : report.cycleStart + 1} on do not lead back to the state they start from without a progress step\n`)
  } else if (first) {
    process.stdout.write(`not reproduced: expected ${report.expected}, but ${first.invariant} broke after step ${first.step}: ${first.message}\n`)
  } else {
    process.stdout.write(`not reproduced: the trace ran all ${report.recordedSteps} steps without a violation\n`)
  }
  return report.reproduced ? EXIT.violation : first ? EXIT.otherViolation : EXIT.ok
}

/** `mapcheck show`: the race diagram, the mail form (72 columns), ITF, or the trace as JSON with each step's text and changes. */
export async function showCommand(file: string, format: string, force: boolean): Promise<number> {
  const trace = loadTrace(file)
  const scenario = await scenarioOfTrace(trace, { force })
  if (format === 'text') {
    process.stdout.write(`${renderTrace(trace, scenario)}\n`)
    return 0
  }
  if (format === 'html') {
    process.stdout.write(htmlReport({ title: `mapcheck: ${trace.scenario} --variant ${trace.variant}: ${trace.violation.invariant}`, subtitle: file, traces: [trace], scenario }))
    return 0
  }
  if (format === 'mail') {
    process.stdout.write(`${mailText(trace, file, scenario)}\n`)
    return 0
  }
  const r = replayTrace(trace, scenario)
  if (format === 'itf') {
    process.stdout.write(`${JSON.stringify(toItf(trace, r), null, 1)}\n`)
    return 0
  }
  const steps = r.steps.map((s) => ({ ...s.label, index: s.index, changes: changes(s, r.instance.model.threadNames) }))
  process.stdout.write(`${JSON.stringify({ ...trace, steps, replay: { violations: r.violations } }, null, 2)}\n`)
  return 0
}
