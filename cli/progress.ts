import cliProgress from 'cli-progress'
import type { Progress } from '../explorer/result.js'

/**
 * A live progress line on a terminal (states, states/s, depth, queue);
 * nothing at all with --json or when stdout is not a TTY.
 */
export function progressLine(enabled: boolean): { update: (p: Progress) => void; stop: () => void } {
  if (!enabled || !process.stdout.isTTY) return { update: () => {}, stop: () => {} }
  const bar = new cliProgress.SingleBar(
    {
      format: '  {states} states  {rate} states/s  depth {depth}  queue {queue}  {seconds}s',
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
    },
  }
}
