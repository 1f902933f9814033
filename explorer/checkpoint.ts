/**
 * Checkpoint and resume of a breadth-first search, as TLC does: the whole
 * search (the visited set with its parent links, the queue's position and
 * level, the counts, coverage, the violations and evidence found so far) is
 * written to a file every so often and once more when the search is cut
 * short (an interrupt, a bound), and a later run resumes it: the resumed
 * search stores the same states in the same order, so it ends with the same
 * counts, verdict and traces as an uninterrupted one.
 *
 * Domain-free: the engine writes bytes to a sink and reads them from a
 * source; the CLI (cli/checkpoint.ts) puts them in a file, atomically.
 *
 * Format (native byte order, recorded and checked; little-endian on every
 * machine Node runs on today):
 *   "mapcheck checkpoint\n"
 *   sections, each an 8-byte length (float64) and its bytes:
 *     JSON: format version, byte order, the run's identity (the model,
 *       its parameters, the options that shape the search: a checkpoint of
 *       another run is refused, naming what differs), the queue position,
 *       the search's counters and findings;
 *     the store's own sections (its JSON, then its arrays as raw words);
 *   "end of checkpoint\n", then the SHA-256 of every byte before it.
 * A file cut short, altered or of another kind is refused in one line.
 */
import { createHash, type Hash } from 'node:crypto'
import { BadInput } from './errors.js'
import type { Search } from './search.js'
import { FingerprintStore } from './fingerprint-store.js'
import { StateStore } from './state-store.js'

/** Where a checkpoint's bytes go, in order. */
export interface CheckpointSink {
  write(bytes: Uint8Array): void
}

/** Where a checkpoint's bytes come from: `read` fills `into` as far as it can and returns how many bytes it read (0 at the end). */
export interface CheckpointSource {
  read(into: Uint8Array): number
}

export interface CheckpointOptions {
  /** What the run is of beyond what the engine sees (scenario, variant, parameters, review file, version): must match on resume. */
  readonly identity?: Readonly<Record<string, string>>
  /** Save every this many milliseconds of search (default 10 minutes) ... */
  readonly everyMs?: number
  /** ... or every this many states expanded (deterministic: for tests). */
  readonly everyStates?: number
  /**
   * Saves one checkpoint: calls `write` with a sink (the CLI's: a temporary
   * file, renamed into place once complete). `final`: the search is ending
   * cut short, this is the checkpoint to resume from.
   */
  readonly save?: (write: (sink: CheckpointSink) => void, final: boolean, states: number) => void
  /** Resume from this checkpoint instead of starting from the initial states. */
  readonly resume?: CheckpointSource
  /** The resumed checkpoint's name in messages (its file). */
  readonly resumeName?: string
}

/** Where the breadth-first loop stands: the next state to expand, its level, and where that level ends. */
export interface BfsPosition {
  readonly head: number
  readonly depth: number
  readonly levelEnd: number
}

export const CHECKPOINT_FORMAT = 1
const MAGIC = new TextEncoder().encode('mapcheck checkpoint\n')
const END = new TextEncoder().encode('end of checkpoint\n')
const DEFAULT_EVERY_MS = 10 * 60_000
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1
const ENDIAN = LITTLE_ENDIAN ? 'little' : 'big'

type Words = Uint32Array | Float64Array

/** Bytes handed to a sink, a source or the hash at once: a table of 2^31 slots is 8 GiB, past what one read(2) or hash update takes. */
const PIECE = 1 << 28

const bytesOf = (a: Words, length = a.length): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, length * a.BYTES_PER_ELEMENT)

/** Writes sections to a sink, hashing every byte. */
export class CheckpointWriter {
  private readonly hash: Hash = createHash('sha256')
  private readonly len = new Float64Array(1)

  constructor(private readonly sink: CheckpointSink) {
    this.raw(MAGIC)
  }

  private raw(b: Uint8Array): void {
    for (let off = 0; off < b.length; off += PIECE) {
      const piece = b.subarray(off, off + PIECE)
      this.hash.update(piece)
      this.sink.write(piece)
    }
  }

  private section(b: Uint8Array): void {
    this.len[0] = b.byteLength
    this.raw(bytesOf(this.len).slice())
    if (b.byteLength > 0) this.raw(b)
  }

  /** The first `length` elements of `a`, as raw bytes. */
  array(a: Words, length = a.length): void {
    this.section(bytesOf(a, length))
  }

  json(value: unknown): void {
    this.section(new TextEncoder().encode(JSON.stringify(value)))
  }

  end(): void {
    const digest = this.hash.digest()
    this.sink.write(END)
    this.sink.write(new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength))
  }
}

/** Reads what a CheckpointWriter wrote; every failure is a one-line BadInput naming the checkpoint. */
export class CheckpointReader {
  private readonly hash: Hash = createHash('sha256')
  private offset = 0

  constructor(
    private readonly source: CheckpointSource,
    readonly name: string,
  ) {
    const magic = new Uint8Array(MAGIC.length)
    if (this.fill(magic, false) < magic.length || !magic.every((b, i) => b === MAGIC[i])) throw this.bad('not a mapcheck checkpoint')
    this.hash.update(magic)
  }

  bad(what: string): BadInput {
    return new BadInput(`checkpoint ${this.name}: ${what}`)
  }

  /** Reads into `into` until full or the end; returns the bytes read. */
  private fill(into: Uint8Array, hash = true): number {
    let got = 0
    while (got < into.length) {
      const n = this.source.read(into.subarray(got, got + PIECE))
      if (n <= 0) break
      if (hash) this.hash.update(into.subarray(got, got + n))
      got += n
    }
    this.offset += got
    return got
  }

  private exactly(into: Uint8Array, what: string): void {
    if (this.fill(into) < into.length) throw this.bad(`truncated (it ends at byte ${this.offset}, in ${what})`)
  }

  private sectionLength(what: string): number {
    const len = new Float64Array(1)
    this.exactly(bytesOf(len), what)
    const n = len[0]
    if (!Number.isSafeInteger(n) || n < 0) throw this.bad(`corrupted (a bad section length at byte ${this.offset - 8})`)
    return n
  }

  /** Reads a section of exactly `length` elements into `into`. */
  array(into: Words, what: string, length = into.length): void {
    const n = this.sectionLength(what)
    if (n !== length * into.BYTES_PER_ELEMENT) throw this.bad(`corrupted (${what}: ${n} bytes where ${length * into.BYTES_PER_ELEMENT} were expected)`)
    this.exactly(bytesOf(into, length), what)
  }

  json<T>(what: string): T {
    const n = this.sectionLength(what)
    if (n > 1 << 30) throw this.bad(`corrupted (${what}: ${n} bytes)`)
    const b = new Uint8Array(n)
    this.exactly(b, what)
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b)) as T
    } catch {
      throw this.bad(`corrupted (${what} is not JSON)`)
    }
  }

  /** The end marker and the checksum of everything before it; nothing may follow. */
  end(): void {
    const digest = this.hash.digest()
    const end = new Uint8Array(END.length + digest.length)
    if (this.fill(end, false) < end.length) throw this.bad(`truncated (it ends at byte ${this.offset}, before its checksum)`)
    if (!END.every((b, i) => b === end[i])) throw this.bad(`corrupted (no end marker at byte ${this.offset - end.length})`)
    if (!digest.every((b, i) => b === end[END.length + i])) throw this.bad('corrupted (its SHA-256 checksum does not match its content)')
    if (this.fill(new Uint8Array(1), false) > 0) throw this.bad('corrupted (bytes after its end)')
  }
}

/** What a store saves and restores of itself. */
export interface Checkpointable {
  writeTo(w: CheckpointWriter): void
  readFrom(r: CheckpointReader): void
}

interface Header {
  readonly format: number
  readonly endian: string
  readonly identity: Record<string, string>
  readonly at: BfsPosition
  readonly search: unknown
}

/**
 * The engine's part of a run's identity: the model and its state layout,
 * and the options that change what a search stores or finds. (Bounds on
 * states, time and memory may change between runs: they only say when to
 * stop.)
 */
function engineIdentity(search: Search<unknown, unknown>): Record<string, string> {
  const { layout, model, options } = search
  const cells = Array.from(layout.min, (m, i) => `${m}..${m + layout.span[i]}`).join(',')
  return {
    model: model.name,
    'state layout': createHash('sha256').update(`${layout.words}:${cells}`).digest('hex').slice(0, 16),
    invariants: model.invariants.map((i) => i.id).join(','),
    mode: 'bfs',
    store: options.store ?? 'full',
    symmetry: search.canon.symmetry !== null ? 'on' : 'off',
    'max-depth': String(search.limits.maxDepth),
    'all-violations': options.allViolations ? 'yes' : 'no',
  }
}

/** The search's own store: a checkpointed search is sequential (parallel-bfs.ts runs sequentially under a checkpoint). */
function storeOf(search: Search<unknown, unknown>): StateStore | FingerprintStore {
  const store = search.store
  if (!(store instanceof StateStore || store instanceof FingerprintStore)) throw new Error('checkpoint: the search does not own its store (a parallel BFS is not checkpointed)')
  return store
}

/** Writes `search` standing at `at` as a checkpoint. */
export function writeCheckpoint(search: Search<unknown, unknown>, at: BfsPosition, identity: Readonly<Record<string, string>>, sink: CheckpointSink): void {
  const w = new CheckpointWriter(sink)
  const header: Header = { format: CHECKPOINT_FORMAT, endian: ENDIAN, identity: { ...identity, ...engineIdentity(search) }, at, search: search.snapshot() }
  w.json(header)
  storeOf(search).writeTo(w)
  w.end()
}

/** Restores `search` (new, empty) from a checkpoint of the same run; returns where its loop stood. */
export function readCheckpoint(search: Search<unknown, unknown>, identity: Readonly<Record<string, string>>, source: CheckpointSource, name: string): BfsPosition {
  const r = new CheckpointReader(source, name)
  const h = r.json<Header>('its header')
  if (typeof h !== 'object' || h === null || typeof h.identity !== 'object' || h.identity === null || typeof h.at !== 'object' || h.at === null) throw r.bad('corrupted (no header)')
  if (h.format !== CHECKPOINT_FORMAT) throw r.bad(`format ${h.format}, this mapcheck reads format ${CHECKPOINT_FORMAT}`)
  if (h.endian !== ENDIAN) throw r.bad(`written on a ${h.endian}-endian machine, this one is ${ENDIAN}-endian`)
  const want: Record<string, string> = { ...identity, ...engineIdentity(search) }
  for (const key of new Set([...Object.keys(want), ...Object.keys(h.identity)])) {
    if (want[key] !== h.identity[key]) {
      throw r.bad(`is of another run: ${key} ${show(h.identity[key])} there, ${show(want[key])} here`)
    }
  }
  storeOf(search).readFrom(r)
  r.end()
  const { head, depth, levelEnd } = h.at
  if (![head, depth, levelEnd].every(Number.isSafeInteger) || head > search.store.size || levelEnd > search.store.size) throw r.bad('corrupted (its queue position)')
  search.restore(h.search)
  return { head, depth, levelEnd }
}

const show = (v: string | undefined): string => (v === undefined ? '(none)' : v.length > 60 ? `${v.slice(0, 57)}...` : v)

/** The breadth-first loop's checkpointing: when one is due, and writing it. */
export class Checkpointing {
  private lastMs = performance.now()
  private lastHead = 0
  private ticks = 0
  private readonly everyMs: number

  constructor(
    private readonly search: Search<unknown, unknown>,
    private readonly options: CheckpointOptions,
  ) {
    this.everyMs = options.everyMs ?? DEFAULT_EVERY_MS
    // An interned state's words are its index in this process's table of state objects: meaningless to another process.
    if (search.model.packed === undefined) throw new BadInput(`${search.model.name}: has no packed form, so its states cannot be checkpointed`)
  }

  /** Restores the search from `options.resume`, if given: where the loop is to go on from, or null to start afresh. */
  resume(): BfsPosition | null {
    if (this.options.resume === undefined) return null
    const at = readCheckpoint(this.search, this.options.identity ?? {}, this.options.resume, this.options.resumeName ?? 'checkpoint')
    this.lastHead = at.head
    return at
  }

  /** Is a periodic checkpoint due, the loop about to expand `head`? (Asks the clock once per 1024 states.) */
  due(head: number): boolean {
    if (this.options.save === undefined) return false
    if (this.options.everyStates !== undefined) return head - this.lastHead >= this.options.everyStates
    if ((++this.ticks & 1023) !== 0) return false
    return performance.now() - this.lastMs >= this.everyMs
  }

  save(at: BfsPosition, final: boolean): void {
    const save = this.options.save
    if (save === undefined) return
    save((sink) => writeCheckpoint(this.search, at, this.options.identity ?? {}, sink), final, this.search.store.size)
    this.lastMs = performance.now()
    this.lastHead = at.head
  }
}
