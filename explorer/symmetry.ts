import type { BitLayout } from './bit-layout.js'
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
  /** Cells in word order: `order[k]` is the k-th cell packed; `wordEnd[w]` ends word w's cells in `order`. */
  private readonly order: Int32Array
  private readonly wordEnd: Int32Array
  /** Per renaming, per k: the source cell of image cell order[k]. */
  private readonly src: Int32Array[]
  /** Per k: the bias of image cell order[k] when it holds a thread id, else -1. */
  private readonly bias: Int32Array
  private readonly maps: Int32Array[]
  private readonly candidate: Uint32Array
  private readonly original: Uint32Array

  constructor(
    private readonly layout: BitLayout,
    readonly symmetry: PackedSymmetry | null,
  ) {
    this.words = layout.words
    const w = layout.movingWords
    this.order = Int32Array.from({ length: layout.cells }, (_, i) => i)
      .filter((i) => layout.word[i] < w)
      .sort((a, b) => layout.word[a] - layout.word[b] || a - b)
    const n = layout.cells
    this.wordEnd = new Int32Array(w)
    for (let k = 0; k < this.order.length; k++) this.wordEnd[layout.word[this.order[k]]] = k + 1
    for (let i = 1; i < w; i++) this.wordEnd[i] = Math.max(this.wordEnd[i], this.wordEnd[i - 1])
    const biasOf = new Int32Array(n).fill(-1)
    if (symmetry) symmetry.idCells.forEach((c, j) => (biasOf[c] = symmetry.idBias[j]))
    this.bias = Int32Array.from(this.order, (i) => biasOf[i])
    this.src = []
    this.maps = []
    for (let p = 0; p < (symmetry?.count ?? 0); p++) {
      const s = symmetry!.sources(p)
      this.src.push(Int32Array.from(this.order, (i) => s[i]))
      this.maps.push(symmetry!.threadMap(p))
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
    const { shift, min, span } = layout
    const order = this.order
    const wordEnd = this.wordEnd
    const bias = this.bias
    const cand = this.candidate
    const original = this.original
    for (let i = 0; i < w; i++) original[i] = out[i]
    // `fixed` counts renamings that map the state to itself (its stabiliser, with the identity).
    let fixed = 1
    for (let p = 0; p < sym.count; p++) {
      const src = this.src[p]
      const map = this.maps[p]
      // 0: equal to `out` so far, 1: already less (pack the rest), 2: greater (abandon).
      let state = 0
      let same = true
      let k = 0
      for (let wd = 0; wd < w; wd++) {
        let acc = 0
        for (const end = wordEnd[wd]; k < end; k++) {
          const i = order[k]
          let v = cells[src[k]]
          const b = bias[k]
          if (b >= 0) {
            const t = v - b
            if (t >= 0 && t < map.length) v = map[t] + b
          }
          v -= min[i]
          if (v >>> 0 > span[i]) throw new ModelError(`thread renaming ${sym.describe(p)} takes a state outside the declared ranges (a thread id field too narrow for the threads?)`)
          acc |= v << shift[i]
        }
        acc >>>= 0
        cand[wd] = acc
        if (acc !== original[wd]) same = false
        if (state === 0 && acc !== out[wd]) {
          state = acc < out[wd] ? 1 : 2
          // Greater than the least so far and not the original: neither the minimum nor a fixed point.
          if (state === 2 && !same) break
        }
      }
      if (same) fixed++
      if (state === 1) for (let i = 0; i < w; i++) out[i] = cand[i]
    }
    this.orbit = (sym.count + 1) / fixed
    return true
  }
}
