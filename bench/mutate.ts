/**
 * A small mutation check of the test suite: each mutant is one deliberate bug
 * (a search/replace in one source file); the suite must fail on it (the
 * mutant is "killed"). A mutant that survives is a hole in the tests.
 *
 *   npx tsx bench/mutate.ts            every mutant against `npm test` (long: minutes each)
 *   npx tsx bench/mutate.ts --quick    each against the test files named with it
 *   npx tsx bench/mutate.ts --quick replay-other-violation max-states-late
 *
 * The source is restored after each mutant, also on Ctrl-C. Not part of
 * `npm test`. Add a mutant here when a bug slipped past the suite once.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

interface Mutant {
  readonly name: string
  readonly file: string
  readonly search: string
  readonly replace: string
  /** The test files that should kill it (--quick runs only these). */
  readonly tests: readonly string[]
}

const MUTANTS: readonly Mutant[] = [
  // The three survivors of the first mutation run (issue 15), each killed since by a test.
  {
    name: 'replay-other-violation',
    file: 'cli/trace-commands.ts',
    search: 'return report.reproduced ? EXIT.violation : first ? EXIT.otherViolation : EXIT.ok',
    replace: 'return report.reproduced || first ? EXIT.violation : EXIT.ok',
    tests: ['test/cli/robustness.test.ts'],
  },
  {
    name: 'max-states-late',
    file: 'explorer/search.ts',
    search: 'this.store.size >= this.limits.maxStates',
    replace: 'this.store.size > this.limits.maxStates',
    tests: ['test/explorer/stop.test.ts'],
  },
  {
    name: 'trace-written-in-place',
    file: 'traces/write.ts',
    search: 'if (st.isFile()) return replace(file, file, text, false)',
    replace: 'if (st.isFile()) return writeThrough(file, file, text, false)',
    tests: ['test/traces/write.test.ts'],
  },
  // Robustness: bounds, interrupts, statuses, files.
  {
    name: 'memory-bound-ignored',
    file: 'cli/stop.ts',
    search: 'if (rss >= maxMemory)',
    replace: 'if (rss >= maxMemory * 1024)',
    tests: ['test/cli/stop.test.ts', 'test/cli/robustness.test.ts'],
  },
  {
    name: 'interrupt-ignored',
    file: 'cli/stop.ts',
    search: 'if (interrupted()) return INTERRUPTED',
    replace: 'if (interrupted() && false) return INTERRUPTED',
    tests: ['test/cli/stop.test.ts'],
  },
  {
    name: 'stop-callback-unasked',
    file: 'explorer/search.ts',
    search: 'const stop = this.options.stop?.(this.store.size)',
    replace: 'const stop = null as string | null',
    tests: ['test/explorer/stop.test.ts'],
  },
  {
    name: 'incomplete-exits-0',
    file: 'cli/exit.ts',
    search: "verdict === 'incomplete' ? EXIT.incomplete : EXIT.ok",
    replace: "verdict === 'incomplete' ? EXIT.ok : EXIT.ok",
    tests: ['test/cli/robustness.test.ts'],
  },
  {
    name: 'strict-ignored',
    file: 'cli/exit.ts',
    search: "if (strict && rows.some((r) => r.result === 'incomplete'))",
    replace: "if (false && rows.some((r) => r.result === 'incomplete'))",
    tests: ['test/cli/robustness.test.ts'],
  },
  {
    name: 'unknown-invariant-replayed',
    file: 'cli/trace-commands.ts',
    search: 'if (!known.includes(trace.violation.invariant)) {',
    replace: 'if (!known.includes(trace.violation.invariant) && false) {',
    tests: ['test/cli/robustness.test.ts'],
  },
  {
    name: 'longest-trace-to-out',
    file: 'cli/run.ts',
    search: '.sort((a, b) => a.steps - b.steps || a.order - b.order)',
    replace: '.sort((a, b) => a.order - b.order)',
    tests: ['test/cli/robustness.test.ts'],
  },
  {
    name: 'compare-writes-unasked',
    file: 'cli/compare.ts',
    search: 'save: options.save ?? options.traceDir !== undefined',
    replace: 'save: options.save ?? true',
    tests: ['test/cli/cli.test.ts', 'test/cli/robustness.test.ts'],
  },
  {
    name: 'sweep-invalid-point-exits-0',
    file: 'cli/sweep.ts',
    search: 'const status = invalid.length > 0 ? EXIT.badInput',
    replace: 'const status = invalid.length > 1000 ? EXIT.badInput',
    tests: ['test/cli/robustness.test.ts'],
  },
  {
    name: 'seed-aliases',
    file: 'cli/program.ts',
    search: 'seed > MAX_SEED',
    replace: 'seed > MAX_SEED * 2',
    tests: ['test/cli/robustness.test.ts'],
  },
  {
    name: 'overlapping-memslots-accepted',
    file: 'model/kvm/qemu-memslot-trace.ts',
    search: 'if (other === key || o.addrSpace !== addrSpace',
    replace: 'if (true || other === key || o.addrSpace !== addrSpace',
    tests: ['test/model/kvm/qemu-memslot-trace.test.ts'],
  },
  {
    name: 'write-error-uncaught',
    file: 'cli/run.ts',
    search: 'if (!isFileWriteError(e)) throw e',
    replace: 'throw e',
    tests: ['test/cli/robustness.test.ts'],
  },
]

const root = join(import.meta.dirname, '..')
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const only = args.filter((a) => !a.startsWith('--'))
const chosen = only.length ? MUTANTS.filter((m) => only.includes(m.name)) : MUTANTS
for (const name of only) if (!MUTANTS.some((m) => m.name === name)) throw new Error(`no mutant '${name}' (mutants: ${MUTANTS.map((m) => m.name).join(', ')})`)

let restore: (() => void) | null = null
process.on('SIGINT', () => {
  restore?.()
  process.exit(130)
})

const results: { name: string; killed: boolean; detail: string }[] = []
for (const m of chosen) {
  const path = join(root, m.file)
  const original = readFileSync(path, 'utf8')
  const count = original.split(m.search).length - 1
  if (count !== 1) {
    results.push({ name: m.name, killed: false, detail: `STALE: the search text occurs ${count} times in ${m.file}` })
    continue
  }
  restore = () => writeFileSync(path, original)
  try {
    writeFileSync(path, original.replace(m.search, m.replace))
    const cmd = quick ? ['npx', 'vitest', 'run', ...m.tests] : ['npm', 'test']
    const started = performance.now()
    // A hang counts as killed (the suite did not pass), after 15 minutes.
    const r = spawnSync(cmd[0], cmd.slice(1), { cwd: root, encoding: 'utf8', timeout: 15 * 60_000, env: { ...process.env, NO_COLOR: '1' } })
    const seconds = ((performance.now() - started) / 1000).toFixed(0)
    const failed = /Tests\s+(\d+) failed/.exec(r.stdout)?.[1]
    results.push({ name: m.name, killed: r.status !== 0, detail: `${r.status === null ? 'timed out' : failed ? `${failed} tests failed` : `exit ${r.status}`}, ${seconds} s` })
  } finally {
    restore()
    restore = null
  }
  const last = results[results.length - 1]
  process.stdout.write(`${last.killed ? 'killed  ' : 'SURVIVED'}  ${m.name}  (${last.detail})\n`)
}
const killed = results.filter((r) => r.killed).length
process.stdout.write(`${killed} of ${results.length} mutants killed${quick ? ' (--quick: each against its own test files)' : ''}\n`)
process.exitCode = killed === results.length ? 0 : 1
