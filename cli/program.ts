/**
 * The mapcheck commands: `runCli(argv)` parses and runs one, and returns its
 * exit status (cli/exit.ts); whatever it throws is turned into one line on
 * stderr and a status here. cli/main.ts runs it (on a worker thread for the
 * commands that explore); the fuzz tests call it in-process.
 */
import { createRequire } from 'node:module'
import { Command, CommanderError, Option } from 'commander'
import { BadInput, isBadInput, isModelError, type ModelError } from '../explorer/errors.js'
import type { ExploreOptions, StoreKind } from '../explorer/options.js'
import type { Mode } from '../explorer/result.js'
import { isFileWriteError } from '../traces/write.js'
import { collectParam, intOption, secondsOption } from './args.js'
import { intervalOption } from './checkpoint.js'
import { checkCommand } from './check.js'
import { checkAllCommand, compareCommand } from './compare.js'
import { EXIT, EXIT_HELP } from './exit.js'
import { reportInternalError } from './internal-error.js'
import { layoutCommand } from './layout.js'
import { reportCommand } from './report.js'
import { resolveVariant } from '../model/scenario.js'
import { listCommand } from './list.js'
import { mergeCommand } from './merge.js'
import { shardCommand } from './shard.js'
import { parseShard } from './shard-spec.js'
import { sweepCommand } from './sweep.js'
import { builtIns, openScenario, openScenarios } from './scenarios.js'
import { defaultMaxMemory, searchStop, sizeOption, sizeText } from './stop.js'
import { defaultWorkers } from '../explorer/parallel-bfs.js'
import { replayCommand, showCommand } from './trace-commands.js'
import { regenerateCorpus } from '../traces/regenerate-corpus.js'

/** package.json is one level up from cli/main.ts and from dist/mapcheck.js alike. */
const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version

/** The largest seed: fast-check's generator takes 32 bits, so 2^32 would replay as 0. */
const MAX_SEED = 2 ** 32 - 1

interface BoundFlags {
  maxDepth?: string
  maxStates?: string
  maxSeconds?: string
  maxMemory?: string
  workers?: string
}

const bounds = (o: BoundFlags): ExploreOptions => ({
  maxDepth: intOption('max-depth', o.maxDepth),
  maxStates: intOption('max-states', o.maxStates, 1),
  maxSeconds: secondsOption(o.maxSeconds),
  stop: searchStop(sizeOption(o.maxMemory) ?? defaultMaxMemory()),
  workers: intOption('workers', o.workers, 1) ?? defaultWorkers(),
})

function withBounds(cmd: Command): Command {
  return cmd
    .option('--max-depth <n>', 'do not explore past this depth (verdict incomplete if cut)')
    .option('--max-states <n>', 'stop after this many distinct states (verdict incomplete)')
    .option('--max-seconds <s>', 'stop after this long (verdict incomplete)')
    .option('--max-memory <size>', `stop when the process holds this much memory, e.g. 512M, 4G (verdict incomplete; default: half this machine's memory, ${sizeText(defaultMaxMemory())})`)
    .option('--workers <n>', `BFS threads sharing one visited set; levels of 10,000 states and more are expanded in parallel, with the same counts and traces as 1, the sequential BFS (default: the cores, ${defaultWorkers()})`)
}

/** compare, sweep and the matrix: traces only when asked; `incomplete` cells fail the command only under --strict. */
function withMatrixFlags(cmd: Command): Command {
  return cmd
    .option('--trace-dir <dir>', 'write the trace of each violation into this directory (default: no trace files)')
    .option('--strict', 'exit 3 when some cell is incomplete (a bound was reached)')
}

export async function runCli(argv: readonly string[]): Promise<number> {
let status: number = EXIT.ok
const program = new Command()
  .name('mapcheck')
  .version(VERSION, '-V, --version')
  .description('Model checker for the mapping invariants of hypervisor guest memory (KVM, MSHV).\nWith no command: check every scenario and variant and print the verdict matrix.')
  .enablePositionalOptions()
  .argument('[command]')
  .option('--json', 'print JSON')
  .option('--no-expect', "ignore the variants' expected verdicts: exit 0 whatever the cells")
  .addHelpText('after', `\n${EXIT_HELP}`)
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s.split('\n')[0] + '\n') })
  .action((command: string | undefined, o: BoundFlags & { json?: boolean; traceDir?: string; strict?: boolean; expect: boolean }) => {
    if (command !== undefined) {
      throw new BadInput(`unknown command '${command}' (commands: ${program.commands.map((c) => c.name()).join(', ')})`)
    }
    status = checkAllCommand(builtIns(), bounds(o), !!o.json, { traceDir: o.traceDir, strict: !!o.strict, expect: o.expect })
  })
withMatrixFlags(withBounds(program))

const SCENARIO = 'a built-in scenario name, or a review file (./review.ts, or ./review.ts#name when it exports several)'

program
  .command('list [scenario]')
  .description(`scenarios, their variants, invariants and parameters (all built-ins, or [scenario]: ${SCENARIO})`)
  .option('--json', 'print JSON')
  .action(async (scenario: string | undefined, o: { json?: boolean }) => {
    status = listCommand(scenario === undefined ? builtIns() : await openScenarios(scenario), !!o.json)
  })

withBounds(
  program
    .command('check <scenario>')
    .description(`explore one scenario variant; exit 1 with a minimized trace on a violation (<scenario>: ${SCENARIO})`)
    .option('--variant <v>', 'variant (default: the first)')
    .addOption(new Option('--mode <mode>', 'search strategy').choices(['bfs', 'dfs', 'random']).default('bfs'))
    .option('--param <k=v>', 'scenario parameter (repeatable)', collectParam, {})
    .option('--seed <n>', 'random mode: seed')
    .option('--runs <n>', 'random mode: number of runs')
    .option('--all-violations', 'keep exploring after a first violation and list every broken invariant')
    .addOption(
      new Option('--store <kind>', 'visited set: full (every state, exact) or fingerprint (64-bit fingerprints, as TLC; BFS only; reports the collision probability)')
        .choices(['full', 'fingerprint'])
        .default('full'),
    )
    .addOption(new Option('--links <where>', '--store fingerprint: where the parent links (4 B/state) are kept: disk (default, a temp file, as TLC) or memory').choices(['disk', 'memory']))
    .option('--livelock', 'also look for a reachable cycle on which no step is a progress step (no-livelock, SPIN\'s -l; off by default; searches the unreduced graph)')
    .option('--no-symmetry', 'do not reduce by the symmetry of interchangeable threads (to compare; on by default where a scenario declares it)')
    .option('--checkpoint <file>', 'BFS: save the whole search to <file> every --checkpoint-every, and when it is cut short (SIGINT/SIGTERM, a bound), to go on later with --resume <file>')
    .option('--checkpoint-every <interval>', 'minutes between checkpoints (default 10), or 30s, 2h, or a number of states expanded (50000states)')
    .option('--resume <file>', 'BFS: go on with the search saved in <file> (same scenario, variant, parameters and options); it keeps saving to <file> unless --checkpoint names another')
    .option('--no-por', 'no partial-order reduction (to compare; by default BFS expands a state by one thread\'s step alone where that step writes only the thread\'s own locals and reads no shared cell another thread changes, where that pays: see README)')
    .option('--out <file>', 'where to write the trace of the shortest violation, others beside it (default: traces/<scenario>-<variant>-<invariant>.json in the working directory)')
    .option('--html <file>', 'also write the HTML report of this run (its traces stepped through, with the memory map)')
    .option('--shard <k/n>', 'swarm: run the k-th (from 0) of n diversified searches and write its result file (--out, default <scenario>-<variant>-shard-<k>-of-<n>.json) for `mapcheck merge`; env/n takes k from JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or PARALLEL_SEQ, env:NAME/n from NAME; --seed seeds the whole swarm')
    .option('--shard-base <b>', "--shard: the number of the first shard, when k does not count from 0 (GNU parallel's {#}: 1)")
    .option('--json', 'print one JSON object'),
).action(async (scenario: string, o: BoundFlags & { variant?: string; mode: Mode; param: Record<string, string>; seed?: string; runs?: string; allViolations?: boolean; livelock?: boolean; store: StoreKind; links?: 'disk' | 'memory'; symmetry: boolean; por: boolean; out?: string; html?: string; json?: boolean; shard?: string; shardBase?: string; checkpoint?: string; checkpointEvery?: string; resume?: string }, cmd: Command) => {
  if (o.shardBase !== undefined && o.shard === undefined) throw new BadInput('--shard-base applies to --shard only')
  if (o.links !== undefined && o.store !== 'fingerprint') throw new BadInput(`--links applies to --store fingerprint only; --store ${o.store} keeps its parent links with its states`)
  if (o.shard !== undefined) {
    if (o.checkpoint !== undefined || o.resume !== undefined) throw new BadInput('--checkpoint/--resume do not apply to a swarm shard (--shard): a shard is a bounded search')
    // Parsed before the scenario is opened: a bad shard is refused without a search.
    const shard = parseShard(o.shard, process.env, o.shardBase)
    const seed = intOption('seed', o.seed)
    if (seed !== undefined && seed > MAX_SEED) throw new BadInput(`--seed ${o.seed}: expected an integer 0..${MAX_SEED}`)
    const explore: ExploreOptions = { ...bounds(o), runs: intOption('runs', o.runs, 1), allViolations: !!o.allViolations, store: o.store, links: o.links, symmetry: o.symmetry, ...(o.por ? {} : { por: false }), livelock: !!o.livelock }
    const mode = cmd.getOptionValueSource('mode') === 'default' ? undefined : o.mode
    status = shardCommand({ scenario: await openScenario(scenario), variant: o.variant, params: o.param, explore, shard, base: { mode, maxDepth: explore.maxDepth, store: o.store, seed }, out: o.out, html: o.html, json: !!o.json })
    return
  }
  if (o.mode !== 'random') {
    const flag = o.seed !== undefined ? '--seed' : o.runs !== undefined ? '--runs' : undefined
    if (flag) throw new BadInput(`${flag} applies to --mode random only; ${o.mode} explores every state and draws nothing`)
  }
  const seed = intOption('seed', o.seed)
  if (seed !== undefined && seed > MAX_SEED) throw new BadInput(`--seed ${o.seed}: expected an integer 0..${MAX_SEED} (fast-check seeds are 32 bits)`)
  status = checkCommand({
    scenario: await openScenario(scenario),
    variant: o.variant,
    params: o.param,
    explore: { ...bounds(o), mode: o.mode, seed, runs: intOption('runs', o.runs, 1), allViolations: !!o.allViolations, store: o.store, links: o.links, symmetry: o.symmetry, por: o.por ? undefined : false, livelock: !!o.livelock },
    out: o.out,
    html: o.html,
    json: !!o.json,
    checkpoint: { file: o.checkpoint, every: intervalOption(o.checkpointEvery), resume: o.resume, version: VERSION },
  })
})

withBounds(
  program
    .command('report <scenario>')
    .description(`the review report: one self-contained HTML file with the verdict matrix and each violation stepped through with its memory map (<scenario>: ${SCENARIO})`)
    .option('--variant <v...>', 'only these variants (default: all)')
    .option('--param <k=v>', 'scenario parameter (repeatable)', collectParam, {})
    .requiredOption('--out <file>', 'the HTML file to write')
    .option('--no-expect', "ignore the variants' expected verdicts: exit 0 whatever the cells"),
).action(async (scenario: string, o: BoundFlags & { variant?: string[]; param: Record<string, string>; out: string; expect: boolean }) => {
  const s = await openScenario(scenario)
  for (const v of o.variant ?? []) resolveVariant(s, v)
  status = reportCommand({ scenario: s, variants: o.variant, params: o.param, explore: bounds(o), out: o.out, expect: o.expect })
})

withMatrixFlags(withBounds(
  program
    .command('compare <scenario>')
    .description("variants x invariants: which invariants each variant (patch proposal) keeps; exit 1 when a cell differs from the variant's expect")
    .option('--param <k=v>', 'scenario parameter (repeatable)', collectParam, {})
    .option('--no-expect', "ignore the variants' expected verdicts: exit 0 whatever the cells")
    .option('--json', 'print JSON'),
)).action(async (scenario: string, o: BoundFlags & { param: Record<string, string>; json?: boolean; traceDir?: string; strict?: boolean; expect: boolean }) => {
  status = compareCommand(await openScenario(scenario), o.param, bounds(o), !!o.json, { traceDir: o.traceDir, strict: !!o.strict, expect: o.expect })
})

withMatrixFlags(withBounds(
  program
    .command('sweep <scenario>')
    .description('compare over a grid of parameters: one row per point and variant')
    .option('--param <k=spec>', 'a parameter and its values: a, a..b or x,y,z (repeatable)', collectParam, {})
    .option('--variant <v...>', 'only these variants (default: all)')
    .option('--json', 'print JSON'),
)).action(async (scenario: string, o: BoundFlags & { param: Record<string, string>; variant?: string[]; json?: boolean; traceDir?: string; strict?: boolean }) => {
  status = sweepCommand(await openScenario(scenario), o.param, bounds(o), !!o.json, o.variant, { traceDir: o.traceDir, strict: !!o.strict })
})

program
  .command('merge <files...>')
  .description('swarm: combine the result files of check --shard k/n into one verdict (violation if a shard found one; ok if a shard was exhaustive; else incomplete) and the shortest trace of each broken invariant')
  .option('--trace-dir <dir>', 'where to write the chosen traces', 'traces')
  .option('--json', 'print JSON')
  .action(async (files: string[], o: { traceDir: string; json?: boolean }) => {
    status = await mergeCommand({ files, json: !!o.json, traceDir: o.traceDir })
  })

program
  .command('replay <trace>')
  .description('re-execute a trace: exit 1 if its violation reproduces, 0 if it runs to its end without one, 5 if it breaks another property')
  .option('--json', 'print JSON')
  .option('--force', "replay a review file's trace even though the file changed since")
  .action(async (file: string, o: { json?: boolean; force?: boolean }) => {
    status = await replayCommand(file, !!o.json, !!o.force)
  })

program
  .command('show <trace>')
  .description('render a trace (a trace file, or an ITF file written by show --format itf): race diagram (text, 80 columns), mail (72 columns, for a commit message), itf (Informal Trace Format, for Apalache/Quint tools), html (the report page of this trace) or JSON')
  .addOption(new Option('--format <f>', 'output format').choices(['text', 'mail', 'itf', 'html', 'json']).default('text'))
  .option('--json', 'the trace as JSON with each step\'s changes (same as --format json)')
  .option('--force', "show a review file's trace even though the file changed since")
  .action(async (file: string, o: { format: string; json?: boolean; force?: boolean }) => {
    status = await showCommand(file, o.json ? 'json' : o.format, !!o.force)
  })

program
  .command('corpus')
  .description('the regression corpus of known bugs (traces/corpus)')
  .command('update [dir]')
  .description('re-record every corpus trace on the current model, after a deliberate model change; lists the traces whose length or verdict changed (exit 1 if a bug no longer reproduces)')
  .action((dir: string | undefined) => {
    const changes = regenerateCorpus(dir ?? 'traces/corpus')
    for (const c of changes) if (c.change !== 'same') process.stdout.write(`${c.change === 'gone' ? 'NO LONGER BROKEN' : 'length changed'}: ${c.file}: ${c.detail}\n`)
    const same = changes.filter((c) => c.change === 'same').length
    process.stdout.write(`${changes.length} traces re-recorded: ${same} unchanged in verdict and length, ${changes.length - same} changed\n`)
    status = changes.some((c) => c.change === 'gone') ? EXIT.violation : EXIT.ok
  })

program
  .command('layout <file>')
  .description('memslots left by a QEMU kvm_set_user_memory trace; huge-leaf share per gmem binding policy')
  .option('--json', 'print JSON')
  .action((file: string, o: { json?: boolean }) => {
    status = layoutCommand(file, !!o.json)
  })

  // Every command's --help ends with the exit statuses.
  for (const c of program.commands) c.addHelpText('after', `\n${EXIT_HELP}`)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return status
  } catch (e) {
    return failureStatus(e)
  }
}

/** A model error on stderr: its message, and the steps to the state where it happened. */
function modelErrorText(e: ModelError): string {
  const steps = e.trace?.steps ?? []
  return `mapcheck: model error: ${e.message}${steps.length ? ` (after ${steps.length} steps: ${steps.map((s) => `${s.thread} ${s.text}`).join('; ')})` : ''}`.replace(/\n/g, ' ')
}

/** What a command that threw exits with, its one line written on stderr. */
export function failureStatus(e: unknown): number {
  if (e instanceof CommanderError) {
    // Help and version exit 0; every parse error has been printed on one line.
    return e.exitCode === 0 ? EXIT.ok : EXIT.badInput
  }
  const line = isBadInput(e) || isFileWriteError(e) ? `mapcheck: ${e.message.split('\n')[0]}` : isModelError(e) ? modelErrorText(e) : reportInternalError(e)
  process.stderr.write(`${line}\n`)
  return isBadInput(e) || isFileWriteError(e) || isModelError(e) ? EXIT.badInput : EXIT.internal
}

