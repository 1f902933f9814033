import type { MessagePort } from 'node:worker_threads'
import type { ModelRecipe } from './recipe.js'
import type { SharedStoreBuffers } from './shared-store.js'

/**
 * What the parallel BFS's coordinator (parallel-bfs.ts) and its workers
 * (parallel-worker.ts) share: command cells in shared memory, waited on
 * with Atomics (the coordinator runs inside a synchronous `explore` call,
 * so it has no event loop to take messages on), and a MessagePort each,
 * read with receiveMessageOnPort, for what is not a number.
 */
export const C = {
  /** Bumped by the coordinator to start a phase. */
  GEN: 0,
  OP: 1,
  /** Workers done with the phase. */
  DONE: 2,
  /** Workers done inserting (phase A); they wait for each other, taking part in table rehashes. */
  INSERTED: 3,
  DEPTH: 5,
  /** Parents in the level. */
  N: 6,
  LEVEL_BASE: 7,
  CHUNK: 8,
  NEXT_CHUNK: 9,
  /** Why workers stop claiming chunks: see HALT. */
  HALT: 10,
  /** Some worker saw something first (a violation, a fact, an outcome): the level is replayed in order. */
  EVENTS: 11,
  MAX_STATES: 12,
  /** Total new states of the level (phase B). */
  TOTAL: 13,
  SIZE: 14,
} as const

export const OP = { SETUP: 1, EXPAND: 2, COUNT: 3, PLACE: 4, END: 5, QUIT: 6 } as const
export const HALT = { NONE: 0, VIOLATION: 1, MAX_STATES: 2, STOP: 3 } as const

/** A pool's worker, for its whole life (it serves one search after another). */
export interface WorkerInit {
  readonly mapcheckParallel: true
  readonly cmd: SharedArrayBuffer
  readonly port: MessagePort
}

/** One search, sent with OP.SETUP. */
export interface SearchSetup {
  readonly recipe: ModelRecipe
  readonly store: SharedStoreBuffers
  /** Growable: the level's parents (state indices), the next level, each chunk's count then offset. */
  readonly frontier: readonly [SharedArrayBuffer, SharedArrayBuffer]
  readonly chunks: SharedArrayBuffer
  readonly symmetry: boolean
  readonly allViolations: boolean
  readonly name: string
  readonly stateBytes: number
}

/** Worker -> coordinator. */
export type WorkerMessage =
  | { readonly kind: 'tally'; readonly tally: import('./search.js').Tally }
  | { readonly kind: 'error'; readonly name: string; readonly message: string; readonly stack?: string; readonly trace?: unknown }

/** Coordinator -> worker, before a phase: which frontier buffer is the level's, and what was seen first so far. */
export interface LevelMessage {
  readonly cur: 0 | 1
  readonly known?: import('./search.js').Known
}
