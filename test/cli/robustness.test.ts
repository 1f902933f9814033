/**
 * Robustness of the commands (issue 15): the exit statuses of the table in
 * cli/exit.ts, one line on stderr for every failure, files written only where
 * asked and atomically, the memory bound and interruption on the real CLI.
 * Most run in-process (cli/program.ts); the memory bound and the signals
 * spawn the CLI, as a user runs it.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { EXIT } from '../../cli/exit.js'
import { failureStatus } from '../../cli/program.js'
import { cpuSeconds, spawnCli, tempDir } from '../support/cli.js'
import { cliInProcess as run } from '../support/cli-in-process.js'

const root = join(import.meta.dirname, '../..')
const corpus = join(root, 'traces/corpus/fault-invalidate-no-retry-no-stale-mapping.json')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }

/** One line on stderr, no stack trace. */
const oneLine = (stderr: string): string => {
  expect(stderr.trimEnd().split('\n'), stderr).toHaveLength(1)
  expect(stderr).not.toMatch(/\n\s+at /)
  return stderr.trimEnd()
}

// In-process commands write relative to the working directory: a fresh one per test.
let dir = ''
const home = process.cwd()
beforeEach(() => {
  dir = tempDir()
  process.chdir(dir)
})
afterEach(() => process.chdir(home))

describe('exit statuses', () => {
  it('check: 0 exhaustive and holding, 1 violation, 3 incomplete (a bound)', async () => {
    expect((await run(['check', 'fault-invalidate'])).status).toBe(EXIT.ok)
    expect((await run(['check', 'fault-invalidate', '--variant', 'no-retry'])).status).toBe(EXIT.violation)
    for (const bound of [['--max-states', '100'], ['--max-depth', '3'], ['--max-memory', '1K']]) {
      const r = await run(['check', 'fault-invalidate', '--param', 'P=3', ...bound])
      expect(r.status, bound.join(' ')).toBe(EXIT.incomplete)
      expect(r.stdout).toMatch(/^incomplete {2}/m)
    }
  })

  it('compare, sweep and the matrix: an incomplete cell exits 3 only with --strict', async () => {
    for (const args of [['compare', 'fault-invalidate'], ['sweep', 'fault-invalidate', '--param', 'P=2,3']]) {
      const cut = [...args, '--max-states', '50']
      expect((await run(cut)).status, cut.join(' ')).toBe(EXIT.ok)
      expect((await run([...cut, '--strict'])).status, cut.join(' ')).toBe(EXIT.incomplete)
      expect((await run([...args, '--strict'])).status, args.join(' ')).toBe(EXIT.ok)
    }
    expect(readdirSync(dir)).toEqual([])
  })

  it('replay: 1 when the recorded violation reproduces, 5 when another property breaks instead, 2 for a property the model does not check', async () => {
    expect((await run(['replay', corpus])).status).toBe(EXIT.violation)
    const trace = JSON.parse(readFileSync(corpus, 'utf8'))
    writeFileSync('other.json', JSON.stringify({ ...trace, violation: { invariant: 'field-in-range', message: 'recorded' } }))
    const other = await run(['replay', 'other.json'])
    expect(other.status).toBe(EXIT.otherViolation)
    expect(other.stdout).toMatch(/^not reproduced: expected field-in-range, but no-stale-mapping broke after step 12/)
    writeFileSync('unknown.json', JSON.stringify({ ...trace, violation: { invariant: 'no-such-invariant', message: '' } }))
    const unknown = await run(['replay', 'unknown.json'])
    expect(unknown.status).toBe(EXIT.badInput)
    expect(oneLine(unknown.stderr)).toMatch(/^mapcheck: unknown\.json: names invariant 'no-such-invariant', which fault-invalidate\/no-retry does not check \(it checks: no-stale-mapping, field-in-range, no-deadlock\)$/)
    expect(unknown.stdout).toBe('')
  })

  it('an internal error is one line naming a report file that holds the stack, exit 4 (never 1)', async () => {
    const err: string[] = []
    const write = process.stderr.write
    process.stderr.write = ((s: string) => (err.push(s), true)) as typeof process.stderr.write
    let status: number
    try {
      status = failureStatus(new TypeError('boom'))
      expect(failureStatus(new RangeError('Array buffer allocation failed'))).toBe(EXIT.internal)
    } finally {
      process.stderr.write = write
    }
    expect(status).toBe(EXIT.internal)
    expect(err).toHaveLength(2)
    const report = /^mapcheck: internal error: TypeError: boom \(report: (.+)\)\n$/.exec(err[0])
    expect(report, err[0]).not.toBeNull()
    const text = readFileSync(report![1], 'utf8')
    expect(text).toMatch(/TypeError: boom\n\s+at /)
    const oom = /^mapcheck: internal error: out of memory \(RangeError: Array buffer allocation failed\); a lower --max-memory ends the search with its statistics instead \(report: (.+)\)\n$/.exec(err[1])
    expect(oom, err[1]).not.toBeNull()
    for (const file of [report![1], oom![1]]) rmSync(file)
  })

  it('--help prints the exit status table; --version the package version', async () => {
    const help = await run(['--help'])
    expect(help.status).toBe(EXIT.ok)
    for (const s of [0, 1, 2, 3, 4, 5]) expect(help.stdout).toMatch(new RegExp(`^  ${s}  `, 'm'))
    expect((await run(['check', '--help'])).stdout).toMatch(/--max-memory <size>[\s\S]*default:\s+half\s+this\s+machine's\s+memory,\s+[\d.]+ [GMT]iB[\s\S]*Exit status:/)
    const version = await run(['--version'])
    expect([version.status, version.stdout.trim()]).toEqual([EXIT.ok, pkg.version])
  })
})

describe('files', () => {
  it('an unwritable --out is one line naming the path and why; the verdict is still printed, and in --json', async () => {
    for (const out of ['/proc/x.json', '.', 'sub']) {
      mkdirSync('sub', { recursive: true })
      const r = await run(['check', 'fault-invalidate', '--variant', 'no-retry', '--out', out, '--json'])
      expect(r.status, out).toBe(EXIT.badInput)
      expect(oneLine(r.stderr)).toMatch(new RegExp(`^mapcheck: cannot write ${out.replace('.', '\\.')}: `))
      const report = JSON.parse(r.stdout)
      expect(report).toMatchObject({ result: 'violation', invariant: 'no-stale-mapping', trace: null, steps: 12 })
      expect(report.writeErrors).toHaveLength(1)
    }
    const text = await run(['check', 'fault-invalidate', '--variant', 'no-retry', '--out', '.'])
    expect(text.stdout).toMatch(/^violation {2}/m)
    expect(readdirSync(dir)).toEqual(['sub'])
  })

  it('check writes into traces/ by default and says so; a traces that is not a directory is one line', async () => {
    const r = await run(['check', 'fault-invalidate', '--variant', 'no-retry'])
    expect(r.stdout).toMatch(/trace: 12 steps, written to traces\/fault-invalidate-no-retry-no-stale-mapping\.json/)
    expect(readdirSync('traces')).toEqual(['fault-invalidate-no-retry-no-stale-mapping.json'])
    process.chdir(tempDir())
    writeFileSync('traces', 'a file')
    const blocked = await run(['check', 'fault-invalidate', '--variant', 'no-retry'])
    expect(blocked.status).toBe(EXIT.badInput)
    expect(oneLine(blocked.stderr)).toMatch(/^mapcheck: cannot write traces\/fault-invalidate-no-retry-no-stale-mapping\.json: cannot create directory traces: /)
    expect(blocked.stdout).toMatch(/VIOLATED no-stale-mapping/)
  })

  it('--out naming a symlink writes through it: the link is kept', async () => {
    mkdirSync('real')
    symlinkSync('real/t.json', 'link.json')
    expect((await run(['check', 'fault-invalidate', '--variant', 'no-retry', '--out', 'link.json'])).status).toBe(EXIT.violation)
    expect(lstatSync('link.json').isSymbolicLink()).toBe(true)
    expect(JSON.parse(readFileSync('real/t.json', 'utf8')).violation.invariant).toBe('no-stale-mapping')
  })

  it('compare --trace-dir unwritable: the matrix, then one line, exit 2', async () => {
    const r = await run(['compare', 'fault-invalidate', '--trace-dir', '/proc/mapcheck-traces'])
    expect(r.status).toBe(EXIT.badInput)
    expect(r.stdout).toMatch(/^no-retry\s+VIOLATED \(12 steps\)/m)
    expect(oneLine(r.stderr)).toMatch(/^mapcheck: cannot write \/proc\/mapcheck-traces\/fault-invalidate-no-retry-no-stale-mapping\.json: cannot create directory/)
  })

  it('--all-violations --out X: X holds the shortest trace (the others beside it); --json names that one', async () => {
    // locked-lookup-notifier breaks no-dangling-mmio-mapping (listed first, 18 steps) and mmio-mapping-correct (7 steps).
    const r = await run(['check', 'mshv-mmio', '--variant', 'locked-lookup-notifier', '--all-violations', '--out', 'x.json', '--json'])
    expect(r.status).toBe(EXIT.violation)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({ invariant: 'mmio-mapping-correct', trace: 'x.json', steps: 7 })
    expect(JSON.parse(readFileSync('x.json', 'utf8')).violation.invariant).toBe('mmio-mapping-correct')
    expect(JSON.parse(readFileSync('x-no-dangling-mmio-mapping.json', 'utf8')).steps).toHaveLength(18)
  })

  it('compare --json keeps both traces of an outcome property (one per outcome), each replaying', async () => {
    const r = await run(['compare', 'mshv-pinned', '--param', 'uaddr_offset=1', '--param', 'pages=4', '--trace-dir', 'out', '--json'])
    const row = JSON.parse(r.stdout).variants.find((v: { variant: string }) => v.variant === 'as-posted')
    const runs = row.traceRuns.filter((t: { invariant: string }) => t.invariant === 'ioctl-outcome-deterministic')
    expect(runs.map((t: { outcome: string }) => t.outcome).sort()).toEqual(['map hypercall failed', 'ok'])
    for (const t of runs) {
      expect(existsSync(t.trace)).toBe(true)
      expect((await run(['replay', t.trace])).status).toBe(EXIT.violation)
    }
  })
})

describe('bad input, one line, exit 2', () => {
  const badInput = async (args: string[], pattern: RegExp): Promise<void> => {
    const r = await run(args)
    expect(r.status, args.join(' ')).toBe(EXIT.badInput)
    expect(oneLine(r.stderr)).toMatch(pattern)
  }

  it('seeds: 32 bits; --seed and --runs only in random mode', async () => {
    await badInput(['check', 'fault-invalidate', '--mode', 'random', '--seed', '4294967296'], /^mapcheck: --seed 4294967296: expected an integer 0\.\.4294967295/)
    await badInput(['check', 'fault-invalidate', '--seed', '7'], /^mapcheck: --seed applies to --mode random only; bfs explores/)
    await badInput(['check', 'fault-invalidate', '--mode', 'dfs', '--runs', '7'], /^mapcheck: --runs applies to --mode random only; dfs/)
    expect((await run(['check', 'fault-invalidate', '--variant', 'no-retry', '--mode', 'random', '--seed', '4294967295', '--out', 'r.json'])).status).toBe(EXIT.violation)
  })

  it('sweep: a grid point the scenario refuses exits 2 (the table still printed), an unknown variant or a huge range is one line', async () => {
    // H=2..4: two small valid points and one beyond H's range (a cheap grid: the refused point is what is tested).
    const r = await run(['sweep', 'mshv-pinned', '--param', 'H=2..4', '--variant', 'upstream'])
    expect(r.status).toBe(EXIT.badInput)
    expect(r.stdout.split('\n').filter((l) => /^\d/.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(['2 upstream', '3 upstream', '4 -'])
    expect(oneLine(r.stderr)).toBe('mapcheck: 1 of 3 grid points are not valid parameter sets (first: parameter H=4 is out of range 1..3)')
    await badInput(['sweep', 'mshv-pinned', '--param', 'pages=2', '--variant', 'nosuch'], /^mapcheck: unknown variant 'nosuch' of scenario mshv-pinned/)
    await badInput(['sweep', 'mshv-pinned', '--param', 'pages=1..99999999999'], /^mapcheck: --param pages=1\.\.99999999999: 99999999999 values; a sweep runs at most 10000 points$/)
  })

  it('sweep prints no outcomes column for a scenario without outcome properties', async () => {
    const r = await run(['sweep', 'fault-invalidate', '--param', 'P=2'])
    expect(r.stdout.split('\n')[0]).toMatch(/^P\s+variant\s+invariants\s*$/)
    const pinned = await run(['sweep', 'mshv-pinned', '--param', 'pages=2', '--variant', 'upstream'])
    expect(pinned.stdout.split('\n')[0]).toMatch(/\boutcomes\b/)
  })

  it('replay of a file too large, or of /dev/zero, is one line', async () => {
    await badInput(['replay', '/dev/zero'], /^mapcheck: \/dev\/zero: too large \(more than 64 MiB\)$/)
  })

  it('show takes --json like every other command', async () => {
    const a = await run(['show', corpus, '--json'])
    const b = await run(['show', corpus, '--format', 'json'])
    expect(a.status).toBe(EXIT.ok)
    expect(JSON.parse(a.stdout)).toEqual(JSON.parse(b.stdout))
  })
})


/**
 * A configuration far larger than any test lets it finish; bounded all the
 * same (a minute, 1 GiB), so that a broken bound or interrupt fails the test
 * instead of filling a shared machine's memory.
 */
const BIG = ['check', 'fault-invalidate', '--param', 'P=8', '--param', 'V=4', '--param', 'K=4', '--param', 'I=3', '--param', 'F=2', '--max-seconds', '60', '--no-symmetry']

describe('the real CLI: memory bound and interruption', () => {
  it('--max-memory on a configuration that exceeds it: incomplete, exit 3, the statistics, no file', async () => {
    const cwd = tempDir()
    const r = await spawnCli([...BIG, '--max-memory', '256M', '--json'], cwd).done
    expect(r.status, r.stderr).toBe(EXIT.incomplete)
    expect(r.stderr).toBe('')
    const report = JSON.parse(r.stdout)
    expect(report.result).toBe('incomplete')
    const m = /^memory bound 256 MiB reached at ([\d,]+) states \(resident [\d.]+ MiB\)$/.exec(report.incomplete)
    expect(m, report.incomplete).not.toBeNull()
    expect(report.stats.states).toBe(Number(m![1].replace(/,/g, '')))
    expect(report.stats.states).toBeGreaterThan(1024)
    expect(report.stats.transitions).toBeGreaterThan(0)
    expect(readdirSync(cwd)).toEqual([])
  })

  it('SIGINT or SIGTERM ends the search with its summary, incomplete (interrupted), exit 3, no file', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const cwd = tempDir()
      const { child, done } = spawnCli([...BIG, '--max-memory', '1G'], cwd)
      // Signalled once well into the search: startup (tsx, the worker) takes far less CPU than this.
      while (cpuSeconds(child.pid!) < 4) await new Promise((r) => setTimeout(r, 100))
      child.kill(signal)
      const r = await done
      expect(r.status, `${signal}: ${r.stderr}`).toBe(EXIT.incomplete)
      expect(oneLine(r.stderr)).toBe(`mapcheck: ${signal}: ending the search at the next state (again to quit at once)`)
      expect(r.stdout).toMatch(/^incomplete \(interrupted\) {2}[\d,]+ states, [\d,]+ transitions, max depth \d+/m)
      expect(r.stdout).toMatch(/^not exhaustive: interrupted$/m)
      expect(readdirSync(cwd)).toEqual([])
    }
  })
})
