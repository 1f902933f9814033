import { BadInput } from '../explorer/errors.js'

/** `--param k=v`, repeatable, into a record (values validated by the scenario). */
export function collectParam(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const m = /^([A-Za-z_][\w-]*)=(.+)$/.exec(value)
  if (!m) throw new BadInput(`--param ${value}: expected name=value`)
  return { ...previous, [m[1]]: m[2] }
}

/** A non-negative integer option, or undefined when absent. */
export function intOption(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < min) throw new BadInput(`--${name} ${value}: expected an integer >= ${min}`)
  return Number(value)
}

/** A positive number of seconds. */
export function secondsOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new BadInput(`--max-seconds ${value}: expected a positive number`)
  return n
}
