/**
 * The built-in scenarios with the invariants checked of each, and how one
 * is instantiated for a parameter set and variant. This is where the kernel
 * model (model/) meets what is checked of it.
 */
import { createHash } from 'node:crypto'
import { BadInput } from '../explorer/errors.js'
import { compile, type CompiledModel } from '../model/compile.js'
import type { Program, State } from '../model/process.js'
import { buildVariant, resolveParams, resolveVariant, type Params, type Scenario } from '../model/scenario.js'
import { faultInvalidate as faultInvalidateModel } from '../model/scenarios/fault-invalidate.js'
import { movableLayout, movableLocks, mshvMovable as mshvMovableModel } from '../model/scenarios/mshv-movable/index.js'
import { mshvPinned as mshvPinnedModel, OUTCOME_NAMES, pinnedLayout } from '../model/scenarios/mshv-pinned.js'
import { REGION_MOVABLE } from '../model/primitives/region.js'
import { gmemLayout, kvmGmemBinding as kvmGmemBindingModel } from '../model/scenarios/kvm-gmem-binding.js'
import { eptHugeCoverage, eptHugeMappingAligned, eptMappingWithinFolio, eptNoStaleMapping, mappingWithinSlot } from './ept-invariants.js'
import { conversionLayout, kvmGmemConversion as kvmGmemConversionModel } from '../model/scenarios/kvm-gmem-conversion/index.js'
import {
  homogeneousAttributes,
  mappingContiguous,
  noPoisonedPageMapped,
  noSharedMappedPrivate,
  septHugeCoverage,
  septMappingWithinFolio,
  septNoStaleMapping,
} from './sept-invariants.js'
import { mmioLayout, mmioLocks, mshvMmio as mshvMmioModel } from '../model/scenarios/mshv-mmio/index.js'
import { lockOrderConsistent } from './lock-order.js'
import { mmioMappingCorrect, noDanglingMmioMapping, regionListRaceFree } from './mmio-invariants.js'
import { hugeCoverage } from './huge-coverage.js'
import { ioctlOutcomeDeterministic } from './ioctl-outcome-deterministic.js'
import { noStaleMappingPages } from './no-stale-mapping.js'
import { kvmMmuLayout, kvmLocks, kvmMmuNotifier as kvmMmuNotifierModel, type KvmMmuContext } from '../model/scenarios/kvm-mmu-notifier/index.js'
import { inProgressBalanced, kvmMappingWithinFolio, kvmNoFreedPageMapped, kvmNoStaleMapping } from './kvm-invariants.js'
import {
  hugeMappingAligned,
  mapHypercallSucceeds,
  mappingWithinFolio,
  noFreedPageMapped,
  noRegionUseAfterFree,
  noSleepInAtomic,
  noStaleMapping,
} from './slat-invariants.js'

/** A thread's name by its tid (the index the scenarios give as `tid`), for messages. */
const threadNamer = (program: Program<any>) => (tid: number) => program.threads[tid]?.name ?? `thread ${tid}`

export const faultInvalidate: Scenario = { ...faultInvalidateModel, properties: () => ({ invariants: [noStaleMappingPages()] }) }

export const mshvMovable: Scenario = {
  ...mshvMovableModel,
  processes: ['vp', 'madvise_dontneed', 'migrate_pages', 'split_huge_pmd', 'split_folio', 'khugepaged', 'oom_reaper', 'vmm'],
  properties(p, _v, _ctx, program) {
    const l = movableLayout(p)
    const thread = threadNamer(program)
    return {
      invariants: [
        noStaleMapping(l),
        noFreedPageMapped(l),
        mappingWithinFolio(l),
        hugeMappingAligned(l),
        mapHypercallSucceeds(thread),
        noRegionUseAfterFree(thread),
        noSleepInAtomic(thread),
        { id: 'gpa-intercept-handled', description: 'no GPA intercept fails in hmm_range_fault (-EFAULT: the VMA is gone; -EPERM: it is read-only), after which mshv_region_handle_gfn_fault WARNs and returns false', check: (w: any) => (w.faultFailed ? `hmm_range_fault failed in ${thread(w.faultFailed - 1)}'s fault path: GPA intercept not handled (WARN_ONCE)` : null) },
      ],
      evidence: [lockOrderConsistent(movableLocks.decls)],
    }
  },
}

export const mshvPinned: Scenario = {
  ...mshvPinnedModel,
  properties: (p) => ({
    invariants: [hugeMappingAligned(pinnedLayout(p)), mappingWithinFolio(pinnedLayout(p))],
    outcomes: [
      ioctlOutcomeDeterministic<State<any>>(
        (w) => (w.regionKind === REGION_MOVABLE ? 'movable region' : 'pinned region'),
        (w) => OUTCOME_NAMES[w.ioctl as number],
      ),
    ],
    metrics: [hugeCoverage(pinnedLayout(p))],
  }),
}

export const kvmGmemBinding: Scenario = {
  ...kvmGmemBindingModel,
  properties(p) {
    const l = gmemLayout(p)
    return {
      invariants: [eptHugeMappingAligned(l), eptMappingWithinFolio(l), mappingWithinSlot(l), eptNoStaleMapping(l)],
      metrics: [eptHugeCoverage(l)],
    }
  },
}

export const kvmGmemConversion: Scenario = {
  ...kvmGmemConversionModel,
  properties(p) {
    const l = conversionLayout(p.H)
    return {
      invariants: [
        septMappingWithinFolio(l),
        homogeneousAttributes(l),
        mappingContiguous(l),
        noPoisonedPageMapped(l),
        septNoStaleMapping(l),
        noSharedMappedPrivate(l),
        inProgressBalanced(),
      ],
      metrics: [septHugeCoverage(l)],
    }
  },
}

export const mshvMmio: Scenario = {
  ...mshvMmioModel,
  properties(p, _v, _ctx, program) {
    const thread = threadNamer(program)
    return {
      invariants: [
        noSleepInAtomic(thread),
        regionListRaceFree(thread),
        noRegionUseAfterFree(thread),
        noDanglingMmioMapping(mmioLayout(p.gfns)),
        mmioMappingCorrect(mmioLayout(p.gfns)),
      ],
      evidence: [lockOrderConsistent(mmioLocks.decls)],
    }
  },
}

export const kvmMmuNotifier: Scenario = {
  ...kvmMmuNotifierModel,
  properties(p, _v, ctx, program) {
    const l = kvmMmuLayout(p)
    return {
      invariants: [kvmNoStaleMapping(l, (ctx as KvmMmuContext).slots), kvmNoFreedPageMapped(l), kvmMappingWithinFolio(l), inProgressBalanced(), noSleepInAtomic(threadNamer(program))],
      evidence: [lockOrderConsistent(kvmLocks.decls)],
    }
  },
}

/** The built-in scenarios, in the order the verdict matrix shows them. */
export const catalog: readonly Scenario[] = [faultInvalidate, mshvMovable, mshvPinned, kvmGmemBinding, kvmGmemConversion, mshvMmio, kvmMmuNotifier]

export function findScenario(name: string): Scenario {
  const s = catalog.find((e) => e.name === name)
  if (!s) throw new BadInput(`unknown scenario '${name}' (scenarios: ${catalog.map((e) => e.name).join(', ')})`)
  return s
}

export interface Instance {
  readonly scenario: Scenario
  readonly name: string
  readonly variant: string
  readonly params: Params
  readonly model: CompiledModel<any>
  /** Identifies the model a trace was made on: scenario, variant and what replay depends on (see `CompiledModel.structure`). */
  readonly hash: string
  /** `process.label` of each step the variant's patches replace or add. */
  readonly patched: readonly string[]
}

/** One scenario (a built-in by name, or a scenario object) for one variant and parameter set, compiled. */
export function instantiate(
  scenario: string | Scenario,
  variant?: string,
  given: Readonly<Record<string, number | string>> = {},
): Instance {
  const s = typeof scenario === 'string' ? findScenario(scenario) : scenario
  const v = resolveVariant(s, variant)
  const params = resolveParams(s, given)
  const built = buildVariant(s, v, params)
  const model = compile(`${s.name}/${v}`, built.program, {
    invariants: built.properties.invariants ?? [],
    outcomes: built.properties.outcomes,
    evidence: built.properties.evidence,
    metrics: built.properties.metrics,
  })
  const hash = createHash('sha256')
    .update(JSON.stringify({ scenario: s.name, variant: v, structure: model.structure }))
    .digest('hex')
    .slice(0, 16)
  return { scenario: s, name: s.name, variant: v, params, model, hash, patched: built.patched }
}
