/**
 * The mapcheck command line. Exit status: 0 all invariants hold within the
 * bounds explored (or the command succeeded), 1 a violation, 2 bad input
 * (one line on stderr, no stack trace, nothing half-written).
 */
import { Command, CommanderError, Option } from 'commander'
import { BadInput, isBadInput, isModelError, type ModelError } from '../explorer/errors.js'
import type { ExploreOptions, StoreKind } from '../explorer/options.js'
import type { Mode } from '../explorer/result.js'
import { collectParam, intOption, secondsOption } from './args.js'
import { checkCommand } from './check.js'
import { checkAllCommand, compareCommand } from './compare.js'
import { layoutCommand } from './layout.js'
import { listCommand } from './list.js'
import { sweepCommand } from './sweep.js'
import { builtIns, openScenario, openScenarios } from './scenarios.js'
import { replayCommand, showCommand } from './trace-commands.js'
import { regenerateCorpus } from '../traces/regenerate-corpus.js'

interface BoundFlags {
  maxDepth?: string
  maxStates?: string
  maxSeconds?: string
}

const bounds = (o: BoundFlags): ExploreOptions => ({
  maxDepth: intOption('max-depth', o.maxDepth),
  maxStates: intOption('max-states', o.maxStates, 1),
  maxSeconds: secondsOption(o.maxSeconds),
})

function withBounds(cmd: Command): Command {
  return cmd
    .option('--max-depth <n>', 'do not explore past this depth (verdict incomplete if cut)')
    .option('--max-states <n>', 'stop after this many distinct states (verdict incomplete)')
    .option('--max-seconds <s>', 'stop after this long (verdict incomplete)')
}

let status = 0
const program = new Command()
  .name('mapcheck')
  .description('Model checker for the mapping invariants of hypervisor guest memory (KVM, MSHV).\nWith no command: check every scenario and variant and print the verdict matrix.')
  .enablePositionalOptions()
  .argument('[command]')
  .option('--json', 'print JSON')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s.split('\n')[0] + '\n') })
  .action((command: string | undefined, o: { json?: boolean }) => {
    if (command !== undefined) {
      throw new BadInput(`unknown command '${command}' (commands: ${program.commands.map((c) => c.name()).join(', ')})`)
    }
    status = checkAllCommand(builtIns(), {}, !!o.json)
  })

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
    .option('--no-symmetry', 'do not reduce by the symmetry of interchangeable threads (to compare; on by default where a scenario declares it)')
    .option('--out <file>', 'where to write the trace (default traces/<scenario>-<variant>-<invariant>.json)')
    .option('--json', 'print one JSON object'),
).action(async (scenario: string, o: BoundFlags & { variant?: string; mode: Mode; param: Record<string, string>; seed?: string; runs?: string; allViolations?: boolean; store: StoreKind; symmetry: boolean; out?: string; json?: boolean }) => {
  status = checkCommand({
    scenario: await openScenario(scenario),
    variant: o.variant,
    params: o.param,
    explore: { ...bounds(o), mode: o.mode, seed: intOption('seed', o.seed), runs: intOption('runs', o.runs, 1), allViolations: !!o.allViolations, store: o.store, symmetry: o.symmetry },
    out: o.out,
    json: !!o.json,
  })
})

withBounds(
  program
    .command('compare <scenario>')
    .description('variants x invariants: which invariants each variant (patch proposal) keeps')
    .option('--param <k=v>', 'scenario parameter (repeatable)', collectParam, {})
    .option('--json', 'print JSON'),
).action(async (scenario: string, o: BoundFlags & { param: Record<string, string>; json?: boolean }) => {
  status = compareCommand(await openScenario(scenario), o.param, bounds(o), !!o.json)
})

withBounds(
  program
    .command('sweep <scenario>')
    .description('compare over a grid of parameters: one row per point and variant')
    .option('--param <k=spec>', 'a parameter and its values: a, a..b or x,y,z (repeatable)', collectParam, {})
    .option('--variant <v...>', 'only these variants (default: all)')
    .option('--json', 'print JSON'),
).action(async (scenario: string, o: BoundFlags & { param: Record<string, string>; variant?: string[]; json?: boolean }) => {
  status = sweepCommand(await openScenario(scenario), o.param, bounds(o), !!o.json, o.variant)
})

program
  .command('replay <trace>')
  .description('re-execute a trace: exit 1 if its violation reproduces, 0 if it runs to its end without one')
  .option('--json', 'print JSON')
  .option('--force', "replay a review file's trace even though the file changed since")
  .action(async (file: string, o: { json?: boolean; force?: boolean }) => {
    status = await replayCommand(file, !!o.json, !!o.force)
  })

program
  .command('show <trace>')
  .description('render a trace as a race diagram (text, 80 columns) or JSON')
  .addOption(new Option('--format <f>', 'output format').choices(['text', 'json']).default('text'))
  .option('--force', "show a review file's trace even though the file changed since")
  .action(async (file: string, o: { format: string; force?: boolean }) => {
    status = await showCommand(file, o.format, !!o.force)
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
    status = changes.some((c) => c.change === 'gone') ? 1 : 0
  })

program
  .command('layout <file>')
  .description('memslots left by a QEMU kvm_set_user_memory trace; huge-leaf share per gmem binding policy')
  .option('--json', 'print JSON')
  .action((file: string, o: { json?: boolean }) => {
    status = layoutCommand(file, !!o.json)
  })

/** A model error on stderr: its message, and the steps to the state where it happened. */
function modelErrorText(e: ModelError): string {
  const steps = e.trace?.steps ?? []
  return `mapcheck: model error: ${e.message}${steps.length ? `\n  after ${steps.length} steps: ${steps.map((s) => `${s.thread} ${s.text}`).join('; ')}` : ''}\n`
}

try {
  await program.parseAsync()
  process.exitCode = status
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version exit 0; every parse error has been printed on one line.
    process.exitCode = e.exitCode === 0 ? 0 : 2
  } else if (isBadInput(e)) {
    process.stderr.write(`mapcheck: ${e.message}\n`)
    process.exitCode = 2
  } else if (isModelError(e)) {
    process.stderr.write(modelErrorText(e))
    process.exitCode = 2
  } else {
    throw e
  }
}
