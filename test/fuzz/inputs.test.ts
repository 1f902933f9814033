/**
 * Fuzzing the inputs a user hands mapcheck (fast-check): trace files made by
 * structure-aware mutations of corpus traces (fields removed, retyped, steps
 * reordered or dropped, huge numbers, unicode, truncation), QEMU memslot
 * logs (lines from the grammar of kvm_set_user_memory, mutated), and command
 * lines. The property, for every input: the exit status is one of the
 * documented ones and not an internal error, at most one line on stderr, and
 * no file left behind but those asked for.
 *
 * A fixed seed (FUZZ_SEED, default below) so CI is reproducible; FUZZ_RUNS
 * scales every property for a longer local run (`FUZZ_RUNS=2000 npx vitest
 * run test/fuzz`). Commands run in-process (cli/program.ts); a few dozen run
 * on the spawned, built CLI.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { EXIT, EXIT_STATUSES } from '../../cli/exit.js'
import type { CliRun } from '../support/cli.js'
import { tempDir } from '../support/cli.js'
import { cliInProcess } from '../support/cli-in-process.js'

const root = join(import.meta.dirname, '../..')
const SEED = Number(process.env.FUZZ_SEED ?? 20261129)
/** Runs per property: FUZZ_RUNS, or each property's own default (small enough for `npm test`). */
const runs = (fallback: number): number => Number(process.env.FUZZ_RUNS ?? fallback)
const settings = (fallback: number) => ({ seed: SEED, numRuns: runs(fallback), endOnFailure: true })

let dir = ''
const home = process.cwd()
beforeEach(() => {
  dir = tempDir()
  process.chdir(dir)
})
afterEach(() => process.chdir(home))

/** Every file under the working directory, as relative paths. */
const files = (): string[] => readdirSync('.', { recursive: true }).map(String).sort()

/** The property every run must keep; `allowed` are the files it may have written. */
function expectClean(r: CliRun, before: readonly string[], what: string, allowed: (f: string) => boolean = () => false): void {
  expect(EXIT_STATUSES, `${what}: status ${r.status}\n${r.stderr}`).toContain(r.status)
  expect(r.status, `${what}: internal error\n${r.stderr}`).not.toBe(EXIT.internal)
  expect(r.stderr.trimEnd().split('\n').length, `${what}: stderr\n${r.stderr}`).toBeLessThanOrEqual(1)
  expect(r.stderr, what).not.toMatch(/\n\s+at /)
  const made = files().filter((f) => !before.includes(f))
  expect(made.filter((f) => f.endsWith('.tmp')), what).toEqual([])
  expect(made.filter((f) => !allowed(f)), what).toEqual([])
}

// --- trace files -------------------------------------------------------------

const corpusDir = join(root, 'traces/corpus')
const corpusTraces = readdirSync(corpusDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(corpusDir, f), 'utf8')) as Record<string, unknown>)
  // The shorter ones: replaying each costs its model's instantiation, not a search.
  .filter((t) => (t.steps as unknown[]).length <= 20)

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

const odd: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 1e308, -1e308, '', 'NaN', '0x10', [], {}),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.integer(),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
)

/** A path into a trace: a top-level key, a key of one step, or of the violation, search or params. */
const tracePath = (t: Record<string, unknown>): fc.Arbitrary<(string | number)[]> => {
  const steps = (t.steps as unknown[]).length
  return fc.oneof(
    fc.constantFrom(...Object.keys(t)).map((k) => [k]),
    fc.tuple(fc.nat(Math.max(0, steps - 1)), fc.constantFrom('thread', 'label', 'choice', 'text')).map(([i, k]) => ['steps', i, k]),
    fc.constantFrom('invariant', 'message', 'outcome').map((k) => ['violation', k]),
    fc.constantFrom('mode', 'seed', 'path').map((k) => ['search', k]),
    fc.constantFrom(...Object.keys(t.params as object), 'nosuch').map((k) => ['params', k]),
  )
}

type Mutation =
  | { kind: 'remove' | 'retype'; path: (string | number)[]; value?: Json }
  | { kind: 'swap' | 'drop' | 'duplicate'; i: number; j: number }
  | { kind: 'unicode'; path: (string | number)[]; text: string }

const mutation = (t: Record<string, unknown>): fc.Arbitrary<Mutation> =>
  fc.oneof(
    tracePath(t).map((path): Mutation => ({ kind: 'remove', path })),
    fc.tuple(tracePath(t), odd).map(([path, value]): Mutation => ({ kind: 'retype', path, value })),
    fc.tuple(fc.constantFrom<'swap' | 'drop' | 'duplicate'>('swap', 'drop', 'duplicate'), fc.nat(), fc.nat()).map(([kind, i, j]): Mutation => ({ kind, i, j })),
    fc.tuple(tracePath(t), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 })).map(([path, text]): Mutation => ({ kind: 'unicode', path, text })),
  )

function apply(t: Record<string, unknown>, m: Mutation): void {
  if ('i' in m) {
    const steps = t.steps
    if (!Array.isArray(steps) || steps.length === 0) return
    const i = m.i % steps.length
    const j = m.j % steps.length
    if (m.kind === 'swap') [steps[i], steps[j]] = [steps[j], steps[i]]
    else if (m.kind === 'drop') steps.splice(i, 1)
    else steps.splice(i, 0, structuredClone(steps[i]))
    return
  }
  let at: unknown = t
  for (const k of m.path.slice(0, -1)) {
    if (at === null || typeof at !== 'object') return
    at = (at as Record<string | number, unknown>)[k]
  }
  if (at === null || typeof at !== 'object') return
  const o = at as Record<string | number, unknown>
  const last = m.path[m.path.length - 1]
  if ('text' in m) o[last] = typeof o[last] === 'string' ? `${o[last]}${m.text}` : m.text
  else if (m.kind === 'remove') delete o[last]
  else o[last] = m.value
}

/** A mutated corpus trace as file text, maybe truncated. */
const mutatedTrace: fc.Arbitrary<string> = fc
  .constantFrom(...corpusTraces)
  .chain((t) => fc.tuple(fc.constant(t), fc.array(mutation(t), { minLength: 1, maxLength: 3 }), fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { freq: 5 })))
  .map(([t, ms, cut]) => {
    const copy = structuredClone(t)
    for (const m of ms) apply(copy, m)
    const text = JSON.stringify(copy, null, 2)
    return cut === null ? text : text.slice(0, Math.floor(cut * text.length))
  })

describe('fuzz: trace files', () => {
  it('replay and show of mutated corpus traces: a documented status, at most one line on stderr, nothing written', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedTrace, fc.constantFrom(['replay'], ['replay', '--json'], ['show'], ['show', '--json']), async (text, command) => {
        writeFileSync('t.json', text)
        const before = files()
        const r = await cliInProcess([...command, 't.json'])
        expectClean(r, before, `${command.join(' ')} of\n${text.slice(0, 2000)}`)
        // A trace is either replayed (0, 1, 5) or refused as bad input.
        expect([EXIT.ok, EXIT.violation, EXIT.badInput, EXIT.otherViolation]).toContain(r.status)
      }),
      settings(120),
    )
  })
})

// --- QEMU memslot logs ---------------------------------------------------------

const hex = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => `0x${n.toString(16)}`),
  fc.nat(64).map((k) => `0x${(BigInt(k) << 12n).toString(16)}`),
  fc.constantFrom('0x0', '0x1000', '0x200000', '0x80000000', '0x10000000000000000', '0x', '12', '-0x1', '0xg'),
)
const memslotLine = fc
  .record({
    as: fc.option(fc.oneof(fc.nat(3).map(String), fc.constantFrom('x', '-1', '99999999999999999999')), { nil: undefined }),
    slot: fc.oneof(fc.nat(70000).map(String), fc.constantFrom('', 'a', '-1')),
    flags: fc.oneof(fc.constantFrom('0x0', '0x4', '0x2', '0x100000000'), hex),
    gpa: hex,
    size: hex,
    ua: hex,
    ret: fc.oneof(fc.constantFrom('0', '-17', '-22', 'x'), fc.integer().map(String)),
    fd: fc.option(fc.oneof(fc.integer({ min: -2, max: 40 }).map(String), fc.constantFrom('4294967295', 'fd')), { nil: undefined }),
    off: fc.option(hex, { nil: undefined }),
    names: fc.constantFrom(['restricted_fd', 'restricted_offset'], ['guest_memfd', 'guest_memfd_offset']),
    drop: fc.option(fc.constantFrom('flags', 'gpa', 'size', 'ua', 'ret'), { nil: undefined }),
    shuffle: fc.boolean(),
    prefix: fc.constantFrom('', '  ', '1234@1696262400.123456:', '> '),
  })
  .map((f) => {
    const fields = [
      ...(f.as === undefined ? [] : [`AddrSpace#${f.as}`]),
      `Slot#${f.slot}`,
      ...(['flags', 'gpa', 'size', 'ua', 'ret'] as const).filter((k) => k !== f.drop).map((k) => `${k}=${f[k]}`),
      ...(f.fd === undefined ? [] : [`${f.names[0]}=${f.fd}`]),
      ...(f.off === undefined ? [] : [`${f.names[1]}=${f.off}`]),
    ]
    if (f.shuffle) fields.reverse()
    return `${f.prefix}kvm_set_user_memory ${fields.join(' ')}`
  })
const seedLog = readFileSync(join(root, 'test/fixtures/seed-003-qemu.log'), 'utf8').split('\n')
const memslotLog = fc
  .tuple(
    fc.array(fc.oneof({ weight: 4, arbitrary: memslotLine }, fc.constantFrom(...seedLog), fc.string({ unit: 'grapheme', maxLength: 40 })), { maxLength: 12 }),
    fc.boolean(),
  )
  .map(([lines, crlf]) => lines.join(crlf ? '\r\n' : '\n'))

describe('fuzz: QEMU memslot logs', () => {
  it('layout of generated and mutated logs: a documented status (0 or 2), at most one line on stderr, nothing written', async () => {
    await fc.assert(
      fc.asyncProperty(memslotLog, fc.boolean(), async (text, json) => {
        writeFileSync('q.log', text)
        const before = files()
        const r = await cliInProcess(['layout', 'q.log', ...(json ? ['--json'] : [])])
        expectClean(r, before, `layout of\n${text}`)
        expect([EXIT.ok, EXIT.badInput]).toContain(r.status)
      }),
      settings(300),
    )
  })
})

// --- command lines -------------------------------------------------------------

const scenarioArg = fc.constantFrom('fault-invalidate', 'mshv-pinned', 'mshv-mmio', 'kvm-gmem-binding', 'nosuch', './missing.ts', '', '-', '💥')
const value = fc.oneof(
  fc.constantFrom('0', '1', '2', '3', '-1', '1.5', '99999999999999999999', '4294967296', 'x', '', '1K', '64M', 'a..b', '1..3', '2,3', '1..99999999999'),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
)
const option = fc.oneof(
  fc.tuple(fc.constantFrom('--variant', '--mode', '--seed', '--runs', '--max-depth', '--max-states', '--max-seconds', '--max-memory', '--format', '--shard-base'), value).map((x) => [...x]),
  fc.tuple(fc.constant('--shard'), fc.constantFrom('0/2', '1/2', '2/2', '0/0', 'env/2', 'env:NOSUCH/2', '{#}/2', 'x/y'), fc.option(value)).map(([o, k, v]) => [o, v === null ? k : `${k}${v}`]),
  fc.tuple(fc.constant('--param'), fc.constantFrom('P', 'V', 'pages', 'uaddr_offset', 'H', 'nosuch', '='), value).map(([o, k, v]) => [o, `${k}=${v}`]),
  fc.constantFrom(['--json'], ['--all-violations'], ['--strict'], ['--force'], ['--help'], ['--nosuch'], ['-x']),
  fc.constantFrom(['--out', 'o.json'], ['--out', '.'], ['--out', '/proc/o.json'], ['--trace-dir', 'td'], ['--trace-dir', '/proc/td']),
)
const argvArb = fc
  .tuple(
    fc.constantFrom('check', 'compare', 'sweep', 'list', 'replay', 'show', 'layout', 'corpus', 'merge', 'nosuch', '--version', ''),
    scenarioArg,
    fc.array(option, { maxLength: 4 }),
  )
  .map(([command, arg, options]) => {
    const argv = [...(command ? [command] : []), arg, ...options.flat()]
    // Searches stay small whatever the options drew: the last --max-states wins.
    return ['check', 'compare', 'sweep'].includes(command) ? [...argv, '--max-states', '300'] : command === '' || command === 'corpus' ? ['list', ...argv] : argv
  })

/** Files a command line may write: what --out or --trace-dir names, check's traces/ (merge's too), and a shard's default result file. */
function allowedBy(argv: readonly string[]): (f: string) => boolean {
  const out = argv.indexOf('--out') >= 0 ? argv[argv.lastIndexOf('--out') + 1] : undefined
  const traceDir = argv.indexOf('--trace-dir') >= 0 ? argv[argv.lastIndexOf('--trace-dir') + 1] : undefined
  return (f) =>
    (out !== undefined && f.startsWith(out.replace(/\.json$/, ''))) ||
    (traceDir !== undefined && (f === traceDir || f.startsWith(`${traceDir}/`))) ||
    (argv[0] === 'check' && out === undefined && (f === 'traces' || f.startsWith('traces/'))) ||
    (argv[0] === 'merge' && traceDir === undefined && (f === 'traces' || f.startsWith('traces/'))) ||
    (argv[0] === 'check' && out === undefined && argv.includes('--shard') && /-shard-\d+-of-\d+\.json$/.test(f))
}

describe('fuzz: command lines', () => {
  it('in-process: a documented status, at most one line on stderr, no file but those asked for', async () => {
    await fc.assert(
      fc.asyncProperty(argvArb, async (argv) => {
        const before = files()
        const r = await cliInProcess(argv)
        expectClean(r, before, JSON.stringify(argv), allowedBy(argv))
      }),
      settings(150),
    )
  })

  it('the built CLI, spawned (a couple of dozen runs): the same, as the process exits', () => {
    const build = inject('distBuild')
    if (!build.ok) expect.fail(`dist/ is not built: ${build.output}`)
    fc.assert(
      fc.property(argvArb, (argv) => {
        const before = files()
        const r = spawnSync(process.execPath, [join(root, 'dist/mapcheck.js'), ...argv], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
        expectClean({ status: r.status, stdout: r.stdout, stderr: r.stderr }, before, JSON.stringify(argv), allowedBy(argv))
      }),
      settings(24),
    )
  })
})
