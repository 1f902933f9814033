/**
 * Review files on the built CLI, as a user runs it: from a directory
 * outside the repository, `node path/to/dist/mapcheck.js <command> ./x.ts`.
 * check, replay and show round-trip on a trace of an external file; a
 * changed file is refused (exit 2, one line) unless --force; a mistyped goto
 * in plain JavaScript is one line, exit 2, never a verdict.
 */
import { spawnSync } from 'node:child_process'
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'

const root = join(import.meta.dirname, '../..')
const cli = join(root, 'dist/mapcheck.js')
let dir = ''

const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(() => {
  const build = inject('distBuild')
  if (!build.ok) throw new Error(`dist/ is not built: ${build.output}`)
  dir = mkdtempSync(join(tmpdir(), 'mapcheck-review-'))
  for (const f of ['drop-read-retry.ts', 'notifier-counter.ts']) copyFileSync(join(root, 'examples', f), join(dir, f))
  copyFileSync(join(root, 'test/fixtures/review-labels/mistyped-goto.mjs'), join(dir, 'mistyped-goto.mjs'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('review files on the built CLI, outside the repository', () => {
  it('check, replay and show round-trip on a trace of the file', () => {
    const c = run('check', './drop-read-retry.ts', '--json')
    expect(c.status).toBe(1)
    const report = JSON.parse(c.stdout)
    expect(report).toMatchObject({ scenario: 'mshv-movable', source: './drop-read-retry.ts', variant: 'drop-read-retry', invariant: 'no-stale-mapping', steps: 20 })
    expect(report.coverage.vp.pages_update).toBeGreaterThan(0)
    // Every step of the patched VP is taken at these bounds.
    expect(report.unreached).toEqual([])
    const trace = report.trace as string
    expect(existsSync(join(dir, trace))).toBe(true)
    const replay = run('replay', trace)
    expect(replay.status).toBe(1)
    expect(replay.stdout).toMatch(/^reproduced: no-stale-mapping after step 20 of 20/)
    const show = run('show', trace)
    expect(show.status).toBe(0)
    expect(show.stdout).toMatch(/mshv-movable --variant drop-read-retry/)
    expect(show.stdout).toMatch(/hmm_range_fault/)
    for (const line of show.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(80)
  })

  it('a trace of a file that changed since is refused with one line, exit 2, unless --force', () => {
    const c = run('check', './notifier-counter.ts', '--variant', 'no-retry', '--out', 'no-retry.json')
    expect(c.status).toBe(1)
    expect(run('replay', 'no-retry.json').status).toBe(1)
    appendFileSync(join(dir, 'notifier-counter.ts'), '\n// edited after the trace was made\n')
    const changed = run('replay', 'no-retry.json')
    expect(changed.status).toBe(2)
    expect(changed.stdout).toBe('')
    expect(changed.stderr.trim().split('\n')).toHaveLength(1)
    expect(changed.stderr).toMatch(/review file \.\/notifier-counter\.ts has changed since the trace was made.*--force/)
    expect(run('show', 'no-retry.json').status).toBe(2)
    expect(run('replay', 'no-retry.json', '--force').status).toBe(1)
    rmSync(join(dir, 'notifier-counter.ts'))
    const gone = run('replay', 'no-retry.json')
    expect(gone.status).toBe(2)
    expect(gone.stderr).toMatch(/review file \.\/notifier-counter\.ts, which is missing/)
  })

  it('a mistyped goto in an untyped file fails at build with one line naming it, never a verdict', () => {
    const r = run('check', './mistyped-goto.mjs')
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/process worker, step take: goto 'mutex_lok' is not a label of the process/)
  })

  it('list and compare take the file where a scenario name goes', () => {
    const l = run('list', './drop-read-retry.ts')
    expect(l.status).toBe(0)
    expect(l.stdout).toMatch(/drop-read-retry\s+v6 without mmu_interval_read_retry\(\) after mutex_lock\(&region->mutex\) \[patch of v6\]/)
    const c = run('compare', './drop-read-retry.ts', '--json')
    expect(c.status).toBe(0)
    const rows = JSON.parse(c.stdout).variants
    expect(rows[0]).toMatchObject({ variant: 'drop-read-retry', violated: ['no-stale-mapping', 'no-freed-page-mapped'] })
    // v6 keeps the retry, so it breaks no-stale-mapping only later, through the stride (27 steps, not 19).
    const v6 = rows.find((r: { variant: string }) => r.variant === 'v6')
    expect(v6.steps['no-stale-mapping']).toBeGreaterThan(rows[0].steps['no-stale-mapping'])
  })
})
