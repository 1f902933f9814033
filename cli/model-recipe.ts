/**
 * The model recipe of a scenario (explorer/recipe.ts): how a parallel BFS
 * worker rebuilds the instance being checked, a built-in by name or a
 * review file by its path, with the variant and parameters.
 */
import { resolve } from 'node:path'
import { BadInput } from '../explorer/errors.js'
import type { ModelRecipe } from '../explorer/recipe.js'
import { findScenario, instantiate, type Instance } from '../invariants/scenarios.js'
import { openScenarios } from './scenarios.js'

export interface ScenarioModelArgs {
  readonly scenario: string
  /** The review file that exports it (absolute), for a scenario that is not a built-in. */
  readonly file?: string
  readonly variant: string
  readonly params: Readonly<Record<string, number>>
}

/** Runs in the worker: the compiled model of one scenario instance. */
export async function scenarioModel(args: ScenarioModelArgs) {
  const scenario = args.file ? (await openScenarios(args.file)).find((s) => s.name === args.scenario) : findScenario(args.scenario)
  if (!scenario) throw new BadInput(`${args.file}: no scenario '${args.scenario}' any more`)
  return instantiate(scenario, args.variant, args.params).model
}

const fromSource = import.meta.url.endsWith('.ts')

/** The recipe of `instance`; in the bundle this module is dist/model-recipe.js, next to the chunk this code is in. */
export function scenarioRecipe(instance: Instance): ModelRecipe {
  const file = instance.scenario.source?.file
  const args: ScenarioModelArgs = { scenario: instance.name, ...(file ? { file: resolve(file) } : {}), variant: instance.variant, params: instance.params }
  return { module: new URL(fromSource ? './model-recipe.ts' : './model-recipe.js', import.meta.url).href, export: 'scenarioModel', args }
}
