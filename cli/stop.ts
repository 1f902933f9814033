/**
 * Why a search should stop early, asked once per state through the
 * explorer's `stop` option: the memory bound, or an interrupt (SIGINT or
 * SIGTERM, seen by the main thread while the search runs on a worker; see
 * cli/worker.ts).
 */
import { constrainedMemory, memoryUsage } from 'node:process'
import { totalmem } from 'node:os'
import { getHeapStatistics } from 'node:v8'
import { BadInput } from '../explorer/errors.js'

export const INTERRUPTED = 'interrupted'

/** The share of the machine's memory (or of the cgroup's limit) a search may use by default. */
const DEFAULT_SHARE = 0.5

/** Half the memory of this machine (or of the container's limit, when smaller). */
export function defaultMaxMemory(): number {
  const limit = constrainedMemory?.() ?? 0
  const total = totalmem()
  return Math.floor(DEFAULT_SHARE * (limit > 0 && limit < total ? limit : total))
}

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }

/** `--max-memory`: bytes, or a number with K, M, G or T (binary units, an optional trailing B or iB). */
export function sizeOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(value.trim())
  const bytes = m ? Number(m[1]) * UNITS[m[2].toUpperCase()] : NaN
  if (!Number.isFinite(bytes) || bytes < 1 || bytes > Number.MAX_SAFE_INTEGER) {
    throw new BadInput(`--max-memory ${value}: expected a size such as 512M or 4G`)
  }
  return Math.floor(bytes)
}

export function sizeText(bytes: number): string {
  for (const [unit, n] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= n) return `${(bytes / n).toFixed(1).replace(/\.0$/, '')} ${unit}`
  }
  return `${bytes} B`
}

/** Set when the process was asked to stop (from a signal, or the worker's shared flag). */
let interrupted: () => boolean = () => false
export const setInterruptSource = (f: () => boolean): void => {
  interrupted = f
}
export const isInterrupted = (): boolean => interrupted()

/** How often (in states) the memory is measured: rare enough to cost nothing, often enough that a chunk of the store cannot overshoot. */
const MEMORY_EVERY = 1024

export interface MemoryProbe {
  /** Bytes the process holds (resident set). */
  rss(): number
  /** The JS heap's use and limit: the heap has its own ceiling, below the machine's. */
  heap(): { used: number; limit: number }
}

const processProbe: MemoryProbe = {
  rss: () => memoryUsage.rss(),
  heap: () => ({ used: memoryUsage().heapUsed, limit: getHeapStatistics().heap_size_limit }),
}

/**
 * The explorer's `stop` callback: `interrupted`, or `memory bound ... reached
 * at N states` once the process's resident memory reaches `maxMemory` (or the
 * JS heap nears its own limit), else null.
 */
export function searchStop(maxMemory: number, probe: MemoryProbe = processProbe): (states: number) => string | null {
  let calls = 0
  // Also by states stored: the parallel BFS asks a few times a second while its workers store tens of thousands.
  let measuredAt = 0
  return (states) => {
    if (interrupted()) return INTERRUPTED
    if (++calls % MEMORY_EVERY !== 0 && states - measuredAt < 64 * MEMORY_EVERY) return null
    measuredAt = states
    const rss = probe.rss()
    if (rss >= maxMemory) return `memory bound ${sizeText(maxMemory)} reached at ${states.toLocaleString('en-US')} states (resident ${sizeText(rss)})`
    const heap = probe.heap()
    if (heap.used >= 0.85 * heap.limit) {
      return `memory bound reached at ${states.toLocaleString('en-US')} states (JS heap ${sizeText(heap.used)} of its ${sizeText(heap.limit)} limit)`
    }
    return null
  }
}
