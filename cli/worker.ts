/**
 * Commands that explore run on a worker thread, and the main thread only
 * supervises: a search is one long synchronous loop, and Node runs signal
 * handlers on the event loop of the main thread, so a search on the main
 * thread could not see Ctrl-C until it ended. Here:
 *
 * - the first SIGINT or SIGTERM sets a flag in shared memory; the worker's
 *   search reads it once per state (cli/stop.ts) and ends with its summary
 *   and the verdict `incomplete (interrupted)`;
 * - a second one exits at once (128 + the signal), but not in the middle of
 *   a file write: the worker counts its writes in progress in the same shared
 *   memory, and once asked to quit it starts no new one;
 * - progress is drawn by the main thread, from the worker's messages.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { writeGuard } from '../traces/write.js'
import type { Progress } from '../explorer/result.js'
import { EXIT } from './exit.js'
import { reportInternalError } from './internal-error.js'
import { progressLine } from './progress.js'
import { setInterruptSource } from './stop.js'

/** Shared Int32Array cells. */
const SIGNALS = 0
const WRITING = 1

interface WorkerData {
  readonly mapcheckWorker: true
  readonly shared: Int32Array
  /** Whether the main thread's stderr is a terminal (the worker's streams are not). */
  readonly tty: boolean
}

type Message = { progress: (Progress & { label?: string }) | null } | { status: number }

const data: WorkerData | undefined = !isMainThread && (workerData as WorkerData | undefined)?.mapcheckWorker ? (workerData as WorkerData) : undefined

/** In the CLI's worker: progress goes to the main thread when it has a terminal. */
export const workerProgress = data?.tty ? (m: Message): void => parentPort!.postMessage(m) : undefined

/** Running as the CLI's worker: wire the shared flags to the search's stop check and to file writes. */
export function isCliWorker(): boolean {
  if (!data) return false
  const shared = data.shared
  setInterruptSource(() => Atomics.load(shared, SIGNALS) > 0)
  writeGuard.enter = () => {
    Atomics.add(shared, WRITING, 1)
    if (Atomics.load(shared, SIGNALS) >= 2) {
      // Quitting: start no new write; the main thread is about to exit the process.
      Atomics.sub(shared, WRITING, 1)
      Atomics.notify(shared, WRITING)
      for (;;) Atomics.wait(shared, SIGNALS, Atomics.load(shared, SIGNALS))
    }
  }
  writeGuard.leave = () => {
    Atomics.sub(shared, WRITING, 1)
    Atomics.notify(shared, WRITING)
  }
  return true
}

/** The worker's result: its exit status. */
export const postStatus = (status: number): void => parentPort!.postMessage({ status } satisfies Message)

/** Runs the CLI (this module's `entry`) on a worker with `argv`; resolves to the exit status. */
export function superviseWorker(entry: URL, argv: readonly string[]): Promise<number> {
  const shared = new Int32Array(new SharedArrayBuffer(8))
  const tty = !!process.stderr.isTTY
  const options = { argv: [...argv], workerData: { mapcheckWorker: true, shared, tty } satisfies WorkerData }
  // From source, the worker needs tsx's hooks of its own: Node does not pass the main thread's to a worker.
  const worker = entry.pathname.endsWith('.ts')
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}) })`, { ...options, eval: true })
    : new Worker(entry, options)
  const bar = progressLine(tty)
  let status: number | undefined

  const onSignal = (signal: NodeJS.Signals): void => {
    const n = Atomics.add(shared, SIGNALS, 1) + 1
    if (n === 1) {
      bar.stop()
      process.stderr.write(`mapcheck: ${signal}: ending the search at the next state (again to quit at once)\n`)
      return
    }
    // Quit now, but not halfway through a write (a temporary file left behind).
    while (Atomics.load(shared, WRITING) > 0) Atomics.wait(shared, WRITING, Atomics.load(shared, WRITING), 100)
    bar.stop()
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  return new Promise((resolve) => {
    worker.on('message', (m: Message) => {
      if ('status' in m) status = m.status
      else if (m.progress === null) bar.stop()
      else if (Atomics.load(shared, SIGNALS) === 0) bar.update(m.progress)
    })
    worker.on('error', (e) => {
      bar.stop()
      process.stderr.write(`${reportInternalError(e)}\n`)
      status = EXIT.internal
    })
    worker.on('exit', (code) => {
      bar.stop()
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      resolve(status ?? (code === 0 ? EXIT.ok : EXIT.internal))
    })
  })
}
