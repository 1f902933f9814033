/**
 * Where a command's scenario comes from: a built-in by name, or a review
 * file (a path to a .ts/.js/.mjs file, optionally `file.ts#name` when it
 * exports several scenarios) loaded at run time.
 */
import { BadInput, isModelError } from '../explorer/errors.js'
import { catalog, findScenario } from '../invariants/scenarios.js'
import { scenariosOf, type Scenario } from '../model/scenario.js'
import type { Trace } from '../traces/format.js'
import { loadReviewFile, looksLikeReviewFile, reviewFileHash } from './review-file.js'

/** Every scenario `arg` names: one built-in, or what a review file exports (all of them, or the one after `#`). */
export async function openScenarios(arg: string): Promise<Scenario[]> {
  if (!looksLikeReviewFile(arg)) return [findScenario(arg)]
  const hash = arg.lastIndexOf('#')
  const [path, pick] = hash > 0 ? [arg.slice(0, hash), arg.slice(hash + 1)] : [arg, undefined]
  const review = await loadReviewFile(path)
  let found: Scenario[]
  try {
    found = scenariosOf(review.module, { file: review.file, sha256: review.sha256 })
  } catch (e) {
    if (isModelError(e)) throw new BadInput(`${review.file}: ${e.message}`)
    throw e
  }
  if (found.length === 0) throw new BadInput(`${review.file}: exports no scenario and no variant (export scenario(...) or variant(base, ...))`)
  if (pick === undefined) return found
  const one = found.find((s) => s.name === pick)
  if (!one) throw new BadInput(`${review.file}: no scenario '${pick}' (it exports: ${found.map((s) => s.name).join(', ')})`)
  return [one]
}

/** The one scenario `arg` names; a review file exporting several must say which, as `file#name`. */
export async function openScenario(arg: string): Promise<Scenario> {
  const all = await openScenarios(arg)
  if (all.length > 1) {
    throw new BadInput(`${arg} exports ${all.length} scenarios (${all.map((s) => s.name).join(', ')}): name one as ${arg}#${all[0].name}`)
  }
  return all[0]
}

/** No argument: the catalogue. */
export const builtIns = (): readonly Scenario[] => catalog

/**
 * The scenario a trace was recorded on. A trace of a review file reloads the
 * file (its path as recorded, from the working directory); a file that is
 * gone or whose content changed since is bad input, unless `force`.
 */
export async function scenarioOfTrace(trace: Trace, options: { force?: boolean } = {}): Promise<Scenario> {
  if (!trace.source) return findScenario(trace.scenario)
  const { file, sha256 } = trace.source
  let now: string
  try {
    now = reviewFileHash(file)
  } catch {
    throw new BadInput(`the trace was made on review file ${file}, which is missing (run from the directory the trace was made in)`)
  }
  if (now !== sha256 && !options.force) {
    throw new BadInput(`review file ${file} has changed since the trace was made (sha256 ${sha256.slice(0, 12)}, now ${now.slice(0, 12)}); --force replays it anyway`)
  }
  const found = await openScenarios(file)
  const s = found.find((x) => x.name === trace.scenario)
  if (!s) throw new BadInput(`${file} no longer exports scenario ${trace.scenario}`)
  return s
}
