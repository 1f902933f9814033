import type { Cells, PackedModel } from './model.js'

/**
 * Bit-packed states: each cell gets exactly the bits its declared range
 * needs (a pc over 12 labels 4 bits, a flag 1, a cell that never changes 0),
 * packed into 32-bit words, so the visited set stores, hashes and compares
 * a few whole words instead of a byte per cell. Packing is also the range
 * check: a cell outside its range does not pack, and that successor is a
 * violation of the model's range invariant instead of a state.
 *
 * Cells are placed first-fit (each into the first word with room; widest
 * first, except the cells a renaming moves, see the constructor) and never
 * straddle a word, so one shift and mask reads a cell.
 */
export class BitLayout {
  readonly cells: number
  readonly words: number
  /** Bits actually used (the sum of the cells' widths). */
  readonly bits: number
  /** Per cell: its word, its shift in the word, its minimum, max - min (a cell packs when 0 <= value - min <= span), its mask. */
  readonly word: Int32Array
  readonly shift: Int32Array
  readonly min: Int32Array
  readonly span: Int32Array
  readonly mask: Int32Array

  /**
   * `moving`: cells a thread renaming may change (symmetry reduction) are
   * packed into words of their own, placed first, so renamings only need
   * to repack and compare those words (`movingWords`).
   */
  constructor(ranges: readonly { readonly min: number; readonly max: number }[], moving: readonly number[] = []) {
    const n = ranges.length
    this.cells = n
    this.word = new Int32Array(n)
    this.shift = new Int32Array(n)
    this.min = Int32Array.from(ranges, (r) => r.min)
    this.span = Int32Array.from(ranges, (r) => r.max - r.min)
    const width = Int32Array.from(this.span, (s) => (s === 0 ? 0 : 32 - Math.clz32(s)))
    this.mask = Int32Array.from(width, (w) => (w === 32 ? -1 : (1 << w) - 1))
    for (const s of this.span) if (s < 0) throw new RangeError('BitLayout: a cell range with max < min')
    let bits = 0
    let words = 0
    const place = (cells: number[], decreasing: boolean): number => {
      const free: number[] = []
      if (decreasing) cells.sort((a, b) => width[b] - width[a] || a - b)
      for (const i of cells) {
        const w = width[i]
        bits += w
        let at = free.findIndex((f) => f >= w)
        if (at < 0) {
          at = free.length
          free.push(32)
        }
        this.word[i] = words + at
        this.shift[i] = 32 - free[at]
        free[at] -= w
      }
      return free.length
    }
    // Moving cells keep the order given (the threads' blocks, a pc first), so the first word of a renamed
    // image most often already differs from the least one found so far, and comparing it ends there.
    const isMoving = new Set(moving)
    words += place([...moving], false)
    this.movingWords = words
    words += place(
      Array.from({ length: n }, (_, i) => i).filter((i) => !isMoving.has(i)),
      true,
    )
    this.bits = bits
    this.words = Math.max(1, words)
    ;({ pack: this.pack, unpack: this.unpack } = compilePack(this))
  }

  /** Words [0, movingWords) hold the cells a renaming may change, and nothing else. */
  readonly movingWords: number

  /** The layout of a packed model's cells (grouping those its thread renamings move): their declared ranges, else a byte each (signed where the model says so). */
  static of(packed: PackedModel<unknown>): BitLayout {
    const n = packed.stateBytes
    if (packed.cellRanges) {
      if (packed.cellRanges.length !== n) throw new RangeError(`BitLayout: ${packed.cellRanges.length} cell ranges for ${n} cells`)
      return new BitLayout(packed.cellRanges, movingCells(packed))
    }
    const signed = new Set(packed.signedCells ?? [])
    return new BitLayout(Array.from({ length: n }, (_, i) => (signed.has(i) ? { min: -128, max: 127 } : { min: 0, max: 255 })))
  }

  /**
   * Packs `cells` into `out[0 .. words)`; false (and `out` undefined) when a
   * cell is outside its range. Compiled for this layout (see `compilePack`).
   */
  readonly pack: (cells: Cells, out: Uint32Array) => boolean

  /** The first cell outside its range, or -1. */
  firstOutOfRange(cells: Cells): number {
    for (let i = 0; i < this.cells; i++) if ((cells[i] - this.min[i]) >>> 0 > this.span[i]) return i
    return -1
  }

  /** Unpacks words `src[off .. off + words)` into `out`. Compiled for this layout (see `compilePack`). */
  readonly unpack: (src: ArrayLike<number>, off: number, out: Cells) => void
}

/**
 * Packing and unpacking run once per successor and once per expanded state:
 * a loop over the layout's arrays loads a cell's word, shift, minimum and
 * span from memory and read-modify-writes its word, for every cell. So the
 * two are generated as straight-line code for the layout, every constant
 * inlined and each word built in a local (three times faster on the
 * reference model's 27 cells). The code is made only from the layout's
 * integers, never from a model's text.
 */
/** An integer as a literal in generated code (parenthesised when negative, so that `a - (-3)` stays an expression). */
export const intLiteral = (v: number): string => (v < 0 ? `(${v})` : String(v))

function compilePack(l: BitLayout): { pack: BitLayout['pack']; unpack: BitLayout['unpack'] } {
  const byWord: number[][] = Array.from({ length: l.words }, () => [])
  for (let i = 0; i < l.cells; i++) byWord[l.word[i]].push(i)
  const pack: string[] = ['let v = 0, a = 0']
  const unpack: string[] = ['let a = 0']
  for (let w = 0; w < l.words; w++) {
    pack.push('a = 0')
    unpack.push(`a = s[o + ${w}]`)
    for (const i of byWord[w]) {
      const min = l.min[i]
      const shift = l.shift[i]
      // One unsigned compare catches both ends: a value below min wraps to a huge one.
      pack.push(`v = c[${i}]${min !== 0 ? ` - ${intLiteral(min)}` : ''}`, `if (v >>> 0 > ${l.span[i]}) return false`)
      if (l.span[i] !== 0) pack.push(shift !== 0 ? `a |= v << ${shift}` : 'a |= v')
      const bits = l.span[i] === 0 ? '0' : `((a >>> ${shift}) & ${intLiteral(l.mask[i])})`
      unpack.push(`u[${i}] = ${bits}${min !== 0 ? ` + ${intLiteral(min)}` : ''}`)
    }
    pack.push(`out[${w}] = a`)
  }
  pack.push('return true')
  return {
    pack: new Function('c', 'out', pack.join('\n')) as BitLayout['pack'],
    unpack: new Function('s', 'o', 'u', unpack.join('\n')) as BitLayout['unpack'],
  }
}

/** The cells some thread renaming of the model may change: those moved between threads (in order), then the other thread ids. */
function movingCells(packed: PackedModel<unknown>): number[] {
  const sym = packed.symmetry
  if (!sym) return []
  const moved = new Set<number>()
  for (let p = 0; p < sym.count; p++) sym.sources(p).forEach((s, i) => s !== i && moved.add(i))
  const ids = [...sym.idCells].filter((i) => !moved.has(i))
  return [...[...moved].sort((a, b) => a - b), ...ids.sort((a, b) => a - b)]
}
