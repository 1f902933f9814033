import { isModelError } from '../explorer/errors.js'
import { NO_DEADLOCK } from '../explorer/search.js'
import { instantiate } from '../invariants/scenarios.js'
import { allParams, isPatch, resolveParams, type Scenario } from '../model/scenario.js'

/** What `list` shows of a scenario: its variants, every property checked of some variant at the defaults, its parameters. */
export function describeScenario(scenario: Scenario) {
  const defaults = resolveParams(scenario, {})
  const invariants: string[] = []
  const metrics: string[] = []
  const errors: string[] = []
  for (const v of scenario.variants) {
    try {
      const m = instantiate(scenario, v.name, defaults).model
      for (const id of [...m.invariants.map((i) => i.id), ...(m.outcomes ?? []).map((o) => o.id), ...(m.evidence ?? []).map((e) => e.id)]) {
        if (!invariants.includes(id)) invariants.push(id)
      }
      for (const x of m.metrics ?? []) if (!metrics.includes(x.id)) metrics.push(x.id)
    } catch (e) {
      if (!isModelError(e)) throw e
      errors.push(`${v.name}: ${e.message}`)
    }
  }
  return {
    name: scenario.name,
    ...(scenario.source ? { source: scenario.source.file } : {}),
    title: scenario.title,
    description: scenario.description,
    variants: scenario.variants.map((v) => ({ name: v.name, description: v.description, ...(isPatch(v) ? { patchOf: v.from ?? scenario.variants[0].name } : {}) })),
    invariants: [...invariants, NO_DEADLOCK],
    metrics,
    params: allParams(scenario),
    ...(errors.length ? { modelErrors: errors } : {}),
  }
}

/** `mapcheck list`: scenarios, their variants, invariants and parameters with defaults and ranges. */
export function listCommand(scenarios: readonly Scenario[], json: boolean): number {
  const described = scenarios.map(describeScenario)
  if (json) {
    process.stdout.write(`${JSON.stringify(described, null, 2)}\n`)
    return described.some((s) => s.modelErrors) ? 2 : 0
  }
  const lines: string[] = []
  for (const s of described) {
    lines.push(`${s.name}: ${s.title}${s.source ? ` (${s.source})` : ''}`, `  ${s.description}`, '  variants:')
    for (const v of s.variants) lines.push(`    ${v.name.padEnd(24)} ${v.description}${v.patchOf ? ` [patch of ${v.patchOf}]` : ''}`)
    lines.push(`  invariants: ${s.invariants.join(', ')}`)
    if (s.metrics.length) lines.push(`  metrics: ${s.metrics.join(', ')}`)
    lines.push('  parameters:')
    for (const p of s.params) lines.push(`    ${`${p.name}=${p.default}`.padEnd(24)} ${p.description} (${p.min}..${p.max})`)
    for (const e of s.modelErrors ?? []) lines.push(`  model error: ${e}`)
    lines.push('')
  }
  process.stdout.write(lines.join('\n'))
  return described.some((s) => s.modelErrors) ? 2 : 0
}
