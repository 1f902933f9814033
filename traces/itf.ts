/**
 * The Informal Trace Format (ITF, Apalache ADR-015; what Apalache and Quint
 * read and write): `#meta`, `vars`, and `states`, each state every variable
 * in full, integers as `{"#bigint": "n"}` (as Quint writes them), lists as
 * JSON arrays, records as objects. The world's fields are the variables, the
 * threads one more (a list of records: pc and locals); `mbt::actionTaken`
 * names the step that led to each state, as Quint's model-based-testing
 * traces do. Our own trace header rides in `#meta.mapcheck` and each step in
 * its state's `#meta.step`, so that an ITF file of ours reads back as the
 * same trace (`replay` and `show` take it).
 */
import { BadInput } from '../explorer/errors.js'
import { traceSchema, traceStep, type Trace } from './format.js'
import type { Replay } from './replay.js'

export const ITF_DESCRIPTION = 'https://apalache-mc.org/docs/adr/015adr-trace.html'
export const ACTION_TAKEN = 'mbt::actionTaken'

export type ItfValue = boolean | string | number | ItfValue[] | { readonly [k: string]: ItfValue }

export interface ItfTrace {
  readonly '#meta': Record<string, unknown>
  readonly vars: string[]
  readonly states: Record<string, ItfValue>[]
}

/** A plain state value as ITF: integers as `#bigint`. */
export function toItfValue(v: unknown, where = 'state'): ItfValue {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`${where}: ${v} is not an integer; ITF has no other numbers`)
    return { '#bigint': String(v) }
  }
  if (typeof v === 'bigint') return { '#bigint': v.toString() }
  if (typeof v === 'string' || typeof v === 'boolean') return v
  if (Array.isArray(v)) return v.map((x, i) => toItfValue(x, `${where}[${i}]`))
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, ItfValue> = {}
    for (const [k, x] of Object.entries(v)) {
      if (k.startsWith('#')) throw new Error(`${where}: field ${k} would read as an ITF special form`)
      out[k] = toItfValue(x, `${where}.${k}`)
    }
    return out
  }
  throw new Error(`${where}: ${String(v)} has no ITF form`)
}

/** Back from ITF: `#bigint` to a number (ours are small); a JSON number is accepted too, as the format allows. */
export function fromItfValue(v: unknown, where = 'state'): unknown {
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return v
  if (Array.isArray(v)) return v.map((x, i) => fromItfValue(x, `${where}[${i}]`))
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>
    if ('#bigint' in o) {
      if (typeof o['#bigint'] !== 'string' || !/^-?\d+$/.test(o['#bigint'])) throw new BadInput(`${where}: #bigint must be a string of digits`)
      const n = BigInt(o['#bigint'])
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n
    }
    const special = Object.keys(o).find((k) => k.startsWith('#'))
    if (special) throw new BadInput(`${where}: ${special} is not a value mapcheck states hold`)
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fromItfValue(x, `${where}.${k}`)]))
  }
  throw new BadInput(`${where}: not an ITF value`)
}

/** A trace and its replay as ITF: the initial state and the state after every step, each in full. */
export function toItf(trace: Trace, replay: Pick<Replay<unknown>, 'initial' | 'steps'>): ItfTrace {
  const { steps, ...header } = trace
  const worlds = [replay.initial, ...replay.steps.map((s) => s.after)]
  const vars = [...Object.keys(replay.initial as object), ACTION_TAKEN]
  const states = worlds.map((w, i) => {
    const step = i === 0 ? undefined : steps[i - 1]
    return {
      '#meta': { index: i, ...(step ? { step } : {}) },
      ...(toItfValue(w) as Record<string, ItfValue>),
      [ACTION_TAKEN]: step ? `${step.thread}: ${step.label}` : 'init',
    }
  })
  return {
    '#meta': {
      format: 'ITF',
      'format-description': ITF_DESCRIPTION,
      source: trace.source?.file ?? trace.scenario,
      description: `mapcheck trace of ${trace.scenario} --variant ${trace.variant}: ${trace.violation.invariant}: ${trace.violation.message}`,
      mapcheck: header,
    },
    vars,
    states: states as Record<string, ItfValue>[],
  }
}

export const isItf = (json: unknown): boolean =>
  typeof json === 'object' && json !== null && typeof (json as { '#meta'?: { format?: unknown } })['#meta'] === 'object' && (json as { '#meta': { format?: unknown } })['#meta']?.format === 'ITF'

/**
 * The trace an ITF file of ours holds (its header in `#meta.mapcheck`, its
 * steps in the states' `#meta.step`), with the states it shows. An ITF
 * file from another tool is bad input: it has no steps mapcheck can replay.
 */
export function fromItf(json: unknown, file: string): { trace: Trace; states: unknown[] } {
  const itf = json as Partial<ItfTrace>
  const header = (itf['#meta'] as { mapcheck?: unknown } | undefined)?.mapcheck
  if (typeof header !== 'object' || header === null) throw new BadInput(`${file}: an ITF trace, but not one of mapcheck's (no #meta.mapcheck: the scenario and steps to replay)`)
  if (!Array.isArray(itf.states) || itf.states.length === 0) throw new BadInput(`${file}: ITF trace without states`)
  const steps = itf.states.slice(1).map((s, i) => {
    const step = traceStep.safeParse((s as { '#meta'?: { step?: unknown } })?.['#meta']?.step)
    if (!step.success) throw new BadInput(`${file}: state ${i + 1}: #meta.step is not a mapcheck step`)
    return step.data
  })
  const parsed = traceSchema.safeParse({ ...header, steps })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new BadInput(`${file}: #meta.mapcheck: ${issue.path.join('.') || 'top level'}: ${issue.message}`)
  }
  const states = itf.states.map((s, i) => {
    const { '#meta': _meta, [ACTION_TAKEN]: _action, ...vars } = s as Record<string, unknown>
    return fromItfValue(vars, `state ${i}`)
  })
  return { trace: parsed.data, states }
}
