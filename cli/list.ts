import { catalog } from '../invariants/scenarios.js'
import { NO_DEADLOCK } from '../explorer/search.js'

/** `mapcheck list`: scenarios, their variants, invariants and parameters with defaults and ranges. */
export function listCommand(json: boolean): number {
  const scenarios = catalog.map(({ scenario, invariants, outcomes, metrics }) => {
    const defaults = Object.fromEntries(scenario.params.map((p) => [p.name, p.default]))
    const first = scenario.variants[0].name
    return {
      name: scenario.name,
      title: scenario.title,
      description: scenario.description,
      variants: scenario.variants,
      invariants: [
        ...new Set(scenario.variants.flatMap((v) => invariants(defaults, v.name).map((i) => i.id))),
        ...(outcomes?.(defaults, first) ?? []).map((o) => o.id),
        NO_DEADLOCK,
      ],
      metrics: (metrics?.(defaults, first) ?? []).map((m) => m.id),
      params: scenario.params,
    }
  })
  if (json) {
    process.stdout.write(`${JSON.stringify(scenarios, null, 2)}\n`)
    return 0
  }
  const lines: string[] = []
  for (const s of scenarios) {
    lines.push(`${s.name}: ${s.title}`, `  ${s.description}`, '  variants:')
    for (const v of s.variants) lines.push(`    ${v.name.padEnd(24)} ${v.description}`)
    lines.push(`  invariants: ${s.invariants.join(', ')}`)
    if (s.metrics.length) lines.push(`  metrics: ${s.metrics.join(', ')}`)
    lines.push('  parameters:')
    for (const p of s.params) lines.push(`    ${`${p.name}=${p.default}`.padEnd(24)} ${p.description} (${p.min}..${p.max})`)
    lines.push('')
  }
  process.stdout.write(lines.join('\n'))
  return 0
}
