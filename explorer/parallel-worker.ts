/**
 * A worker thread of the parallel BFS (parallel-bfs.ts). A pool's workers
 * live on from one search to the next (starting a thread and loading the
 * model's modules costs more than a small search); each search begins with
 * SETUP, where the worker rebuilds the model from its recipe. Then phase
 * EXPAND claims chunks of the level's parents, expands them and inserts the
 * successors into the shared visited set, noting for each chunk the states
 * whose edge it holds; COUNT keeps those whose edge is still its own (the
 * least) and counts them per chunk; PLACE writes them, in chunk order, into
 * the next level. Everything a sequential search gathers in order (first
 * violations, facts, outcomes) is only watched for here: a first sighting
 * makes the coordinator replay the level in order.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads'
import { isModelError } from './errors.js'
import type { Model } from './model.js'
import { C, HALT, OP, type LevelMessage, type SearchSetup, type WorkerInit, type WorkerMessage } from './parallel-protocol.js'
import { modelOf } from './recipe.js'
import { Search } from './search.js'
import { SharedStore } from './shared-store.js'

const init = workerData as WorkerInit
const cmd = new Int32Array(init.cmd)

function post(m: WorkerMessage): void {
  init.port.postMessage(m)
}

function done(): void {
  Atomics.add(cmd, C.DONE, 1)
  Atomics.notify(cmd, C.DONE)
}

/** Growable candidate list: state index, parent position, action, per claimed chunk. */
class Candidates {
  idx: Int32Array = new Int32Array(1024)
  pos: Int32Array = new Int32Array(1024)
  k: Int32Array = new Int32Array(1024)
  length = 0
  chunks: { c: number; start: number; end: number }[] = []
  push(i: number, p: number, k: number): void {
    if (this.length === this.idx.length) {
      const grow = (a: Int32Array): Int32Array => {
        const b = new Int32Array(a.length * 2)
        b.set(a)
        return b
      }
      this.idx = grow(this.idx)
      this.pos = grow(this.pos)
      this.k = grow(this.k)
    }
    this.idx[this.length] = i
    this.pos[this.length] = p
    this.k[this.length++] = k
  }
}

/** The model last built, by recipe (the same search run again reuses it; a sweep's many points do not pile up). */
let last: { key: string; model: Model<unknown, unknown> } | null = null

/** One search's phases. */
async function session(setup: SearchSetup) {
  const key = JSON.stringify(setup.recipe)
  if (last?.key !== key) last = { key, model: await modelOf(setup.recipe) }
  const model = last.model
  const store = new SharedStore(setup.store)
  const search = new Search(model, { symmetry: setup.symmetry, allViolations: setup.allViolations }, false, store)
  if (model.name !== setup.name || search.packed.stateBytes !== setup.stateBytes || search.layout.words !== store.words) {
    throw new Error(`parallel BFS: the model recipe built ${model.name} (${search.packed.stateBytes} cells), not the model searched (${setup.name}, ${setup.stateBytes} cells)`)
  }
  const { words } = search
  const covered = search.coverage.counts
  const cands = new Candidates()
  let parent = 0
  let pos = 0
  let levelBase = 0
  const emit = (k: number, c: number): void => {
    if (covered.length > 0) covered[c]++
    if (search.rejectNext(parent, k)) return
    const r = store.insert(words, parent, pos, k, levelBase)
    if (r >= 0) {
      cands.push(r, pos, k)
      search.checkNext(r)
    } else if (store.improved) {
      cands.push(-r - 1, pos, k)
    }
  }
  let cur: 0 | 1 = 0
  const view = (i: 0 | 1): Uint32Array => new Uint32Array(setup.frontier[i], 0, setup.frontier[i].byteLength / 4)

  const expand = (): void => {
    const n = cmd[C.N]
    const chunk = cmd[C.CHUNK]
    const maxStates = cmd[C.MAX_STATES]
    levelBase = cmd[C.LEVEL_BASE]
    // The calling thread may have grown the table (or run the first levels while this thread set up): its views now.
    store.refresh()
    store.dropSpare()
    cands.length = 0
    cands.chunks = []
    const frontier = view(cur)
    const before = search.events
    for (;;) {
      if (Atomics.load(cmd, C.HALT) !== HALT.NONE) break
      const c = Atomics.add(cmd, C.NEXT_CHUNK, 1)
      const start = c * chunk
      if (start >= n) break
      const first = cands.length
      for (pos = start; pos < Math.min(n, start + chunk); pos++) {
        parent = frontier[pos]
        search.load(parent)
        const count = search.expand(parent, emit)
        search.transitions += count
        if (count === 0) search.noActions(parent)
      }
      cands.chunks.push({ c, start: first, end: cands.length })
      if (!setup.allViolations && search.violated) Atomics.compareExchange(cmd, C.HALT, HALT.NONE, HALT.VIOLATION)
      if (store.size >= maxStates || store.full) Atomics.compareExchange(cmd, C.HALT, HALT.NONE, HALT.MAX_STATES)
    }
    store.flush()
    if (search.events !== before) Atomics.store(cmd, C.EVENTS, 1)
    post({ kind: 'tally', tally: search.takeTally() })
  }

  const count = (): void => {
    const counts = new Int32Array(setup.chunks, 0, setup.chunks.byteLength / 4)
    for (const ch of cands.chunks) {
      let kept = ch.start
      for (let i = ch.start; i < ch.end; i++) {
        const idx = cands.idx[i]
        if (store.edgePos(idx, levelBase) === cands.pos[i] && store.edgeK(idx, levelBase) === cands.k[i]) cands.idx[kept++] = idx
      }
      ch.end = kept
      counts[ch.c] = kept - ch.start
    }
  }

  const place = (): void => {
    const offsets = new Int32Array(setup.chunks, 0, setup.chunks.byteLength / 4)
    const next = view(cur === 0 ? 1 : 0)
    for (const ch of cands.chunks) {
      let at = offsets[ch.c]
      for (let i = ch.start; i < ch.end; i++) next[at++] = cands.idx[i]
    }
  }

  return {
    level(m: LevelMessage): void {
      cur = m.cur
      if (m.known) search.learn(m.known)
    },
    expand,
    count,
    place,
    /** After EXPAND: wait for every worker to be done inserting, taking part in the rehashes they ask for. */
    settle(parties: number): void {
      Atomics.add(cmd, C.INSERTED, 1)
      while (Atomics.load(cmd, C.INSERTED) < parties) {
        store.pausePoint()
        Atomics.wait(cmd, C.INSERTED, Atomics.load(cmd, C.INSERTED), 1)
      }
      store.pausePoint()
    },
  }
}

async function main(): Promise<void> {
  let current: Awaited<ReturnType<typeof session>> | null = null
  let gen = 0
  for (;;) {
    while (Atomics.load(cmd, C.GEN) === gen) Atomics.wait(cmd, C.GEN, gen, 1000)
    gen = Atomics.load(cmd, C.GEN)
    const op = cmd[C.OP]
    if (op === OP.QUIT) return
    try {
      for (let m = receiveMessageOnPort(init.port); m; m = receiveMessageOnPort(init.port)) {
        const msg = m.message as SearchSetup | LevelMessage
        if ('recipe' in msg) current = await session(msg)
        else current!.level(msg)
      }
      if (op === OP.EXPAND) {
        try {
          current!.expand()
        } finally {
          current!.settle(cmd[C.SIZE])
        }
      } else if (op === OP.COUNT) {
        current!.count()
      } else if (op === OP.PLACE) {
        current!.place()
      } else if (op === OP.END) {
        // The search's buffers (its visited set) are freed once no thread holds them.
        current = null
      }
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e))
      post({ kind: 'error', name: err.name, message: err.message, stack: err.stack, trace: isModelError(err) ? err.trace : undefined })
      current = null
    }
    done()
  }
}

if ((workerData as WorkerInit | undefined)?.mapcheckParallel) void main()
