import type { Metric } from '../explorer/model.js'
import type { Layout } from '../model/primitives/layout.js'
import { ACCESS_RW, type Leaf } from '../model/primitives/slat.js'

/** `huge-coverage`: the share of the region's gfns the guest sees through huge SLAT leaves, on terminal states. */
export function hugeCoverage(l: Layout): Metric<{ readonly slat: ArrayLike<Leaf> }> {
  return {
    id: 'huge-coverage',
    description: 'share of the region mapped in the guest with huge leaves',
    unit: 'share',
    measure(w) {
      let huge = 0
      for (let i = 0; i < l.N; i++) if (w.slat[i].order > 0 && w.slat[i].access === ACCESS_RW) huge++
      return huge / l.N
    },
  }
}
