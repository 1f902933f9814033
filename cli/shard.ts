/**
 * `mapcheck check <scenario> --shard k/n [--out FILE]`: one swarm shard
 * (explorer/swarm.ts). Its search is the run's, diversified by the shard's
 * plan; its verdict, counts and traces go to one result file, written
 * atomically, for `mapcheck merge`. Exit status: the shard's own verdict
 * (0 exhaustive and ok, 1 violation, 3 incomplete), as `check`.
 */
import type { ExploreOptions } from '../explorer/options.js'
import { shardOptions, shardPlan, type ShardPlan, type SwarmBase } from '../explorer/swarm.js'
import type { Scenario } from '../model/scenario.js'
import { SHARD_FORMAT, SHARD_VERSION, saveShardResult, type ShardResult } from '../traces/shard-result.js'
import { verdictStatus } from './exit.js'
import { num, paramsText, verdictColour } from './format.js'
import { writeCheckReport } from './report.js'
import { runCheck, type CheckOutcome } from './run.js'
import type { ShardIndex } from './shard-spec.js'

export interface ShardRequest {
  readonly scenario: Scenario
  readonly variant?: string
  readonly params: Readonly<Record<string, string | number>>
  readonly explore: ExploreOptions
  readonly shard: ShardIndex
  /** What the user fixed, which the plan keeps (a mode, the depth bound, the store, a base seed). */
  readonly base: SwarmBase
  readonly out?: string
  readonly html?: string
  readonly json: boolean
}

/** The result file's content. */
export function shardResult({ instance, exploration, traces }: CheckOutcome, shard: ShardIndex, plan: ShardPlan, explore: ExploreOptions): ShardResult {
  return {
    format: SHARD_FORMAT,
    version: SHARD_VERSION,
    scenario: instance.name,
    ...(instance.scenario.source ? { source: { ...instance.scenario.source } } : {}),
    variant: instance.variant,
    params: { ...instance.params },
    modelHash: instance.hash,
    shard: { k: shard.k, n: shard.n, from: shard.from },
    plan: { mode: plan.mode, order: plan.order, seed: plan.seed, maxDepth: plan.maxDepth, hashSeed: plan.hashSeed },
    settings: { store: explore.store ?? 'full', symmetry: explore.symmetry !== false, livelock: !!explore.livelock, allViolations: !!explore.allViolations },
    verdict: exploration.verdict,
    incomplete: exploration.incomplete,
    stats: { ...exploration.stats },
    traces: traces.map((t) => t.trace),
  }
}

/** How a plan reads: `dfs, shuffled (seed 0x1a2b3c4d), depth <= 32`. */
export function planText(p: ShardResult['plan']): string {
  const hex = (x: number): string => `0x${x.toString(16).padStart(8, '0')}`
  return [
    p.mode,
    p.order === 'shuffled' ? `shuffled (seed ${hex(p.seed)})` : 'natural order',
    ...(p.mode === 'random' && p.order !== 'shuffled' ? [`seed ${hex(p.seed)}`] : []),
    ...(p.maxDepth !== null ? [`depth <= ${p.maxDepth}`] : []),
    ...(p.hashSeed !== null ? [`hash seed ${hex(p.hashSeed)}`] : []),
  ].join(', ')
}

export function shardCommand(req: ShardRequest): number {
  const { k, n } = req.shard
  const plan = shardPlan(k, n, req.base)
  const explore = shardOptions(plan, req.explore)
  const outcome = runCheck({ scenario: req.scenario, variant: req.variant, params: req.params, explore, save: false, progress: !req.json, progressLabel: `shard ${k}/${n}` })
  const result = shardResult(outcome, req.shard, plan, explore)
  const file = req.out ?? `${result.scenario}-${result.variant}-shard-${k}-of-${n}.json`
  saveShardResult(file, result)
  if (req.html !== undefined) writeCheckReport(req.html, outcome)
  if (req.json) {
    process.stdout.write(`${JSON.stringify({ ...result, file }, null, 2)}\n`)
  } else {
    const s = result.stats
    const lines = [
      `${result.scenario} --variant ${result.variant}  ${paramsText(result.params)}  shard ${k} of ${n} (${result.shard.from}): ${planText(result.plan)}`,
      `${verdictColour(result.verdict)}  ${num(s.states)} states, ${num(s.transitions)} transitions, max depth ${s.maxDepth}, ${s.seconds.toFixed(2)} s`,
      ...(result.incomplete ? [`not exhaustive: ${result.incomplete}`] : []),
      ...result.traces.map((t) => `${verdictColour('VIOLATED')} ${t.violation.invariant}: ${t.violation.message} (${t.steps.length} steps)`),
      `result: ${file} (mapcheck merge it with the other shards' results)`,
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
  }
  return verdictStatus(result.verdict)
}
