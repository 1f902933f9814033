/**
 * A scenario: one seed system's code paths as a `Program`, parameters with
 * small defaults and ranges, the properties checked of it, and variants
 * (patch proposals). A variant is either one the scenario's `build` knows by
 * name, or a *patch*: its base variant plus the steps it replaces or adds
 * (by process and label), the context helpers it replaces (a function such
 * as `mshv_chunk_stride`), and what it adds to the initial world, the
 * parameters and the properties, so that it reads like the patch it stands
 * for. The kernel model never depends on what is checked of it: properties
 * are typed by the engine's contract only, and the built-in scenarios get
 * theirs one layer up (invariants/catalog.ts).
 */
import { BadInput, ModelError } from '../explorer/errors.js'
import type { EvidenceProperty, Invariant, Metric, OutcomeProperty } from '../explorer/model.js'
import type { MemoryMap } from './memory-map.js'
import type { Process, Program, State, Step } from './process.js'

export interface ParamSpec {
  readonly name: string
  readonly default: number
  readonly min: number
  readonly max: number
  readonly description: string
}

export type Params = Readonly<Record<string, number>>

/** What is checked of a scenario instance. */
export interface PropertySet<S = State<any>> {
  readonly invariants?: readonly Invariant<S>[]
  readonly outcomes?: readonly OutcomeProperty<S>[]
  readonly evidence?: readonly EvidenceProperty<S>[]
  readonly metrics?: readonly Metric<S>[]
}

/**
 * Steps a patch replaces or adds: process name -> label -> step; `null`
 * removes a step (the code a patch deletes, which nothing reaches any more).
 */
export type StepPatch = Readonly<Record<string, Readonly<Record<string, Step<any, any> | null>>>>

/** What a variant's functions are given: the parameters and the scenario's context (with the patch's own replacements). */
export interface BuildContext<C> {
  readonly params: Params
  readonly ctx: C
}

/**
 * What a variant is known to do: the invariants it breaks (none: it keeps
 * every one), at the scenario's default parameters, or at those `params`
 * give (the others at their default).
 */
export interface Expectation {
  readonly violates?: readonly string[]
  readonly params?: Readonly<Record<string, number>>
}

/** The expectation a variant declares for this parameter set, if any. */
export function expectationAt(scenario: Scenario<any>, variant: string, params: Params): Expectation | undefined {
  const e = scenario.variants.find((v) => v.name === variant)?.expect
  const all = e === undefined ? [] : Array.isArray(e) ? e : [e as Expectation]
  const specs = allParams(scenario)
  return all.find((x) => specs.every((p) => (x.params?.[p.name] ?? p.default) === params[p.name]))
}

export interface VariantSpec<C = any> {
  readonly name: string
  readonly description: string
  /**
   * Its expected verdicts: `mapcheck` and `compare` exit 1 when a check
   * differs (a new violation, or a known one that no longer reproduces).
   * One expectation (at the default parameters, or at its `params`) or a
   * list of them; none for the parameters run: its cells are not gated.
   */
  readonly expect?: Expectation | readonly Expectation[]
  /** A patch: the variant it applies to (default: the scenario's first). */
  readonly from?: string
  /** A patch: the steps it replaces or adds, by process and label. */
  readonly steps?: StepPatch | ((b: BuildContext<C>) => StepPatch)
  /** A patch: the context entries (helpers, constants) it replaces. */
  readonly context?: (b: BuildContext<C>) => Partial<C>
  /** A patch: what it sets in the initial world after the base's `init`. */
  readonly init?: (b: BuildContext<C>) => (w: any) => void
  /** Parameters only this variant reads. */
  readonly params?: readonly ParamSpec[]
  /** Properties this variant adds to the scenario's. */
  readonly properties?: (b: BuildContext<C> & { readonly program: Program<any> }) => PropertySet
}

export interface Scenario<C = any> {
  readonly name: string
  readonly title: string
  /** The discussion it comes from, and what it models. */
  readonly description: string
  readonly params: readonly ParamSpec[]
  /** The first is the default, and what a patch applies to unless it says `from`. */
  readonly variants: readonly VariantSpec<C>[]
  /** What the processes are built from (layout, locks, helpers a patch may replace); `{}` when absent. */
  context?(params: Params): C
  /** The program of a variant that is not a patch. */
  build(params: Params, variant: string, ctx: C): Program<any>
  /** The properties checked of every variant. */
  properties?(params: Params, variant: string, ctx: C, program: Program<any>): PropertySet
  /** Which fields of the world are which kind of map (SLAT/EPT, host page table, folios, bindings): the report's picture. */
  memoryMap?(params: Params, ctx: C): MemoryMap
  /**
   * Every process the scenario may run at some parameters (the VMM only with
   * `destroy=1`, say). A patch of one that this instance does not run is
   * never exercised (compare flags it vacuous) rather than an error.
   */
  readonly processes?: readonly string[]
  /** Set for a scenario loaded from a review file: the file as given and its content hash. */
  readonly source?: { readonly file: string; readonly sha256: string }
}

/** What a patch changes (a variant without its name): pieces of patches merge into one with `mergePatches`. */
export type Patch<C = any> = Pick<VariantSpec<C>, 'steps' | 'context' | 'init'>

/**
 * Pieces of patches as one patch (a fix made of several changes, each also
 * a variant of its own): their steps, context replacements and inits, in
 * order. A later piece may replace an earlier one's step, unless
 * `exclusive` names the scenario, which makes two pieces changing the same
 * step a model error.
 */
export function mergePatches<C>(pieces: readonly Patch<C>[], options: { readonly exclusive?: string } = {}): Patch<C> {
  return {
    steps: (b) => {
      const out: Record<string, Record<string, Step<any, any> | null>> = {}
      for (const piece of pieces) {
        const steps: StepPatch = typeof piece.steps === 'function' ? piece.steps(b) : (piece.steps ?? {})
        for (const [proc, labels] of Object.entries(steps)) {
          if (options.exclusive !== undefined) {
            for (const label of Object.keys(labels)) if (out[proc] && label in out[proc]) throw new ModelError(`${options.exclusive}: two pieces of a patch change ${proc}.${label}`)
          }
          out[proc] = { ...out[proc], ...labels }
        }
      }
      return out
    },
    context: ({ params, ctx }) => {
      let c: Partial<C> = {}
      for (const piece of pieces) if (piece.context) c = { ...c, ...piece.context({ params, ctx: { ...ctx, ...c } }) }
      return c
    },
    init: (b) => {
      const inits = pieces.flatMap((piece) => piece.init?.(b) ?? [])
      return (w) => {
        for (const init of inits) init(w)
      }
    },
  }
}

export const isPatch = (v: VariantSpec): boolean => v.from !== undefined || v.steps !== undefined || v.context !== undefined || v.init !== undefined

/** A scenario's parameters with every variant's own. */
export function allParams(scenario: Scenario<any>): ParamSpec[] {
  const out = [...scenario.params]
  for (const v of scenario.variants) for (const p of v.params ?? []) if (!out.some((q) => q.name === p.name)) out.push(p)
  return out
}

/** Validates a variant name: the default when absent. */
export function resolveVariant(scenario: Scenario<any>, variant: string | undefined): string {
  if (variant === undefined) return scenario.variants[0].name
  if (!scenario.variants.some((v) => v.name === variant)) {
    throw new BadInput(
      `unknown variant '${variant}' of scenario ${scenario.name} (variants: ${scenario.variants.map((v) => v.name).join(', ')})`,
    )
  }
  return variant
}

/** Fills in defaults and validates names, integers and ranges. */
export function resolveParams(scenario: Scenario<any>, given: Readonly<Record<string, number | string>>): Params {
  const specs = allParams(scenario)
  const out: Record<string, number> = {}
  for (const [name, raw] of Object.entries(given)) {
    const spec = specs.find((p) => p.name === name)
    if (!spec) {
      throw new BadInput(
        `unknown parameter '${name}' of scenario ${scenario.name} (parameters: ${specs.map((p) => p.name).join(', ') || 'none'})`,
      )
    }
    const value = typeof raw === 'number' ? raw : /^-?(0x[0-9a-f]+|\d+)$/i.test(raw.trim()) ? Number(raw.trim()) : NaN
    if (!Number.isInteger(value)) throw new BadInput(`parameter ${name}=${String(raw)} is not an integer`)
    if (value < spec.min || value > spec.max) {
      throw new BadInput(`parameter ${name}=${value} is out of range ${spec.min}..${spec.max}`)
    }
    out[name] = value
  }
  return Object.fromEntries(specs.map((p) => [p.name, out[p.name] ?? p.default]))
}

/** A variant's program, the properties it checks, and the steps its own patch changes (`process.label`). */
export interface BuiltVariant {
  readonly program: Program<any>
  readonly properties: PropertySet
  readonly patched: readonly string[]
}

/**
 * Builds `variant` of `scenario`: a patch is its base built with the
 * patch's context, then its steps swapped in; patches of patches compose.
 */
export function buildVariant(scenario: Scenario<any>, variant: string, params: Params): BuiltVariant {
  const ctx = scenario.context?.(params) ?? {}
  const chain: VariantSpec[] = []
  let v = scenario.variants.find((x) => x.name === variant)
  if (!v) throw new BadInput(`unknown variant '${variant}' of scenario ${scenario.name}`)
  while (isPatch(v)) {
    if (chain.includes(v)) throw new ModelError(`${scenario.name}: variant ${variant} patches itself (through ${chain.map((x) => x.name).join(' -> ')})`)
    chain.unshift(v)
    const from: string = v.from ?? scenario.variants[0].name
    const base = scenario.variants.find((x) => x.name === from)
    if (!base) throw new ModelError(`${scenario.name}: variant ${v.name} patches '${from}', which is not a variant`)
    if (base === v) throw new ModelError(`${scenario.name}: variant ${v.name} is the first variant, so it cannot be a patch (it has nothing to apply to)`)
    v = base
  }
  // Context replacements first (base to tip), so the base's steps already call the patched helpers.
  let c = ctx
  for (const p of chain) if (p.context) c = { ...c, ...p.context({ params, ctx: c }) }
  let program = scenario.build(params, v.name, c)
  const patched: string[] = []
  for (const p of chain) {
    const steps = typeof p.steps === 'function' ? p.steps({ params, ctx: c }) : (p.steps ?? {})
    program = applySteps(scenario, p.name, program, steps)
    // The steps of the variant's own patch (not those of the variants it patches): what must be exercised.
    if (p === chain[chain.length - 1]) for (const [proc, labels] of Object.entries(steps)) for (const [label, step] of Object.entries(labels)) if (step !== null) patched.push(`${proc}.${label}`)
    const init = p.init?.({ params, ctx: c })
    if (init) {
      const before = program.init
      program = {
        ...program,
        init(w) {
          before?.(w)
          init(w)
        },
      }
    }
  }
  const sets = [
    scenario.properties?.(params, v.name, c, program) ?? {},
    ...chain.map((p) => p.properties?.({ params, ctx: c, program }) ?? {}),
  ]
  const properties: PropertySet = {
    invariants: sets.flatMap((s) => s.invariants ?? []),
    outcomes: sets.flatMap((s) => s.outcomes ?? []),
    evidence: sets.flatMap((s) => s.evidence ?? []),
    metrics: sets.flatMap((s) => s.metrics ?? []),
  }
  return { program, properties, patched: [...new Set(patched)] }
}

/** Swaps a patch's steps into the processes it names; a process the program does not have is an error. */
function applySteps(s: Scenario<any>, variant: string, program: Program<any>, steps: StepPatch): Program<any> {
  const scenario = s.name
  const processes = [...new Set(program.threads.map((t) => t.process))]
  const replaced = new Map<Process<any, any>, Process<any, any>>()
  for (const [name, labels] of Object.entries(steps)) {
    const targets = processes.filter((p) => p.name === name)
    if (targets.length === 0 && !s.processes?.includes(name)) {
      throw new ModelError(
        `${scenario}: variant ${variant} patches process '${name}', which it does not run (processes: ${[...new Set([...processes.map((p) => p.name), ...(s.processes ?? [])])].join(', ')})`,
      )
    }
    for (const p of targets) {
      const cur = replaced.get(p) ?? p
      const steps: Record<string, Step<any, any>> = { ...cur.steps }
      for (const [label, step] of Object.entries(labels)) {
        if (step !== null) steps[label] = step
        else if (label in steps) delete steps[label]
        else throw new ModelError(`${scenario}: variant ${variant} removes step ${name}.${label}, which does not exist`)
      }
      replaced.set(p, { ...cur, steps })
    }
  }
  return { ...program, threads: program.threads.map((t) => ({ ...t, process: replaced.get(t.process) ?? t.process })) }
}

/**
 * A scenario written outside the catalogue (a review file): validated, so
 * that a malformed definition is one clear error when it is loaded.
 */
export function scenario<C = {}>(def: Scenario<C>): Scenario<C> {
  const where = `scenario ${def.name ?? '(unnamed)'}`
  if (typeof def.name !== 'string' || !/^[a-z0-9][\w.-]*$/i.test(def.name)) throw new ModelError(`${where}: name must be a word (letters, digits, - _ .)`)
  if (!Array.isArray(def.variants) || def.variants.length === 0) throw new ModelError(`${where}: needs at least one variant`)
  if (isPatch(def.variants[0])) throw new ModelError(`${where}: the first variant, ${def.variants[0].name}, is what patches apply to; it cannot be a patch itself`)
  const names = new Set<string>()
  for (const v of def.variants) {
    if (names.has(v.name)) throw new ModelError(`${where}: two variants are named ${v.name}`)
    names.add(v.name)
    checkExpectation(`${where}: variant ${v.name}`, v.expect)
  }
  if (typeof def.build !== 'function') throw new ModelError(`${where}: needs build(params, variant, ctx)`)
  return def
}

/** What `variant()` makes: a patch of a scenario, to be added to it where it is loaded. */
export interface Variant<C = any> {
  readonly kind: 'mapcheck.variant'
  readonly base: Scenario<C>
  readonly spec: VariantSpec<C>
}

/**
 * A patch proposal as a variant of `base`: the steps it changes and nothing
 * else. Exported from a review file, it is checked against the base's
 * variants (`mapcheck compare ./review.ts`).
 */
export function variant<C>(base: Scenario<C>, spec: VariantSpec<C>): Variant<C> {
  if (!base || !Array.isArray(base.variants)) throw new ModelError(`variant ${spec?.name}: its base is not a scenario`)
  if (base.variants.some((v) => v.name === spec.name)) throw new ModelError(`variant ${spec.name}: ${base.name} already has a variant of that name`)
  checkExpectation(`variant ${spec.name}`, spec.expect)
  return { kind: 'mapcheck.variant', base, spec: { ...spec, from: spec.from ?? base.variants[0].name } }
}

export const isVariant = (x: unknown): x is Variant => typeof x === 'object' && x !== null && (x as Variant).kind === 'mapcheck.variant'
export const isScenario = (x: unknown): x is Scenario =>
  typeof x === 'object' && x !== null && typeof (x as Scenario).name === 'string' && Array.isArray((x as Scenario).variants) && typeof (x as Scenario).build === 'function'

/**
 * The scenarios a module (a review file) exports: its scenarios, and each
 * base scenario extended with the variants the module adds to it (those
 * first, so that the first is the default). `source` is recorded on each.
 */
export function scenariosOf(exports: Readonly<Record<string, unknown>>, source?: Scenario['source']): Scenario[] {
  const values = Object.values(exports).flatMap((v) => (Array.isArray(v) ? v : [v]))
  const out: Scenario[] = []
  const push = (s: Scenario): void => {
    if (out.some((o) => o.name === s.name)) throw new ModelError(`two scenarios named ${s.name} are exported`)
    out.push(s)
  }
  for (const v of values) if (isScenario(v) && !values.some((x) => isVariant(x) && x.base === v)) push({ ...v, source })
  const bases = [...new Set(values.filter(isVariant).map((v) => v.base))]
  for (const base of bases) {
    const added = values.filter((v): v is Variant => isVariant(v) && v.base === base).map((v) => v.spec)
    for (const v of added) if (base.variants.some((b) => b.name === v.name)) throw new ModelError(`variant ${v.name}: ${base.name} already has a variant of that name`)
    // The added variants go first; the base's own patches that relied on "the first variant" keep their base.
    const first = base.variants[0].name
    const own = base.variants.map((v, i) => (i > 0 && isPatch(v) && v.from === undefined ? { ...v, from: first } : v))
    push({ ...base, variants: [...added, ...own], source })
  }
  return out
}

/** `expect` is `{ violates: [invariant ids] }`; a typo in a review file is one clear error when it is loaded. */
function checkExpectation(where: string, e: unknown): void {
  if (e === undefined) return
  for (const one of Array.isArray(e) ? e : [e]) {
    const v = (one as Expectation | null)?.violates
    const p = (one as Expectation | null)?.params
    if (
      typeof one !== 'object' ||
      one === null ||
      Object.keys(one).some((k) => k !== 'violates' && k !== 'params') ||
      (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === ''))) ||
      (p !== undefined && (typeof p !== 'object' || p === null || Object.values(p).some((x) => !Number.isInteger(x))))
    ) {
      throw new ModelError(`${where}: expect must be { violates: ['invariant-id', ...], params?: { name: value } } or a list of them`)
    }
  }
}
