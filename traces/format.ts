/**
 * The trace file: versioned JSON, schema-validated on load. Steps name the
 * thread, the label it was at (the kernel function) and the choice, which
 * is all replay needs; `text` is for people reading the file.
 */
import { z } from 'zod'

export const TRACE_FORMAT = 'mapcheck-trace'
export const TRACE_VERSION = 1

export const traceStep = z
  .object({
    thread: z.string().min(1),
    label: z.string().min(1),
    choice: z.number().int().nonnegative(),
    text: z.string().optional(),
  })
  .strict()

export const traceSchema = z
  .object({
    format: z.literal(TRACE_FORMAT),
    version: z.literal(TRACE_VERSION),
    scenario: z.string().min(1),
    /** A scenario from a review file: the file as given (relative to the working directory) and its content hash. */
    source: z.object({ file: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict().optional(),
    variant: z.string().min(1),
    params: z.record(z.string(), z.number().int()),
    modelHash: z.string().regex(/^[0-9a-f]{16}$/),
    search: z
      .object({
        mode: z.enum(['bfs', 'dfs', 'random']),
        seed: z.number().int().nullable(),
        /** fast-check's replay path of the failing run (random mode). */
        path: z.string().nullable(),
      })
      .strict(),
    init: z.number().int().nonnegative(),
    steps: z.array(traceStep),
    /** A lasso (no-livelock): steps[cycleStart..] lead from the state after steps[0..cycleStart) back to it, and repeat forever. */
    cycleStart: z.number().int().nonnegative().optional(),
    violation: z
      .object({
        invariant: z.string().min(1),
        message: z.string(),
        /** For an outcome property (e.g. ioctl-outcome-deterministic): the outcome this run ends with. */
        outcome: z.string().optional(),
      })
      .strict(),
  })
  .strict()

export type Trace = z.infer<typeof traceSchema>
export type TraceStep = z.infer<typeof traceStep>
