/**
 * The static geometry of one region, scaled down: a huge page is 2^H small
 * pages (H = 9 on x86-64; the models use H = 1 or 2 so the state space stays
 * small, and every rule is written in terms of H). Region page i is at
 * gfn start_gfn + i and at uaddr start_uaddr + i (both in small-page units).
 */
export interface Layout {
  readonly H: number
  /** Small pages per huge page: 2^H (PTRS_PER_PMD). */
  readonly HP: number
  /** Region pages: mshv_mem_region.nr_pages. */
  readonly N: number
  readonly startGfn: number
  readonly startUaddr: number
  /** Huge-aligned uaddr blocks that intersect the region. */
  readonly blocks: number
  /**
   * The VMA extends past the region's first and last blocks (VMMs map more
   * than one region per VMA: seed 000), so a THP may back a block that
   * straddles the region's first or last page. False: the VMA is the region.
   */
  readonly vmaMargin: boolean
}

/**
 * `base`: where the offsets count from, in small pages (2^H by default). A
 * scenario with 1G folios passes 2^(2H), so that offset 0 puts page 0 at a
 * 1G-aligned uaddr and gfn and a 1G folio can lie inside the region.
 */
export function layout(H: number, N: number, gfnOffset: number, uaddrOffset: number, vmaMargin = false, base = 1 << H): Layout {
  const HP = 1 << H
  if (gfnOffset >= HP || uaddrOffset >= HP) throw new RangeError(`layout: offsets must be below 2^H = ${HP}`)
  if (base < HP || !isAligned(base, HP)) throw new RangeError(`layout: base ${base} must be a non-zero multiple of 2^H = ${HP}`)
  // Any base works; one huge page in (or one 1G unit) keeps gfn/uaddr 0 free of special cases.
  const startGfn = base + gfnOffset
  const startUaddr = base + uaddrOffset
  const blocks = Math.ceil((uaddrOffset + N) / HP)
  return { H, HP, N, startGfn, startUaddr, blocks, vmaMargin }
}

export const isAligned = (x: number, HP: number): boolean => (x & (HP - 1)) === 0
export const alignDown = (x: number, HP: number): number => x & ~(HP - 1)

/** Block b's region page indices (uaddr-aligned, may be partly outside the region). */
export function blockFirstIndex(l: Layout, b: number): number {
  return alignDown(l.startUaddr, l.HP) + b * l.HP - l.startUaddr
}

/** The block holding region page i. */
export function blockOf(l: Layout, i: number): number {
  return Math.floor((l.startUaddr + i) / l.HP) - Math.floor(l.startUaddr / l.HP)
}

/** A THP can back block b only if it lies wholly inside the VMA (the region's uaddr range, or with a margin every block the region touches). */
export function blockInVma(l: Layout, b: number): boolean {
  if (l.vmaMargin) return b >= 0 && b < l.blocks
  const first = blockFirstIndex(l, b)
  return first >= 0 && first + l.HP <= l.N
}

/**
 * The region's edge blocks that reach outside it: [the block of page 0 if it
 * starts before the region, the block of page N - 1 if it ends after it]
 * (-1 where the edge is block-aligned). Their pages outside the region are
 * in the VMA only with a margin.
 */
export function edgeBlocks(l: Layout): [number, number] {
  const last = blockOf(l, l.N - 1)
  return [blockFirstIndex(l, 0) < 0 ? 0 : -1, blockFirstIndex(l, last) + l.HP > l.N ? last : -1]
}
