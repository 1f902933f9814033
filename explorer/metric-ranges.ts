import type { Model, PackedModel } from './model.js'
import type { MetricRange } from './result.js'

/**
 * Each metric's range over every state reached, not only terminal ones: a
 * huge-page coverage that reads 0% at the end may have been 75% mid-run.
 */
export class MetricRanges<S> {
  private readonly min: number[]
  private readonly max: number[]
  private readonly ids: readonly string[]

  constructor(model: Model<S, unknown>, private readonly packed: PackedModel<S>) {
    this.ids = (model.metrics ?? []).map((m) => m.id)
    this.min = this.ids.map(() => Infinity)
    this.max = this.ids.map(() => -Infinity)
    // A model without a packed measure is measured on decoded states.
    if (!packed.measure && this.ids.length > 0) {
      const metrics = model.metrics!
      this.measure = (i) => metrics[i].measure(packed.decode(packed.next))
    }
  }

  private readonly measure = (i: number): number => this.packed.measure!(i)

  /** Measures `packed.next`. */
  observeNext(): void {
    for (let i = 0; i < this.ids.length; i++) {
      const v = this.measure(i)
      if (v < this.min[i]) this.min[i] = v
      if (v > this.max[i]) this.max[i] = v
    }
  }

  /** Widens each range to cover `r`'s (another search's ranges). */
  merge(r: Readonly<Record<string, MetricRange>>): void {
    this.ids.forEach((id, i) => {
      const m = r[id]
      if (!m) return
      if (m.min < this.min[i]) this.min[i] = m.min
      if (m.max > this.max[i]) this.max[i] = m.max
    })
  }

  /** For a checkpoint (an unobserved metric's infinite bounds as null). */
  snapshot(): { min: (number | null)[]; max: (number | null)[] } {
    const finite = (v: number): number | null => (Number.isFinite(v) ? v : null)
    return { min: this.min.map(finite), max: this.max.map(finite) }
  }

  restore(s: { min: (number | null)[]; max: (number | null)[] }): void {
    s.min.forEach((v, i) => (this.min[i] = v ?? Infinity))
    s.max.forEach((v, i) => (this.max[i] = v ?? -Infinity))
  }

  toRecord(): Record<string, MetricRange> {
    const out: Record<string, MetricRange> = {}
    this.ids.forEach((id, i) => {
      if (this.min[i] <= this.max[i]) out[id] = { min: this.min[i], max: this.max[i] }
    })
    return out
  }
}
