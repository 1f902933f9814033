/**
 * SPIN side of the benchmark: generates pan.c from the reference Promela
 * model for one size, compiles it (with or without -DNOREDUCE), runs it, and
 * parses its statistics. Every run works in its own temp dir, removed after.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** (P, V, I, K, F) */
export type Size = readonly [number, number, number, number, number]

export type SpinMode = 'noreduce' | 'por'

export interface SpinRun {
  readonly mode: SpinMode
  readonly states: number
  /** As SPIN prints it: edges + 1. */
  readonly transitions: number
  readonly depth: number
  /** pan's own "elapsed time" (search only). */
  readonly seconds: number
  /** pan's "rate", else states / seconds; null when pan measured no time. */
  readonly statesPerSecond: number | null
  /** pan's "total actual memory usage", in bytes (SPIN's Megabytes are 2^20). */
  readonly memoryBytes: number
  /** pan's "actual memory usage for states" (the state store alone), in bytes; null if not printed. */
  readonly stateMemoryBytes: number | null
  /** Peak RSS of pan (from /usr/bin/time -v), in bytes; null when unavailable. */
  readonly peakRssBytes: number | null
  readonly stateVectorBytes: number
  readonly compileSeconds: number
  readonly wallSeconds: number
}

export interface SpinTools {
  readonly available: boolean
  readonly version: string | null
  readonly missing: readonly string[]
  /** /usr/bin/time, for the peak RSS of pan. */
  readonly time: string | null
}

const tempDirs = new Set<string>()
let cleanupInstalled = false

/** Removes temp dirs even when the bench is interrupted. */
function installCleanup(): void {
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.on('exit', () => {
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
  })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => process.exit(sig === 'SIGINT' ? 130 : 143))
  }
}

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue
    const p = join(dir, cmd)
    try {
      if (statSync(p).isFile()) return true
    } catch {
      // not here
    }
  }
  return false
}

export function spinTools(): SpinTools {
  const missing = ['spin', 'gcc'].filter((c) => !onPath(c))
  let version: string | null = null
  if (!missing.includes('spin')) {
    const r = spawnSync('spin', ['-V'], { encoding: 'utf8' })
    version = /Spin Version [^\n]*/.exec(r.stdout ?? '')?.[0]?.trim() ?? null
  }
  const time = existsSync('/usr/bin/time') ? '/usr/bin/time' : null
  return { available: missing.length === 0, version, missing, time }
}

/**
 * The reference model: $MAPCHECK_REFERENCE (the .pml or its directory), else
 * ../shared/reference/fault_invalidate.pml from the repo root (the cwd under
 * npm, or the parent of dist/ where this bundle lives).
 */
export function findReference(): string | null {
  const env = process.env.MAPCHECK_REFERENCE
  const candidates: string[] = []
  if (env) {
    candidates.push(existsSync(env) && statSync(env).isDirectory() ? join(env, 'fault_invalidate.pml') : env)
  }
  candidates.push(resolve(process.cwd(), '../shared/reference/fault_invalidate.pml'))
  const here = dirname(fileURLToPath(import.meta.url))
  candidates.push(resolve(here, '../../shared/reference/fault_invalidate.pml'))
  return candidates.find((p) => existsSync(p)) ?? null
}

function run(cmd: string, args: string[], cwd: string): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`)
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n')
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${tail}`)
  }
  return { stdout: r.stdout, stderr: r.stderr }
}

function num(re: RegExp, text: string, what: string): number {
  const m = re.exec(text)
  if (!m) throw new Error(`pan output has no ${what}`)
  return Number(m[1])
}

/** Parses pan's statistics (exported for tests). */
export function parsePan(out: string): Omit<SpinRun, 'mode' | 'peakRssBytes' | 'compileSeconds' | 'wallSeconds'> {
  const errors = num(/errors:\s*(\d+)/, out, 'error count')
  if (errors !== 0) throw new Error(`pan found ${errors} error(s)`)
  const states = num(/(\d+)\s+states, stored/, out, '"states, stored"')
  const transitions = num(/(\d+)\s+transitions/, out, '"transitions"')
  const depth = num(/depth reached\s+(\d+)/, out, '"depth reached"')
  const seconds = num(/pan: elapsed time\s+([\d.e+-]+)/, out, '"pan: elapsed time"')
  const rate = /pan: rate\s+([\d.e+-]+)\s+states\/second/.exec(out)
  const statesPerSecond = rate ? Number(rate[1]) : seconds > 0 ? states / seconds : null
  const memoryBytes = num(/([\d.]+)\s+total actual memory usage/, out, '"total actual memory usage"') * 2 ** 20
  const stateVectorBytes = num(/State-vector\s+(\d+)\s+byte/, out, '"State-vector"')
  const stateMem = /([\d.]+)\s+actual memory usage for states/.exec(out)
  const stateMemoryBytes = stateMem ? Number(stateMem[1]) * 2 ** 20 : null
  return { states, transitions, depth, seconds, statesPerSecond, memoryBytes, stateMemoryBytes, stateVectorBytes }
}

/**
 * spin -D... -a model.pml; gcc -O2 -DSAFETY [-DNOREDUCE] -o pan pan.c;
 * ./pan -m1000000 (under /usr/bin/time -v when present, for the peak RSS).
 */
export function runSpin(pml: string, size: Size, mode: SpinMode, tools: SpinTools): SpinRun {
  installCleanup()
  const [P, V, I, K, F] = size
  const dir = mkdtempSync(join(tmpdir(), 'mapcheck-spin-'))
  tempDirs.add(dir)
  try {
    const t0 = performance.now()
    run('spin', [`-DP=${P}`, `-DV=${V}`, `-DI=${I}`, `-DK=${K}`, `-DF=${F}`, '-a', resolve(pml)], dir)
    run('gcc', ['-O2', '-DSAFETY', ...(mode === 'noreduce' ? ['-DNOREDUCE'] : []), '-o', 'pan', 'pan.c'], dir)
    const compileSeconds = (performance.now() - t0) / 1000
    const t1 = performance.now()
    const panArgs = ['-m1000000']
    const r = tools.time ? run(tools.time, ['-v', './pan', ...panArgs], dir) : run('./pan', panArgs, dir)
    const wallSeconds = (performance.now() - t1) / 1000
    const rss = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(r.stderr)
    return {
      mode,
      ...parsePan(r.stdout),
      peakRssBytes: rss ? Number(rss[1]) * 1024 : null,
      compileSeconds,
      wallSeconds,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    tempDirs.delete(dir)
  }
}
