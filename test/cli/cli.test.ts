import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { instantiate } from '../../invariants/scenarios.js'
import { mapcheck, tempDir } from '../support/cli.js'
import { mshvPinned } from '../../model/scenarios/mshv-pinned.js'

const corpus = join(import.meta.dirname, '../../traces/corpus/fault-invalidate-no-retry-no-stale-mapping.json')

/** A bad input: exit 2, one line on stderr naming the problem, no stack trace, nothing on stdout, no file written. */
function expectBadInput(args: string[], cwd: string, pattern: RegExp): void {
  const before = readdirSync(cwd, { recursive: true })
  const r = mapcheck(args, cwd)
  expect(r.status, r.stderr).toBe(2)
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
  expect(r.stderr).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  expect(r.stdout).toBe('')
  expect(readdirSync(cwd, { recursive: true })).toEqual(before)
}

describe('mapcheck check', () => {
  it('exits 1 on no-retry naming no-stale-mapping, writes a replayable trace and prints the race diagram', () => {
    const dir = tempDir()
    const r = mapcheck(['check', 'fault-invalidate', '--variant', 'no-retry'], dir)
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/VIOLATED no-stale-mapping: page \d: SLAT maps pfn \d/)
    expect(r.stdout).toMatch(/hmm_range_fault/)
    const file = join(dir, 'traces/fault-invalidate-no-retry-no-stale-mapping.json')
    expect(JSON.parse(readFileSync(file, 'utf8')).violation.invariant).toBe('no-stale-mapping')
    expect(readdirSync(join(dir, 'traces')).filter((f) => f.endsWith('.tmp'))).toEqual([])
    expect(mapcheck(['replay', file], dir).status).toBe(1)
  })

  it("--json prints one object whose counts are the explorer's", () => {
    const dir = tempDir()
    const r = mapcheck(['check', 'fault-invalidate', '--param', 'P=3', '--json'], dir)
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout)
    const x = bfs(instantiate('fault-invalidate', 'retry', { P: 3 }).model)
    expect(out).toMatchObject({
      scenario: 'fault-invalidate',
      variant: 'retry',
      params: { P: 3, V: 2, I: 1, K: 1, F: 1 },
      mode: 'bfs',
      result: 'ok',
      invariant: null,
      trace: null,
      stats: { states: x.stats.states, transitions: x.stats.transitions, maxDepth: x.stats.maxDepth },
    })
    expect(typeof out.stats.seconds).toBe('number')
  })

  it('a bound that cuts the search gives incomplete, never ok', () => {
    const dir = tempDir()
    for (const bound of [
      ['--max-states', '100'],
      ['--max-depth', '5'],
    ]) {
      const out = JSON.parse(mapcheck(['check', 'fault-invalidate', ...bound, '--json'], dir).stdout)
      expect(out.result).toBe('incomplete')
      expect(out.incomplete).toMatch(bound[0].slice(2))
    }
  })

  it('random mode replays exactly from its seed', () => {
    const dir = tempDir()
    const run = (out: string) =>
      mapcheck(['check', 'fault-invalidate', '--variant', 'no-retry', '--mode', 'random', '--seed', '11', '--param', 'P=4', '--out', out, '--json'], dir)
    const a = run('a.json')
    const b = run('b.json')
    expect(a.status).toBe(1)
    expect(JSON.parse(a.stdout).seed).toBe(11)
    const ta = JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8'))
    const tb = JSON.parse(readFileSync(join(dir, 'b.json'), 'utf8'))
    expect(ta.steps).toEqual(tb.steps)
    expect(ta.search).toMatchObject({ mode: 'random', seed: 11 })
  })
})

describe('mapcheck replay and show', () => {
  it('replay exits 1 when the violation reproduces and 0 when the trace runs to its end without one', () => {
    const dir = tempDir()
    expect(mapcheck(['replay', corpus], dir).status).toBe(1)
    const trace = JSON.parse(readFileSync(corpus, 'utf8'))
    writeFileSync(join(dir, 'cut.json'), JSON.stringify({ ...trace, steps: trace.steps.slice(0, -1) }))
    const r = mapcheck(['replay', 'cut.json'], dir)
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/not reproduced/)
  })

  it('show renders the race diagram within 80 columns, and JSON with per-step changes', () => {
    const dir = tempDir()
    const text = mapcheck(['show', corpus], dir)
    expect(text.status).toBe(0)
    for (const l of text.stdout.split('\n')) expect(l.length).toBeLessThanOrEqual(80)
    expect(text.stdout).toMatch(/VIOLATED no-stale-mapping/)
    const json = JSON.parse(mapcheck(['show', corpus, '--format', 'json'], dir).stdout)
    expect(json.steps.at(-1).changes.some((c: string) => /^slat\[\d\]: 0 -> \d/.test(c))).toBe(true)
  })
})

describe('mapcheck compare, list and the main job', () => {
  it('compare lists, per variant, the invariants kept and broken', () => {
    const dir = tempDir()
    const r = mapcheck(['compare', 'fault-invalidate', '--json', '--trace-dir', 'traces'], dir)
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.scenario).toBe('fault-invalidate')
    const byName = Object.fromEntries(out.variants.map((v: { variant: string }) => [v.variant, v]))
    expect(byName.retry).toMatchObject({ result: 'ok', violated: [], undecided: [] })
    expect(byName.retry.holds).toEqual(['no-stale-mapping', 'field-in-range', 'no-deadlock'])
    expect(byName['no-retry']).toMatchObject({ result: 'violation', violated: ['no-stale-mapping'], holds: ['field-in-range', 'no-deadlock'] })
    expect(byName['no-retry'].traces['no-stale-mapping']).toMatch(/traces\/fault-invalidate-no-retry-no-stale-mapping\.json$/)
  })

  it('compare writes no trace file unless given --trace-dir', () => {
    const dir = tempDir()
    const out = JSON.parse(mapcheck(['compare', 'fault-invalidate', '--json'], dir).stdout)
    expect(out.variants[1].violated).toEqual(['no-stale-mapping'])
    expect(out.variants[1].traceRuns).toEqual([{ invariant: 'no-stale-mapping', trace: null, steps: 12 }])
    expect(readdirSync(dir)).toEqual([])
  })

  it('with no command checks every scenario and prints the matrix, writing no file', () => {
    const dir = tempDir()
    const r = mapcheck([], dir)
    expect(readdirSync(dir)).toEqual([])
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/fault-invalidate/)
    expect(r.stdout).toMatch(/^retry\s+holds\s+holds/m)
    expect(r.stdout).toMatch(/^no-retry\s+VIOLATED \(12 steps\)\s+holds\s+holds/m)
  })

  it('list names scenarios, variants, invariants and parameters with defaults and ranges', () => {
    const r = mapcheck(['list'], tempDir())
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/fault-invalidate/)
    expect(r.stdout).toMatch(/no-retry/)
    expect(r.stdout).toMatch(/invariants: no-stale-mapping, field-in-range, no-deadlock/)
    expect(r.stdout).toMatch(/P=2\s+pages \(1\.\.8\)/)
  })
})

describe('outcome properties and sweeps (mshv-pinned)', () => {
  it('check exits 1 naming ioctl-outcome-deterministic and writes one replayable trace per outcome', () => {
    const dir = tempDir()
    const r = mapcheck(['check', 'mshv-pinned', '--variant', 'as-posted', '--json'], dir)
    expect(r.status).toBe(1)
    const out = JSON.parse(r.stdout)
    expect(out.invariant).toBe('ioctl-outcome-deterministic')
    expect(out.violations).toHaveLength(2)
    expect(new Set(out.violations.map((v: { outcome: string }) => v.outcome))).toEqual(new Set(['ok', 'map hypercall failed']))
    for (const v of out.violations) {
      const replay = mapcheck(['replay', v.trace], dir)
      expect(replay.status).toBe(1)
      expect(replay.stdout).toContain(`ends with "${v.outcome}"`)
    }
  })

  it('compare shows the outcome property and the coverage metric per variant', () => {
    const out = JSON.parse(mapcheck(['compare', 'mshv-pinned', '--param', 'uaddr_offset=0', '--json'], tempDir()).stdout)
    for (const row of out.variants) {
      expect(row.holds).toContain('ioctl-outcome-deterministic')
      expect(row.metrics['huge-coverage']).toEqual({ min: 0, max: 1 })
    }
  })

  it('sweep prints one row per point and variant, as a table and as JSON', () => {
    const dir = tempDir()
    const args = ['sweep', 'mshv-pinned', '--param', 'uaddr_offset=0..1', '--param', 'pages=2,4']
    const json = JSON.parse(mapcheck([...args, '--json'], dir).stdout)
    // Two uaddr offsets, two sizes, and every variant of the scenario.
    const variants = mshvPinned.variants.length
    expect(json.rows).toHaveLength(2 * 2 * variants)
    const flaky = json.rows.filter((r: { row: { violated: string[] } }) => r.row.violated.includes('ioctl-outcome-deterministic'))
    expect(flaky.map((r: { point: object; row: { variant: string } }) => [r.point, r.row.variant])).toEqual([[{ uaddr_offset: 1, pages: 4 }, 'as-posted']])
    const text = mapcheck(args, dir)
    expect(text.status).toBe(0)
    // One row per point and variant; long cells wrap onto continuation lines (indented) to fit 100 columns.
    const lines = text.stdout.trimEnd().split('\n')
    expect(lines.filter((l) => /^\S/.test(l))).toHaveLength(1 + 2 * 2 * variants)
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100)
    const row = lines.findIndex((l) => /^1\s+4\s+as-posted\s+VIOLATED\s/.test(l))
    // The row's lines (its own and its continuations), read column by column from the header's offsets.
    let end = row + 1
    while (end < lines.length && /^\s/.test(lines[end])) end++
    const column = (name: string, next: string): string =>
      lines
        .slice(row, end)
        .map((l) => l.slice(lines[0].indexOf(name), lines[0].indexOf(next)).trim())
        .join(' ')
        .trim()
    expect(column('invariants', 'outcomes')).toBe('VIOLATED ioctl-outcome-deterministic')
    expect(column('outcomes', 'huge-coverage')).toBe('movable region: ok; pinned region: map hypercall failed | ok')
    // A sweep writes no traces.
    expect(readdirSync(dir)).toEqual([])
  })

  it('a grid point the scenario refuses is a row, not an abort', () => {
    const json = JSON.parse(mapcheck(['sweep', 'mshv-pinned', '--param', 'uaddr_offset=1..2', '--json'], tempDir()).stdout)
    expect(json.rows.filter((r: { invalid?: string }) => r.invalid)).toEqual([{ point: { uaddr_offset: 2 }, invalid: expect.stringMatching(/below 2\^H = 2/) }])
  })
})

describe('bad input: one line, exit 2, nothing written', () => {
  const dir = tempDir()
  const trace = JSON.parse(readFileSync(corpus, 'utf8'))
  const put = (name: string, text: string) => writeFileSync(join(dir, name), text)
  put('truncated.json', readFileSync(corpus, 'utf8').slice(0, 200))
  put('malformed.json', '{"format": "mapcheck-trace", "version": 1,, }')
  put('foreign.json', readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8'))
  put('wrong-types.json', JSON.stringify({ ...trace, steps: [{ thread: 'fault0', label: 'x', choice: -1 }] }))
  put('other-hash.json', JSON.stringify({ ...trace, modelHash: 'ffffffffffffffff' }))
  put('unknown-scenario.json', JSON.stringify({ ...trace, scenario: 'nope' }))
  put('unknown-variant.json', JSON.stringify({ ...trace, variant: 'nope' }))
  put('not-enabled.json', JSON.stringify({ ...trace, steps: [trace.steps[0], trace.steps[2]] }))
  copyFileSync(corpus, join(dir, 'good.json'))

  const cases: [string, string[], RegExp][] = [
    ['unknown scenario', ['check', 'nope'], /unknown scenario 'nope'/],
    ['unknown variant', ['check', 'fault-invalidate', '--variant', 'x'], /unknown variant 'x'/],
    ['unknown parameter', ['check', 'fault-invalidate', '--param', 'Q=1'], /unknown parameter 'Q'/],
    ['parameter out of range', ['check', 'fault-invalidate', '--param', 'P=9'], /P=9 is out of range 1\.\.8/],
    ['parameter not an integer', ['check', 'fault-invalidate', '--param', 'P=two'], /P=two is not an integer/],
    ['malformed --param', ['check', 'fault-invalidate', '--param', 'P'], /expected name=value/],
    ['bad bound', ['check', 'fault-invalidate', '--max-states', '-3'], /max-states/],
    ['unknown mode', ['check', 'fault-invalidate', '--mode', 'astar'], /astar/],
    ['unknown option', ['check', 'fault-invalidate', '--bogus'], /unknown option '--bogus'/],
    ['unknown command', ['frob'], /unknown command 'frob'/],
    ['missing trace file', ['replay', 'missing.json'], /missing\.json: cannot read: ENOENT/],
    ['truncated trace', ['replay', 'truncated.json'], /truncated\.json: not valid JSON/],
    ['malformed trace', ['show', 'malformed.json'], /malformed\.json: not valid JSON/],
    ['foreign JSON', ['replay', 'foreign.json'], /foreign\.json: not a mapcheck trace: format/],
    ['wrong field types', ['replay', 'wrong-types.json'], /wrong-types\.json: not a mapcheck trace: steps\.0\.choice/],
    ['another model hash', ['replay', 'other-hash.json'], /recorded on model ffffffffffffffff/],
    ['unknown scenario in a trace', ['replay', 'unknown-scenario.json'], /unknown scenario 'nope'/],
    ['unknown variant in a trace', ['replay', 'unknown-variant.json'], /unknown variant 'nope'/],
    [
      'a step not enabled',
      ['replay', 'not-enabled.json'],
      /step 2 is not enabled: the trace expects fault0 to take hmm_range_fault, but fault0 is at mmap_read_lock/,
    ],
    ['show format', ['show', 'good.json', '--format', 'pdf'], /pdf/],
    ['sweep without a parameter', ['sweep', 'mshv-pinned'], /sweep needs at least one --param/],
    ['sweep with a bad range', ['sweep', 'mshv-pinned', '--param', 'pages=4..2'], /pages=4\.\.2: empty range/],
    ['sweep with a bad spec', ['sweep', 'mshv-pinned', '--param', 'pages=a-b'], /pages=a-b: expected a value, a range a\.\.b or a list x,y,z/],
    ['sweep of an unknown parameter', ['sweep', 'mshv-pinned', '--param', 'Q=1'], /unknown parameter 'Q'/],
  ]
  for (const [what, args, pattern] of cases) {
    it(what, () => expectBadInput(args, dir, pattern))
  }
})
