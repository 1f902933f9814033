/**
 * How a scenario's world reads as a memory map: which of its fields is the
 * second-level table (SLAT/EPT leaves), the host page table, the folios, a
 * guest_memfd binding or an MSHV region. The HTML report draws the picture
 * of any state from this declaration alone, so a review file's scenario
 * gets one by declaring it (and a variant gets its base's). Field names are
 * those of the world's schema; a lane whose encoding is particular to one
 * scenario may give `cell` instead, a function of the world and the row.
 */

/** One cell of a lane, at one gfn row. */
export interface MapCell {
  readonly text: string
  /** How it is drawn: `none` (empty), `small`/`huge` (a 4K or huge mapping or folio), `freed`, `other`. */
  readonly kind: 'none' | 'small' | 'huge' | 'freed' | 'other'
  /** The pfns it shows, so that an invariant's `pfn N` finds it. */
  readonly pfns?: readonly number[]
}

export interface LeafLane {
  readonly kind: 'leaf'
  /** `SLAT`, `EPT`, `S-EPT`, `SPTE`. */
  readonly label: string
  /** An array with one entry per row: the pfn itself, or a record. */
  readonly field: string
  /** The record's pfn field (absent: the entry is the pfn; 0 = not mapped). */
  readonly pfn?: string
  /** The record's leaf order (log2 small pages), or `pages` its size in small pages. */
  readonly order?: string
  readonly pages?: string
  /** A parallel array holding each entry's order (KVM's spte level). */
  readonly orderField?: string
  /** When the order is kept in other units (a page-table level): to log2 small pages. */
  readonly toOrder?: (value: number) => number
  /** The record's access field, and names for its values. */
  readonly access?: string
  readonly accessNames?: readonly string[]
}

export interface HostLane {
  readonly kind: 'host'
  readonly label?: string
  /** The PTE array: the pfn mapped at each row's uaddr (0 = none). */
  readonly pte: string
  /** Per huge-aligned uaddr block: non-zero when a PMD maps it. */
  readonly pmd?: string
  /** The uaddr of row 0 (small-page units): which PMD block a row is in. */
  readonly firstUaddr?: number
}

export interface FolioLane {
  readonly kind: 'folio'
  readonly label?: string
  /** Per row (a guest_memfd file page): the folio's order, and its pfn when the world records one. */
  readonly order: string
  readonly pfn?: string
  /** Per row: non-zero when the page is poisoned. */
  readonly poison?: string
}

export interface RangeLane {
  readonly kind: 'range'
  /** `memslot`, `binding`, `region`. */
  readonly label: string
  /** An array of records, one per range; each covers gfns from `start` for `count` (absent: every row). */
  readonly field?: string
  readonly start?: string
  readonly count?: string
  /** Non-zero while the range exists (a record field, or with no `field`, a field of the world). */
  readonly live?: string
  /** Without `field`: the one range, in rows. */
  readonly rows?: readonly [number, number]
  /** Names of the `live` values (e.g. region states). */
  readonly liveNames?: readonly string[]
}

/** Anything else, one value per row (attributes, the region's page array), or a function of the world. */
export interface ValueLane {
  readonly kind: 'value'
  readonly label: string
  readonly field?: string
  readonly names?: readonly string[]
  readonly cell?: (world: any, row: number) => MapCell
}

export type MapLane = LeafLane | HostLane | FolioLane | RangeLane | ValueLane

export interface MemoryMap {
  /** One row per guest frame. */
  readonly rows: number
  /** The gfn of row 0 (an invariant's `gfn N` is row N - firstGfn); `page N` in a message is row N. */
  readonly firstGfn?: number
  /** Small pages per huge page (2^H): a boundary every that many gfns. */
  readonly hugePages?: number
  readonly lanes: readonly MapLane[]
  /** Host memory by pfn, as the folio primitive keeps it (FRAME_* codes): drawn as a strip of folios. */
  readonly frames?: string
}

/** Frame codes of the folio primitive (model/primitives/folio.ts), by value. */
export const FRAME_KIND_NAMES = ['unused', 'small', 'huge', 'freed'] as const

/**
 * For a world no layout was declared for: every array of numbers whose
 * length is the most common one becomes a lane of values, so that a
 * scenario from scratch still gets a picture (its rows its arrays' indices).
 */
export function inferredMemoryMap(world: unknown): MemoryMap {
  const w = (world ?? {}) as Record<string, unknown>
  const arrays = Object.entries(w).filter(([k, v]) => k !== 'threads' && Array.isArray(v) && v.every((x) => typeof x === 'number'))
  const lengths = arrays.map(([, v]) => (v as unknown[]).length)
  const rows = lengths.sort((a, b) => lengths.filter((x) => x === b).length - lengths.filter((x) => x === a).length)[0] ?? 0
  return {
    rows,
    lanes: arrays.filter(([, v]) => (v as unknown[]).length === rows).map(([k]): ValueLane => ({ kind: 'value', label: k, field: k })),
  }
}
