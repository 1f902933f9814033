import type { Model } from './model.js'

/**
 * How another thread rebuilds a model: the parallel BFS's workers cannot be
 * handed the model itself (closures do not cross threads), so they are
 * handed this, a module URL, the name of a function it exports and that
 * function's JSON arguments; the function returns the model (or a promise
 * of it). The engine stays domain-free: the CLI supplies the recipe of a
 * built-in scenario or a review file (cli/model-recipe.ts).
 */
export interface ModelRecipe {
  /** A module URL (file: URL), importable from a worker thread. */
  readonly module: string
  readonly export: string
  /** Structured-clonable (JSON) arguments. */
  readonly args: unknown
}

/** Builds the model a recipe names. */
export async function modelOf(recipe: ModelRecipe): Promise<Model<unknown, unknown>> {
  const mod = (await import(recipe.module)) as Record<string, unknown>
  const build = mod[recipe.export]
  if (typeof build !== 'function') throw new Error(`model recipe: ${recipe.module} exports no function ${recipe.export}`)
  return (await (build as (args: unknown) => unknown)(recipe.args)) as Model<unknown, unknown>
}
