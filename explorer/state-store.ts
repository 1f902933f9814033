/**
 * The visited set: every distinct state stored in full (no hash compaction,
 * so no state is ever lost to a fingerprint collision), with a parent link
 * per state for shortest counterexamples.
 *
 * Layout, chosen for bytes per state (see bench/RESULTS.md):
 * - states live in chunks of 2^16 fixed-size records, appended in discovery
 *   order, so a state's index is its BFS position and the BFS queue is just
 *   an index range over the store;
 * - parent links are a Uint32 per state (0xffffffff for initial states);
 * - an open-addressing table of Uint32 slots, linear probing, load <= 1/2.
 *   A slot holds index+1 in its low 26 bits and 6 bits of the hash as a tag,
 *   so most probes are rejected without touching the stored bytes.
 */
const CHUNK_BITS = 16
const CHUNK = 1 << CHUNK_BITS
const INDEX_BITS = 26
const INDEX_MASK = (1 << INDEX_BITS) - 1
/** The largest number of states one store can hold. */
export const MAX_STORED_STATES = INDEX_MASK - 1
export const NO_PARENT = 0xffffffff

/** 32-bit hash of a state's bytes (FNV-1a with a murmur3 finaliser). */
export function hashBytes(b: ArrayLike<number>, off: number, n: number): number {
  let h = 0x811c9dc5 ^ n
  for (let i = off, end = off + n; i < end; i++) h = Math.imul(h ^ (b[i] & 0xff), 0x01000193)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

export class StateStore {
  readonly stateBytes: number
  size = 0
  private readonly chunks: Uint8Array[] = []
  private readonly parents: Uint32Array[] = []
  private readonly depths: Uint32Array[] | null
  /** Cells holding a signed byte (two's complement in the store, sign-extended by `get`). */
  private readonly signed: Int32Array
  private table: Uint32Array
  private mask: number

  constructor(stateBytes: number, options: { trackDepth?: boolean; initialCapacity?: number; signedCells?: readonly number[] } = {}) {
    this.stateBytes = stateBytes
    this.signed = Int32Array.from(options.signedCells ?? [])
    this.depths = options.trackDepth ? [] : null
    let cap = 1 << 12
    while (cap < (options.initialCapacity ?? 0) * 2) cap *= 2
    this.table = new Uint32Array(cap)
    this.mask = cap - 1
  }

  /**
   * Inserts the first `stateBytes` bytes of `b` unless already stored.
   * Returns the new index, or `-(index + 1)` of the equal stored state.
   * Callers check `full` before inserting.
   */
  insert(b: ArrayLike<number>, parent: number, depth = 0): number {
    const n = this.stateBytes
    const h = hashBytes(b, 0, n)
    const tag = (h >>> INDEX_BITS) << INDEX_BITS
    const table = this.table
    const mask = this.mask
    let slot = h & mask
    for (;;) {
      const e = table[slot]
      if (e === 0) break
      if ((e & ~INDEX_MASK) === tag) {
        const idx = (e & INDEX_MASK) - 1
        if (this.equals(idx, b)) return -(idx + 1)
      }
      slot = (slot + 1) & mask
    }
    const idx = this.size++
    const c = idx >>> CHUNK_BITS
    if (c === this.chunks.length) {
      this.chunks.push(new Uint8Array(CHUNK * n))
      this.parents.push(new Uint32Array(CHUNK))
      this.depths?.push(new Uint32Array(CHUNK))
    }
    const off = (idx & (CHUNK - 1)) * n
    const chunk = this.chunks[c]
    for (let i = 0; i < n; i++) {
      const v = b[i]
      if (v > 255 || v < -128) throw new RangeError(`StateStore: cell ${i} = ${v} does not fit a byte`)
      chunk[off + i] = v & 0xff
    }
    this.parents[c][idx & (CHUNK - 1)] = parent
    if (this.depths) this.depths[c][idx & (CHUNK - 1)] = depth
    table[slot] = tag | (idx + 1)
    if (this.size * 2 > table.length) this.grow()
    return idx
  }

  /** True when no further state can be stored. */
  get full(): boolean {
    return this.size >= MAX_STORED_STATES
  }

  /** Copies state `idx` into `out`. */
  get(idx: number, out: Uint8Array | Int16Array): void {
    const n = this.stateBytes
    const off = (idx & (CHUNK - 1)) * n
    out.set(this.chunks[idx >>> CHUNK_BITS].subarray(off, off + n))
    const signed = this.signed
    for (let k = 0; k < signed.length; k++) if (out[signed[k]] > 127) out[signed[k]] -= 256
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
    const perChunk = CHUNK * (this.stateBytes + 4 + (this.depths ? 4 : 0))
    return this.chunks.length * perChunk + this.table.byteLength
  }

  private equals(idx: number, b: ArrayLike<number>): boolean {
    const n = this.stateBytes
    const off = (idx & (CHUNK - 1)) * n
    const chunk = this.chunks[idx >>> CHUNK_BITS]
    for (let i = 0; i < n; i++) if (chunk[off + i] !== (b[i] & 0xff)) return false
    return true
  }

  private grow(): void {
    const old = this.table
    const table = new Uint32Array(old.length * 2)
    const mask = table.length - 1
    const n = this.stateBytes
    for (let s = 0; s < old.length; s++) {
      const e = old[s]
      if (e === 0) continue
      const idx = (e & INDEX_MASK) - 1
      let slot = hashBytes(this.chunks[idx >>> CHUNK_BITS], (idx & (CHUNK - 1)) * n, n) & mask
      while (table[slot] !== 0) slot = (slot + 1) & mask
      table[slot] = e
    }
    this.table = table
    this.mask = mask
  }
}
