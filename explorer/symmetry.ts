import { intLiteral, type BitLayout } from './bit-layout.js'
import { ModelError } from './errors.js'
import type { Cells, PackedSymmetry } from './model.js'

/**
 * Symmetry reduction (Ip and Dill's scalarsets, SPIN's and TLC's symmetry
 * sets): a state is stored as the least, by packed words, of its images
 * under every renaming of interchangeable threads, so one state stands for
 * its whole orbit. Exact (every renaming is tried, no heuristic normal
 * form), so the sum of the orbit sizes of the stored states is the
 * unreduced count; `orbit` is the size of the last state packed
 * (renamings / its stabiliser).
 *
 * Only the words holding cells a renaming moves (the layout puts them
 * first, see BitLayout's `movingWords`) are repacked for each image,
 * straight from the state's cells a word at a time, and an image is
 * abandoned at the first word already larger than the least so far.
 */
export class Canonicalizer {
  readonly words: number
  /** Orbit size of the state `encode` last packed. */
  orbit = 1
  private readonly maps: Int32Array[]
  /** Per renaming: its image packed and compared with the least so far, as straight-line code (`compileImage`). */
  private readonly images: ImageFn[]
  private readonly candidate: Uint32Array
  private readonly original: Uint32Array

  constructor(
    private readonly layout: BitLayout,
    readonly symmetry: PackedSymmetry | null,
  ) {
    this.words = layout.words
    const w = layout.movingWords
    // Cells in word order: `order[k]` is the k-th cell packed; `wordEnd[w]` ends word w's cells in `order`.
    const order = Int32Array.from({ length: layout.cells }, (_, i) => i)
      .filter((i) => layout.word[i] < w)
      .sort((a, b) => layout.word[a] - layout.word[b] || a - b)
    const wordEnd = new Int32Array(w)
    for (let k = 0; k < order.length; k++) wordEnd[layout.word[order[k]]] = k + 1
    for (let i = 1; i < w; i++) wordEnd[i] = Math.max(wordEnd[i], wordEnd[i - 1])
    // Per cell: its bias when it holds a thread id, else -1.
    const bias = new Int32Array(layout.cells).fill(-1)
    if (symmetry) symmetry.idCells.forEach((c, j) => (bias[c] = symmetry.idBias[j]))
    this.maps = []
    this.images = []
    for (let p = 0; p < (symmetry?.count ?? 0); p++) {
      this.maps.push(symmetry!.threadMap(p))
      this.images.push(compileImage(layout, order, wordEnd, symmetry!.sources(p), bias))
    }
    this.candidate = new Uint32Array(w)
    this.original = new Uint32Array(w)
  }

  get symmetric(): boolean {
    return this.symmetry !== null
  }

  decode(words: Uint32Array, out: Cells): void {
    this.layout.unpack(words, 0, out)
  }

  /** Packs the least image of `cells` into `out`; false when `cells` is outside its ranges. */
  encode(cells: Cells, out: Uint32Array): boolean {
    const layout = this.layout
    if (!layout.pack(cells, out)) return false
    const sym = this.symmetry
    if (sym === null) return true
    // Words past movingWords are the same in every image.
    const w = layout.movingWords
    const cand = this.candidate
    const original = this.original
    for (let i = 0; i < w; i++) original[i] = out[i]
    // `fixed` counts renamings that map the state to itself (its stabiliser, with the identity).
    let fixed = 1
    for (let p = 0; p < sym.count; p++) {
      const r = this.images[p](cells, out, original, cand, this.maps[p])
      if (r < 0) throw new ModelError(`thread renaming ${sym.describe(p)} takes a state outside the declared ranges (a thread id field too narrow for the threads?)`)
      if (r & SAME) fixed++
      if ((r & ORDER) === LESS) for (let i = 0; i < w; i++) out[i] = cand[i]
    }
    this.orbit = (sym.count + 1) / fixed
    return true
  }
}

/** What an image function returns: its order against the least so far (in the low bits), and SAME if it is the state itself; -1 when a renamed id is out of its range. */
const ORDER = 3
const LESS = 1
const GREATER = 2
const SAME = 4
type ImageFn = (cells: Cells, least: Uint32Array, original: Uint32Array, cand: Uint32Array, map: Int32Array) => number

/**
 * One renaming's image, packed a word at a time into `cand` straight from
 * the state's cells and compared with the least image so far as it goes
 * (abandoned at the first word that makes it greater, unless it may still
 * be the state itself, which the orbit size needs). Generated per renaming
 * as straight-line code, every source cell, shift and minimum inlined, as
 * BitLayout's pack is: a loop over per-cell tables was a third of a
 * symmetric mshv-movable run. Only thread-id cells can leave their range
 * (a moved cell takes a value of the same field of another thread), so
 * only they are range-checked. Made only from the layout's integers.
 */
function compileImage(layout: BitLayout, order: Int32Array, wordEnd: Int32Array, src: Int32Array, bias: Int32Array): ImageFn {
  const code: string[] = ['let v = 0, t = 0, a = 0, st = 0, same = 1']
  let k = 0
  for (let wd = 0; wd < wordEnd.length; wd++) {
    code.push('a = 0')
    for (const end = wordEnd[wd]; k < end; k++) {
      const i = order[k]
      const min = layout.min[i]
      const shift = layout.shift[i]
      code.push(`v = c[${src[i]}]`)
      if (bias[i] >= 0) {
        code.push(`t = v - ${bias[i]}`, `if (t >= 0 && t < map.length) v = map[t] + ${bias[i]}`)
        code.push(`if ((v - ${intLiteral(min)}) >>> 0 > ${layout.span[i]}) return -1`)
      }
      if (layout.span[i] !== 0) code.push(`a |= ${min !== 0 ? `(v - ${intLiteral(min)})` : 'v'}${shift !== 0 ? ` << ${shift}` : ''}`)
    }
    code.push(
      'a >>>= 0',
      `cand[${wd}] = a`,
      `if (a !== o[${wd}]) same = 0`,
      `if (st === 0 && a !== l[${wd}]) st = a < l[${wd}] ? ${LESS} : ${GREATER}`,
      `if (st === ${GREATER} && same === 0) return ${GREATER}`,
    )
  }
  code.push(`return st | (same === 1 ? ${SAME} : 0)`)
  return new Function('c', 'l', 'o', 'cand', 'map', code.join('\n')) as ImageFn
}
