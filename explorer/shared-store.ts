import { growableBuffer, growBuffer, MAX_GROWABLE_BYTES as MAX_BYTES } from './growable.js'
import { IntList } from './int-list.js'
import { hashWords, NO_PARENT } from './state-store.js'

/**
 * The visited set of the parallel BFS, shared by every worker thread: a
 * lock-free open-addressing table over an arena of states, both in growable
 * SharedArrayBuffers (one per array, so a worker's views stay fixed-length:
 * V8's length-tracking views over a growable buffer are ~50x slower).
 *
 * - The arena holds, per state index, its packed words and its parent's
 *   index; a per-level array the BFS key of its parent edge (the parent's
 *   position in its level, the action's index), needed only while the level
 *   is built. Indices are handed out by an atomic counter, so every state a
 *   level discovers has an index >= the counter at the level's start ("new
 *   in this level" needs no flag), and its edge is at index - that.
 * - A table slot holds 6 bits of the hash and index + 1 (as StateStore); an
 *   insert writes the state into a fresh arena record first, then publishes
 *   it with compareExchange on the empty slot. A loser keeps its record as a
 *   spare for its next insert: no lock, no spinning on a half-written state.
 * - Determinism: a state reached again in the level that found it keeps the
 *   least (parent position, action) edge, as the sequential BFS (which
 *   expands parents in that order) would; the edge is updated under a
 *   per-state lock taken by compareExchange on the position (-1 = held).
 *   So the parallel BFS's levels, sorted by that key, are exactly the
 *   sequential BFS's, and so are its traces.
 * - Growing the table needs every writer still: an insert that takes the
 *   load past its bound asks for a pause; each worker reaches the pause
 *   within 64 inserts (or while idle), and they all rehash, each a stripe
 *   of the old table, into the other of two table buffers, twice the size
 *   (the old one is the next rehash's target), each writing the same stripe
 *   of each half of it with plain stores, the few entries that fall outside
 *   it by compareExchange after.
 */
const INDEX_BITS = 26
const INDEX_MASK = (1 << INDEX_BITS) - 1
export const MAX_SHARED_STATES = INDEX_MASK - 1
/** Arena record: the state's words, then its parent. Edge record (per level): position, action. */
const PARENT = 0
const EXTRA = 1
const POS = 0
const K = 1
const LOCKED = -1

/** Control cells, a cache line (16 cells) apart: the counters are written by every thread, PAUSE read at every insert. */
const NEXT = 0 // next arena index
const COUNT = 16 // states stored
const MASK = 32 // table mask
const PAUSE = 48 // a rehash is asked for
const ARRIVED = 64 // workers at the pause
const EPOCH = 80 // rehashes done (what waiters wait on)
const PARTIES = 96 // threads that must reach a pause
const ARENA_LOCK = 112
const CUR = 128 // which table buffer is in use
const STAGE = 144 // the rehash's target is ready
const ZEROED = 160 // parties done clearing their stripe of the target
const PLACED = 176 // parties done placing the entries of their stripe that land in their own part of the target
const MOVED = 192 // parties done moving their stripe of the old table
const CONTROL = 208
/** Arena indices a thread takes at a time, and states it counts before adding them to COUNT: the counters' cache lines are touched once per this many inserts. */
const BLOCK = 64

/** What a worker needs to open the same store. */
export interface SharedStoreBuffers {
  readonly words: number
  readonly control: SharedArrayBuffer
  readonly arena: SharedArrayBuffer
  /** The edges of the level being built, indexed by state index - the level's base. */
  readonly edges: SharedArrayBuffer
  /** Two: the table in use (CUR) and the next rehash's target. */
  readonly tables: readonly [SharedArrayBuffer, SharedArrayBuffer]
}

export class SharedStore {
  readonly words: number
  private readonly stride: number
  private readonly control: Int32Array
  private readonly arenaBuf: SharedArrayBuffer
  private readonly edgesBuf: SharedArrayBuffer
  private readonly tables: readonly [SharedArrayBuffer, SharedArrayBuffer]
  private arena!: Uint32Array
  private edges!: Int32Array
  /** States the arena views cover. */
  private arenaCapacity = 0
  private table!: Uint32Array
  private mask = 0
  /** An arena record this thread allocated and wrote but lost the race to publish. */
  private spare = -1
  /** This thread's block of arena indices [blockNext, blockEnd). */
  private blockNext = 0
  private blockEnd = 0
  /** States this thread stored and has not yet added to COUNT. */
  private uncounted = 0
  /** Inserts before this thread next looks for a rehash request. */
  private untilPauseCheck = 0

  static create(words: number): SharedStore {
    const stride = words + EXTRA
    const control = new SharedArrayBuffer(CONTROL * 4)
    const arena = growableBuffer(stride * 4 * 4096, Math.floor(MAX_BYTES / (stride * 4)) * stride * 4)
    const tables = [growableBuffer(4 * 4096), growableBuffer(4096)] as const
    const c = new Int32Array(control)
    c[MASK] = 4096 - 1
    c[PARTIES] = 1
    return new SharedStore({ words, control, arena, edges: growableBuffer(8 * 4096), tables })
  }

  constructor(readonly buffers: SharedStoreBuffers) {
    this.words = buffers.words
    this.stride = this.words + EXTRA
    this.control = new Int32Array(buffers.control)
    this.arenaBuf = buffers.arena
    this.edgesBuf = buffers.edges
    this.tables = buffers.tables
    this.refreshArena()
    this.refreshTable()
  }

  private refreshArena(): void {
    const n = this.arenaBuf.byteLength / 4
    this.arena = new Uint32Array(this.arenaBuf, 0, n)
    this.arenaCapacity = Math.floor(n / this.stride)
    this.edges = new Int32Array(this.edgesBuf, 0, this.edgesBuf.byteLength / 4)
  }

  private refreshTable(): void {
    this.mask = Atomics.load(this.control, MASK)
    this.table = new Uint32Array(this.tables[Atomics.load(this.control, CUR)], 0, this.mask + 1)
  }

  /** Re-reads the table and arena after other threads grew them. */
  refresh(): void {
    this.refreshTable()
    this.refreshArena()
  }

  /** States stored (by every thread, as far as each has counted them: see `flush`). */
  get size(): number {
    return Atomics.load(this.control, COUNT) + this.uncounted
  }

  /** The next arena index: after `dropSpare` (by every thread), every state inserted from now on has an index at least this. */
  get next(): number {
    return Atomics.load(this.control, NEXT)
  }

  get full(): boolean {
    return this.size >= MAX_SHARED_STATES
  }

  /** How many states it can hold (what `full` means). */
  get capacity(): number {
    return MAX_SHARED_STATES
  }

  get bytes(): number {
    return this.arenaBuf.byteLength + this.edgesBuf.byteLength + this.tables[0].byteLength + this.tables[1].byteLength
  }

  /** How many threads insert concurrently (each must reach a pause for the table to grow). */
  set parties(n: number) {
    Atomics.store(this.control, PARTIES, n)
  }

  /** A new level: spare indices belong to the level that allocated them (they would look old); the states stored are counted. */
  dropSpare(): void {
    this.spare = -1
    this.blockNext = this.blockEnd = 0
    this.flush()
  }

  /** Adds the states this thread stored to the shared count; asks for a rehash when the table is getting full. */
  flush(): void {
    if (this.uncounted === 0) return
    const count = Atomics.add(this.control, COUNT, this.uncounted) + this.uncounted
    this.uncounted = 0
    // Room for what every thread may store before it reaches the pause (a block's worth uncounted, and a block's
    // worth of inserts before it looks, each).
    const room = this.table.length * 3 - 4 * 2 * BLOCK * (Atomics.load(this.control, PARTIES) + 1)
    if (count * 4 > room && Atomics.compareExchange(this.control, PAUSE, 0, 1) === 0) this.askPause()
  }

  /**
   * Inserts `b` (found as successor `k` of the state at `pos` in its level,
   * stored as `parent`) unless stored. Returns the new index, or -(index + 1)
   * of the equal stored state; in that case, when the state is new in this
   * level (index >= `levelBase`) and (pos, k) is less than its edge, the
   * edge becomes (pos, k): `improved` then says so.
   */
  insert(b: Uint32Array, parent: number, pos: number, k: number, levelBase: number): number {
    // A rehash waits for every party, so a party may see the request a few inserts late: it looks once per BLOCK
    // inserts (an atomic load is a call into V8's runtime), and `flush` leaves the table room for that.
    if (--this.untilPauseCheck <= 0) {
      this.untilPauseCheck = BLOCK
      if (Atomics.load(this.control, PAUSE) !== 0) this.pausePoint()
    }
    const n = this.words
    const h = hashWords(b, 0, n)
    const tag = (h >>> INDEX_BITS) << INDEX_BITS
    let slot = h & this.mask
    const table = this.table
    for (;;) {
      // A plain read: a slot, once set, never changes (until a rehash, which no insert overlaps); a stale 0 makes the
      // compareExchange below fail. The arena record it names was written before it was published, and is read through it.
      const e = table[slot]
      if (e === 0) {
        let idx = this.spare
        if (idx < 0) idx = this.allocate(levelBase)
        const off = idx * this.stride
        const arena = this.arena
        for (let i = 0; i < n; i++) arena[off + i] = b[i]
        arena[off + n + PARENT] = parent
        const at = (idx - levelBase) * 2
        this.edges[at + POS] = pos
        this.edges[at + K] = k
        if (Atomics.compareExchange(table, slot, 0, (tag | (idx + 1)) >>> 0) === 0) {
          this.spare = -1
          if (++this.uncounted === BLOCK) this.flush()
          return idx
        }
        this.spare = idx
        continue
      }
      if ((e & ~INDEX_MASK) === tag) {
        const idx = (e & INDEX_MASK) - 1
        if (this.equals(idx, b)) {
          this.improved = idx >= levelBase && this.lower(idx, parent, pos, k, levelBase)
          return -(idx + 1)
        }
      }
      slot = (slot + 1) & this.mask
    }
  }

  /** Whether the last insert that found a stored state moved that state's edge to its own. */
  improved = false

  /** Looks `b` up: its index, or -1. */
  find(b: Uint32Array): number {
    const n = this.words
    const h = hashWords(b, 0, n)
    const tag = (h >>> INDEX_BITS) << INDEX_BITS
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const e = Atomics.load(this.table, slot)
      if (e === 0) return -1
      if ((e & ~INDEX_MASK) === tag) {
        const idx = (e & INDEX_MASK) - 1
        if (this.equals(idx, b)) return idx
      }
    }
  }

  /** Makes (pos, k) the edge of `idx` if it is less than the current one. */
  private lower(idx: number, parent: number, pos: number, k: number, levelBase: number): boolean {
    const at = (idx - levelBase) * 2
    if (at >= this.edges.length) this.refreshArena()
    const a = this.edges
    // A plain read first: an edge only ever gets lower, so a stale value that is already no greater than (pos, k)
    // is the answer too (an atomic load is a call into V8's runtime, and most edges are settled).
    const seen = a[at + POS]
    if (seen !== LOCKED && seen <= pos) return false
    for (;;) {
      const cur = Atomics.load(a, at + POS)
      // The same parent is expanded by one thread, in action order: an equal position has a lower k already.
      if (cur !== LOCKED && cur <= pos) return false
      if (cur === LOCKED || Atomics.compareExchange(a, at + POS, cur, LOCKED) !== cur) continue
      a[at + K] = k
      this.arena[idx * this.stride + this.words + PARENT] = parent
      Atomics.store(a, at + POS, pos)
      return true
    }
  }

  /** The edge of `idx`, new in the level that began at `levelBase`: its parent's position in the parent's level, and the action's index. */
  edgePos(idx: number, levelBase: number): number {
    const at = (idx - levelBase) * 2
    if (at >= this.edges.length) this.refreshArena()
    return this.edges[at + POS]
  }

  edgeK(idx: number, levelBase: number): number {
    const at = (idx - levelBase) * 2
    if (at >= this.edges.length) this.refreshArena()
    return this.edges[at + K]
  }

  parent(idx: number): number {
    return this.arena[idx * this.stride + this.words + PARENT]
  }

  /** Copies state `idx`'s words into `out`. */
  get(idx: number, out: Uint32Array | number[]): void {
    if (idx >= this.arenaCapacity) this.refreshArena()
    const off = idx * this.stride
    for (let i = 0; i < this.words; i++) out[i] = this.arena[off + i]
  }

  /** The chain of indices from an initial state to `idx`. */
  path(idx: number): number[] {
    const out: number[] = []
    for (let i = idx; i !== NO_PARENT; i = this.parent(i)) out.push(i)
    return out.reverse()
  }

  private equals(idx: number, b: Uint32Array): boolean {
    if (idx >= this.arenaCapacity) this.refreshArena()
    const off = idx * this.stride
    for (let i = 0; i < this.words; i++) if (this.arena[off + i] !== b[i]) return false
    return true
  }

  private allocate(levelBase: number): number {
    if (this.blockNext < this.blockEnd) return this.blockNext++
    const idx = Atomics.add(this.control, NEXT, BLOCK)
    if (idx + BLOCK > MAX_SHARED_STATES) throw new RangeError(`the shared visited set holds at most ${MAX_SHARED_STATES} states`)
    this.blockNext = idx + 1
    this.blockEnd = idx + BLOCK
    const edgeBytes = (idx + BLOCK - levelBase) * 8
    if (idx + BLOCK > this.arenaCapacity || edgeBytes > this.edges.byteLength) {
      const need = (idx + BLOCK) * this.stride * 4
      if (this.arenaBuf.byteLength < need || this.edgesBuf.byteLength < edgeBytes) {
        while (Atomics.compareExchange(this.control, ARENA_LOCK, 0, 1) !== 0);
        try {
          growBuffer(this.arenaBuf, need, this.stride * 4)
          growBuffer(this.edgesBuf, edgeBytes, 8)
        } finally {
          Atomics.store(this.control, ARENA_LOCK, 0)
        }
      }
      this.refreshArena()
    }
    return idx
  }

  private askPause(): void {
    // Only this thread inserts: grow now.
    if (Atomics.load(this.control, PARTIES) <= 1) return this.pausePoint()
    Atomics.notify(this.control, EPOCH)
  }

  /**
   * Every inserting thread stops here before its next insert while a
   * rehash is asked for, and takes its part: the last to arrive makes the
   * other table buffer twice the size; each clears, then fills, its stripe.
   * The round cannot end without this thread, so the epoch read after
   * seeing the request is the round's.
   */
  pausePoint(): void {
    const c = this.control
    if (Atomics.load(c, PAUSE) === 0) return
    const epoch = Atomics.load(c, EPOCH)
    const parties = Atomics.load(c, PARTIES)
    const me = Atomics.add(c, ARRIVED, 1)
    const from = Atomics.load(c, CUR)
    const oldLen = Atomics.load(c, MASK) + 1
    const newLen = oldLen * 2
    if (newLen * 4 > MAX_BYTES) throw new RangeError('the shared visited set cannot grow further')
    const leader = me === parties - 1
    if (leader) {
      growBuffer(this.tables[1 - from], newLen * 4)
      Atomics.store(c, ZEROED, 0)
      Atomics.store(c, PLACED, 0)
      Atomics.store(c, MOVED, 0)
      Atomics.store(c, STAGE, 1)
      Atomics.notify(c, STAGE)
    } else {
      while (Atomics.load(c, STAGE) === 0) Atomics.wait(c, STAGE, 0, 50)
    }
    const old = new Uint32Array(this.tables[from], 0, oldLen)
    const next = new Uint32Array(this.tables[1 - from], 0, newLen)
    next.fill(0, Math.floor((newLen * me) / parties), Math.floor((newLen * (me + 1)) / parties))
    this.barrier(ZEROED, parties)
    this.refreshArena()
    const mask = newLen - 1
    const n = this.words
    // An entry of old slot s lands near s or s + oldLen (its home there, plus its probe). So this party owns the
    // same stripe of each half of the target, where it stores with plain writes: no other party writes there,
    // and a locked compareExchange per entry would stall on each cache miss in turn. The few entries whose home
    // is in another party's part (displaced across the stripe's start) or whose probe runs off the stripe's end
    // are placed after, by compareExchange, once every party is done with its own.
    const lo = Math.floor((oldLen * me) / parties)
    const hi = Math.floor((oldLen * (me + 1)) / parties)
    // A typed list: most entries are above 2^31 (their tag), which would turn a plain array's elements into doubles mid-loop.
    const deferred = new IntList(256)
    for (let s = lo; s < hi; s++) {
      const e = old[s]
      if (e === 0) continue
      const idx = (e & INDEX_MASK) - 1
      let slot = hashWords(this.arena, idx * this.stride, n) & mask
      const inHalf = slot & (oldLen - 1)
      if (inHalf >= lo && inHalf < hi) {
        const end = slot - inHalf + hi
        while (slot < end && next[slot] !== 0) slot++
        if (slot < end) {
          next[slot] = e
          continue
        }
      }
      deferred.push(e)
    }
    this.barrier(PLACED, parties)
    for (let d = 0; d < deferred.length; d++) {
      const e = deferred.get(d) >>> 0
      const idx = (e & INDEX_MASK) - 1
      let slot = hashWords(this.arena, idx * this.stride, n) & mask
      while (Atomics.compareExchange(next, slot, 0, e) !== 0) slot = (slot + 1) & mask
    }
    this.barrier(MOVED, parties)
    if (leader) {
      Atomics.store(c, MASK, mask)
      Atomics.store(c, CUR, 1 - from)
      Atomics.store(c, STAGE, 0)
      Atomics.store(c, ARRIVED, 0)
      Atomics.store(c, PAUSE, 0)
      Atomics.add(c, EPOCH, 1)
      Atomics.notify(c, EPOCH)
    } else {
      while (Atomics.load(c, EPOCH) === epoch) Atomics.wait(c, EPOCH, epoch, 50)
    }
    this.refreshTable()
    this.refreshArena()
  }

  /** Arrives at counter `at` and waits for every party. */
  private barrier(at: number, parties: number): void {
    const c = this.control
    Atomics.add(c, at, 1)
    for (let v = Atomics.load(c, at); v < parties; v = Atomics.load(c, at)) Atomics.wait(c, at, v, 1)
  }
}
