/**
 * mapcheck's public API: what a review file imports, and what the built-in
 * scenarios are written on.
 *
 *   import { variant, mshvMovable, movableLocks } from 'mapcheck'
 *
 * - builders: `scenario`, `variant`, `process`, the world's schema (`u8`,
 *   `i8`, `int`, `array`, `struct`, and `threadId`/`threadRef` for fields
 *   naming a thread, which symmetry reduction renames);
 * - the kernel primitives (folios, host page table, SLAT, mmu_interval_notifier,
 *   locks, lockset, regions, the MSHV region helpers, KVM's gmem rules);
 * - the invariant library and the built-in scenarios with their helpers;
 * - the commands as functions: `check`, `compare`, `replay`, `loadScenarios`,
 *   each returning what the CLI prints with `--json`.
 */

// Builders
export { scenario, variant, allParams, buildVariant, isPatch, mergePatches, scenariosOf } from './model/scenario.js'
export type { BuildContext, BuiltVariant, ParamSpec, Params, Expectation, Patch, PropertySet, Scenario, StepPatch, Variant, VariantSpec } from './model/scenario.js'
export { DONE, process } from './model/process.js'
export { inferredMemoryMap } from './model/memory-map.js'
export type { FolioLane, HostLane, LeafLane, MapCell, MapLane, MemoryMap, RangeLane, ValueLane } from './model/memory-map.js'
export type { Process, ProcessAction, ProcessSpec, Program, State, Step, ThreadSpec, ThreadState } from './model/process.js'
export { array, i8, int, struct, threadId, threadRef, u8 } from './model/schema.js'
export type { ArrayField, Field, Fields, IntField, StructField, Value, ValueOf } from './model/schema.js'
export { compile, FIELD_IN_RANGE } from './model/compile.js'
export type { CompiledModel } from './model/compile.js'

// Kernel primitives
export * from './model/primitives/folio.js'
export * from './model/primitives/host-page-table.js'
export * from './model/primitives/layout.js'
export * from './model/primitives/locks.js'
export * from './model/primitives/lockset.js'
export * from './model/primitives/mmu-notifier.js'
export * from './model/primitives/mmu-notifier-hlist.js'
export * from './model/primitives/region.js'
export * from './model/primitives/slat.js'
export * from './model/drivers/mshv-regions.js'
export * from './model/kvm/gmem-binding-rules.js'
export * from './model/kvm/invalidation.js'
export * from './model/kvm/memory-attributes.js'
export * from './model/kvm/memslot-update.js'
export * from './model/kvm/memslots.js'
export * from './model/kvm/mmu-lock.js'
export * from './model/kvm/tdp-fault.js'

// Invariants
export * from './invariants/ept-invariants.js'
export * from './invariants/huge-coverage.js'
export * from './invariants/ioctl-outcome-deterministic.js'
export * from './invariants/lock-order.js'
export * from './invariants/mmio-invariants.js'
export * from './invariants/no-stale-mapping.js'
export * from './invariants/sept-invariants.js'
export * from './invariants/slat-invariants.js'

// The built-in scenarios (with their properties) and what their variants are written with
export { catalog, faultInvalidate, findScenario, instantiate, kvmGmemBinding, kvmGmemConversion, mshvMmio, mshvMovable, mshvPinned } from './invariants/scenarios.js'
export type { Instance } from './invariants/scenarios.js'
export { kvmMmuNotifier } from './invariants/scenarios.js'
export { movableLayout, movableLocks, MMAP_LOCK, REGION_MUTEX } from './model/scenarios/mshv-movable/index.js'
export type { EventLocals, MovableContext, MovableWorld, VmmLocals, VpLocals } from './model/scenarios/mshv-movable/index.js'
export { mmioLayout, mmioLocks } from './model/scenarios/mshv-mmio/index.js'
export { pinnedLayout, OUTCOME_NAMES } from './model/scenarios/mshv-pinned.js'
export { gmemLayout } from './model/scenarios/kvm-gmem-binding.js'
export { conversionLayout, conversionGlobals, PRIVATE, SHARED } from './model/scenarios/kvm-gmem-conversion/index.js'
export type { ConversionContext, ConversionLayout, ConversionWorld } from './model/scenarios/kvm-gmem-conversion/index.js'

// The engine
export type { EvidenceProperty, Invariant, Metric, Model, OutcomeProperty, StepLabel } from './explorer/model.js'
export type { Exploration, Violation, Verdict, Mode } from './explorer/result.js'
export { explore } from './explorer/explore.js'
export type { ExploreOptions } from './explorer/options.js'
/** How a parallel BFS worker rebuilds a model (`explore(model, { workers, recipe })`). */
export type { ModelRecipe } from './explorer/recipe.js'
export { findLivelock, NO_LIVELOCK } from './explorer/livelock.js'
export { BadInput, ModelError } from './explorer/errors.js'
export { shardPlan, shardOptions, type ShardPlan } from './explorer/swarm.js'

// The commands as functions
export { check, compare, expectVerdicts, loadScenarios, replay, VerdictMismatch } from './cli/api.js'
export { cellExpectation, mismatches } from './cli/expectations.js'
export type { Mismatch, MismatchKind } from './cli/expectations.js'
export type { CheckOptions } from './cli/api.js'
export type { CheckReport } from './cli/check.js'
export type { Comparison, VariantRow } from './cli/compare.js'
export { mergeShards, type Merged } from './cli/merge.js'
export { loadShardResult, type ShardResult } from './traces/shard-result.js'
