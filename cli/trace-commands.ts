import { changes } from '../traces/diagram.js'
import { loadTrace } from '../traces/file.js'
import { renderTrace } from '../traces/render.js'
import { replayTrace } from '../traces/replay.js'

/** `mapcheck replay`: 1 if the recorded violation (or another) happens, 0 if the trace runs to its end without one. */
export function replayCommand(file: string, json: boolean): number {
  const trace = loadTrace(file)
  const r = replayTrace(trace)
  const first = r.violations[0] ?? null
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ trace: file, expected: trace.violation.invariant, reproduced: r.reproduced, violations: r.violations, steps: r.steps.length }, null, 2)}\n`,
    )
  } else if (r.reproduced && trace.violation.outcome !== undefined) {
    process.stdout.write(`reproduced: ${trace.violation.invariant}: this run ends with "${trace.violation.outcome}" (${trace.steps.length} steps)\n`)
  } else if (r.reproduced) {
    const v = r.violations.find((x) => x.invariant === trace.violation.invariant)!
    process.stdout.write(`reproduced: ${v.invariant} after step ${v.step} of ${trace.steps.length}: ${v.message}\n`)
  } else if (first) {
    process.stdout.write(
      `not reproduced: expected ${trace.violation.invariant}, but ${first.invariant} broke after step ${first.step}: ${first.message}\n`,
    )
  } else {
    process.stdout.write(`not reproduced: the trace ran all ${trace.steps.length} steps without a violation\n`)
  }
  return first || r.reproduced ? 1 : 0
}

/** `mapcheck show`: the race diagram, or the trace as JSON with each step's text and changes. */
export function showCommand(file: string, format: string): number {
  const trace = loadTrace(file)
  if (format === 'text') {
    process.stdout.write(`${renderTrace(trace)}\n`)
    return 0
  }
  const r = replayTrace(trace)
  const steps = r.steps.map((s) => ({ ...s.label, index: s.index, changes: changes(s, r.instance.model.threadNames) }))
  process.stdout.write(`${JSON.stringify({ ...trace, steps, replay: { violations: r.violations } }, null, 2)}\n`)
  return 0
}
