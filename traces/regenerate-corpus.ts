/**
 * Re-records every trace of a corpus directory on the current model (after a
 * deliberate change of a scenario's shape, which changes its model hash):
 * for each file, the same scenario, variant and parameters are explored
 * again and the trace of the same property (and outcome, for a two-run
 * property) replaces the file. What changed is reported per file: a trace
 * whose length changed, and a property no longer broken (its file is kept,
 * not silently dropped). `mapcheck corpus update` runs this.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { explore } from '../explorer/explore.js'
import { runsOf } from '../explorer/result.js'
import { instantiate } from '../invariants/scenarios.js'
import type { Scenario } from '../model/scenario.js'
import { loadTrace, saveTrace } from './file.js'
import type { Trace } from './format.js'
import { recordTrace } from './record.js'

export interface CorpusChange {
  readonly file: string
  /** `same`: verdict and length kept (only the model hash or the step texts may differ); `length`: the trace got longer or shorter; `gone`: the property no longer breaks. */
  readonly change: 'same' | 'length' | 'gone'
  readonly before: number
  readonly after: number | null
  readonly detail: string
}

export function regenerateCorpus(dir: string, scenarioOf: (t: Trace) => Scenario | string = (t) => t.scenario): CorpusChange[] {
  const out: CorpusChange[] = []
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const file = join(dir, name)
    const old = loadTrace(file) // the schema is checked; the model hash is what changed
    const what = `${old.violation.invariant}${old.violation.outcome ? ` (${old.violation.outcome})` : ''}`
    const inst = instantiate(scenarioOf(old), old.variant, old.params)
    const x = explore(inst.model, { mode: old.search.mode, seed: old.search.seed ?? undefined, allViolations: true })
    const runs = x.violations.flatMap((v) => runsOf(v))
    const run = runs.find((v) => v.invariant === old.violation.invariant && v.outcome === old.violation.outcome)
    if (!run) {
      out.push({ file: name, change: 'gone', before: old.steps.length, after: null, detail: `${what} is no longer broken; the file is kept as it was` })
      continue
    }
    const fresh = recordTrace(inst, x, run)
    saveTrace(file, fresh)
    const change = fresh.steps.length === old.steps.length ? 'same' : 'length'
    out.push({ file: name, change, before: old.steps.length, after: fresh.steps.length, detail: `${what}: ${old.steps.length} -> ${fresh.steps.length} steps` })
  }
  return out
}
