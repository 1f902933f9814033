/**
 * Model code that throws something other than a ModelError (a TypeError in
 * the scenario's build, outside any step) is that variant's `model error` cell: the other
 * variants and scenarios of a multi-scenario command still run and print.
 */
import { describe, expect, it } from 'vitest'
import { checkAllCommand, compareScenario } from '../../cli/compare.js'
import { EXIT } from '../../cli/exit.js'
import { findScenario } from '../../invariants/scenarios.js'
import type { Scenario } from '../../model/scenario.js'
import notifierCounter from '../../examples/notifier-counter.js'

/** notifier-counter whose build throws a TypeError (a bug in the scenario's own code, outside any step). */
const throwing: Scenario = {
  ...(notifierCounter as Scenario),
  name: 'throwing',
  build: () => (undefined as unknown as { x: () => never }).x(),
}

describe('a property that throws', () => {
  it('is a model error row per variant, not an abort of compare', () => {
    const c = compareScenario(throwing, {}, {})
    expect(c.variants.map((r) => r.result)).toEqual(['model error', 'model error', 'model error'])
    expect(c.variants[0].error).toMatch(/^TypeError: Cannot read properties of undefined/)
  })

  it('the matrix still prints the other scenarios, and exits 2', () => {
    const out: string[] = []
    const write = process.stdout.write
    process.stdout.write = ((s: string) => (out.push(s), true)) as typeof process.stdout.write
    let status: number
    try {
      status = checkAllCommand([throwing, findScenario('fault-invalidate')], {}, false)
    } finally {
      process.stdout.write = write
    }
    expect(status).toBe(EXIT.badInput)
    const text = out.join('').replace(/\x1b\[[0-9;]*m/g, '')
    expect(text).toMatch(/^throwing/m)
    expect(text).toMatch(/^no-retry\s+VIOLATED \(12 steps\)/m)
    expect(text).toMatch(/upstream: model error: TypeError: Cannot read properties of undefined/)
  })
})
