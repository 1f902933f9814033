/**
 * `mapcheck merge FILES...`: the verdict of a swarm from its shards' result
 * files (cli/shard.ts), whatever order they are given in:
 *
 * - violation if some shard found one; else ok only if some shard's search
 *   was exhaustive (a complete BFS or DFS: shuffling the order never loses
 *   a state); else incomplete;
 * - per broken invariant, the shortest trace over all shards (ties: the
 *   lowest shard, then the steps compared as text), with all of that
 *   shard's runs of it when the property has several (an outcome's two runs);
 * - files of other scenarios, variants, parameters, models or swarm sizes,
 *   a shard given twice, a file that is not a shard result: one line, exit 2.
 *
 * Shards missing from the files are listed; they cannot make a violation
 * wrong nor an `ok` (one exhaustive shard is the whole space) unsound.
 */
import { join } from 'node:path'
import { BadInput, isBadInput } from '../explorer/errors.js'
import type { Trace } from '../traces/format.js'
import { saveTrace } from '../traces/file.js'
import { renderTrace } from '../traces/render.js'
import { loadShardResult, type ShardResult } from '../traces/shard-result.js'
import { isFileWriteError } from '../traces/write.js'
import { EXIT, verdictStatus, writeErrorLine } from './exit.js'
import { num, paramsText, table, verdictColour } from './format.js'
import { scenarioOfTrace } from './scenarios.js'
import { planText } from './shard.js'

export interface ShardFile {
  readonly file: string
  readonly result: ShardResult
}

export interface MergedViolation {
  readonly invariant: string
  readonly message: string
  /** The shard whose trace this is. */
  readonly shard: number
  /** Steps of its shortest run. */
  readonly steps: number
  /** Its runs (one, or one per outcome/fact of a property of the whole exploration), the shortest first. */
  readonly traces: readonly Trace[]
}

export interface Merged {
  readonly scenario: string
  readonly source?: ShardResult['source']
  readonly variant: string
  readonly params: Readonly<Record<string, number>>
  readonly modelHash: string
  readonly n: number
  readonly shards: readonly ShardFile[]
  readonly missing: readonly number[]
  readonly verdict: ShardResult['verdict']
  /** The shards whose search was exhaustive (verdict ok). */
  readonly exhaustive: readonly number[]
  readonly incomplete: string | null
  /** Shortest first; ties by invariant name. */
  readonly violations: readonly MergedViolation[]
}

const IDENTITY = ['scenario', 'source', 'variant', 'params', 'modelHash'] as const

/** A stable print for comparing identities (object keys sorted). */
const key = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x)) ?? 'undefined'

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export function mergeShards(given: readonly ShardFile[]): Merged {
  if (given.length === 0) throw new BadInput('merge: no shard result files given')
  // Sorted by shard, then file name: every choice below is then independent of the order given.
  const shards = [...given].sort((a, b) => a.result.shard.k - b.result.shard.k || compareText(a.file, b.file))
  const first = shards[0]
  const ref = first.result
  const describe = (r: ShardResult): string => `${r.scenario} --variant ${r.variant} ${paramsText(r.params)}`
  for (const s of shards.slice(1)) {
    const r = s.result
    for (const field of IDENTITY) {
      if (key(r[field]) !== key(ref[field])) {
        const what = field === 'modelHash' ? `a model of another build (modelHash ${r.modelHash}, not ${ref.modelHash})` : field === 'source' ? `review file ${r.source?.file ?? '(none)'} ${r.source?.sha256.slice(0, 12) ?? ''}, not ${ref.source?.file ?? '(none)'} ${ref.source?.sha256.slice(0, 12) ?? ''}` : describe(r)
        throw new BadInput(`merge: ${s.file} is a shard of ${what}; ${first.file} is of ${field === 'modelHash' || field === 'source' ? 'the other' : describe(ref)}`)
      }
    }
    if (r.shard.n !== ref.shard.n) throw new BadInput(`merge: ${s.file} is a shard of a swarm of ${r.shard.n}, ${first.file} of a swarm of ${ref.shard.n}`)
  }
  for (let i = 1; i < shards.length; i++) {
    if (shards[i].result.shard.k === shards[i - 1].result.shard.k) throw new BadInput(`merge: shard ${shards[i].result.shard.k} is given twice: ${shards[i - 1].file} and ${shards[i].file}`)
  }
  const n = ref.shard.n
  const present = new Set(shards.map((s) => s.result.shard.k))
  const missing = Array.from({ length: n }, (_, k) => k).filter((k) => !present.has(k))

  // Per invariant, each shard's runs of it; the best shard: fewest steps, then lowest k, then steps as text.
  const best = new Map<string, MergedViolation & { text: string }>()
  for (const { result } of shards) {
    const byInvariant = new Map<string, Trace[]>()
    for (const t of result.traces) byInvariant.set(t.violation.invariant, [...(byInvariant.get(t.violation.invariant) ?? []), t])
    for (const [invariant, runs] of byInvariant) {
      const sorted = [...runs].sort((a, b) => a.steps.length - b.steps.length || compareText(key(a.steps), key(b.steps)))
      const candidate = { invariant, message: sorted[0].violation.message, shard: result.shard.k, steps: sorted[0].steps.length, traces: sorted, text: key(sorted.map((t) => t.steps)) }
      const old = best.get(invariant)
      if (!old || candidate.steps < old.steps || (candidate.steps === old.steps && (candidate.shard < old.shard || (candidate.shard === old.shard && compareText(candidate.text, old.text) < 0)))) {
        best.set(invariant, candidate)
      }
    }
  }
  const violations = [...best.values()]
    .sort((a, b) => a.steps - b.steps || compareText(a.invariant, b.invariant))
    .map(({ text: _t, ...v }) => v)
  const exhaustive = shards.filter((s) => s.result.verdict === 'ok').map((s) => s.result.shard.k)
  const verdict = violations.length > 0 ? 'violation' : exhaustive.length > 0 ? 'ok' : 'incomplete'
  const incomplete = verdict === 'incomplete' ? `no shard's search was exhaustive (${shards.length} of ${n} shards merged${missing.length ? `, missing ${missing.join(', ')}` : ''})` : null
  return {
    scenario: ref.scenario,
    ...(ref.source ? { source: ref.source } : {}),
    variant: ref.variant,
    params: ref.params,
    modelHash: ref.modelHash,
    n,
    shards,
    missing,
    verdict,
    exhaustive,
    incomplete,
    violations,
  }
}

const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'outcome'

/** What `merge --json` prints. */
export function mergeReport(m: Merged, files: ReadonlyMap<Trace, string | null>) {
  const sum = (f: (r: ShardResult) => number): number => m.shards.reduce((t, s) => t + f(s.result), 0)
  const first = m.violations[0]
  return {
    scenario: m.scenario,
    ...(m.source ? { source: m.source.file } : {}),
    variant: m.variant,
    params: m.params,
    shards: m.n,
    merged: m.shards.map((s) => s.result.shard.k),
    missing: m.missing,
    result: m.verdict,
    exhaustive: m.exhaustive,
    incomplete: m.incomplete,
    invariant: first?.invariant ?? null,
    message: first?.message ?? null,
    steps: first?.steps ?? null,
    trace: first ? (files.get(first.traces[0]) ?? null) : null,
    violations: m.violations.map((v) => ({
      invariant: v.invariant,
      message: v.message,
      shard: v.shard,
      steps: v.steps,
      traces: v.traces.map((t) => ({ ...(t.violation.outcome !== undefined ? { outcome: t.violation.outcome } : {}), steps: t.steps.length, file: files.get(t) ?? null })),
    })),
    perShard: m.shards.map(({ file, result: r }) => ({
      shard: r.shard.k,
      file,
      from: r.shard.from,
      plan: r.plan,
      result: r.verdict,
      incomplete: r.incomplete,
      states: r.stats.states,
      transitions: r.stats.transitions,
      maxDepth: r.stats.maxDepth,
      seconds: r.stats.seconds,
      violations: [...new Set(r.traces.map((t) => t.violation.invariant))],
    })),
    /** Summed over the shards: their state spaces overlap, so this is work done, not distinct states. */
    stats: { states: sum((r) => r.stats.states), transitions: sum((r) => r.stats.transitions), maxDepth: Math.max(...m.shards.map((s) => s.result.stats.maxDepth)) },
  }
}

export interface MergeRequest {
  readonly files: readonly string[]
  readonly json: boolean
  /** Where to write the chosen traces (default: traces/, as check). */
  readonly traceDir?: string
}

/** `mapcheck merge`: exit 1 when some shard found a violation, 0 when none did and some shard was exhaustive, 3 otherwise. */
export async function mergeCommand(req: MergeRequest): Promise<number> {
  const merged = mergeShards(req.files.map((file) => ({ file, result: loadShardResult(file) })))
  const files = new Map<Trace, string | null>()
  const writeErrors: string[] = []
  for (const v of merged.violations) {
    const used = new Set<string>()
    for (const t of v.traces) {
      let file = join(req.traceDir ?? 'traces', `${merged.scenario}-${merged.variant}-${v.invariant}${t.violation.outcome !== undefined ? `-${slug(t.violation.outcome)}` : ''}.json`)
      for (let k = 2; used.has(file); k++) file = file.replace(/(-\d+)?\.json$/, `-${k}.json`)
      used.add(file)
      try {
        saveTrace(file, t)
        files.set(t, file)
      } catch (e) {
        if (!isFileWriteError(e)) throw e
        files.set(t, null)
        writeErrors.push(e.message)
      }
    }
  }
  const report = mergeReport(merged, files)
  if (req.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  } else {
    const lines = [
      `${merged.scenario}${merged.source ? ` (${merged.source.file})` : ''} --variant ${merged.variant}  ${paramsText(merged.params)}  swarm of ${merged.n} shards, ${merged.shards.length} merged${merged.missing.length ? ` (missing: ${merged.missing.join(', ')})` : ''}`,
      `${verdictColour(merged.verdict)}  ${num(report.stats.states)} states and ${num(report.stats.transitions)} transitions over the shards (overlapping), max depth ${report.stats.maxDepth}`,
      ...(merged.verdict === 'ok' ? [`exhaustive: shard ${merged.exhaustive.join(', ')}`] : []),
      ...(merged.incomplete ? [`not exhaustive: ${merged.incomplete}`] : []),
      table(
        report.perShard.map((s) => [
          `shard ${s.shard}`,
          planText(s.plan),
          verdictColour(s.result),
          `${num(s.states)} states`,
          s.violations.length ? s.violations.join(', ') : (s.incomplete ?? ''),
        ]),
      ),
    ]
    for (const v of merged.violations) {
      lines.push(`${verdictColour('VIOLATED')} ${v.invariant}: ${v.message}`)
      for (const t of v.traces) lines.push(`  trace${t.violation.outcome !== undefined ? ` of a run ending "${t.violation.outcome}"` : ''}: ${t.steps.length} steps, from shard ${v.shard}${files.get(t) ? `, written to ${files.get(t)}` : ''}`)
    }
    if (merged.violations.length > 0) {
      const shortest = merged.violations[0].traces[0]
      try {
        lines.push('', renderTrace(shortest, await scenarioOfTrace(shortest)))
      } catch (e) {
        // The diagram replays the trace; a review file changed since the shards ran cannot.
        if (!isBadInput(e)) throw e
        lines.push('', `(no race diagram: ${e.message})`)
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`)
  }
  writeErrorLine(writeErrors)
  return writeErrors.length > 0 ? EXIT.badInput : verdictStatus(merged.verdict)
}
