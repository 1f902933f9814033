/**
 * `check --checkpoint/--checkpoint-every/--resume` (cli/checkpoint.ts): a
 * run cut short by a bound or a signal leaves a checkpoint, and resuming it
 * gives the uninterrupted run's verdict, counts and trace files; a bad
 * checkpoint or flag is one line on stderr and exit 2, nothing written.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EXIT } from '../../cli/exit.js'
import { cpuSeconds, spawnCli, tempDir } from '../support/cli.js'
import { cliInProcess } from '../support/cli-in-process.js'

const SMALL = ['check', 'fault-invalidate', '--variant', 'no-retry', '--param', 'P=3', '--param', 'K=2', '--all-violations', '--json']

/** The report without what differs between runs (times, the trace file names, how many threads searched, why POR did not run: a checkpointed run is a plain BFS). */
function same(stdout: string) {
  const r = JSON.parse(stdout)
  const { seconds: _s, statesPerSecond: _r, parallel: _p, por: _o, ...stats } = r.stats
  return { result: r.result, incomplete: r.incomplete, violations: r.violations.map((v: { invariant: string; steps: number }) => [v.invariant, v.steps]), coverage: r.coverage, stats }
}

const oneLine = (s: string): string => {
  expect(s.endsWith('\n')).toBe(true)
  expect(s.trimEnd()).not.toContain('\n')
  return s.trimEnd()
}

describe('check --checkpoint / --resume', () => {
  it('a run cut by --max-states leaves a checkpoint; resumed, it ends as the uninterrupted run, with the same traces', async () => {
    const dir = tempDir()
    // The uninterrupted run sequential too (a checkpointed run always is: --workers would change only the stats that say so).
    const whole = await cliInProcess([...SMALL, '--workers', '1', '--out', join(dir, 'whole.json')])
    expect(whole.status).toBe(EXIT.violation)
    const file = join(dir, 'run.ckpt')
    const part = await cliInProcess([...SMALL, '--max-states', '1500', '--checkpoint', file, '--out', join(dir, 'part.json')])
    const cut = JSON.parse(part.stdout)
    expect(cut.incomplete).toBe('max-states 1500 reached')
    expect(oneLine(part.stderr)).toBe(`mapcheck: checkpoint written to ${file} at ${cut.stats.states.toLocaleString('en-US')} states: go on with --resume ${file}`)
    const resumed = await cliInProcess([...SMALL, '--resume', file, '--out', join(dir, 'resumed.json')])
    expect(resumed.status).toBe(EXIT.violation)
    expect(resumed.stderr).toBe('')
    expect(same(resumed.stdout)).toEqual(same(whole.stdout))
    expect(same(whole.stdout).stats.states).toBeGreaterThan(1500)
    // The shortest trace, step by step.
    const steps = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8')).steps
    expect(steps('resumed.json')).toEqual(steps('whole.json'))
    // No temporary file left beside the checkpoint.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('--checkpoint-every in states: periodic checkpoints of a run that finishes; the last one resumes to the same end', async () => {
    const dir = tempDir()
    const file = join(dir, 'run.ckpt')
    const whole = await cliInProcess([...SMALL, '--checkpoint', file, '--checkpoint-every', '2000states', '--out', join(dir, 'a.json')])
    expect(whole.stderr).toBe('')
    const resumed = await cliInProcess([...SMALL, '--resume', file, '--out', join(dir, 'b.json')])
    expect(same(resumed.stdout)).toEqual(same(whole.stdout))
  })

  it('bad checkpoints and flags: one line, exit 2', async () => {
    const dir = tempDir()
    const file = join(dir, 'run.ckpt')
    await cliInProcess([...SMALL, '--max-states', '500', '--checkpoint', file, '--out', join(dir, 't.json')])
    const good = readFileSync(file)
    // Another kind of file: a report.
    const whole = (await cliInProcess(SMALL.filter((a) => a !== '--all-violations').concat('--out', join(dir, 't.json')))).stdout
    writeFileSync(join(dir, 'cut.ckpt'), good.subarray(0, good.length - 100))
    writeFileSync(join(dir, 'trace.ckpt'), whole)
    const cases: [string[], string][] = [
      [['--resume', join(dir, 'cut.ckpt')], `mapcheck: checkpoint ${join(dir, 'cut.ckpt')}: truncated (it ends at byte ${good.length - 100}, in the parent links)`],
      [['--resume', join(dir, 'trace.ckpt')], `mapcheck: checkpoint ${join(dir, 'trace.ckpt')}: not a mapcheck checkpoint`],
      [['--resume', join(dir, 'none.ckpt')], `mapcheck: checkpoint ${join(dir, 'none.ckpt')}: cannot read: no such file or directory`],
      [['--resume', dir], `mapcheck: checkpoint ${dir}: cannot read: is a directory`],
      [['--resume', file, '--param', 'V=1'], `mapcheck: checkpoint ${file}: is of another run: params P=3 V=2 I=1 K=2 F=1 there, P=3 V=1 I=1 K=2 F=1 here`],
      [['--resume', file, '--no-symmetry'], `mapcheck: checkpoint ${file}: is of another run: symmetry on there, off here`],
      [['--resume', file, '--max-depth', '9'], `mapcheck: checkpoint ${file}: is of another run: max-depth 10000 there, 9 here`],
      [['--checkpoint', file, '--mode', 'dfs'], 'mapcheck: --checkpoint/--resume: only a BFS search is checkpointed, not --mode dfs'],
      [['--checkpoint', file, '--livelock'], 'mapcheck: --checkpoint/--resume: the livelock search (--livelock) is not checkpointed; run it without'],
      [['--checkpoint-every', '5m'], 'mapcheck: --checkpoint-every needs --checkpoint FILE (or --resume FILE)'],
      [['--checkpoint', file, '--checkpoint-every', '-1'], 'mapcheck: --checkpoint-every -1: expected minutes, or a number with s, m or h (30s, 10m, 1h), or a number of states (50000states)'],
      [['--checkpoint', join(dir, 'no/such/dir/x.ckpt')], `mapcheck: --checkpoint ${join(dir, 'no/such/dir/x.ckpt')}: cannot write there: no such file or directory`],
    ]
    for (const [flags, line] of cases) {
      const r = await cliInProcess([...SMALL, ...flags, '--out', join(dir, 'bad.json')])
      expect(r.status, flags.join(' ')).toBe(EXIT.badInput)
      expect(oneLine(r.stderr)).toBe(line)
      expect(r.stdout).toBe('')
    }
    // The good checkpoint was never overwritten by the refused runs.
    expect(readFileSync(file).equals(good)).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(['cut.ckpt', 'run.ckpt', 't.json', 'trace.ckpt'])
  })

  it('the real CLI, SIGINT: incomplete (interrupted), exit 3, a last checkpoint; resumed, it stores what an uninterrupted run stores', async () => {
    const dir = tempDir()
    const file = join(dir, 'run.ckpt')
    // Far more than a test lets finish (4,3,1,2,2: 372 M states), so the signal always lands mid-search.
    const args = ['check', 'fault-invalidate', '--param', 'P=4', '--param', 'V=3', '--param', 'K=2', '--param', 'F=2', '--json', '--max-seconds', '120', '--max-memory', '2G']
    const { child, done } = spawnCli([...args, '--checkpoint', file], dir)
    // Past the startup (tsx, the worker), into the search.
    while (cpuSeconds(child.pid!) < 4) await new Promise((r) => setTimeout(r, 100))
    child.kill('SIGINT')
    const { status, stdout, stderr } = await done
    expect(status, stderr).toBe(EXIT.incomplete)
    const part = JSON.parse(stdout)
    expect(part.incomplete).toBe('interrupted')
    expect(stderr.split('\n')).toEqual([
      'mapcheck: SIGINT: ending the search at the next state (again to quit at once)',
      `mapcheck: checkpoint written to ${file} at ${part.stats.states.toLocaleString('en-US')} states: go on with --resume ${file}`,
      '',
    ])
    // Resumed up to 50,000 states further, against one uninterrupted run to the same bound.
    const bound = ['--max-states', String(part.stats.states + 50_000)]
    const resumed = same((await cliInProcess([...args, ...bound, '--resume', file])).stdout)
    const whole = same((await cliInProcess([...args, ...bound, '--workers', '1'])).stdout)
    expect(resumed).toEqual(whole)
    expect(whole.incomplete).toBe(`max-states ${part.stats.states + 50_000} reached`)
    expect(resumed.stats.states).toBeGreaterThanOrEqual(part.stats.states + 50_000)
  }, 180_000)
})
