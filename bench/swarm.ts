/**
 * Bench section for swarm verification (issue 13, docs/swarm.md): a seeded
 * bug in a configuration past one exhaustive run, searched by 8 bounded
 * shards (each a fresh `mapcheck check --shard k/8` process, run one after
 * the other), then merged. Beside it, one BFS given the whole swarm's state
 * budget. With 8 machines the swarm's wall time is its longest shard.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rowFormatter } from './columns.js'

export interface SwarmCase {
  readonly name: string
  /** The check arguments every shard shares. */
  readonly args: readonly string[]
  readonly n: number
  /** Each shard's --max-states. */
  readonly maxStates: number
  readonly note: string
}

export const SWARM_CASE: SwarmCase = {
  name: 'mshv-movable/fixed:vps=3,zaps=2 --no-symmetry',
  args: ['mshv-movable', '--variant', 'fixed', '--param', 'vps=3', '--param', 'zaps=2', '--no-symmetry'],
  n: 8,
  maxStates: 20_000,
  note: 'without symmetry reduction one run of this set is cut at the time bound (reductions table); fixed breaks no-stale-mapping',
}

interface ShardRow {
  readonly k: number
  readonly plan: string
  readonly verdict: string
  readonly states: number
  /** The shard process's wall time: search, trace minimization and start-up. */
  readonly seconds: number
  readonly found: string
}

export interface SwarmBench {
  readonly case: SwarmCase
  readonly shards: readonly ShardRow[]
  readonly merged: { readonly verdict: string; readonly invariant: string | null; readonly steps: number | null; readonly shard: number | null; readonly sameInEveryOrder: boolean }
  /** One BFS with the swarm's whole budget (n x maxStates); its process's wall time, as the shards'. */
  readonly single: { readonly verdict: string; readonly states: number; readonly seconds: number; readonly maxDepth: number }
  readonly longestShardSeconds: number
  readonly totalShardSeconds: number
}

type Failed = { readonly error: string }

function run(cli: string, args: readonly string[], cwd: string): { status: number | null; stdout: string; stderr: string; seconds: number } {
  const started = performance.now()
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 1 << 28 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (performance.now() - started) / 1000 }
}

export function runSwarmBench(cli: string, c: SwarmCase, progress: (msg: string) => void): SwarmBench | Failed {
  const dir = mkdtempSync(join(tmpdir(), 'mapcheck-swarm-bench-'))
  try {
    const shards: ShardRow[] = []
    const files: string[] = []
    for (let k = 0; k < c.n; k++) {
      progress(`swarm shard ${k}/${c.n} ${c.name} ...`)
      const file = join(dir, `shard-${k}.json`)
      const r = run(cli, ['check', ...c.args, '--max-states', String(c.maxStates), '--shard', `${k}/${c.n}`, '--out', file, '--json'], dir)
      if (r.status !== 0 && r.status !== 1 && r.status !== 3) return { error: `shard ${k} exited ${r.status}: ${r.stderr.split('\n')[0]}` }
      const j = JSON.parse(r.stdout) as { plan: { mode: string; order: string; maxDepth: number | null }; verdict: string; stats: { states: number }; traces: { steps: unknown[]; violation: { invariant: string } }[] }
      const plan = `${j.plan.mode}${j.plan.maxDepth !== null ? ` <= ${j.plan.maxDepth}` : ''}${j.plan.order === 'shuffled' ? ', shuffled' : ''}`
      const found = j.traces.map((t) => `${t.violation.invariant} (${t.steps.length})`).join(', ')
      shards.push({ k, plan, verdict: j.verdict, states: j.stats.states, seconds: r.seconds, found })
      files.push(file)
    }
    progress('swarm merge ...')
    const merge = (order: readonly string[]) => run(cli, ['merge', ...order, '--trace-dir', join(dir, 'traces'), '--json'], dir)
    const m = merge(files)
    if (m.status !== 0 && m.status !== 1 && m.status !== 3) return { error: `merge exited ${m.status}: ${m.stderr.split('\n')[0]}` }
    const again = merge([...files].reverse())
    const out = JSON.parse(m.stdout) as { result: string; invariant: string | null; steps: number | null; violations: { shard: number }[] }
    progress(`one BFS with ${c.n} x ${c.maxStates} states ...`)
    const s = run(cli, ['check', ...c.args, '--max-states', String(c.n * c.maxStates), '--json', '--out', join(dir, 'single.json')], dir)
    const single = JSON.parse(s.stdout) as { result: string; stats: { states: number; seconds: number; maxDepth: number } }
    return {
      case: c,
      shards,
      merged: { verdict: out.result, invariant: out.invariant, steps: out.steps, shard: out.violations[0]?.shard ?? null, sameInEveryOrder: again.stdout === m.stdout },
      single: { verdict: single.result, states: single.stats.states, seconds: s.seconds, maxDepth: single.stats.maxDepth },
      longestShardSeconds: Math.max(...shards.map((x) => x.seconds)),
      totalShardSeconds: shards.reduce((t, x) => t + x.seconds, 0),
    }
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The swarm did not find the seeded bug, or its merge depends on the order of the files. */
export const swarmFailed = (r: SwarmBench | Failed | null): boolean => r !== null && ('error' in r || r.merged.verdict !== 'violation' || !r.merged.sameInEveryOrder)

const int = (n: number): string => Math.round(n).toLocaleString('en-US')

export function swarmTable(r: SwarmBench | Failed): string {
  if ('error' in r) return `swarm: FAILED: ${r.error}\n`
  const c = r.case
  const out: string[] = []
  out.push(`swarm: ${c.name}, ${c.n} shards of at most ${int(c.maxStates)} states each (a fresh process per shard), then merge`)
  out.push(`  (${c.note})`)
  const cols = [
    ['shard', 5, 'r'],
    ['plan', 22, 'l'],
    ['verdict', 10, 'l'],
    ['states', 8, 'r'],
    ['sec', 6, 'r'],
    ['found (steps)', 24, 'l'],
  ] as const
  const row = rowFormatter(cols)
  out.push(row(cols.map((x) => x[0])))
  out.push(row(cols.map((x) => '-'.repeat(x[1]))))
  for (const s of r.shards) out.push(row([String(s.k), s.plan, s.verdict, int(s.states), s.seconds.toFixed(1), s.found]))
  const m = r.merged
  out.push(`merged: ${m.verdict}${m.invariant ? `, ${m.invariant} in ${m.steps} steps (shard ${m.shard})` : ''}; the same output with the files reversed: ${m.sameInEveryOrder ? 'yes' : 'NO'}`)
  out.push(`longest shard ${r.longestShardSeconds.toFixed(1)} s (the wall time on ${c.n} machines), all shards ${r.totalShardSeconds.toFixed(1)} s`)
  out.push(`one BFS with the whole budget (${int(c.n * c.maxStates)} states): ${r.single.verdict}, ${int(r.single.states)} states to depth ${r.single.maxDepth}, ${r.single.seconds.toFixed(1)} s`)
  return `${out.join('\n')}\n`
}
