import type { Checkpointable, CheckpointReader, CheckpointWriter } from './checkpoint.js'

/**
 * The visited set: every distinct state stored in full (no hash compaction,
 * so no state is ever lost to a fingerprint collision), with a parent link
 * per state for shortest counterexamples. A state is a fixed number of
 * 32-bit words (the bit-packed cells, see bit-layout.ts): hashed and
 * compared a word at a time.
 *
 * Layout, chosen for bytes per state (see bench/RESULTS.md):
 * - states live in chunks of 2^16 fixed-size records, appended in discovery
 *   order, so a state's index is its BFS position and the BFS queue is just
 *   an index range over the store;
 * - parent links are a Uint32 per state (0xffffffff for initial states);
 * - an open-addressing table of 2^k Uint32 slots, linear probing, load <= 3/4.
 *   A slot holds index+1 in its low k bits (at load <= 3/4, index+1 < 2^k)
 *   and the hash's high 32-k bits as a tag, so most probes are rejected
 *   without touching the stored words. The split moves with the table: a
 *   small table has a wide tag, and the index widens as the table doubles
 *   (every slot is rewritten then anyway), up to `MAX_INDEX_BITS`.
 */
const CHUNK_BITS = 16
const CHUNK = 1 << CHUNK_BITS
/**
 * The largest table: 2^31 slots (8 GiB), so at load 3/4 about 1.6 G
 * states. 31, not 32: slot numbers and masks then stay non-negative small
 * integers in V8's fast paths.
 */
export const MAX_INDEX_BITS = 31
/** The largest number of states a table of 2^bits slots may hold (its load limit). */
export const storeCapacity = (bits: number): number => 3 * 2 ** (bits - 2)
export const NO_PARENT = 0xffffffff

/** 32-bit hash of words `b[off .. off + n)` (murmur3's block mix per word and its finaliser), seeded. */
export function hashWords(b: ArrayLike<number>, off: number, n: number, seed = 0x9747b28c): number {
  let h = seed ^ n
  for (let i = off, end = off + n; i < end; i++) {
    let k = Math.imul(b[i], 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

export class StateStore implements Checkpointable {
  /** Words per state. */
  readonly words: number
  size = 0
  private readonly chunks: Uint32Array[] = []
  private readonly parents: Uint32Array[] = []
  private readonly depths: Uint32Array[] | null
  private table: Uint32Array
  /** table.length - 1: the slot bits of a hash, and the index bits of a slot. */
  private mask: number
  /** States this store may hold: the load limit of its largest table. */
  readonly capacity: number

  /** `maxIndexBits` (default `MAX_INDEX_BITS`) bounds the table to 2^maxIndexBits slots: a smaller one is for tests. */
  constructor(words: number, options: { trackDepth?: boolean; initialCapacity?: number; maxIndexBits?: number } = {}) {
    this.words = words
    this.depths = options.trackDepth ? [] : null
    const bits = Math.min(options.maxIndexBits ?? MAX_INDEX_BITS, MAX_INDEX_BITS)
    if (!(bits >= 4)) throw new RangeError(`StateStore: maxIndexBits ${bits} < 4`)
    this.capacity = storeCapacity(bits)
    let cap = 1 << Math.min(12, bits)
    while (cap * 3 < (options.initialCapacity ?? 0) * 4 && cap < 2 ** bits) cap *= 2
    this.table = new Uint32Array(cap)
    this.mask = cap - 1
  }

  /**
   * Inserts the first `words` words of `b` unless already stored.
   * Returns the new index, or `-(index + 1)` of the equal stored state.
   * Callers check `full` before inserting. (`_k`, the successor index, is
   * kept only by the fingerprint store, which cannot re-find a state by its words.)
   */
  insert(b: ArrayLike<number>, parent: number, depth = 0, _k = 0): number {
    const n = this.words
    const h = hashWords(b, 0, n)
    const table = this.table
    const mask = this.mask
    const tag = h & ~mask
    let slot = h & mask
    for (;;) {
      const e = table[slot]
      if (e === 0) break
      if ((e & ~mask) === tag) {
        const idx = (e & mask) - 1
        if (this.equals(idx, b)) return -(idx + 1)
      }
      slot = (slot + 1) & mask
    }
    const idx = this.size++
    const c = idx >>> CHUNK_BITS
    if (c === this.chunks.length) {
      this.chunks.push(new Uint32Array(CHUNK * n))
      this.parents.push(new Uint32Array(CHUNK))
      this.depths?.push(new Uint32Array(CHUNK))
    }
    const off = (idx & (CHUNK - 1)) * n
    const chunk = this.chunks[c]
    for (let i = 0; i < n; i++) chunk[off + i] = b[i]
    this.parents[c][idx & (CHUNK - 1)] = parent
    if (this.depths) this.depths[c][idx & (CHUNK - 1)] = depth
    table[slot] = tag | (idx + 1)
    if (this.size * 4 > table.length * 3 && this.size < this.capacity) this.grow()
    return idx
  }

  /** True when no further state can be stored. */
  get full(): boolean {
    return this.size >= this.capacity
  }

  /** Copies state `idx`'s words into `out`. */
  get(idx: number, out: Uint32Array | number[]): void {
    const n = this.words
    const off = (idx & (CHUNK - 1)) * n
    const chunk = this.chunks[idx >>> CHUNK_BITS]
    for (let i = 0; i < n; i++) out[i] = chunk[off + i]
  }

  /** The chunk holding state `idx` and the offset of its words in it (for reading in place). */
  at(idx: number): { chunk: Uint32Array; off: number } {
    return { chunk: this.chunks[idx >>> CHUNK_BITS], off: (idx & (CHUNK - 1)) * this.words }
  }

  parent(idx: number): number {
    return this.parents[idx >>> CHUNK_BITS][idx & (CHUNK - 1)]
  }

  /** Re-parents a state reached again by a shorter path (depth-bounded DFS). */
  reparent(idx: number, parent: number, depth: number): void {
    this.parents[idx >>> CHUNK_BITS][idx & (CHUNK - 1)] = parent
    if (this.depths) this.depths[idx >>> CHUNK_BITS][idx & (CHUNK - 1)] = depth
  }

  depth(idx: number): number {
    if (!this.depths) throw new Error('StateStore: depth not tracked')
    return this.depths[idx >>> CHUNK_BITS][idx & (CHUNK - 1)]
  }

  /** The chain of indices from an initial state to `idx`. */
  path(idx: number): number[] {
    const out: number[] = []
    for (let i = idx; i !== NO_PARENT; i = this.parent(i)) out.push(i)
    return out.reverse()
  }

  /** Bytes held by the store's arrays (what a state costs, without the JS heap around it). */
  get bytes(): number {
    const perChunk = CHUNK * (4 * this.words + 4 + (this.depths ? 4 : 0))
    return this.chunks.length * perChunk + this.table.byteLength
  }

  /** A checkpoint's part: the table as it is (no rehash on resume), the states and parent links stored. */
  writeTo(w: CheckpointWriter): void {
    w.json({ size: this.size, words: this.words, slots: this.table.length, depths: this.depths !== null })
    w.array(this.table)
    for (let c = 0; c < this.chunks.length; c++) {
      const used = Math.min(CHUNK, this.size - c * CHUNK)
      w.array(this.chunks[c], used * this.words)
      w.array(this.parents[c], used)
      if (this.depths) w.array(this.depths[c], used)
    }
  }

  /** Restores a new, empty store of the same layout from `writeTo`'s part. */
  readFrom(r: CheckpointReader): void {
    const m = r.json<{ size: number; words: number; slots: number; depths: boolean }>('the store')
    const slots = m?.slots
    if (m?.words !== this.words || m.depths !== (this.depths !== null) || !Number.isSafeInteger(m.size) || m.size < 0 || m.size > this.capacity) throw r.bad('corrupted (the store)')
    if (!Number.isSafeInteger(slots) || slots < 16 || (slots & (slots - 1)) !== 0 || slots * 3 < m.size * 4 || slots > this.capacity * 4 / 3) throw r.bad('corrupted (the store\'s table)')
    this.table = new Uint32Array(slots)
    this.mask = slots - 1
    r.array(this.table, 'the hash table')
    for (let c = 0; c * CHUNK < m.size; c++) {
      const used = Math.min(CHUNK, m.size - c * CHUNK)
      this.chunks.push(new Uint32Array(CHUNK * this.words))
      this.parents.push(new Uint32Array(CHUNK))
      r.array(this.chunks[c], 'the states', used * this.words)
      r.array(this.parents[c], 'the parent links', used)
      if (this.depths) {
        this.depths.push(new Uint32Array(CHUNK))
        r.array(this.depths[c], 'the depths', used)
      }
    }
    this.size = m.size
  }

  private equals(idx: number, b: ArrayLike<number>): boolean {
    const n = this.words
    const off = (idx & (CHUNK - 1)) * n
    const chunk = this.chunks[idx >>> CHUNK_BITS]
    for (let i = 0; i < n; i++) if (chunk[off + i] !== b[i] >>> 0) return false
    return true
  }

  /**
   * Doubles the table. It is refilled from the states in index order, so
   * the chunks are read in sequence and only the new table is written at
   * random (walking the old table instead reads every state's words at
   * random too: twice the cache misses).
   */
  private grow(): void {
    const table = new Uint32Array(this.table.length * 2)
    const mask = table.length - 1
    const n = this.words
    for (let c = 0, idx = 0; idx < this.size; c++) {
      const chunk = this.chunks[c]
      for (let off = 0; off < CHUNK * n && idx < this.size; off += n, idx++) {
        const h = hashWords(chunk, off, n)
        let slot = h & mask
        while (table[slot] !== 0) slot = (slot + 1) & mask
        // One more index bit, one less tag bit.
        table[slot] = (h & ~mask) | (idx + 1)
      }
    }
    this.table = table
    this.mask = mask
  }
}
