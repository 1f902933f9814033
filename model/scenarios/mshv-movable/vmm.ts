/**
 * The VMM destroying the region: mshv_partition_destroy_region() as posted
 * in v6. The region leaves the partition's list, the notifier is removed,
 * then the SLAT is unmapped and the region freed, with no reference held
 * by the fault path and without region->mutex.
 *
 * Each statement is a step made with the label it goes to, so a patch
 * (variants.ts) reorders them by giving them other gotos, and the build's
 * label check reads the goto from the step's `targets`.
 */
import { notifierRemove as removeInterval } from '../../primitives/mmu-notifier.js'
import { REGION_FREED, REGION_UNLINKED } from '../../primitives/region.js'
import { unmapGpaPages, type Leaf } from '../../primitives/slat.js'
import { process, type Process, type Step } from '../../process.js'
import { hex, vmmLocals, type MovableContext, type MovableWorld as W, type VmmLocals } from './world.js'

type VmmStepTo<K extends string> = Step<W, VmmLocals, K>

/** hlist_del(&region->hnode): the fault path no longer finds the region. */
export const hlistDel = <K extends string>(then: K): VmmStepTo<K> => ({
  targets: [then],
  run(w) {
    w.regionState = REGION_UNLINKED
    return then
  },
  text: () => 'mshv_partition_destroy_region: hlist_del(&region->hnode)',
})

/** mmu_interval_notifier_remove(): deferred while the mm is invalidating (wait_event, until invalidate_seq moves on). */
export const notifierRemove = <K extends string>(then: K): VmmStepTo<K | 'wait_event'> => ({
  targets: ['wait_event', then],
  run(w, me) {
    // The interval leaves the tree now, or, while the mm invalidates, at mn_itree_inv_end; the remover waits for that.
    const seq = removeInterval(w)
    if (seq !== 0) {
      me.seq = seq
      return 'wait_event'
    }
    return then
  },
})

/** mmu_interval_notifier_remove(), woken: the notifier is removed. */
export const notifierRemoveWoken = <K extends string>(then: K): VmmStepTo<K> => ({
  targets: [then],
  guard: (w, me) => w.mmSeq !== me.seq,
  run(_w, me) {
    me.seq = 0
    return then
  },
  text: () => 'mmu_interval_notifier_remove: woken, removed',
})

/** hv_call_unmap_gpa_pages() over the whole region. */
export const unmapRegion = <K extends string>(ctx: MovableContext, then: K): VmmStepTo<K> => ({
  targets: [then],
  run(w) {
    unmapGpaPages(w.slat as Leaf[], 0, ctx.l.N)
    return then
  },
  text: () => `hv_call_unmap_gpa_pages(gfn ${hex(ctx.l.startGfn)}, ${ctx.l.N} pages)`,
})

/** mshv_region_invalidate(): pages[] cleared. */
export const regionInvalidate = <K extends string>(ctx: MovableContext, then: K): VmmStepTo<K> => ({
  targets: [then],
  run(w) {
    for (let i = 0; i < ctx.l.N; i++) w.pages[i] = 0
    return then
  },
})

export function vmm(ctx: MovableContext): Process<W, VmmLocals> {
  return process<W, VmmLocals>()({
    name: 'vmm',
    locals: vmmLocals,
    start: 'hlist_del',
    steps: {
      hlist_del: hlistDel('mmu_interval_notifier_remove'),
      mmu_interval_notifier_remove: notifierRemove('hv_call_unmap_gpa_pages'),
      wait_event: notifierRemoveWoken('hv_call_unmap_gpa_pages'),
      hv_call_unmap_gpa_pages: unmapRegion(ctx, 'mshv_region_invalidate'),
      mshv_region_invalidate: regionInvalidate(ctx, 'vfree'),
      vfree: {
        run(w) {
          w.regionState = REGION_FREED
          return 'done'
        },
        text: () => 'vfree(region)',
      },
    },
  })
}
