/**
 * The model recipe of a scenario (explorer/recipe.ts): how a parallel BFS
 * worker rebuilds the instance being checked, a built-in by name or a
 * review file by its path, with the variant and parameters.
 */
import { resolve } from 'node:path'
import { BadInput } from '../explorer/errors.js'
import type { ModelRecipe } from '../explorer/recipe.js'
import { catalog, findScenario, instantiate, type Instance } from '../invariants/scenarios.js'
import { openScenarios } from './scenarios.js'

export interface ScenarioModelArgs {
  readonly scenario: string
  /** The review file that exports it (absolute), for a scenario that is not a built-in. */
  readonly file?: string
  /** The review file's content hash when the search began: a worker must not check an edited file. */
  readonly sha256?: string
  readonly variant: string
  readonly params: Readonly<Record<string, number>>
}

/** Runs in the worker: the compiled model of one scenario instance. */
export async function scenarioModel(args: ScenarioModelArgs) {
  const scenario = args.file ? (await openScenarios(args.file)).find((s) => s.name === args.scenario) : findScenario(args.scenario)
  if (!scenario) throw new BadInput(`${args.file}: no scenario '${args.scenario}' any more`)
  if (args.sha256 !== undefined && scenario.source?.sha256 !== args.sha256) throw new BadInput(`${args.file} changed while it was being checked`)
  return instantiate(scenario, args.variant, args.params).model
}

const fromSource = import.meta.url.endsWith('.ts')

/**
 * The recipe of `instance`, when a worker can rebuild it: a built-in (the
 * catalogue's own object) or a scenario of a review file. A scenario object
 * made in code (the API) has none: its search is sequential. In the bundle
 * this module is dist/model-recipe.js, next to the chunk this code is in.
 */
export function scenarioRecipe(instance: Instance): ModelRecipe | undefined {
  const source = instance.scenario.source
  if (!source && !catalog.includes(instance.scenario)) return undefined
  const args: ScenarioModelArgs = {
    scenario: instance.name,
    ...(source ? { file: resolve(source.file), sha256: source.sha256 } : {}),
    variant: instance.variant,
    params: instance.params,
  }
  return { module: new URL(fromSource ? './model-recipe.ts' : './model-recipe.js', import.meta.url).href, export: 'scenarioModel', args }
}
