import type { Model } from './model.js'
import type { MetricRange } from './result.js'

/**
 * Watches terminal states for the exploration-wide properties: the first
 * terminal state seen with each outcome (two outcomes break the property),
 * and each metric's range. States are identified by an opaque key (a store
 * index, or a random run's number) so BFS, DFS and random share this.
 */
export class OutcomeWatch<S> {
  /** Property index -> input -> outcome -> key of the first terminal state with it. */
  private readonly seen: Map<string, Map<string, number>>[]
  readonly broken = new Map<number, { first: number; firstOutcome: string; second: number; secondOutcome: string }>()
  readonly metrics: Record<string, MetricRange> = {}
  /** Outcomes seen for the first time (per property and input): each is an event for the parallel BFS. */
  fresh = 0

  constructor(private readonly model: Model<S, unknown>) {
    this.seen = (model.outcomes ?? []).map(() => new Map())
  }

  /** Anything to watch? (Terminal states are decoded only then.) */
  get active(): boolean {
    return (this.model.outcomes?.length ?? 0) + (this.model.metrics?.length ?? 0) > 0
  }

  /** A terminal state `s`, known by `key`. Returns true when a property has just broken. */
  observe(s: S, key: number): boolean {
    let broke = false
    ;(this.model.outcomes ?? []).forEach((p, i) => {
      const outcome = p.outcome(s)
      const input = p.input?.(s) ?? ''
      const byInput = this.seen[i]
      if (!byInput.has(input)) byInput.set(input, new Map())
      const seen = byInput.get(input)!
      if (!seen.has(outcome)) {
        if (seen.size > 0 && !this.broken.has(i)) {
          const [firstOutcome, first] = seen.entries().next().value as [string, number]
          this.broken.set(i, { first, firstOutcome, second: key, secondOutcome: outcome })
          broke = true
        }
        seen.set(outcome, key)
        this.fresh++
      }
    })
    for (const m of this.model.metrics ?? []) {
      const v = m.measure(s)
      const r = this.metrics[m.id]
      this.metrics[m.id] = r ? { min: Math.min(r.min, v), max: Math.max(r.max, v) } : { min: v, max: v }
    }
    return broke
  }

  /** (property, input, outcome) of every outcome seen. */
  known(): [number, string, string][] {
    return this.seen.flatMap((byInput, i) => [...byInput].flatMap(([input, m]) => [...m.keys()].map((o): [number, string, string] => [i, input, o])))
  }

  /** Takes outcomes another search saw as seen (key -1); a property with two for one input is broken there already. */
  learn(outcomes: readonly (readonly [number, string, string])[]): void {
    for (const [i, input, outcome] of outcomes) {
      const byInput = this.seen[i]
      if (!byInput.has(input)) byInput.set(input, new Map())
      const seen = byInput.get(input)!
      if (seen.has(outcome)) continue
      if (seen.size > 0 && !this.broken.has(i)) this.broken.set(i, { first: -1, firstOutcome: '', second: -1, secondOutcome: outcome })
      seen.set(outcome, -1)
      this.fresh++
    }
  }

  /** For a checkpoint: everything seen, as plain JSON. */
  snapshot() {
    return {
      seen: this.seen.map((byInput) => [...byInput].map(([input, m]) => [input, [...m]] as [string, [string, number][]])),
      broken: [...this.broken],
      metrics: { ...this.metrics },
    }
  }

  restore(s: ReturnType<OutcomeWatch<S>['snapshot']>): void {
    s.seen.forEach((byInput, i) => {
      for (const [input, m] of byInput) this.seen[i].set(input, new Map(m))
    })
    for (const [i, b] of s.broken) this.broken.set(i, b)
    Object.assign(this.metrics, s.metrics)
  }

  message(i: number): string {
    const b = this.broken.get(i)!
    const input = this.inputOf(i, b.first)
    return `the same input${input ? ` (${input})` : ''} ends in "${b.firstOutcome}" on one run and "${b.secondOutcome}" on another: the result depends on the nondeterministic choices`
  }

  /** Property id -> input -> the outcomes seen for it, in the order first seen. */
  get outcomes(): Record<string, Record<string, string[]>> {
    const out: Record<string, Record<string, string[]>> = {}
    ;(this.model.outcomes ?? []).forEach((p, i) => {
      out[p.id] = Object.fromEntries([...this.seen[i]].map(([input, m]) => [input, [...m.keys()]]))
    })
    return out
  }

  private inputOf(i: number, key: number): string {
    for (const [input, m] of this.seen[i]) for (const k of m.values()) if (k === key) return input
    return ''
  }
}
