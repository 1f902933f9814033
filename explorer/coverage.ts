import type { Model } from './model.js'

/**
 * Action coverage, as TLC reports it per action and SPIN as unreached code:
 * how many transitions each step class (a process's labelled step) took.
 * A step never taken by an exhaustive search is one the bounds never reach;
 * a fix whose steps are never taken proves nothing.
 */
export class Coverage {
  readonly counts: Float64Array

  constructor(private readonly model: Model<unknown, unknown>) {
    this.counts = new Float64Array(model.stepClasses?.length ?? 0)
  }

  /** Group -> name -> count, every class listed (a zero is an unreached step). */
  toRecord(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {}
    ;(this.model.stepClasses ?? []).forEach((c, i) => {
      ;(out[c.group] ??= {})[c.name] = this.counts[i]
    })
    return out
  }
}

/** `group.name` of every class a coverage record shows never taken. */
export function unreached(coverage: Readonly<Record<string, Readonly<Record<string, number>>>>): string[] {
  return Object.entries(coverage).flatMap(([group, byName]) =>
    Object.entries(byName)
      .filter(([, n]) => n === 0)
      .map(([name]) => `${group}.${name}`),
  )
}

/** Of `steps` (`group.name`), those the coverage record shows never taken, or does not know (a group that did not run). */
export function untaken(steps: readonly string[], coverage: Readonly<Record<string, Readonly<Record<string, number>>>>): string[] {
  return steps.filter((s) => {
    const dot = s.indexOf('.')
    return !(coverage[s.slice(0, dot)]?.[s.slice(dot + 1)] > 0)
  })
}
