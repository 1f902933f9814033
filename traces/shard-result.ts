/**
 * A swarm shard's result file (`check --shard k/n --out FILE`): the shard,
 * the plan it ran, its verdict and counts, and its traces in full, so that
 * `mapcheck merge` needs nothing else (the files are all a launcher has to
 * bring back). Versioned JSON, schema-validated on load.
 */
import { z } from 'zod'
import { BadInput } from '../explorer/errors.js'
import { traceSchema } from './format.js'
import { readJsonFile, schemaError } from './read.js'
import { writeFileSafely } from './write.js'

export const SHARD_FORMAT = 'mapcheck-shard'
export const SHARD_VERSION = 1

const count = z.number().int().nonnegative()

export const shardResultSchema = z
  .object({
    format: z.literal(SHARD_FORMAT),
    version: z.literal(SHARD_VERSION),
    scenario: z.string().min(1),
    source: z.object({ file: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict().optional(),
    variant: z.string().min(1),
    params: z.record(z.string(), z.number().int()),
    modelHash: z.string().regex(/^[0-9a-f]{16}$/),
    shard: z.object({ k: count, n: z.number().int().positive(), from: z.string() }).strict(),
    /** What this shard varied (explorer/swarm.ts `ShardPlan`). */
    plan: z
      .object({
        mode: z.enum(['bfs', 'dfs', 'random']),
        order: z.enum(['natural', 'shuffled']),
        seed: count,
        maxDepth: count.nullable(),
        hashSeed: count.nullable(),
      })
      .strict(),
    /** The run's own settings, the same for every shard of one launch. */
    settings: z.object({ store: z.enum(['full', 'fingerprint']), symmetry: z.boolean(), livelock: z.boolean(), allViolations: z.boolean() }).strict(),
    verdict: z.enum(['ok', 'violation', 'incomplete']),
    incomplete: z.string().nullable(),
    stats: z.looseObject({ states: count, transitions: count, maxDepth: count, seconds: z.number().nonnegative() }),
    /** One per run of each violation, the shortest first (as `check` records them). */
    traces: z.array(traceSchema),
  })
  .strict()
  .refine((r) => r.shard.k < r.shard.n, { message: 'shard.k must be below shard.n', path: ['shard', 'k'] })
  .refine((r) => (r.verdict === 'violation') === r.traces.length > 0, { message: 'a violation verdict comes with its traces, and only then', path: ['traces'] })
  // A violation may also have been cut short (a depth bound elsewhere); ok never was.
  .refine((r) => (r.verdict === 'incomplete' ? r.incomplete !== null : r.verdict === 'ok' ? r.incomplete === null : true), { message: 'an incomplete verdict comes with its reason, an ok one without', path: ['incomplete'] })

export type ShardResult = z.infer<typeof shardResultSchema>

/** Reads and validates a shard result; any problem is a one-line `BadInput` naming the file. */
export function loadShardResult(file: string): ShardResult {
  const json = readJsonFile(file)
  const format = (json as { format?: unknown } | null)?.format
  if (typeof json !== 'object' || json === null || format !== SHARD_FORMAT) {
    throw new BadInput(`${file}: not a mapcheck shard result (format ${format === undefined ? 'missing' : JSON.stringify(format)}, expected "${SHARD_FORMAT}": write one with check --shard k/n --out FILE)`)
  }
  const parsed = shardResultSchema.safeParse(json)
  if (!parsed.success) throw schemaError(file, 'not a valid mapcheck shard result', parsed.error)
  return parsed.data
}

/** Atomically (temp file, then rename): a launcher never collects half a result. */
export function saveShardResult(file: string, result: ShardResult): void {
  writeFileSafely(file, `${JSON.stringify(result, null, 2)}\n`)
}
