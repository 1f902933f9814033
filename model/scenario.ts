/**
 * A scenario: one seed system's code paths as a `Program`, parameters with
 * small defaults and ranges, and variants (patch proposals) as named
 * overrides. Invariants are bound to a scenario one layer up (invariants/),
 * so the kernel model never depends on what is checked of it.
 */
import { BadInput } from '../explorer/errors.js'
import type { Program } from './process.js'
import type { Fields } from './schema.js'

export interface ParamSpec {
  readonly name: string
  readonly default: number
  readonly min: number
  readonly max: number
  readonly description: string
}

export interface VariantSpec {
  readonly name: string
  readonly description: string
}

export type Params = Readonly<Record<string, number>>

export interface Scenario<G extends Fields = Fields> {
  readonly name: string
  readonly title: string
  /** The discussion it comes from, and what it models. */
  readonly description: string
  readonly params: readonly ParamSpec[]
  /** The first is the default. */
  readonly variants: readonly VariantSpec[]
  build(params: Params, variant: string): Program<G>
}

/** Validates a variant name: the default when absent. */
export function resolveVariant(scenario: Scenario<any>, variant: string | undefined): string {
  if (variant === undefined) return scenario.variants[0].name
  if (!scenario.variants.some((v) => v.name === variant)) {
    throw new BadInput(
      `unknown variant '${variant}' of scenario ${scenario.name} (variants: ${scenario.variants.map((v) => v.name).join(', ')})`,
    )
  }
  return variant
}

/** Fills in defaults and validates names, integers and ranges. */
export function resolveParams(scenario: Scenario<any>, given: Readonly<Record<string, number | string>>): Params {
  const out: Record<string, number> = {}
  for (const [name, raw] of Object.entries(given)) {
    const spec = scenario.params.find((p) => p.name === name)
    if (!spec) {
      throw new BadInput(
        `unknown parameter '${name}' of scenario ${scenario.name} (parameters: ${scenario.params.map((p) => p.name).join(', ') || 'none'})`,
      )
    }
    const value = typeof raw === 'number' ? raw : /^-?(0x[0-9a-f]+|\d+)$/i.test(raw.trim()) ? Number(raw.trim()) : NaN
    if (!Number.isInteger(value)) throw new BadInput(`parameter ${name}=${String(raw)} is not an integer`)
    if (value < spec.min || value > spec.max) {
      throw new BadInput(`parameter ${name}=${value} is out of range ${spec.min}..${spec.max}`)
    }
    out[name] = value
  }
  return Object.fromEntries(scenario.params.map((p) => [p.name, out[p.name] ?? p.default]))
}
