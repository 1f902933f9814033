/** A fixed-width text table row formatter: each column a header, a width and an alignment. */
export type Column = readonly [header: string, width: number, align: 'l' | 'r']

export function rowFormatter(cols: readonly Column[]): (cells: readonly string[]) => string {
  return (cells) =>
    cells
      .map((c, i) => (cols[i][2] === 'l' ? c.padEnd(cols[i][1]) : c.padStart(cols[i][1])))
      .join('  ')
      .trimEnd()
}
