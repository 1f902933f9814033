/**
 * Swarm from the command line: `check --shard k/n` takes k from each
 * launcher's variable (spawned with it set, as the launcher would); the
 * Kubernetes manifest and the Slurm script run the same command and, run
 * as their launcher runs them, write the shard their variable names; 8
 * bounded shards find a seeded bug that one search within the same bound
 * does not; the merge is the same whatever the order of its files; shards
 * explore differently; bad shard specs and bad merge inputs are one line,
 * exit 2, nothing written.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseYAML } from 'confbox'
import { describe, expect, it } from 'vitest'
import { explore } from '../../explorer/explore.js'
import { shardPlan } from '../../explorer/swarm.js'
import { instantiate } from '../../invariants/scenarios.js'
import type { ShardResult } from '../../traces/shard-result.js'
import { cliInProcess } from '../support/cli-in-process.js'
import { tempDir } from '../support/cli.js'

const root = join(import.meta.dirname, '../..')
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href
const main = join(root, 'cli/main.ts')

/** Every variable a launcher sets for the shard index: the test's own environment must not leak one in. */
const LAUNCHER_VARS = /^(JOB_COMPLETION_INDEX|SLURM_ARRAY_TASK_\w+|PARALLEL_SEQ|PARALLEL_JOBSLOT)$/

function launcherEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !LAUNCHER_VARS.test(k)))
  return { ...env, NO_COLOR: '1', ...vars }
}

/** The CLI, spawned with `vars` as the only launcher variables. */
function mapcheckWith(args: readonly string[], cwd: string, vars: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', tsx, main, ...args], { cwd, encoding: 'utf8', env: launcherEnv(vars) })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const readResult = (file: string): ShardResult => JSON.parse(readFileSync(file, 'utf8')) as ShardResult
const planOf = (k: number, n: number) => {
  const { k: _k, n: _n, ...p } = shardPlan(k, n)
  return p
}

const small = ['fault-invalidate', '--variant', 'retry']

describe('check --shard: the index each launcher sets', () => {
  const cases: { launcher: string; shard: string[]; vars: Record<string, string>; k: number }[] = [
    { launcher: 'Kubernetes Indexed Job', shard: ['--shard', 'env/8'], vars: { JOB_COMPLETION_INDEX: '5' }, k: 5 },
    { launcher: 'Slurm array --array=1-8', shard: ['--shard', 'env/8'], vars: { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '8', SLURM_ARRAY_TASK_COUNT: '8' }, k: 2 },
    { launcher: "GNU parallel's PARALLEL_SEQ", shard: ['--shard', 'env/8'], vars: { PARALLEL_SEQ: '4' }, k: 3 },
    { launcher: "GNU parallel's {#} in the command line", shard: ['--shard', '7/8', '--shard-base', '1'], vars: {}, k: 6 },
  ]
  for (const c of cases) {
    it(`${c.launcher}: runs as shard ${c.k}`, () => {
      const dir = tempDir()
      const r = mapcheckWith(['check', ...small, ...c.shard, '--out', 'r.json', '--json'], dir, c.vars)
      expect([0, 1, 3], r.stderr).toContain(r.status)
      const result = readResult(join(dir, 'r.json'))
      expect(result.shard.k).toBe(c.k)
      expect(result.shard.n).toBe(8)
      expect(result.plan).toEqual(planOf(c.k, 8))
      expect(JSON.parse(r.stdout)).toMatchObject({ shard: { k: c.k }, file: 'r.json' })
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
    })
  }
})

/** A `mapcheck check ...` command in a shell script: continuation lines joined, split into words. */
function mapcheckCommand(script: string): string[] {
  const line = script.replace(/\\\n/g, ' ').split('\n').find((l) => /^\s*mapcheck check /.test(l))
  expect(line, 'a mapcheck check line').toBeDefined()
  return line!.trim().split(/\s+/)
}

/** The command with its --out value named generically (each launcher writes its own path). */
function withoutOut(argv: readonly string[]): { argv: string[]; out: string } {
  const i = argv.indexOf('--out')
  expect(i).toBeGreaterThan(0)
  return { argv: [...argv.slice(0, i), ...argv.slice(i + 2)], out: argv[i + 1] }
}

/** A `mapcheck` on the PATH that runs this source tree, each run capped small (the documented bounds are for real runs). */
function shimDir(): string {
  const bin = join(tempDir(), 'bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'mapcheck'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import ${JSON.stringify(tsx)} ${JSON.stringify(main)} "$@" --max-states 200\n`)
  chmodSync(join(bin, 'mapcheck'), 0o755)
  return bin
}

describe('the Kubernetes manifest and the Slurm script', () => {
  const manifest = parseYAML(readFileSync(join(root, 'docs/swarm/k8s-indexed-job.yaml'), 'utf8')) as any
  const container = manifest.spec.template.spec.containers[0]
  const jobScript: string = container.args[0]
  const slurmScript = readFileSync(join(root, 'docs/swarm/slurm-array.sh'), 'utf8')
  const guide = readFileSync(join(root, 'docs/swarm.md'), 'utf8')

  it('parse, and run the same command with the same number of shards', () => {
    expect(manifest).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job', spec: { completionMode: 'Indexed' } })
    expect(container.command).toEqual(['sh', '-c'])
    expect(spawnSync('sh', ['-n', '-c', jobScript]).status).toBe(0)
    expect(spawnSync('bash', ['-n', join(root, 'docs/swarm/slurm-array.sh')]).status).toBe(0)
    const job = withoutOut(mapcheckCommand(jobScript))
    const slurm = withoutOut(mapcheckCommand(slurmScript))
    expect(slurm.argv).toEqual(job.argv)
    expect(job.out).toContain('$JOB_COMPLETION_INDEX')
    expect(slurm.out).toContain('$SLURM_ARRAY_TASK_ID')
    const n = Number(/--shard env\/(\d+)/.exec(job.argv.join(' '))![1])
    expect(manifest.spec.completions).toBe(n)
    // What the API server would refuse or a pod would trip on: podFailurePolicy needs restartPolicy Never and names
    // this container; the result files land on the mounted volume.
    const pod = manifest.spec.template.spec
    expect(pod.restartPolicy).toBe('Never')
    for (const rule of manifest.spec.podFailurePolicy.rules) expect(rule.onExitCodes.containerName).toBe(container.name)
    const mount = container.volumeMounts[0]
    expect(pod.volumes.map((v: { name: string }) => v.name)).toContain(mount.name)
    expect(job.out.startsWith(`${mount.mountPath}/`)).toBe(true)
    const [from, to] = /#SBATCH --array=(\d+)-(\d+)\n/.exec(slurmScript)!.slice(1).map(Number)
    expect(to - from + 1).toBe(n)
    // The GNU parallel launch in the guide: the same command, the shard from parallel's input.
    const parallel = /seq 0 (\d+) \| parallel -j\d+ (mapcheck check [^\n]*\\\n[^\n]*)/.exec(guide)!
    expect(Number(parallel[1]) + 1).toBe(n)
    const viaParallel = withoutOut(mapcheckCommand(parallel[2]))
    expect(viaParallel.argv.map((a) => (a === `{}/${n}` ? `env/${n}` : a))).toEqual(job.argv)
  })

  it("the Job's script, run as a pod runs it, writes the shard JOB_COMPLETION_INDEX names", () => {
    const dir = tempDir()
    // The pod's /results volume is a directory here.
    const script = jobScript.replaceAll('/results/', `${dir}/`)
    const r = spawnSync('sh', ['-c', script], { cwd: dir, encoding: 'utf8', env: launcherEnv({ JOB_COMPLETION_INDEX: '5', PATH: `${shimDir()}:${process.env.PATH}` }) })
    // A verdict (here: the 200-state cap reached) is the pod's success.
    expect(r.status, r.stderr).toBe(0)
    const result = readResult(join(dir, 'shard-5.json'))
    expect(result.shard).toMatchObject({ k: 5, n: 8, from: 'JOB_COMPLETION_INDEX=5' })
    expect(result.plan).toEqual(planOf(5, 8))
    expect(result.scenario).toBe('mshv-movable')
  })

  it('the Slurm script, run as an array task (--array=1-8) runs it, writes the shard SLURM_ARRAY_TASK_ID names', () => {
    const dir = tempDir()
    const vars = { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '8', SLURM_ARRAY_TASK_COUNT: '8', SLURM_ARRAY_TASK_STEP: '1' }
    const r = spawnSync('bash', [join(root, 'docs/swarm/slurm-array.sh')], { cwd: dir, encoding: 'utf8', env: launcherEnv({ ...vars, PATH: `${shimDir()}:${process.env.PATH}` }) })
    expect(r.status, r.stderr).toBe(0)
    const result = readResult(join(dir, 'swarm/shard-3.json'))
    expect(result.shard).toMatchObject({ k: 2, n: 8 })
    expect(result.plan).toEqual(planOf(2, 8))
  })
})

describe('a swarm of 8 bounded shards on a seeded bug', () => {
  // fault-invalidate's no-retry (the seq re-check removed) at P=4 K=2 F=2: 579,213 states in all; a BFS
  // needs 3,943 of them to reach the 12-step bug. Each shard here may store 3,000.
  const bug = ['fault-invalidate', '--variant', 'no-retry', '--param', 'P=4', '--param', 'K=2', '--param', 'F=2', '--max-states', '3000']
  const runSwarm = async (dir: string, n = 8, extra: string[] = bug): Promise<string[]> => {
    const files: string[] = []
    for (let k = 0; k < n; k++) {
      const file = join(dir, `shard-${k}.json`)
      const r = await cliInProcess(['check', ...extra, '--shard', `${k}/${n}`, '--out', file, '--json'])
      expect([0, 1, 3], r.stderr).toContain(r.status)
      files.push(file)
    }
    return files
  }

  it('one search within the bound does not find it; the merged swarm does, with a trace that replays', async () => {
    const model = instantiate('fault-invalidate', 'no-retry', { P: 4, K: 2, F: 2 }).model
    const unbounded = explore(model, {})
    expect(unbounded.stats.states).toBeGreaterThan(3000)
    expect(explore(model, { maxStates: 3000 }).verdict).toBe('incomplete')
    const dir = tempDir()
    const files = await runSwarm(dir)
    const results = files.map(readResult)
    expect(results[0].verdict).toBe('incomplete')
    expect(results.every((r) => r.stats.states <= 3001)).toBe(true)
    const traces = join(dir, 'traces')
    const merged = await cliInProcess(['merge', ...files, '--trace-dir', traces, '--json'])
    expect(merged.status, merged.stderr).toBe(1)
    const out = JSON.parse(merged.stdout)
    expect(out).toMatchObject({ result: 'violation', invariant: 'no-stale-mapping', shards: 8, merged: [0, 1, 2, 3, 4, 5, 6, 7], missing: [] })
    // The shortest over the shards (a BFS trace is the shortest there is: none is shorter).
    const lengths = results.flatMap((r) => r.traces.filter((t) => t.violation.invariant === 'no-stale-mapping').map((t) => t.steps.length))
    expect(out.steps).toBe(Math.min(...lengths))
    expect(out.steps).toBeGreaterThanOrEqual(unbounded.violations[0].actions.length)
    expect(results[out.violations[0].shard].traces.some((t) => t.steps.length === out.steps)).toBe(true)
    expect((await cliInProcess(['replay', out.trace])).status).toBe(1)
    const text = await cliInProcess(['merge', ...files, '--trace-dir', traces])
    expect(text.stdout).toMatch(/swarm of 8 shards, 8 merged/)
    expect(text.stdout).toMatch(/VIOLATED no-stale-mapping after step \d+/)
  })

  it('the merge is the same whatever the order of its files', async () => {
    const dir = tempDir()
    const files = await runSwarm(dir)
    const traces = join(dir, 'traces')
    const orders = [files, [...files].reverse(), [5, 2, 7, 0, 3, 6, 1, 4].map((i) => files[i])]
    const outputs: string[] = []
    const traceFiles: string[] = []
    for (const order of orders) {
      const r = await cliInProcess(['merge', ...order, '--trace-dir', traces, '--json'])
      expect(r.status).toBe(1)
      outputs.push(r.stdout)
      traceFiles.push(readFileSync(JSON.parse(r.stdout).trace, 'utf8'))
    }
    expect(outputs[1]).toBe(outputs[0])
    expect(outputs[2]).toBe(outputs[0])
    expect(traceFiles[1]).toBe(traceFiles[0])
    expect(traceFiles[2]).toBe(traceFiles[0])
  })

  it('the shards explore differently: plans, counts and traces differ', async () => {
    const results = (await runSwarm(tempDir())).map(readResult)
    expect(new Set(results.map((r) => JSON.stringify(r.plan))).size).toBe(8)
    expect(new Set(results.map((r) => r.stats.states)).size).toBeGreaterThan(4)
    const found = results.filter((r) => r.verdict === 'violation')
    expect(found.length).toBeGreaterThan(1)
    // Different shards reach the bug by different interleavings.
    expect(new Set(found.map((r) => JSON.stringify(r.traces[0].steps))).size).toBeGreaterThan(1)
  })

  it('no violation: ok when a shard was exhaustive, incomplete when none was; missing shards listed', async () => {
    const dir = tempDir()
    const okFiles = await runSwarm(join(dir, 'ok'), 4, small)
    const ok = await cliInProcess(['merge', ...okFiles, '--trace-dir', join(dir, 't'), '--json'])
    expect(ok.status).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({ result: 'ok', incomplete: null })
    expect(JSON.parse(ok.stdout).exhaustive).toContain(0)
    // Only the random shard: never exhaustive.
    const partial = await cliInProcess(['merge', okFiles[3], '--trace-dir', join(dir, 't'), '--json'])
    expect(readResult(okFiles[3]).plan.mode).toBe('random')
    expect(partial.status).toBe(3)
    expect(JSON.parse(partial.stdout)).toMatchObject({ result: 'incomplete', missing: [0, 1, 2], exhaustive: [] })
    const cut = await runSwarm(join(dir, 'cut'), 3, [...small, '--max-states', '20'])
    const inc = await cliInProcess(['merge', ...cut, '--trace-dir', join(dir, 't')])
    expect(inc.status).toBe(3)
    expect(inc.stdout).toMatch(/not exhaustive: no shard's search was exhaustive \(3 of 3 shards merged\)/)
    expect(existsSync(join(dir, 't'))).toBe(false)
  })

  it('bad merge inputs: one line, exit 2, nothing written', async () => {
    const dir = tempDir()
    const [a, b] = await runSwarm(join(dir, 'a'), 2, small)
    const other = await runSwarm(join(dir, 'v'), 2, ['fault-invalidate', '--variant', 'no-retry', '--max-states', '50'])
    const param = await runSwarm(join(dir, 'p'), 2, [...small, '--param', 'P=3', '--max-states', '50'])
    const three = await runSwarm(join(dir, 'n'), 3, [...small, '--max-states', '50'])
    const write = (name: string, text: string): string => (writeFileSync(join(dir, name), text), join(dir, name))
    const trace = join(root, 'traces/corpus/fault-invalidate-no-retry-no-stale-mapping.json')
    const tampered = write('tampered.json', JSON.stringify({ ...readResult(a), shard: { k: 2, n: 2, from: '2/2' } }))
    const copy = join(dir, 'copy.json')
    copyFileSync(a, copy)
    const cases: [string[], RegExp][] = [
      [[join(dir, 'nope.json')], /nope\.json: cannot read: ENOENT/],
      [[a, write('bad.json', '{"format": "mapcheck-shard",')], /bad\.json: not valid JSON/],
      [[a, trace], /not a mapcheck shard result \(format "mapcheck-trace", expected "mapcheck-shard"/],
      [[write('arr.json', '[1]')], /not a mapcheck shard result \(format missing/],
      [[a, other[1]], /is a shard of fault-invalidate --variant no-retry .*; .* is of fault-invalidate --variant retry/],
      [[a, param[1]], /P=3/],
      [[a, three[1]], /a swarm of 3, .* of a swarm of 2/],
      [[a, b, copy], /shard 0 is given twice/],
      [[tampered], /not a valid mapcheck shard result: shard\.k: shard\.k must be below shard\.n/],
    ]
    for (const [files, pattern] of cases) {
      const r = await cliInProcess(['merge', ...files, '--trace-dir', join(dir, 'traces')])
      expect(r.status, `${files.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(pattern)
      expect(r.stdout).toBe('')
    }
    expect(existsSync(join(dir, 'traces'))).toBe(false)
  })
})

describe('check --shard: bad input, before any search', () => {
  const expectOneLine = (r: { status: number | null; stdout: string; stderr: string }, pattern: RegExp): void => {
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(pattern)
    expect(r.stdout).toBe('')
  }

  it('spawned: k >= n, the variable missing: one line, exit 2, no file', () => {
    const dir = tempDir()
    expectOneLine(mapcheckWith(['check', ...small, '--shard', '8/8'], dir), /--shard 8\/8: k = 8 gives shard 8, but there are 8 shards/)
    expectOneLine(mapcheckWith(['check', ...small, '--shard', 'env/8'], dir), /none of JOB_COMPLETION_INDEX/)
    expect(readdirSync(dir)).toEqual([])
  })

  it('n = 0, not a number, a bad variable, --shard-base alone: one line, exit 2, no file', async () => {
    const dir = tempDir()
    const out = join(dir, 'r.json')
    const saved = Object.fromEntries(Object.entries(process.env).filter(([k]) => LAUNCHER_VARS.test(k)))
    for (const k of Object.keys(saved)) delete process.env[k]
    try {
      const cases: [string[], RegExp][] = [
        [['--shard', '0/0'], /n must be at least 1/],
        [['--shard', 'two/8'], /expected k\/n/],
        [['--shard', '3/8', '--shard-base', 'one'], /--shard-base one: expected a non-negative integer/],
        [['--shard-base', '1'], /--shard-base applies to --shard only/],
      ]
      for (const [args, pattern] of cases) expectOneLine(await cliInProcess(['check', ...small, ...args, '--out', out]), pattern)
      // A result file that cannot be written: the search ran, its file did not land, nothing half-written.
      writeFileSync(join(dir, 'file'), '')
      expectOneLine(await cliInProcess(['check', ...small, '--shard', '0/2', '--out', join(dir, 'file/r.json'), '--json']), /cannot write .*file\/r\.json/)
      expect(readdirSync(dir)).toEqual(['file'])
      rmSync(join(dir, 'file'))
      process.env.JOB_COMPLETION_INDEX = 'x'
      expectOneLine(await cliInProcess(['check', ...small, '--shard', 'env/8', '--out', out]), /JOB_COMPLETION_INDEX="x" is not a non-negative integer/)
    } finally {
      delete process.env.JOB_COMPLETION_INDEX
      Object.assign(process.env, saved)
    }
    expect(readdirSync(dir)).toEqual([])
  })
})
