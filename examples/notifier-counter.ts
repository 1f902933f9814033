/**
 * A small scenario from scratch, on mapcheck's primitives: one fault path
 * and one invalidation, as KVM pairs them (mmu_invalidate_in_progress,
 * mmu_invalidate_seq, the retry check under mmu_lock), in ~100 lines.
 *
 *   mapcheck check ./notifier-counter.ts                    # upstream: holds
 *   mapcheck compare ./notifier-counter.ts                  # every variant
 *   mapcheck check ./notifier-counter.ts --variant double-end   # field-in-range: in_progress goes below 0
 *
 * Variants are patches of `upstream`: `no-retry` deletes the fault's
 * re-check; `double-end` ends the invalidation twice (an unbalanced
 * invalidate_range_end), and the in-progress count going negative is
 * itself the bug, reported as a violation of field-in-range with a trace.
 */
import { Locks, lockFields, lockLocals, process, scenario, u8, type Invariant, type LockHolder, type State } from 'mapcheck'

const locks = new Locks([{ name: 'mmu_lock', kind: 'spinlock' }])
const MMU_LOCK = 0

const globals = {
  ...lockFields(locks.decls),
  /** The host's pfn for the page (0 = none); pfns are never reused. */
  host: u8(3),
  /** The secondary MMU's (EPT's) pfn for the page. */
  spte: u8(3),
  nextPfn: u8(3),
  /** kvm->mmu_invalidate_seq */
  seq: u8(3),
  /** kvm->mmu_invalidate_in_progress: never below 0, so an unbalanced end breaks field-in-range. */
  inProgress: u8(2),
}
type W = { host: number; spte: number; nextPfn: number; seq: number; inProgress: number } & Parameters<typeof locks.free>[0]
type Fault = LockHolder & { seq: number; pfn: number }
type Inval = LockHolder

/** kvm_faultin_pfn outside mmu_lock, then is_page_fault_stale under it. */
const fault = process<W, Fault>()({
  name: 'fault',
  locals: { ...lockLocals, seq: u8(3), pfn: u8(3) },
  start: 'kvm_faultin_pfn',
  steps: {
    kvm_faultin_pfn: {
      run(w, me) {
        me.seq = w.seq
        if (w.host === 0 && w.nextPfn < 3) w.host = ++w.nextPfn
        me.pfn = w.host
        return 'write_lock'
      },
      text: (w) => `kvm_faultin_pfn() = pfn ${w.host || 'new'}`,
    },
    write_lock: locks.lockStep(MMU_LOCK, 'is_page_fault_stale'),
    is_page_fault_stale: {
      run(w, me) {
        if (w.inProgress !== 0 || w.seq !== me.seq || me.pfn === 0) return 'retry'
        return 'set_spte'
      },
    },
    set_spte: {
      run(w, me) {
        w.spte = me.pfn
        return 'write_unlock'
      },
      text: (_w, me) => `set_spte(pfn ${me.pfn})`,
    },
    retry: locks.unlockStep(MMU_LOCK, 'done'),
    write_unlock: locks.unlockStep(MMU_LOCK, 'done'),
  },
})

/** An unmap of the page: invalidate_range_start zaps the SPTE, the host frees the page, range_end. */
const invalidate = process<W, Inval>()({
  name: 'invalidate',
  locals: lockLocals,
  start: 'invalidate_range_start',
  steps: {
    invalidate_range_start: locks.lockStep(MMU_LOCK, 'zap_spte'),
    zap_spte: {
      run(w, me) {
        w.inProgress++
        w.spte = 0
        locks.unlock(w, me, MMU_LOCK)
        return 'zap_pte'
      },
      text: () => 'mmu_invalidate_begin; kvm_unmap_gfn_range; write_unlock(mmu_lock)',
    },
    zap_pte: {
      run(w) {
        w.host = 0
        return 'invalidate_range_end'
      },
    },
    invalidate_range_end: locks.lockStep(MMU_LOCK, 'mmu_invalidate_end'),
    mmu_invalidate_end: {
      run(w, me) {
        w.seq++
        w.inProgress--
        locks.unlock(w, me, MMU_LOCK)
        return 'done'
      },
    },
  },
})

/** The secondary MMU never maps a pfn the host no longer maps. */
const noStaleSpte: Invariant<State<W>> = {
  id: 'no-stale-mapping',
  description: 'the SPTE maps only the pfn the host maps',
  check: (s) => (s.spte !== 0 && s.spte !== s.host ? `the SPTE maps pfn ${s.spte} but the host maps ${s.host ? `pfn ${s.host}` : 'nothing'}` : null),
}

export default scenario({
  name: 'notifier-counter',
  title: 'A KVM-style fault against one invalidation (review-file example)',
  description: 'kvm_faultin_pfn / is_page_fault_stale against invalidate_range_start/end with mmu_invalidate_seq and in_progress.',
  params: [],
  variants: [
    { name: 'upstream', description: 'the fault re-checks in_progress and the seq under mmu_lock' },
    {
      name: 'no-retry',
      description: 'the re-check deleted',
      steps: { fault: { write_lock: locks.lockStep(MMU_LOCK, 'set_spte'), is_page_fault_stale: null, retry: null } },
    },
    {
      name: 'double-end',
      description: 'invalidate_range_end called twice',
      steps: {
        invalidate: {
          mmu_invalidate_end: {
            run(w: W, me: Inval) {
              w.seq++
              w.inProgress -= 2
              locks.unlock(w, me, MMU_LOCK)
              return 'done'
            },
          },
        },
      },
    },
  ],
  build: () => ({
    globals,
    threads: [
      { name: 'vcpu0', process: fault, locals: { tid: 0 } },
      { name: 'mmu0', process: invalidate, locals: { tid: 1 } },
    ],
  }),
  properties: () => ({ invariants: [noStaleSpte] }),
})
