/**
 * Benchmark: mapcheck's BFS on the reference model (fault-invalidate/retry)
 * at several sizes, side by side with SPIN on fault_invalidate.pml (with
 * -DNOREDUCE and with its partial-order reduction), in the same run; then
 * every variant of mshv-movable at a few parameter sets (bench/mshv.ts).
 *
 *   npm run bench                       all sizes, plain-text tables
 *   npm run bench -- --sizes small      the small sizes only (mshv-movable: defaults only)
 *   npm run bench -- --json             a JSON document instead of the tables
 *   npm run bench -- --no-spin          mapcheck only
 *   npm run bench -- --mshv none|default|all   the mshv-movable section (default: all; small: default)
 *   npm run bench -- --reductions none|small|all|big   the reductions section, each case off and on (default: all; small: small;
 *                                       big: only the opt-in 4,3,1,2,2 with symmetry, tens of minutes)
 *   npm run bench -- --swarm on|off     the swarm section: 8 shards on a seeded bug, merged (default: on; small: off)
 *   node --expose-gc dist/bench.js --one 4,2,1,2,2 [--store fingerprint [--links disk|memory]]
 *                                       one mapcheck run, JSON (what the parent forks)
 *   node --expose-gc dist/bench.js --one-scenario mshv-movable/v6:destroy=1 [--first] [--symmetry on|off] [--por on|off|auto] [--store full|fingerprint]
 *                                       one search with allViolations (--first: stop at the first), JSON
 *
 * Every mapcheck run is a fresh child process, so its peak RSS
 * (process.resourceUsage().maxRSS) belongs to that run alone.
 */
import { rowFormatter } from './columns.js'
import { spawnSync } from 'node:child_process'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { explore } from '../explorer/explore.js'
import { scenarioRecipe } from '../cli/model-recipe.js'
import type { StoreKind } from '../explorer/options.js'
import type { Stats } from '../explorer/result.js'
import { instantiate } from '../invariants/scenarios.js'
import {
  MSHV_SETS,
  MSHV_SMALL_SETS,
  mshvFailed,
  mshvTable,
  runMshv,
  runScenarioOne,
  type MshvResult,
  type ScenarioRun,
} from './mshv.js'
import { REDUCTION_BIG_CASES, REDUCTION_CASES, REDUCTION_SMALL_CASES, reductionsFailed, reductionsTable, runReductions, type ReductionCase, type ReductionResult } from './reductions.js'
import { runSwarmBench, SWARM_CASE, swarmFailed, swarmTable, type SwarmBench } from './swarm.js'
import { findReference, runSpin, spinTools, type Size, type SpinMode, type SpinRun, type SpinTools } from './spin.js'

const SMALL: readonly Size[] = [
  [2, 2, 1, 1, 1],
  [4, 2, 1, 1, 1],
  [4, 2, 1, 2, 1],
  [3, 2, 2, 1, 1],
  [2, 2, 1, 2, 2],
]
const TARGET: Size = [4, 2, 1, 2, 2]
const ALL: readonly Size[] = [...SMALL, TARGET]

/** The counts in shared/reference/README.md (states, edges), for a check when SPIN is missing. */
const KNOWN: Readonly<Record<string, readonly [number, number]>> = {
  '2,2,1,1,1': [4_731, 8_692],
  '4,2,1,1,1': [24_633, 46_696],
  '4,2,1,2,1': [177_898, 348_758],
  '3,2,2,1,1': [138_153, 272_162],
  '2,2,1,2,2': [241_809, 484_612],
  '4,2,1,2,2': [6_095_075, 12_391_636],
  '4,3,1,2,1': [20_871_226, 52_381_634],
}

/** Targets, judged on TARGET. */
const SPEED_TARGET = 1 / 3
const MEMORY_TARGET = 64
/** Issue 13: peak bytes per state with the full store, and with fingerprints. */
const FULL_MEMORY_TARGET = 24
const FINGERPRINT_MEMORY_TARGET = 16

interface MapcheckRun extends Stats {
  readonly verdict: string
  readonly stateBytes: number
  /** RSS right before the search (after compiling the model and a GC). */
  readonly baselineRssBytes: number
  /** Peak RSS of the child process. */
  readonly maxRssBytes: number
  /** (maxRss - baselineRss) / states */
  readonly peakBytesPerState: number
  /** storeBytes / states */
  readonly storeBytesPerState: number
  /** Fingerprint store: its parent links on disk (stats.diskBytes, not in storeBytes nor the RSS) / states; else 0. */
  readonly diskBytesPerState: number
  /** Fingerprint store: why its links stayed in memory (the temp dir could not be written). */
  readonly linksFallback?: string
  readonly heapUsedBytes: number
  readonly arrayBuffersBytes: number
  /** CPU seconds (user + system, every thread of the process) during the search: / seconds, the cores it got. */
  readonly cpuSeconds: number
}

interface SizeResult {
  readonly size: Size
  readonly mapcheck: MapcheckRun | { readonly error: string }
  /** The same search with `store: 'fingerprint'`. */
  readonly fingerprint: MapcheckRun | { readonly error: string }
  /** The same search, parallel BFS with 2 workers (`--workers 2`). */
  readonly par2: MapcheckRun | { readonly error: string }
  /** mapcheck par2 states/s / SPIN NOREDUCE states/s */
  readonly par2SpeedRatio: number | null
  readonly spin: Partial<Record<SpinMode, SpinRun | { readonly error: string }>>
  /** Against SPIN NOREDUCE (states equal, transitions = SPIN's - 1), else the README's table; null if neither. */
  readonly counts: { readonly against: 'spin-noreduce' | 'readme'; readonly equal: boolean } | null
  /** mapcheck states/s / SPIN NOREDUCE states/s */
  readonly speedRatio: number | null
  /** mapcheck peak B/state / SPIN NOREDUCE peak B/state (pan's RSS, else its own memory figure) */
  readonly memoryRatio: number | null
}

const key = (s: Size): string => s.join(',')
type Failed = { readonly error: string }
const ok = <T extends object>(r: T | undefined): r is Exclude<T, Failed> => r !== undefined && !('error' in r)

function parseSize(text: string): Size {
  const v = text.split(',').map((x) => Number(x.trim()))
  if (v.length !== 5 || v.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new Error(`bad size '${text}': expected P,V,I,K,F (positive integers)`)
  }
  return v as unknown as Size
}

// ---- child: one mapcheck run ------------------------------------------

function runOne(size: Size, store: StoreKind, workers: number, links: 'disk' | 'memory'): MapcheckRun {
  const [P, V, I, K, F] = size
  const gc = (globalThis as { gc?: () => void }).gc
  const instance = instantiate('fault-invalidate', 'retry', { P, V, I, K, F })
  const { model } = instance
  gc?.()
  gc?.()
  const baselineRssBytes = process.memoryUsage.rss()
  // Unreduced, as SPIN -DNOREDUCE: the counts must match.
  const cpu = process.cpuUsage()
  // Workers > 1: the parallel BFS, its workers in this process (their memory in its RSS).
  const r = explore(model, { store, links, symmetry: false, por: false, workers, recipe: scenarioRecipe(instance) })
  const used = process.cpuUsage(cpu)
  const maxRssBytes = process.resourceUsage().maxRSS * 1024
  const mem = process.memoryUsage()
  const { states } = r.stats
  return {
    verdict: r.verdict,
    states,
    transitions: r.stats.transitions,
    maxDepth: r.stats.maxDepth,
    seconds: r.stats.seconds,
    statesPerSecond: r.stats.statesPerSecond,
    storeBytes: r.stats.storeBytes,
    stateBytes: model.packed?.stateBytes ?? 0,
    baselineRssBytes,
    maxRssBytes,
    peakBytesPerState: (maxRssBytes - baselineRssBytes) / states,
    storeBytesPerState: r.stats.storeBytes / states,
    diskBytesPerState: (r.stats.diskBytes ?? 0) / states,
    ...(r.stats.linksFallback !== undefined ? { linksFallback: r.stats.linksFallback } : {}),
    heapUsedBytes: mem.heapUsed,
    arrayBuffersBytes: mem.arrayBuffers,
    cpuSeconds: (used.user + used.system) / 1e6,
  }
}

/** Forks this same script with `args` (`--one ...`, `--one-scenario ...`) and reads its JSON. */
function forkChild<T>(args: readonly string[]): T | Failed {
  const script = fileURLToPath(import.meta.url)
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--cpu-prof') && !a.startsWith('--prof'))
  if (!execArgv.includes('--expose-gc')) execArgv.push('--expose-gc')
  const r = spawnSync(process.execPath, [...execArgv, script, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 << 20,
  })
  if (r.error) return { error: r.error.message }
  if (r.status !== 0) return { error: `child exited with ${r.status ?? r.signal}` }
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    return { error: `child printed no JSON: ${r.stdout.slice(0, 200)}` }
  }
}

// ---- parent ------------------------------------------------------------

const forkOne = (size: Size, store: StoreKind, workers = 1): MapcheckRun | Failed => forkChild<MapcheckRun>(['--one', key(size), '--store', store, '--workers', String(workers)])

interface Options {
  readonly sizes: readonly Size[]
  readonly json: boolean
  readonly spin: boolean
  readonly mshv: readonly Record<string, number>[]
  readonly reductions: readonly ReductionCase[]
  readonly swarm: boolean
}

type Parsed = Options | { one: Size; store: StoreKind; workers: number; links: 'disk' | 'memory' } | { oneScenario: string; first: boolean; store: StoreKind; symmetry: boolean; por: boolean | undefined; workers: number; maxSeconds?: number; maxStates?: number }

function parseArgs(argv: readonly string[]): Parsed {
  let sizes: readonly Size[] = ALL
  let json = false
  let spin = true
  let mshv: 'none' | 'default' | 'all' | null = null
  let oneScenario: string | null = null
  let first = false
  let one: Size | null = null
  let store: StoreKind = 'full'
  let workers = 1
  let links: 'disk' | 'memory' = 'disk'
  let symmetry = true
  let por: boolean | undefined
  let reductions: 'none' | 'small' | 'all' | 'big' | null = null
  let swarm: boolean | null = null
  let maxSeconds: number | undefined
  let maxStates: number | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--one') one = parseSize(value())
    else if (a === '--store') {
      const v = value()
      if (v !== 'full' && v !== 'fingerprint') throw new Error(`--store: expected full or fingerprint, not '${v}'`)
      store = v
    }
    else if (a === '--workers') workers = Number(value())
    else if (a === '--links') {
      const v = value()
      if (v !== 'disk' && v !== 'memory') throw new Error(`--links: expected disk or memory, not '${v}'`)
      links = v
    }
    else if (a === '--one-scenario') oneScenario = value()
    else if (a === '--first') first = true
    else if (a === '--symmetry') {
      const v = value()
      if (v !== 'on' && v !== 'off') throw new Error(`--symmetry: expected on or off, not '${v}'`)
      symmetry = v === 'on'
    } else if (a === '--por') {
      const v = value()
      if (v !== 'on' && v !== 'off' && v !== 'auto') throw new Error(`--por: expected on, off or auto, not '${v}'`)
      por = v === 'auto' ? undefined : v === 'on'
    } else if (a === '--reductions') {
      const v = value()
      if (v !== 'none' && v !== 'small' && v !== 'all' && v !== 'big') throw new Error(`--reductions: expected none, small, all or big, not '${v}'`)
      reductions = v
    } else if (a === '--max-seconds') maxSeconds = Number(value())
    else if (a === '--max-states') {
      maxStates = Number(value())
    }
    else if (a === '--swarm') {
      const v = value()
      if (v !== 'on' && v !== 'off') throw new Error(`--swarm: expected on or off, not '${v}'`)
      swarm = v === 'on'
    }
    else if (a === '--json') json = true
    else if (a === '--no-spin') spin = false
    else if (a === '--mshv') {
      const v = value()
      if (v !== 'none' && v !== 'default' && v !== 'all') throw new Error(`--mshv: expected none, default or all, not '${v}'`)
      mshv = v
    } else if (a === '--sizes') {
      const v = value()
      sizes = v === 'small' ? SMALL : v === 'all' ? ALL : v.split('/').map(parseSize)
      mshv ??= v === 'small' ? 'default' : null
      reductions ??= v === 'small' ? 'small' : null
      swarm ??= v === 'small' ? false : null
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: bench [--sizes small|all|P,V,I,K,F[/P,V,I,K,F...]] [--mshv none|default|all] [--reductions none|small|all|big] [--swarm on|off] [--json] [--no-spin]\n' +
          '       bench --one P,V,I,K,F     (one mapcheck run in this process, JSON)\n' +
          '       bench --one-scenario NAME/VARIANT[:k=v,...] [--first]\n' +
          '                                 (one search in this process, JSON; all violations unless --first)\n',
      )
      process.exit(0)
    } else throw new Error(`unknown argument '${a}' (try --help)`)
  }
  if (one !== null) return { one, store, workers, links }
  if (oneScenario !== null) return { oneScenario, first, store, symmetry, por, workers, maxSeconds, maxStates }
  const sets = mshv === 'none' ? [] : mshv === 'default' ? MSHV_SMALL_SETS : MSHV_SETS
  const cases = reductions === 'none' ? [] : reductions === 'small' ? REDUCTION_SMALL_CASES : reductions === 'big' ? REDUCTION_BIG_CASES : REDUCTION_CASES
  return { sizes, json, spin, mshv: sets, reductions: cases, swarm: swarm ?? true }
}

function machine() {
  const c = cpus()
  return {
    cpus: c.length,
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  }
}

function compare(size: Size, mc: SizeResult['mapcheck'], spin: SizeResult['spin']): Omit<SizeResult, 'size' | 'mapcheck' | 'fingerprint' | 'par2' | 'par2SpeedRatio' | 'spin'> {
  const nr = spin.noreduce
  let counts: SizeResult['counts'] = null
  let speedRatio: number | null = null
  let memoryRatio: number | null = null
  if (ok(mc) && ok(nr)) {
    counts = { against: 'spin-noreduce', equal: mc.states === nr.states && mc.transitions === nr.transitions - 1 }
    if (nr.statesPerSecond) speedRatio = mc.statesPerSecond / nr.statesPerSecond
    const spinPerState = (nr.peakRssBytes ?? nr.memoryBytes) / nr.states
    memoryRatio = mc.peakBytesPerState / spinPerState
  } else if (ok(mc) && KNOWN[key(size)]) {
    const [s, e] = KNOWN[key(size)]
    counts = { against: 'readme', equal: mc.states === s && mc.transitions === e }
  }
  return { counts, speedRatio, memoryRatio }
}

function progress(msg: string, json: boolean): void {
  if (!json || process.stderr.isTTY) process.stderr.write(`bench: ${msg}\n`)
}

function main(): number {
  const parsed = parseArgs(process.argv.slice(2))
  if ('one' in parsed) {
    process.stdout.write(`${JSON.stringify(runOne(parsed.one, parsed.store, parsed.workers, parsed.links))}\n`)
    return 0
  }
  if ('oneScenario' in parsed) {
    const { maxSeconds, maxStates } = parsed
    const run = runScenarioOne(parsed.oneScenario, parsed.first ? 'first' : 'all', { store: parsed.store, symmetry: parsed.symmetry, workers: parsed.workers, ...(parsed.por !== undefined ? { por: parsed.por } : {}), ...(maxSeconds ? { maxSeconds } : {}), ...(maxStates ? { maxStates } : {}) })
    process.stdout.write(`${JSON.stringify(run)}\n`)
    return 0
  }
  const opts = parsed
  const tools: SpinTools = spinTools()
  const pml = opts.spin && tools.available ? findReference() : null
  const spinNote = !opts.spin
    ? 'SPIN skipped (--no-spin)'
    : !tools.available
      ? `SPIN not run: ${tools.missing.join(' and ')} not on PATH`
      : !pml
        ? 'SPIN not run: fault_invalidate.pml not found (set MAPCHECK_REFERENCE)'
        : null

  const results: SizeResult[] = []
  for (const size of opts.sizes) {
    progress(`mapcheck ${key(size)} ...`, opts.json)
    const mc = forkOne(size, 'full')
    progress(`mapcheck --store fingerprint ${key(size)} ...`, opts.json)
    const fp = forkOne(size, 'fingerprint')
    progress(`mapcheck --workers 2 ${key(size)} ...`, opts.json)
    const par2 = forkOne(size, 'full', 2)
    const spin: SizeResult['spin'] = {}
    if (pml) {
      for (const mode of ['noreduce', 'por'] as const) {
        progress(`spin ${mode} ${key(size)} ...`, opts.json)
        try {
          spin[mode] = runSpin(pml, size, mode, tools)
        } catch (e) {
          spin[mode] = { error: (e as Error).message }
        }
      }
    }
    const nr = spin.noreduce
    const par2SpeedRatio = ok(par2) && ok(nr) && nr.statesPerSecond ? par2.statesPerSecond / nr.statesPerSecond : null
    results.push({ size, mapcheck: mc, fingerprint: fp, par2, par2SpeedRatio, spin, ...compare(size, mc, spin) })
  }

  const mshv: MshvResult[] = runMshv(opts.mshv, (args) => forkChild<ScenarioRun>(args), (msg) => progress(msg, opts.json))
  const reduced: ReductionResult[] = runReductions(opts.reductions, (args) => forkChild<ScenarioRun>(args), (msg) => progress(msg, opts.json))
  // The CLI bundle beside this one (dist/mapcheck.js): the swarm runs as a user launches it.
  const swarm: SwarmBench | { error: string } | null = opts.swarm ? runSwarmBench(fileURLToPath(new URL('./mapcheck.js', import.meta.url)), SWARM_CASE, (msg) => progress(msg, opts.json)) : null

  const target = results.find((r) => key(r.size) === key(TARGET))
  const targets = judge(target)
  const failed =
    results.some((r) => !ok(r.mapcheck) || (r.counts !== null && !r.counts.equal) || (ok(r.mapcheck) && r.mapcheck.verdict !== 'ok')) ||
    results.some((r) => !ok(r.fingerprint) || r.fingerprint.verdict !== 'ok' || (ok(r.mapcheck) && r.fingerprint.states !== r.mapcheck.states)) ||
    results.some((r) => !ok(r.par2) || r.par2.verdict !== 'ok' || (ok(r.mapcheck) && (r.par2.states !== r.mapcheck.states || r.par2.transitions !== r.mapcheck.transitions))) ||
    results.some((r) => Object.values(r.spin).some((s) => !ok(s))) ||
    mshvFailed(mshv) ||
    reductionsFailed(reduced) ||
    swarmFailed(swarm)

  if (opts.json) {
    const doc = {
      scenario: 'fault-invalidate',
      variant: 'retry',
      machine: machine(),
      spin: { version: tools.version, reference: pml, note: spinNote, command: SPIN_COMMAND },
      results,
      targets,
      mshvMovable: mshv,
      reductions: reduced,
      swarm,
    }
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
  } else {
    process.stdout.write(table(results, tools, spinNote, targets))
    if (mshv.length > 0) process.stdout.write(`\n${mshvTable(mshv)}`)
    if (reduced.length > 0) process.stdout.write(`\n${reductionsTable(reduced)}`)
    if (swarm !== null) process.stdout.write(`\n${swarmTable(swarm)}`)
  }
  return failed ? 1 : 0
}

const SPIN_COMMAND = 'spin -D.. -a; gcc -O2 -DSAFETY [-DNOREDUCE]; ./pan -m1000000'

interface Target {
  readonly name: string
  readonly value: number | null
  readonly limit: number
  readonly met: boolean | null
  readonly text: string
}

function judge(r: SizeResult | undefined): Target[] {
  const mc = r?.mapcheck
  const nr = r?.spin.noreduce
  const speed: Target = (() => {
    const name = `speed: mapcheck states/s >= 1/3 of SPIN NOREDUCE states/s on ${key(TARGET)}`
    if (!r) return { name, value: null, limit: SPEED_TARGET, met: null, text: 'not run (target size not selected)' }
    if (!ok(mc) || !ok(nr) || r.speedRatio === null) {
      return { name, value: null, limit: SPEED_TARGET, met: null, text: 'not judged (no SPIN NOREDUCE figure)' }
    }
    const met = r.speedRatio >= SPEED_TARGET
    const text = `${int(mc.statesPerSecond)} vs ${int(nr.statesPerSecond!)} / 3 = ${int(nr.statesPerSecond! / 3)}: ratio ${r.speedRatio.toFixed(3)} -> ${met ? 'MET' : 'NOT MET'}`
    return { name, value: r.speedRatio, limit: SPEED_TARGET, met, text }
  })()
  const par2: Target = (() => {
    const name = `speed (issue 13): mapcheck --workers 2 states/s >= SPIN NOREDUCE states/s on ${key(TARGET)}`
    if (!r) return { name, value: null, limit: 1, met: null, text: 'not run (target size not selected)' }
    if (!ok(r.par2) || !ok(nr) || r.par2SpeedRatio === null) return { name, value: null, limit: 1, met: null, text: 'not judged (no SPIN NOREDUCE figure, or the run failed)' }
    const met = r.par2SpeedRatio >= 1
    const single = r.speedRatio === null ? '' : ` (1 thread: ${r.speedRatio.toFixed(3)})`
    const cores = `; the search got ${(r.par2.cpuSeconds / r.par2.seconds).toFixed(2)} cores (1 thread: ${ok(mc) ? (mc.cpuSeconds / mc.seconds).toFixed(2) : '-'})`
    const text = `${int(r.par2.statesPerSecond)} vs ${int(nr.statesPerSecond!)}: ratio ${r.par2SpeedRatio.toFixed(3)}${single}${cores} -> ${met ? 'MET' : 'NOT MET'}`
    return { name, value: r.par2SpeedRatio, limit: 1, met, text }
  })()
  const memory: Target = (() => {
    const name = `memory: mapcheck peak memory < ${MEMORY_TARGET} bytes per distinct state on ${key(TARGET)}`
    if (!r) return { name, value: null, limit: MEMORY_TARGET, met: null, text: 'not run (target size not selected)' }
    if (!ok(mc)) return { name, value: null, limit: MEMORY_TARGET, met: null, text: 'not judged (the run failed)' }
    const met = mc.peakBytesPerState < MEMORY_TARGET
    const text = `${mc.peakBytesPerState.toFixed(1)} B/state (store arrays ${mc.storeBytesPerState.toFixed(1)}) -> ${met ? 'MET' : 'NOT MET'}`
    return { name, value: mc.peakBytesPerState, limit: MEMORY_TARGET, met, text }
  })()
  const peak = (name: string, run: MapcheckRun | Failed | undefined, limit: number): Target => {
    if (!r || !run) return { name, value: null, limit, met: null, text: 'not run (target size not selected)' }
    if (!ok(run)) return { name, value: null, limit, met: null, text: 'not judged (the run failed)' }
    const met = run.peakBytesPerState <= limit
    const disk = run.diskBytesPerState > 0 ? `; parent links on disk ${run.diskBytesPerState.toFixed(1)}` : run.linksFallback ? `; parent links ${run.linksFallback}` : ''
    const text = `${run.peakBytesPerState.toFixed(1)} B/state (store arrays ${run.storeBytesPerState.toFixed(1)}${disk}) -> ${met ? 'MET' : 'NOT MET'}`
    return { name, value: run.peakBytesPerState, limit, met, text }
  }
  return [
    speed,
    par2,
    memory,
    peak(`memory (issue 13): full store peak <= ${FULL_MEMORY_TARGET} B/state on ${key(TARGET)}`, mc, FULL_MEMORY_TARGET),
    peak(`memory (issue 13): fingerprint store peak <= ${FINGERPRINT_MEMORY_TARGET} B/state on ${key(TARGET)}`, r?.fingerprint, FINGERPRINT_MEMORY_TARGET),
  ]
}

// ---- text output -------------------------------------------------------

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const fix = (n: number, d: number): string => n.toFixed(d)

function table(results: readonly SizeResult[], tools: SpinTools, spinNote: string | null, targets: readonly Target[]): string {
  const m = machine()
  const out: string[] = []
  out.push('mapcheck bench: fault-invalidate/retry, BFS, one fresh process per size')
  out.push(`machine: ${m.cpus} x ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, node ${m.node}`)
  const version = tools.version?.replace(/^Spin Version\s*/, '').replace(/\s*--.*$/, '') ?? '?'
  out.push(spinNote ?? `spin ${version}: ${SPIN_COMMAND}`)
  out.push('')
  const cols = [
    ['P,V,I,K,F', 9, 'l'],
    ['engine', 13, 'l'],
    ['states', 10, 'r'],
    ['transitions', 11, 'r'],
    ['depth', 5, 'r'],
    ['sec', 7, 'r'],
    ['states/s', 10, 'r'],
    ['B/st peak', 9, 'r'],
    ['B/st own', 8, 'r'],
    ['B/st disk', 9, 'r'],
  ] as const
  const row = rowFormatter(cols)
  out.push(row(cols.map((c) => c[0])))
  out.push(row(cols.map((c) => '-'.repeat(c[1]))))
  for (const r of results) {
    const mc = r.mapcheck
    if (ok(mc)) {
      out.push(
        row([
          key(r.size),
          mc.verdict === 'ok' ? 'mapcheck' : `mapcheck(${mc.verdict})`,
          int(mc.states),
          int(mc.transitions),
          String(mc.maxDepth),
          fix(mc.seconds, 3),
          int(mc.statesPerSecond),
          fix(mc.peakBytesPerState, 1),
          fix(mc.storeBytesPerState, 1),
        ]),
      )
    } else out.push(row([key(r.size), 'mapcheck', `FAILED: ${mc.error}`]))
    const fp = r.fingerprint
    if (ok(fp)) {
      out.push(
        row([
          '',
          fp.verdict === 'ok' ? 'mapcheck fp' : `mapcheck fp(${fp.verdict})`,
          int(fp.states),
          int(fp.transitions),
          String(fp.maxDepth),
          fix(fp.seconds, 3),
          int(fp.statesPerSecond),
          fix(fp.peakBytesPerState, 1),
          fix(fp.storeBytesPerState, 1),
          fp.diskBytesPerState > 0 ? fix(fp.diskBytesPerState, 1) : fp.linksFallback ? 'memory' : '0',
        ]),
      )
    } else out.push(row(['', 'mapcheck fp', `FAILED: ${fp.error}`]))
    const p2 = r.par2
    if (ok(p2)) {
      out.push(
        row([
          '',
          p2.verdict === 'ok' ? 'mapcheck par2' : `mapcheck par2(${p2.verdict})`,
          int(p2.states),
          int(p2.transitions),
          String(p2.maxDepth),
          fix(p2.seconds, 3),
          int(p2.statesPerSecond),
          fix(p2.peakBytesPerState, 1),
          fix(p2.storeBytesPerState, 1),
        ]),
      )
    } else out.push(row(['', 'mapcheck par2', `FAILED: ${p2.error}`]))
    for (const mode of ['noreduce', 'por'] as const) {
      const s = r.spin[mode]
      if (s === undefined) continue
      const name = `spin ${mode}`
      if (!ok(s)) {
        out.push(row(['', name, `FAILED: ${s.error.split('\n')[0]}`.slice(0, 70)]))
        continue
      }
      out.push(
        row([
          '',
          name,
          int(s.states),
          int(s.transitions),
          String(s.depth),
          fix(s.seconds, 3),
          s.statesPerSecond === null ? '-' : int(s.statesPerSecond),
          s.peakRssBytes === null ? '-' : fix(s.peakRssBytes / s.states, 1),
          fix(s.memoryBytes / s.states, 1),
        ]),
      )
    }
  }
  out.push('')
  out.push('sec: search time (mapcheck: bfs(); SPIN: "pan: elapsed time"). B/st = bytes per stored state.')
  out.push('B/st peak: mapcheck (maxRSS - RSS before the search) / states; SPIN pan maxRSS / states.')
  out.push('B/st own: mapcheck store arrays (stats.storeBytes); SPIN "total actual memory usage".')
  out.push('B/st disk: mapcheck fp\'s parent links in its temp file (stats.diskBytes), not in B/st peak or own.')
  out.push('mapcheck: --store full (every state, bit-packed); mapcheck fp: --store fingerprint (64-bit fingerprints,')
  out.push('the BFS frontier kept as packed states until expanded, the parent links written to disk as TLC does,')
  out.push('a page of 2^16 at a time). mapcheck par2: --workers 2, the parallel BFS')
  out.push('(2 worker threads, one shared visited set; its counts must equal mapcheck\'s); its RSS includes the workers.')
  out.push('SPIN transitions = edges + 1; SPIN depth is DFS depth, mapcheck depth is BFS depth.')
  out.push('SPIN memory includes its preallocated hash table (-w) and DFS stack (-m), fixed costs;')
  out.push('"spin-nr B/st store" below is its "actual memory usage for states" / states.')
  out.push('')

  const cmp = results.filter((r) => r.counts !== null || r.speedRatio !== null)
  if (cmp.length > 0) {
    out.push('P,V,I,K,F  counts (states, transitions)    speed mc/spin-nr  par2/spin-nr  peak B/st mc/spin-nr  spin-nr B/st store')
    out.push('---------  ----------------------------  ----------------  ------------  --------------------  ------------------')
    for (const r of cmp) {
      const nr = r.spin.noreduce
      const counts =
        r.counts === null
          ? '-'
          : r.counts.against === 'spin-noreduce'
            ? r.counts.equal
              ? 'equal to SPIN NOREDUCE'
              : 'DIFFER from SPIN NOREDUCE'
            : r.counts.equal
              ? 'equal to README (no SPIN)'
              : 'DIFFER from README table'
      out.push(
        [
          key(r.size).padEnd(9),
          counts.padEnd(28),
          (r.speedRatio === null ? '-' : fix(r.speedRatio, 3)).padStart(16),
          (r.par2SpeedRatio === null ? '-' : fix(r.par2SpeedRatio, 3)).padStart(12),
          (r.memoryRatio === null ? '-' : fix(r.memoryRatio, 3)).padStart(20),
          (ok(nr) && nr.stateMemoryBytes !== null ? fix(nr.stateMemoryBytes / nr.states, 1) : '-').padStart(18),
        ].join('  ').trimEnd(),
      )
    }
    out.push('')
  }
  out.push('targets:')
  for (const t of targets) {
    out.push(`  ${t.name}`)
    out.push(`    ${t.text}`)
  }
  return `${out.join('\n')}\n`
}

try {
  process.exitCode = main()
} catch (e) {
  process.stderr.write(`bench: ${(e as Error).message}\n`)
  process.exitCode = 2
}
