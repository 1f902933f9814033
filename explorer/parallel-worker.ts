/**
 * A worker thread of the parallel BFS (parallel-bfs.ts): rebuilds the model
 * from its recipe, then runs the phases the coordinator starts. Phase
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
import { C, HALT, OP, type LevelMessage, type WorkerInit, type WorkerMessage } from './parallel-protocol.js'
import { modelOf } from './recipe.js'
import { Search } from './search.js'
import { SharedStore } from './shared-store.js'

const init = workerData as WorkerInit
const cmd = new Int32Array(init.cmd)

function post(m: WorkerMessage): void {
  init.port.postMessage(m)
}

function fail(e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e))
  post({ kind: 'error', name: err.name, message: err.message, stack: err.stack, trace: isModelError(err) ? err.trace : undefined })
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

async function main(): Promise<void> {
  const model = await modelOf(init.recipe)
  const store = new SharedStore(init.store)
  const search = new Search(model, { symmetry: init.symmetry, allViolations: init.allViolations }, false, store)
  if (model.name !== init.name || search.packed.stateBytes !== init.stateBytes || search.layout.words !== store.words) {
    throw new Error(`parallel BFS: the model recipe built ${model.name} (${search.packed.stateBytes} cells), not the model searched (${init.name}, ${init.stateBytes} cells)`)
  }
  const { packed, words } = search
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
  const view = (i: 0 | 1): Uint32Array => new Uint32Array(init.frontier[i], 0, init.frontier[i].byteLength / 4)

  const expandLevel = (): void => {
    const n = cmd[C.N]
    const chunk = cmd[C.CHUNK]
    const maxStates = cmd[C.MAX_STATES]
    levelBase = cmd[C.LEVEL_BASE]
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
      if (!init.allViolations && search.violated) Atomics.compareExchange(cmd, C.HALT, HALT.NONE, HALT.VIOLATION)
      if (store.size >= maxStates || store.full) Atomics.compareExchange(cmd, C.HALT, HALT.NONE, HALT.MAX_STATES)
    }
    if (search.events !== before) Atomics.store(cmd, C.EVENTS, 1)
    post({ kind: 'tally', tally: search.takeTally() })
  }

  const countLevel = (): void => {
    const counts = new Int32Array(init.chunks, 0, init.chunks.byteLength / 4)
    for (const ch of cands.chunks) {
      let kept = ch.start
      for (let i = ch.start; i < ch.end; i++) {
        const idx = cands.idx[i]
        if (store.edgePos(idx) === cands.pos[i] && store.edgeK(idx) === cands.k[i]) cands.idx[kept++] = idx
      }
      ch.end = kept
      counts[ch.c] = kept - ch.start
    }
  }

  const placeLevel = (): void => {
    const offsets = new Int32Array(init.chunks, 0, init.chunks.byteLength / 4)
    const next = view(cur === 0 ? 1 : 0)
    for (const ch of cands.chunks) {
      let at = offsets[ch.c]
      for (let i = ch.start; i < ch.end; i++) next[at++] = cands.idx[i]
    }
  }

  Atomics.add(cmd, C.READY, 1)
  Atomics.notify(cmd, C.READY)
  let gen = 0
  for (;;) {
    while (Atomics.load(cmd, C.GEN) === gen) Atomics.wait(cmd, C.GEN, gen, 1000)
    gen = Atomics.load(cmd, C.GEN)
    const op = cmd[C.OP]
    if (op === OP.QUIT) return
    for (let m = receiveMessageOnPort(init.port); m; m = receiveMessageOnPort(init.port)) {
      const level = m.message as LevelMessage
      cur = level.cur
      if (level.known) search.learn(level.known)
    }
    if (op === OP.EXPAND) {
      try {
        expandLevel()
      } finally {
        // Wait for every worker to be done inserting, taking part in the rehashes they ask for.
        const parties = cmd[C.SIZE]
        Atomics.add(cmd, C.INSERTED, 1)
        while (Atomics.load(cmd, C.INSERTED) < parties) {
          store.pausePoint()
          Atomics.wait(cmd, C.INSERTED, Atomics.load(cmd, C.INSERTED), 1)
        }
        store.pausePoint()
      }
    } else if (op === OP.COUNT) {
      countLevel()
    } else if (op === OP.PLACE) {
      placeLevel()
    }
    Atomics.add(cmd, C.DONE, 1)
    Atomics.notify(cmd, C.DONE)
  }
}

if ((workerData as WorkerInit | undefined)?.mapcheckParallel) {
  main().catch(fail)
}
