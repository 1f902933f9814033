import type { Checkpointable, CheckpointReader, CheckpointWriter } from './checkpoint.js'
import { LinkLog } from './link-log.js'
import { hashWords, MAX_INDEX_BITS, NO_PARENT, storeCapacity } from './state-store.js'

/**
 * The visited set of `--store fingerprint` (TLC's default): a 64-bit
 * fingerprint per state instead of the state, with a parent link and the
 * index of the successor it was (or of the initial state) for rebuilding
 * traces by re-execution, both in one Uint32: 6 bits of successor index and
 * 26 bits of the parent's index relative to its chunk's base (the parent of
 * the chunk's first state). BFS inserts the children of each state in turn,
 * so parents only grow along a chunk and its 2^16 states' parents rarely
 * span 2^26; a link that does not fit (a parent below the base or too far
 * above it, a successor index above 62) goes to a side map, so any index
 * fits in 4 bytes per state. By default those 4 bytes are on disk, as TLC
 * keeps its trace file: the links are appended, in pages of 2^16 that go
 * to a temporary file once full (link-log.ts), and read back only to
 * rebuild a counterexample; `links: 'memory'` keeps them. Two states with
 * the same fingerprint are taken for one, so a collision can hide a state:
 * `collisionProbability` is TLC's estimate of the chance that happened.
 *
 * BFS still needs the states it has yet to expand: they are kept, as
 * packed words, from insertion until `release` says the search is past
 * them, in chunks that are recycled (the frontier is what costs memory,
 * not the states seen).
 *
 * Table: pairs of Uint32 (high, low word of the fingerprint), linear
 * probing on the low word, load <= 3/4; (0, 0) is an empty slot, so a
 * fingerprint of 0 is stored as 1. The table doubles in place (a resizable
 * ArrayBuffer, then an in-place rehash), so growing never holds the old and
 * the new table at once: that transient would be the peak of the run.
 */
const CHUNK_BITS = 16
const CHUNK = 1 << CHUNK_BITS
const SEED_HIGH = 0x2545f491
const SEED_LOW = 0x9e3779b9
/**
 * The table grows in place up to this size (address space reserved at once,
 * committed as it grows: V8 reserves at most 4 GiB for a resizable buffer);
 * past it, a doubling copies into a new table (old and new coexist then).
 */
const MAX_RESIZABLE_BYTES = 2 ** 32

interface ResizableBuffer extends ArrayBuffer {
  resize(bytes: number): void
  readonly maxByteLength: number
}
const DELTA_BITS = 26
const DELTA_MASK = (1 << DELTA_BITS) - 1
/** The delta of an initial state (no parent). */
const ROOT = DELTA_MASK
/** The successor field of a link kept in `escaped` (its delta field then means nothing). */
const SUCCESSOR_ESCAPE = 63

export class FingerprintStore implements Checkpointable {
  readonly words: number
  size = 0
  private buffer: ResizableBuffer
  /** A view of `buffer` (made again after each resize: a fixed-length view is what V8 optimises). */
  private table: Uint32Array
  private mask: number
  private used = 0
  /** States this store may hold: the load limit of its largest table. */
  readonly capacity: number
  private readonly maxSlots: number
  /** Per state: parent index - its chunk's base (ROOT: none) | successor index << 26. */
  private readonly links: LinkLog
  /** Per chunk of links: the parent of its first state (0 for an initial state). */
  private readonly bases: number[] = []
  /** The links that do not fit: state index -> [parent, successor index]. */
  private readonly escaped = new Map<number, readonly [number, number]>()
  /** Queued states' words, by chunk; a released chunk is null, and its array waits in `spare`. */
  private readonly queue: (Uint32Array | null)[] = []
  private readonly spare: Uint32Array[] = []
  /** Lookups that found the fingerprint already stored (TLC: generated - distinct). */
  duplicates = 0

  /** The two hash functions' seeds (a swarm shard's `hashSeed` varies both, so its collisions are not another shard's). */
  private readonly seedHigh: number
  private readonly seedLow: number

  /**
   * `maxIndexBits` (default `MAX_INDEX_BITS`) bounds the table to 2^maxIndexBits slots, `inPlaceBytes`
   * (default 4 GiB) the size up to which it grows in place: smaller ones are for tests. `links`:
   * where the parent links are kept (default `disk`); `linkPageBits` (default 16) and `linkDir`
   * (default `os.tmpdir()`) are their pages' size and their file's directory.
   */
  constructor(
    words: number,
    options: { initialCapacity?: number; maxIndexBits?: number; inPlaceBytes?: number; hashSeed?: number; links?: 'disk' | 'memory'; linkPageBits?: number; linkDir?: string } = {},
  ) {
    this.words = words
    this.links = new LinkLog(options.links ?? 'disk', { pageBits: options.linkPageBits, dir: options.linkDir })
    this.seedHigh = (SEED_HIGH ^ (options.hashSeed ?? 0)) >>> 0
    this.seedLow = (SEED_LOW ^ Math.imul(options.hashSeed ?? 0, 0x85ebca6b)) >>> 0
    const bits = Math.min(options.maxIndexBits ?? MAX_INDEX_BITS, MAX_INDEX_BITS)
    if (!(bits >= 4)) throw new RangeError(`FingerprintStore: maxIndexBits ${bits} < 4`)
    this.capacity = storeCapacity(bits)
    this.maxSlots = 2 ** bits
    let cap = 1 << Math.min(12, bits)
    while (cap * 3 < (options.initialCapacity ?? 0) * 4 && cap < this.maxSlots) cap *= 2
    this.inPlaceBytes = Math.min(this.maxSlots * 8, options.inPlaceBytes ?? MAX_RESIZABLE_BYTES)
    this.buffer = this.allocate(cap)
    this.table = new Uint32Array(this.buffer, 0, cap * 2)
    this.mask = cap - 1
  }

  private readonly inPlaceBytes: number

  /** A table of `cap` slots that can double in place up to `inPlaceBytes` (beyond, a plain one). */
  private allocate(cap: number): ResizableBuffer {
    const Resizable = ArrayBuffer as unknown as new (bytes: number, options: { maxByteLength: number }) => ResizableBuffer
    return new Resizable(cap * 8, { maxByteLength: Math.max(cap * 8, this.inPlaceBytes) })
  }

  /**
   * Inserts the state `b` (its first `words` words) unless its fingerprint
   * is stored: returns its new index, or -1 for a state already seen.
   * `k` is the successor index it was reached by (or the initial state's index).
   */
  insert(b: ArrayLike<number>, parent: number, _depth: number, k: number): number {
    const n = this.words
    const hi = hashWords(b, 0, n, this.seedHigh)
    let lo = hashWords(b, 0, n, this.seedLow)
    if (hi === 0 && lo === 0) lo = 1
    const table = this.table
    const mask = this.mask
    let slot = lo & mask
    for (;;) {
      const h = table[2 * slot]
      const l = table[2 * slot + 1]
      if (h === 0 && l === 0) break
      if (h === hi && l === lo) {
        this.duplicates++
        return -1
      }
      slot = (slot + 1) & mask
    }
    table[2 * slot] = hi
    table[2 * slot + 1] = lo
    const idx = this.size++
    const c = idx >>> CHUNK_BITS
    if (c === this.bases.length) {
      this.bases.push(parent === NO_PARENT ? 0 : parent)
      this.queue.push(this.spare.pop() ?? new Uint32Array(CHUNK * n))
    }
    const i = idx & (CHUNK - 1)
    const delta = parent === NO_PARENT ? ROOT : parent - this.bases[c]
    if (k < SUCCESSOR_ESCAPE && (parent === NO_PARENT || (delta >= 0 && delta < ROOT))) {
      this.links.push((delta | (k << DELTA_BITS)) >>> 0)
    } else {
      this.links.push(0xffffffff)
      this.escaped.set(idx, [parent, k])
    }
    const q = this.queue[c]!
    for (let w = 0, off = i * n; w < n; w++) q[off + w] = b[w]
    if (++this.used * 4 > (mask + 1) * 3 && mask + 1 < this.maxSlots) this.grow()
    return idx
  }

  get full(): boolean {
    return this.size >= this.capacity
  }

  /** Copies queued state `idx`'s words into `out` (it must not be released). */
  get(idx: number, out: Uint32Array | number[]): void {
    const q = this.queue[idx >>> CHUNK_BITS]
    if (!q) throw new Error(`FingerprintStore: state ${idx} is no longer kept`)
    for (let w = 0, off = (idx & (CHUNK - 1)) * this.words; w < this.words; w++) out[w] = q[off + w]
  }

  /** Drops the words of states below `head` (already expanded), a chunk at a time. */
  release(head: number): void {
    for (let c = (head >>> CHUNK_BITS) - 1; c >= 0 && this.queue[c] !== null; c--) {
      this.spare.push(this.queue[c]!)
      this.queue[c] = null
    }
  }

  parent(idx: number): number {
    const c = idx >>> CHUNK_BITS
    const link = this.links.get(idx)
    if (link >>> DELTA_BITS === SUCCESSOR_ESCAPE) return this.escaped.get(idx)![0]
    const delta = link & DELTA_MASK
    return delta === ROOT ? NO_PARENT : this.bases[c] + delta
  }

  /** Which successor of its parent state `idx` was (for an initial state, which initial state). */
  successor(idx: number): number {
    const k = this.links.get(idx) >>> DELTA_BITS
    return k === SUCCESSOR_ESCAPE ? this.escaped.get(idx)![1] : k
  }

  path(idx: number): number[] {
    const out: number[] = []
    for (let i = idx; i !== NO_PARENT; i = this.parent(i)) out.push(i)
    return out.reverse()
  }

  /**
   * TLC's estimate of the probability that a fingerprint collision hid a
   * state: distinct × (generated − distinct) / 2^64, each lookup that
   * found a fingerprint being one that may have matched another state's.
   */
  get collisionProbability(): number {
    return (this.size * this.duplicates) / 2 ** 64
  }

  get bytes(): number {
    const kept = [...this.queue, ...this.spare].reduce((n, q) => n + (q ? q.byteLength : 0), 0)
    return this.links.bytes + kept + this.table.byteLength
  }

  /** Bytes of parent links on disk (not in `bytes`). */
  get diskBytes(): number {
    return this.links.diskBytes
  }

  /** Why the parent links are in memory though disk was asked (null: they are where asked). */
  get linksFallback(): string | null {
    return this.links.fallback
  }

  /** Frees the parent links' file: the store can no longer rebuild traces. */
  close(): void {
    this.links.close()
  }

  /** A checkpoint's part: the table, the links, the queued states not yet released. */
  writeTo(w: CheckpointWriter): void {
    const kept = this.queue.findIndex((q) => q !== null)
    const firstKept = kept < 0 ? this.queue.length : kept
    w.json({ size: this.size, words: this.words, slots: this.mask + 1, duplicates: this.duplicates, bases: this.bases, escaped: [...this.escaped], firstKept })
    w.array(this.table, (this.mask + 1) * 2)
    // The links a chunk at a time (from disk, most of them), in the same sections wherever they are kept.
    const links = new Uint32Array(CHUNK)
    for (let c = 0; c < this.bases.length; c++) {
      const n = Math.min(CHUNK, this.size - c * CHUNK)
      this.links.copy(c * CHUNK, n, links)
      w.array(links, n)
    }
    for (let c = firstKept; c < this.queue.length; c++) w.array(this.queue[c]!, Math.min(CHUNK, this.size - c * CHUNK) * this.words)
  }

  /** Restores a new, empty store of the same layout from `writeTo`'s part. */
  readFrom(r: CheckpointReader): void {
    const m = r.json<{ size: number; words: number; slots: number; duplicates: number; bases: number[]; escaped: [number, [number, number]][]; firstKept: number }>('the store')
    const chunks = Math.ceil((m?.size ?? 0) / CHUNK)
    if (m?.words !== this.words || !Number.isSafeInteger(m.size) || m.size < 0 || m.size > this.capacity || !Array.isArray(m.bases) || m.bases.length !== chunks || !Array.isArray(m.escaped)) throw r.bad('corrupted (the store)')
    const slots = m.slots
    if (!Number.isSafeInteger(slots) || slots < 16 || (slots & (slots - 1)) !== 0 || slots * 3 < m.size * 4 || slots > this.maxSlots || !(m.firstKept >= 0 && m.firstKept <= chunks)) throw r.bad('corrupted (the store\'s table)')
    if (slots * 8 <= this.inPlaceBytes) {
      this.buffer = this.allocate(slots)
      this.table = new Uint32Array(this.buffer, 0, slots * 2)
    } else {
      this.table = new Uint32Array(slots * 2)
    }
    this.mask = slots - 1
    r.array(this.table, 'the fingerprint table')
    const links = new Uint32Array(CHUNK)
    for (let c = 0; c < chunks; c++) {
      const n = Math.min(CHUNK, m.size - c * CHUNK)
      r.array(links, 'the parent links', n)
      for (let i = 0; i < n; i++) this.links.push(links[i])
    }
    for (let c = 0; c < chunks; c++) {
      if (c < m.firstKept) {
        this.queue.push(null)
        continue
      }
      const q = new Uint32Array(CHUNK * this.words)
      r.array(q, 'the queued states', Math.min(CHUNK, m.size - c * CHUNK) * this.words)
      this.queue.push(q)
    }
    this.bases.push(...m.bases)
    for (const [idx, link] of m.escaped) this.escaped.set(idx, link)
    this.duplicates = m.duplicates
    this.size = this.used = m.size
  }

  /**
   * Doubles the table in place. Every stored slot is first marked pending;
   * each pending entry goes to the first slot on its new probe sequence that
   * is empty or pending: itself (it stays), an empty slot (it moves), or
   * another pending entry (they swap, and the one swapped in is placed
   * next). A placed entry's probe sequence then runs over placed entries
   * only, which never move again, so every lookup chain stays unbroken.
   */
  private grow(): void {
    const oldCap = this.mask + 1
    const cap = oldCap * 2
    if (cap * 8 > this.buffer.maxByteLength) return this.growByCopy(cap)
    this.buffer.resize(cap * 8)
    const table = (this.table = new Uint32Array(this.buffer, 0, cap * 2))
    const mask = cap - 1
    const pending = new Uint8Array(cap >>> 3)
    for (let s = 0; s < oldCap; s++) if (table[2 * s] !== 0 || table[2 * s + 1] !== 0) pending[s >>> 3] |= 1 << (s & 7)
    const isPending = (s: number): boolean => (pending[s >>> 3] & (1 << (s & 7))) !== 0
    for (let i = 0; i < oldCap; i++) {
      while (isPending(i)) {
        const h = table[2 * i]
        const l = table[2 * i + 1]
        let t = l & mask
        while (t !== i && !isPending(t) && (table[2 * t] !== 0 || table[2 * t + 1] !== 0)) t = (t + 1) & mask
        if (t === i) {
          pending[i >>> 3] &= ~(1 << (i & 7))
        } else if (!isPending(t)) {
          // t is empty: move there.
          table[2 * t] = h
          table[2 * t + 1] = l
          table[2 * i] = 0
          table[2 * i + 1] = 0
          pending[i >>> 3] &= ~(1 << (i & 7))
        } else {
          // t holds a pending entry: swap; t is placed, i holds the other one, still pending.
          table[2 * i] = table[2 * t]
          table[2 * i + 1] = table[2 * t + 1]
          table[2 * t] = h
          table[2 * t + 1] = l
          pending[t >>> 3] &= ~(1 << (t & 7))
        }
      }
    }
    this.mask = mask
  }

  /** Past the largest resizable buffer: a new table, each fingerprint inserted again. */
  private growByCopy(cap: number): void {
    const old = this.table
    const table = new Uint32Array(cap * 2)
    const mask = cap - 1
    for (let s = 0; s < old.length; s += 2) {
      const h = old[s]
      const l = old[s + 1]
      if (h === 0 && l === 0) continue
      let t = l & mask
      while (table[2 * t] !== 0 || table[2 * t + 1] !== 0) t = (t + 1) & mask
      table[2 * t] = h
      table[2 * t + 1] = l
    }
    this.table = table
    this.mask = mask
  }
}
