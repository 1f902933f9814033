import cliProgress from 'cli-progress'
import type { Progress } from '../explorer/result.js'
import { workerProgress } from './worker.js'

export interface ProgressLine {
  update: (p: Progress & { label?: string }) => void
  stop: () => void
}

/**
 * A live progress line on a terminal (states, states/s, depth, queue; the
 * variant or grid point being checked, for compare, sweep and the matrix);
 * nothing at all with --json or when stderr is not a TTY. On the CLI's
 * worker thread the line is drawn by the main thread (cli/worker.ts).
 * `label` prefixes every update.
 */
export function progressLine(enabled: boolean, label?: string): ProgressLine {
  if (enabled && workerProgress) {
    const post = workerProgress
    return { update: (p) => post({ progress: { ...p, label: label ?? p.label } }), stop: () => post({ progress: null }) }
  }
  if (!enabled || !process.stderr.isTTY) return { update: () => {}, stop: () => {} }
  const bar = new cliProgress.SingleBar(
    {
      format: '  {label}{states} states  {rate} states/s  depth {depth}  queue {queue}  {seconds}s',
      stream: process.stderr,
      clearOnComplete: true,
      hideCursor: true,
      fps: 4,
    },
    cliProgress.Presets.shades_classic,
  )
  let started = false
  return {
    update(p) {
      const payload = {
        label: (label ?? p.label) ? `${label ?? p.label}  ` : '',
        states: p.states.toLocaleString('en-US'),
        rate: Math.round(p.statesPerSecond).toLocaleString('en-US'),
        depth: p.depth,
        queue: p.queue.toLocaleString('en-US'),
        seconds: p.seconds.toFixed(1),
      }
      if (!started) {
        bar.start(0, 0, payload)
        started = true
      } else bar.update(0, payload)
    },
    stop() {
      if (started) bar.stop()
      started = false
    },
  }
}
