import type { Invariant } from '../explorer/model.js'

/**
 * `no-stale-mapping` on a page-granular pair of tables (the reference
 * model's world): every SLAT entry maps the pfn the host maps at that page,
 * except the one page whose invalidation is between clearing the host entry
 * and clearing the SLAT entry (`pending` = 1 + page). Pfns are never reused,
 * so a mismatch is a mapping of a freed page.
 */
export interface PagePairWorld {
  readonly host: ArrayLike<number>
  readonly slat: ArrayLike<number>
  readonly pending: number
}

export function noStaleMappingPages<W extends PagePairWorld>(): Invariant<W> {
  return {
    id: 'no-stale-mapping',
    description: 'invalidated pages are never left mapped: every SLAT entry maps the pfn the host maps',
    check(w) {
      const { host, slat, pending } = w
      for (let n = 0; n < slat.length; n++) {
        const pfn = slat[n]
        if (pfn !== 0 && pfn !== host[n] && pending !== n + 1) {
          return `page ${n}: SLAT maps pfn ${pfn} but the host ${host[n] ? `maps pfn ${host[n]}` : 'maps nothing'} (pfn ${pfn} was freed)`
        }
      }
      return null
    },
  }
}
