/**
 * Re-records every trace of a corpus directory on the current model (after a
 * change of a scenario's shape, which changes its model hash): for each
 * file, the same scenario, variant and parameters are explored again and the
 * trace of the same property (and outcome, for a two-run property) replaces
 * the file. A property no longer broken is reported, not silently dropped.
 *
 *   node --import tsx traces/regenerate-corpus.ts [traces/corpus]
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { explore } from '../explorer/explore.js'
import { instantiate } from '../invariants/scenarios.js'
import { loadTrace, saveTrace } from './file.js'
import { recordTrace } from './record.js'

export function regenerateCorpus(dir: string): string[] {
  const problems: string[] = []
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const file = join(dir, name)
    const old = loadTrace(file) // the schema is checked; the model hash is what changed
    const inst = instantiate(old.scenario, old.variant, old.params)
    const x = explore(inst.model, { mode: old.search.mode, seed: old.search.seed ?? undefined, allViolations: true })
    const runs = x.violations.flatMap((v) => (v.witness ? [v, v.witness] : [v]))
    const run = runs.find((v) => v.invariant === old.violation.invariant && v.outcome === old.violation.outcome)
    if (!run) {
      problems.push(`${name}: ${old.violation.invariant}${old.violation.outcome ? ` (${old.violation.outcome})` : ''} is no longer broken`)
      continue
    }
    saveTrace(file, recordTrace(inst, x, run))
  }
  return problems
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const problems = regenerateCorpus(process.argv[2] ?? 'traces/corpus')
  for (const p of problems) console.error(p)
  process.exitCode = problems.length ? 1 : 0
}
