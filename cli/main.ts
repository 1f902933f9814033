/**
 * The mapcheck command line (cli/program.ts). Commands that explore run on a
 * worker thread, so that Ctrl-C ends the search with its summary
 * (cli/worker.ts); the others run here. Exit statuses: cli/exit.ts.
 */
import { isMainThread } from 'node:worker_threads'
import { EXIT } from './exit.js'
import { reportInternalError } from './internal-error.js'
import { isCliWorker, postStatus, superviseWorker } from './worker.js'

/** Commands that explore (and the matrix: no command, or options only); the others run on the main thread, with no worker to start. */
const EXPLORING = new Set(['check', 'compare', 'sweep', 'corpus', 'report'])

const argv = process.argv.slice(2)
if (isMainThread) {
  process.on('uncaughtException', (e) => {
    process.stderr.write(`${reportInternalError(e)}\n`)
    process.exit(EXIT.internal)
  })
  const explores = (argv.length === 0 || argv[0].startsWith('-') || EXPLORING.has(argv[0])) && !argv.some((a) => ['-h', '--help', '-V', '--version'].includes(a))
  // The commands are imported only where they run: a supervising main thread needs none of them.
  process.exitCode = explores ? await superviseWorker(new URL(import.meta.url), argv) : await (await import('./program.js')).runCli(argv)
} else if (isCliWorker()) {
  postStatus(await (await import('./program.js')).runCli(argv))
}
