/**
 * Parallel breadth-first search over worker threads (`--workers N`),
 * level-synchronous so that it keeps the sequential BFS's shortest traces.
 *
 * The visited set is shared (shared-store.ts: lock-free, on growable
 * SharedArrayBuffers); each state keeps the least (parent position, action)
 * edge it was reached by, so every level, laid out by that key, is exactly
 * the level the sequential BFS builds, and so are the traces. A level runs in
 * three phases (parallel-worker.ts): expand (chunks of parents claimed by
 * the workers), count (each chunk's states whose edge it holds), place (the
 * next level, in chunk order).
 *
 * What the sequential search gathers in discovery order (the first state
 * to break each invariant, a deadlock, the first state showing each
 * evidence fact, the first run of each outcome) and where it stops (after
 * the parent whose successor broke something, at --max-states) are not
 * guessed from a parallel level: a worker that sees something for the
 * first time says so, and this thread replays that level in order over the
 * shared store (finding states instead of inserting them), with the same
 * `Search` the sequential BFS uses. Every other level adds the workers'
 * order-free tallies (transitions, coverage, orbit sizes, metric ranges).
 * So the result is the sequential BFS's, counts included. Small levels are
 * expanded here, on the calling thread: the workers start at the first
 * level of `parallelFrom` states.
 *
 * The fingerprint store stays sequential (the search says so): its parent
 * index is the successor number, which a shared table would need as well.
 */
import { availableParallelism } from 'node:os'
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'
import { bfs } from './bfs.js'
import { BitLayout } from './bit-layout.js'
import { growableBuffer, growBuffer } from './growable.js'
import { ModelError } from './errors.js'
import type { Model } from './model.js'
import { DEFAULT_BOUNDS, type ExploreOptions } from './options.js'
import { C, HALT, OP, type LevelMessage, type SearchSetup, type WorkerInit, type WorkerMessage } from './parallel-protocol.js'
import type { StoreView } from './path.js'
import type { ModelRecipe } from './recipe.js'
import type { Exploration } from './result.js'
import { Search, type Tally } from './search.js'
import { SharedStore } from './shared-store.js'
import { NO_PARENT } from './state-store.js'

const DEFAULT_PARALLEL_FROM = 10_000
/** The worker threads are started at the first level of parallelFrom / SPAWN_AHEAD states. */
const SPAWN_AHEAD = 8

/** The number of workers `--workers` defaults to: the cores this process may use. */
export const defaultWorkers = (): number => availableParallelism()

export function parallelBfs<S, A>(model: Model<S, A>, options: ExploreOptions): Exploration<A> {
  const workers = options.workers ?? 1
  const sequential = (why: string): Exploration<A> => {
    const found = bfs(model, options)
    return { ...found, stats: { ...found.stats, parallel: { workers: 1, levels: 0, replayed: 0, sequential: why } } }
  }
  if (!options.recipe) return sequential('no model recipe (a Model object cannot be sent to a worker thread): sequential BFS')
  // A worker rebuilds the model from its recipe, in the model's own successor order: a swarm shard's shuffled order stays on this thread.
  // Partial-order reduction expands states one by one with footprints learned in order (por.ts): forced on, it runs sequentially.
  if (options.por === true) return sequential('partial-order reduction (por: true) is sequential-only: sequential BFS')
  // A checkpoint saves the sequential search's store and queue.
  if (options.checkpoint) return sequential('checkpoints (--checkpoint/--resume) are written by the sequential BFS: sequential BFS')
  if (options.successorSeed !== undefined) return sequential('a shuffled successor order (a swarm shard) is not rebuilt by the workers: sequential BFS')
  if (options.store === 'fingerprint') return sequential('the fingerprint store is sequential-only: sequential BFS')
  if (!model.packed) return sequential('the model has no packed form (its states are interned per thread): sequential BFS')
  return new Coordinator(model, options, options.recipe, workers).run()
}

/** The calling thread's view of the shared store: the states the search has accounted for, in sequential order. */
class Counted implements StoreView {
  size = 0
  constructor(readonly store: SharedStore) {}
  get full(): boolean {
    return this.store.full
  }
  get capacity(): number {
    return this.store.capacity
  }
  get bytes(): number {
    return this.store.bytes
  }
  get(idx: number, out: Uint32Array): void {
    this.store.get(idx, out)
  }
  path(idx: number): number[] {
    return this.store.path(idx)
  }
}

/** Worker threads, kept from one search to the next on this thread (a matrix runs many). */
interface Pool {
  readonly workers: Worker[]
  readonly ports: MessagePort[]
  readonly cmd: Int32Array
}

let idle: Pool | null = null

/** A pool of `n` workers: the one kept, or a new one. */
function takePool(n: number): Pool {
  const kept = idle
  idle = null
  if (kept && kept.workers.length === n) return kept
  if (kept) endPool(kept)
  const cmd = new Int32Array(new SharedArrayBuffer(64 * 4))
  const entry = new URL(`./parallel-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url)
  const workers: Worker[] = []
  const ports: MessagePort[] = []
  for (let i = 0; i < n; i++) {
    const { port1, port2 } = new MessageChannel()
    const init: WorkerInit = { mapcheckParallel: true, cmd: cmd.buffer as SharedArrayBuffer, port: port2 }
    const options = { workerData: init, transferList: [port2] }
    // From source, a worker needs tsx's hooks of its own (as cli/worker.ts does).
    const worker = fromSource
      ? new Worker(`import(${JSON.stringify(tsxApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}) })`, { ...options, eval: true })
      : new Worker(entry, options)
    // Idle workers must not keep the process alive; their errors come through the port.
    worker.unref()
    worker.on('error', () => {})
    workers.push(worker)
    ports.push(port1)
  }
  return { workers, ports, cmd }
}

function endPool(pool: Pool): void {
  pool.cmd[C.OP] = OP.QUIT
  Atomics.add(pool.cmd, C.GEN, 1)
  Atomics.notify(pool.cmd, C.GEN)
  for (const p of pool.ports) p.close()
}

class Coordinator<S, A> {
  private readonly store: SharedStore
  private readonly view: Counted
  private readonly search: Search<S, A>
  private readonly started = performance.now()
  private readonly maxSeconds: number
  private readonly maxStates: number
  private pool: Pool | null = null
  /** Threads started ahead of the first parallel level (they load their modules meanwhile), not yet set up. */
  private spawned: Pool | null = null
  /** The pool cannot be trusted after an error: it is ended, not kept. */
  private broken = false
  private frontierBufs: [SharedArrayBuffer, SharedArrayBuffer] | null = null
  private chunkBuf: SharedArrayBuffer | null = null
  private levels = 0
  private replayed = 0
  /** What the workers were last told was seen first. */
  private told = ''
  private cur: 0 | 1 = 0

  constructor(
    private readonly model: Model<S, A>,
    private readonly options: ExploreOptions,
    private readonly recipe: ModelRecipe,
    private readonly workers: number,
  ) {
    this.maxSeconds = options.maxSeconds ?? DEFAULT_BOUNDS.maxSeconds
    this.maxStates = options.maxStates ?? DEFAULT_BOUNDS.maxStates
    this.store = SharedStore.create(BitLayout.of(model.packed!).words)
    this.view = new Counted(this.store)
    // Time is checked here (once per parent, and while workers run), as `stop`: the search's own clock is off.
    const stop = (states: number): string | null => options.stop?.(states) ?? (this.elapsed() > this.maxSeconds ? `max-seconds ${this.maxSeconds} reached` : null)
    this.search = new Search(model, { ...options, stop, maxSeconds: Infinity }, false, this.view)
  }

  private elapsed(): number {
    return (performance.now() - this.started) / 1000
  }

  run(): Exploration<A> {
    try {
      return this.search_()
    } catch (e) {
      this.broken = true
      throw e
    } finally {
      this.releasePool()
    }
  }

  private search_(): Exploration<A> {
    const { search, store, view } = this
    const { packed, words } = search
    const maxDepth = search.limits.maxDepth
    const parallelFrom = Math.max(1, this.options.parallelFrom ?? DEFAULT_PARALLEL_FROM)
    let frontier: Uint32Array
    {
      const first: number[] = []
      let init = 0
      packed.initial(() => {
        search.rejectNext(NO_PARENT, init)
        const idx = store.insert(words, NO_PARENT, 0, init++, 0)
        if (idx >= 0) {
          view.size++
          first.push(idx)
          search.checkNext(idx)
        }
      })
      frontier = Uint32Array.from(first)
    }
    for (let depth = 0; frontier.length > 0; depth++) {
      // Starting a thread and loading its modules takes ~0.1 s: done while the last small levels run here.
      if (this.workers > 1 && this.pool === null && this.spawned === null && frontier.length * SPAWN_AHEAD >= parallelFrom && depth < maxDepth) {
        this.spawned = takePool(this.workers)
      }
      if (this.workers > 1 && frontier.length >= parallelFrom && depth < maxDepth) {
        if (search.shouldStop(frontier.length, depth)) break
        const next = this.parallelLevel(frontier, depth)
        if (next === null) break
        frontier = next
      } else {
        const r = this.sequentialLevel(frontier, frontier.length, depth, store.next, false)
        if (r.stopped) break
        frontier = Uint32Array.from(r.next)
      }
    }
    const found = search.finish('bfs')
    const parallel = this.pool
      ? { workers: this.workers, levels: this.levels, replayed: this.replayed }
      : { workers: this.workers, levels: 0, replayed: 0, ...(this.workers > 1 ? { sequential: `no level reached ${parallelFrom.toLocaleString('en-US')} states: sequential BFS` } : {}) }
    return { ...found, stats: { ...found.stats, parallel } }
  }

  /**
   * One level in order on this thread, as bfs.ts does it: parents
   * [0, end) of `frontier`. `replay`: the level was expanded by the
   * workers, whose states are looked up, and a state counts where its edge
   * (the least) is the one being taken.
   */
  private sequentialLevel(frontier: Uint32Array, end: number, depth: number, levelBase: number, replay: boolean): { next: number[]; stopped: boolean } {
    const { search, store, view } = this
    const { packed, words } = search
    const maxDepth = search.limits.maxDepth
    const covered = search.coverage.counts
    const next: number[] = []
    let parent = 0
    let pos = 0
    const emit = (k: number, c: number): void => {
      if (covered.length > 0) covered[c]++
      if (search.rejectNext(parent, k)) return
      if (replay) {
        const idx = store.find(words)
        if (idx >= levelBase && store.edgePos(idx, levelBase) === pos && store.edgeK(idx, levelBase) === k) {
          view.size++
          search.checkNext(idx)
        }
        return
      }
      const idx = store.insert(words, parent, pos, k, levelBase)
      if (idx >= 0) {
        view.size++
        next.push(idx)
        search.checkNext(idx)
      }
    }
    store.dropSpare()
    for (pos = 0; pos < end; pos++) {
      if (search.shouldStop(frontier.length - pos + next.length, depth)) return { next, stopped: true }
      search.maxDepth = depth
      parent = frontier[pos]
      search.load(parent)
      if (depth >= maxDepth) {
        if (search.expand(parent, noop) > 0) search.cutAtDepth()
        else search.noActions(parent)
        continue
      }
      const count = search.expand(parent, emit)
      search.transitions += count
      if (count === 0) search.noActions(parent)
    }
    return { next, stopped: false }
  }

  /** One level expanded by the workers; null when the search ends with it. */
  private parallelLevel(frontier: Uint32Array, depth: number): Uint32Array | null {
    const pool = (this.pool ??= this.startPool())
    const { search, store, view } = this
    const { cmd } = pool
    const frontierBufs = this.frontierBufs!
    const chunkBuf = this.chunkBuf!
    const n = frontier.length
    // This thread's spare indices and uncounted states (from the levels it expanded itself) settled first.
    store.dropSpare()
    const levelBase = store.next
    const chunk = Math.max(16, Math.min(1024, Math.floor(n / (this.workers * 64))))
    const chunks = Math.ceil(n / chunk)
    grow(frontierBufs[this.cur], n * 4)
    new Uint32Array(frontierBufs[this.cur], 0, n).set(frontier)
    grow(chunkBuf, chunks * 4)
    new Int32Array(chunkBuf, 0, chunks).fill(0)
    const known = JSON.stringify(search.known())
    const message: LevelMessage = { cur: this.cur, ...(known !== this.told ? { known: search.known() } : {}) }
    this.told = known
    for (const p of pool.ports) p.postMessage(message)
    cmd[C.DEPTH] = depth
    cmd[C.N] = n
    cmd[C.LEVEL_BASE] = levelBase
    cmd[C.CHUNK] = chunk
    cmd[C.NEXT_CHUNK] = 0
    cmd[C.HALT] = HALT.NONE
    cmd[C.EVENTS] = 0
    cmd[C.INSERTED] = 0
    cmd[C.MAX_STATES] = Math.min(this.maxStates, 2 ** 31 - 1)
    cmd[C.SIZE] = this.workers
    store.parties = this.workers
    const tallies = this.phase(pool, OP.EXPAND, depth, n)
    store.parties = 1
    store.refresh()
    this.levels++
    // The parents expanded: the chunks claimed (each claimed chunk is finished), a prefix of the level.
    const end = Math.min(n, Atomics.load(cmd, C.NEXT_CHUNK) * chunk)
    const halt = Atomics.load(cmd, C.HALT)
    const reason = this.haltReason
    const replay = Atomics.load(cmd, C.EVENTS) !== 0 || halt !== HALT.NONE
    if (replay) {
      // A first sighting, or a stop the sequential BFS makes after some parent: replay the level in order. A bound
      // (an interrupt, time, memory) is asked again on the way, and stops the replay where it would have stopped
      // the sequential search: the count it names is the count reported.
      this.replayed++
      const r = this.sequentialLevel(frontier, end, depth, levelBase, true)
      if (r.stopped || halt !== HALT.NONE) {
        // Not stopped on the way (the bound no longer says so, or the prefix ended first): the reason the workers stopped.
        if (!r.stopped && reason !== null) search.incomplete ??= reason
        return null
      }
    } else {
      for (const t of tallies) search.addTally(t)
      search.maxDepth = depth
      if (halt !== HALT.NONE) {
        // Interrupted, out of time or memory: the level's states are counted as stored.
        view.size = store.size
        search.incomplete ??= reason
        return null
      }
    }
    this.phase(pool, OP.COUNT, depth, n)
    const counts = new Int32Array(chunkBuf, 0, chunks)
    let total = 0
    for (let c = 0; c < chunks; c++) {
      const k = counts[c]
      counts[c] = total
      total += k
    }
    grow(frontierBufs[this.cur === 0 ? 1 : 0], total * 4)
    this.phase(pool, OP.PLACE, depth, n)
    const next = new Uint32Array(frontierBufs[this.cur === 0 ? 1 : 0], 0, total).slice()
    // A replayed level counted its states as it went.
    if (!replay) view.size += total
    this.cur = this.cur === 0 ? 1 : 0
    return next
  }

  private haltReason: string | null = null

  /** Starts a phase and waits for every worker, checking the bounds and reporting progress meanwhile. */
  private phase(pool: Pool, op: number, depth: number, n: number): Tally[] {
    const { cmd } = pool
    cmd[C.OP] = op
    Atomics.store(cmd, C.DONE, 0)
    Atomics.add(cmd, C.GEN, 1)
    Atomics.notify(cmd, C.GEN)
    this.haltReason = null
    let lastReport = performance.now()
    for (;;) {
      const done = Atomics.load(cmd, C.DONE)
      if (done >= this.workers) break
      Atomics.wait(cmd, C.DONE, done, 50)
      if (op !== OP.EXPAND) continue
      if (Atomics.load(cmd, C.HALT) === HALT.NONE) {
        const why = this.options.stop?.(this.store.size) ?? (this.elapsed() > this.maxSeconds ? `max-seconds ${this.maxSeconds} reached` : null)
        if (why !== null && Atomics.compareExchange(cmd, C.HALT, HALT.NONE, HALT.STOP) === HALT.NONE) this.haltReason = why
      }
      const now = performance.now()
      if (this.options.onProgress && now - lastReport > 250) {
        lastReport = now
        const seconds = this.elapsed()
        const states = this.store.size
        this.options.onProgress({ states, transitions: this.search.transitions, depth, queue: Math.max(0, n - Atomics.load(cmd, C.NEXT_CHUNK) * cmd[C.CHUNK]), seconds, statesPerSecond: states / seconds })
      }
    }
    if (Atomics.load(cmd, C.HALT) === HALT.MAX_STATES) this.haltReason = `max-states ${this.maxStates} reached`
    const tallies: Tally[] = []
    for (const port of pool.ports) {
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        const msg = m.message as WorkerMessage
        if (msg.kind === 'error') {
          this.broken = true
          throw workerError(msg)
        }
        tallies.push(msg.tally)
      }
    }
    return tallies
  }

  /** Takes a pool and sets up this search on it: each worker rebuilds the model. */
  private startPool(): Pool {
    const pool = this.spawned ?? takePool(this.workers)
    this.spawned = null
    this.pool = pool
    this.frontierBufs = [growable(), growable()]
    this.chunkBuf = growable()
    const setup: SearchSetup = {
      recipe: this.recipe,
      store: this.store.buffers,
      frontier: this.frontierBufs,
      chunks: this.chunkBuf,
      symmetry: this.options.symmetry !== false,
      allViolations: !!this.options.allViolations,
      name: this.model.name,
      stateBytes: this.search.packed.stateBytes,
    }
    for (const p of pool.ports) p.postMessage(setup)
    this.phase(pool, OP.SETUP, 0, 0)
    return pool
  }

  /** Ends this search on the pool (its buffers let go) and keeps the pool for the next search. */
  private releasePool(): void {
    if (this.spawned) {
      // Started, never set up: kept as it is for the next search.
      if (idle) endPool(idle)
      idle = this.spawned
      this.spawned = null
    }
    const pool = this.pool
    if (!pool) return
    this.pool = null
    if (!this.broken) {
      try {
        this.phase(pool, OP.END, 0, 0)
      } catch {
        this.broken = true
      }
    }
    if (this.broken) {
      endPool(pool)
    } else {
      if (idle) endPool(idle)
      idle = pool
    }
  }
}

const fromSource = import.meta.url.endsWith('.ts')

function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api')
  } catch {
    return new URL('../node_modules/tsx/dist/esm/api/index.mjs', import.meta.url).href
  }
}

const growable = (): SharedArrayBuffer => growableBuffer(4096)
const grow = growBuffer

function workerError(m: WorkerMessage & { kind: 'error' }): Error {
  if (m.name === 'ModelError') return new ModelError(m.message, m.trace as ModelError['trace'])
  const e = new Error(`parallel BFS worker: ${m.message}`)
  if (m.stack) e.stack = m.stack
  return e
}

function noop(): void {}
