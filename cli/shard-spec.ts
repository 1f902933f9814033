/**
 * `--shard k/n`: which of n swarm shards this run is. k is given, or read
 * from the environment a launcher sets for each of its tasks:
 *
 * - `env/n` reads whichever one of these is set (two set at once, e.g. GNU
 *   parallel inside a Slurm array task, is ambiguous: name one):
 *   - `JOB_COMPLETION_INDEX` (Kubernetes Indexed Job): 0..completions-1;
 *   - `SLURM_ARRAY_TASK_ID` (Slurm job array): `--array` may start anywhere
 *     (`1-8`, `100-107`) and step (`0-14:2`), so k is
 *     (ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP, and an array whose
 *     SLURM_ARRAY_TASK_COUNT is not n is refused (`--array=0-8` for 8 shards);
 *   - `PARALLEL_SEQ` (GNU parallel's job number, its `{#}`): counted from 1;
 * - `env:NAME/n` reads NAME (counted from 0, or from --shard-base);
 * - a literal `k/n` counts from 0, or from `--shard-base b` (GNU parallel's
 *   `{#}` and `{%}` substituted into the command line count from 1).
 */
import { BadInput } from '../explorer/errors.js'

export interface ShardIndex {
  readonly k: number
  readonly n: number
  /** Where k came from, for the result file: `3/8`, `SLURM_ARRAY_TASK_ID=4 - SLURM_ARRAY_TASK_MIN=1`. */
  readonly from: string
}

/** The variables `env/n` reads, and the launcher that sets each. */
export const SHARD_ENV: Readonly<Record<string, string>> = {
  JOB_COMPLETION_INDEX: 'Kubernetes Indexed Job',
  SLURM_ARRAY_TASK_ID: 'Slurm job array',
  PARALLEL_SEQ: 'GNU parallel',
}

type Env = Readonly<Record<string, string | undefined>>

export function parseShard(spec: string, env: Env = process.env, shardBase?: string): ShardIndex {
  const bad = (why: string): BadInput => new BadInput(`--shard ${spec}: ${why}`)
  if (spec.includes('{')) throw bad("an unsubstituted GNU parallel placeholder: run it under parallel, or give k/n (k counted from 0)")
  const m = /^(\d+|env|env:[A-Za-z_][A-Za-z0-9_]*)\/(\d+)$/.exec(spec)
  if (!m) throw bad('expected k/n (shard k of n, 0 <= k < n), env/n (k from JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or PARALLEL_SEQ) or env:NAME/n')
  const n = Number(m[2])
  if (n < 1 || !Number.isSafeInteger(n)) throw bad(`n must be at least 1 (the number of shards)`)
  const base = shardBase === undefined ? undefined : /^\d+$/.test(shardBase) ? Number(shardBase) : NaN
  if (Number.isNaN(base)) throw new BadInput(`--shard-base ${shardBase}: expected a non-negative integer`)
  const within = (value: number, from: number, what: string): number => {
    const k = value - from
    if (k < 0) throw bad(`${what} is below the first shard's number ${from}`)
    if (k >= n) throw bad(`${what} gives shard ${k}, but there are ${n} shards (0..${n - 1}${from !== 0 ? `, counted from ${from}` : ''})`)
    return k
  }
  if (/^\d+$/.test(m[1])) {
    const from = base ?? 0
    return { k: within(Number(m[1]), from, `k = ${m[1]}`), n, from: from === 0 ? `${m[1]}/${n}` : `${m[1]}/${n} counted from ${from}` }
  }
  let name: string
  if (m[1] === 'env') {
    const set = Object.keys(SHARD_ENV).filter((v) => (env[v] ?? '') !== '')
    if (set.length === 0) throw bad(`none of ${Object.entries(SHARD_ENV).map(([v, who]) => `${v} (${who})`).join(', ')} is set`)
    if (set.length > 1) throw bad(`${set.join(' and ')} are both set: say which with env:NAME/${n}`)
    name = set[0]
  } else {
    name = m[1].slice(4)
  }
  const read = (v: string, required: boolean): number | undefined => {
    const text = env[v]
    if (text === undefined || text === '') {
      if (required) throw bad(`${v} is not set`)
      return undefined
    }
    if (!/^\d+$/.test(text)) throw bad(`${v}=${JSON.stringify(text)} is not a non-negative integer`)
    return Number(text)
  }
  const value = read(name, true)!
  if (name === 'SLURM_ARRAY_TASK_ID') {
    const count = read('SLURM_ARRAY_TASK_COUNT', false)
    if (count !== undefined && count !== n) throw bad(`the Slurm array has ${count} tasks (SLURM_ARRAY_TASK_COUNT=${count}), not ${n}`)
    const min = base ?? read('SLURM_ARRAY_TASK_MIN', false) ?? 0
    const step = read('SLURM_ARRAY_TASK_STEP', false) ?? 1
    if (step < 1) throw bad(`SLURM_ARRAY_TASK_STEP=${step} is not a step`)
    const what = `SLURM_ARRAY_TASK_ID=${value}`
    if ((value - min) % step !== 0) throw bad(`${what} is not SLURM_ARRAY_TASK_MIN=${min} plus a multiple of SLURM_ARRAY_TASK_STEP=${step}`)
    const k = within(min + (value - min) / step, min, what)
    return { k, n, from: `${what} - SLURM_ARRAY_TASK_MIN=${min}${step !== 1 ? `, step ${step}` : ''}` }
  }
  const from = base ?? (name === 'PARALLEL_SEQ' ? 1 : 0)
  const what = `${name}=${value}`
  return { k: within(value, from, what), n, from: from === 0 ? what : `${what} counted from ${from}` }
}
