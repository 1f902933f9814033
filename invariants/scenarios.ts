/**
 * The built-in scenarios with the invariants checked of each, and how one
 * is instantiated for a parameter set and variant. This is where the kernel
 * model (model/) meets what is checked of it.
 */
import { createHash } from 'node:crypto'
import { BadInput } from '../explorer/errors.js'
import type { EvidenceProperty, Invariant, Metric, OutcomeProperty } from '../explorer/model.js'
import { compile, type CompiledModel } from '../model/compile.js'
import type { State } from '../model/process.js'
import { resolveParams, resolveVariant, type Params, type Scenario } from '../model/scenario.js'
import { faultInvalidate } from '../model/scenarios/fault-invalidate.js'
import { movableLayout, movableLocks, mshvMovable } from '../model/scenarios/mshv-movable.js'
import { mshvPinned, OUTCOME_NAMES, pinnedLayout } from '../model/scenarios/mshv-pinned.js'
import { REGION_MOVABLE } from '../model/primitives/region.js'
import { gmemLayout, kvmGmemBinding } from '../model/scenarios/kvm-gmem-binding.js'
import { eptHugeCoverage, eptHugeMappingAligned, eptMappingWithinFolio, eptNoStaleMapping, mappingWithinSlot } from './ept-invariants.js'
import { conversionLayout, kvmGmemConversion } from '../model/scenarios/kvm-gmem-conversion.js'
import {
  homogeneousAttributes,
  mappingContiguous,
  noPoisonedPageMapped,
  noSharedMappedPrivate,
  septHugeCoverage,
  septMappingWithinFolio,
  septNoStaleMapping,
} from './sept-invariants.js'
import { mmioLayout, mmioLocks, mshvMmio } from '../model/scenarios/mshv-mmio.js'
import { lockOrderConsistent } from './lock-order.js'
import { noDanglingMmioMapping, regionListRaceFree } from './mmio-invariants.js'
import { hugeCoverage } from './huge-coverage.js'
import { ioctlOutcomeDeterministic } from './ioctl-outcome-deterministic.js'
import { noStaleMappingPages } from './no-stale-mapping.js'
import {
  hugeMappingAligned,
  mapHypercallSucceeds,
  mappingWithinFolio,
  noFreedPageMapped,
  noRegionUseAfterFree,
  noSleepInAtomic,
  noStaleMapping,
} from './slat-invariants.js'

export interface CatalogEntry<W = any> {
  readonly scenario: Scenario<any>
  /** The invariants checked on every state (no-deadlock is always checked by the engine). */
  readonly invariants: (params: Params, variant: string) => readonly Invariant<State<W>>[]
  /** Properties of the whole exploration, judged on terminal states. */
  readonly outcomes?: (params: Params, variant: string) => readonly OutcomeProperty<State<W>>[]
  /** Properties of the whole exploration, from evidence gathered on every state. */
  readonly evidence?: (params: Params, variant: string) => readonly EvidenceProperty<State<W>>[]
  readonly metrics?: (params: Params, variant: string) => readonly Metric<State<W>>[]
}

export const catalog: readonly CatalogEntry[] = [
  { scenario: faultInvalidate, invariants: () => [noStaleMappingPages()] },
  {
    scenario: mshvMovable,
    invariants: (p, v) => {
      const l = movableLayout(p)
      const names = mshvMovable.build(p, v).threads.map((t) => t.name)
      const thread = (tid: number) => names[tid] ?? `thread ${tid}`
      return [
        noStaleMapping(l),
        noFreedPageMapped(l),
        mappingWithinFolio(l),
        hugeMappingAligned(l),
        mapHypercallSucceeds(thread),
        noRegionUseAfterFree(thread),
        noSleepInAtomic(thread),
      ]
    },
    evidence: () => [lockOrderConsistent(movableLocks.decls)],
  },
  {
    scenario: mshvPinned,
    invariants: (p) => [hugeMappingAligned(pinnedLayout(p)), mappingWithinFolio(pinnedLayout(p))],
    outcomes: () => [
      ioctlOutcomeDeterministic<State<any>>(
        (w) => (w.regionKind === REGION_MOVABLE ? 'movable region' : 'pinned region'),
        (w) => OUTCOME_NAMES[w.ioctl as number],
      ),
    ],
    metrics: (p) => [hugeCoverage(pinnedLayout(p))],
  },
  {
    scenario: kvmGmemBinding,
    invariants: (p) => {
      const l = gmemLayout(p)
      return [eptHugeMappingAligned(l), eptMappingWithinFolio(l), mappingWithinSlot(l), eptNoStaleMapping(l)]
    },
    metrics: (p) => [eptHugeCoverage(gmemLayout(p))],
  },
  {
    scenario: kvmGmemConversion,
    invariants: (p) => {
      const l = conversionLayout(p.H)
      return [
        septMappingWithinFolio(l),
        homogeneousAttributes(l),
        mappingContiguous(l),
        noPoisonedPageMapped(l),
        septNoStaleMapping(l),
        noSharedMappedPrivate(l),
      ]
    },
    metrics: (p) => [septHugeCoverage(conversionLayout(p.H))],
  },
  {
    scenario: mshvMmio,
    invariants: (p, v) => {
      const l = mmioLayout(p.gfns)
      const names = mshvMmio.build(p, v).threads.map((t) => t.name)
      const thread = (tid: number) => names[tid] ?? `thread ${tid}`
      return [noSleepInAtomic(thread), regionListRaceFree(thread), noRegionUseAfterFree(thread), noDanglingMmioMapping(l)]
    },
    evidence: () => [lockOrderConsistent(mmioLocks.decls)],
  },
]

export function findScenario(name: string): CatalogEntry {
  const entry = catalog.find((e) => e.scenario.name === name)
  if (!entry) {
    throw new BadInput(`unknown scenario '${name}' (scenarios: ${catalog.map((e) => e.scenario.name).join(', ')})`)
  }
  return entry
}

export interface Instance {
  readonly entry: CatalogEntry
  readonly scenario: string
  readonly variant: string
  readonly params: Params
  readonly model: CompiledModel<any>
  /** Identifies the model a trace was made on: scenario, variant, parameters and compiled shape. */
  readonly hash: string
}

export function instantiate(
  name: string,
  variant?: string,
  given: Readonly<Record<string, number | string>> = {},
): Instance {
  const entry = findScenario(name)
  const v = resolveVariant(entry.scenario, variant)
  const params = resolveParams(entry.scenario, given)
  const model = compile(`${name}/${v}`, entry.scenario.build(params, v), {
    invariants: entry.invariants(params, v),
    outcomes: entry.outcomes?.(params, v),
    evidence: entry.evidence?.(params, v),
    metrics: entry.metrics?.(params, v),
  })
  const hash = createHash('sha256')
    .update(JSON.stringify({ scenario: name, variant: v, params, structure: model.structure }))
    .digest('hex')
    .slice(0, 16)
  return { entry, scenario: name, variant: v, params, model, hash }
}
