/**
 * The reference model: "fault vs invalidate", the mmu_interval_notifier
 * protocol as MSHV's movable regions use it, exactly the abstract transition
 * system of shared/reference/README.md (fault_invalidate.pml), so that its
 * state and transition counts can be compared with SPIN's.
 *
 * Kept deliberately abstract (see the README's "Modelling choices"): the seq
 * is bumped once per invalidation inside the callback, as MSHV's
 * mshv_region_interval_invalidate() does with mmu_interval_set_seq(); the
 * host entry is cleared before the callback runs, and `pending` exempts that
 * window. Dead locals are reset inside the step that kills them, as the
 * Promela model does, because it changes the counts.
 */
import { process } from '../process.js'
import type { Params, Scenario } from '../scenario.js'
import { array, u8, type ValueOf } from '../schema.js'

/**
 * The ranges are the model's own bounds (they set how many bits a state
 * takes, and a step that leaves one breaks field-in-range): at most V*F
 * fault attempts each allocate at most one pfn, and I*K invalidations each
 * bump seq once.
 */
interface Bounds {
  readonly P: number
  readonly V: number
  readonly I: number
  readonly K: number
  readonly F: number
}
const globals = ({ P, V, I, K }: Bounds) => ({
  /** Host page table of the VMM: page -> pfn, 0 = none. */
  host: array(P, u8(P + I * K)),
  /** SLAT: page -> pfn, 0 = none. */
  slat: array(P, u8(P + I * K)),
  /** The interval notifier's sequence: +1 per invalidation. */
  seq: u8(I * K),
  /** Pfns are never reused, so a pfn missing from `host` has been freed. */
  nextPfn: u8(P + I * K + 1),
  mmReaders: u8(V),
  mmWriter: u8(1),
  /** region->mutex */
  mutex: u8(1),
  /** Ghost: 1 + page of the invalidation between clearing host and clearing SLAT. */
  pending: u8(P),
})
export type FaultInvalidateWorld = ValueOf<ReturnType<typeof globals>>

const faultLocals = ({ P, I, K, F }: Bounds) => ({ i: u8(P - 1), s: u8(I * K), p: u8(P + I * K), it: u8(F) })
const invalLocals = ({ P, K }: Bounds) => ({ j: u8(P - 1), k: u8(K) })
type FaultLocals = ValueOf<ReturnType<typeof faultLocals>>
type InvalLocals = ValueOf<ReturnType<typeof invalLocals>>
type W = FaultInvalidateWorld

/** The GPA intercept's fault path: mshv_region_hmm_fault_and_lock() and the SLAT update under region->mutex. */
function fault(b: Bounds, retry: boolean) {
  const { P, F } = b
  return process<W, FaultLocals>({
    name: 'fault',
    locals: faultLocals(b),
    start: 'mmu_interval_read_begin',
    steps: {
      mmu_interval_read_begin: {
        choices: () => P,
        run(w, me, page) {
          me.i = page
          me.s = retry ? w.seq : 0
          return 'mmap_read_lock'
        },
        text: (w, _me, page) => `mmu_interval_read_begin(page ${page}) = ${retry ? w.seq : '-'}`,
      },
      /** After -EBUSY: the loop in mshv_region_hmm_fault_and_lock() starts over on the same page. */
      read_begin_again: {
        run(w, me) {
          me.s = w.seq
          return 'mmap_read_lock'
        },
        text: (w, me) => `mmu_interval_read_begin(page ${me.i}) = ${w.seq}`,
      },
      mmap_read_lock: {
        guard: (w) => w.mmWriter === 0,
        run(w) {
          w.mmReaders++
          return 'hmm_range_fault'
        },
      },
      hmm_range_fault: {
        run(w, me) {
          if (w.host[me.i] === 0) w.host[me.i] = w.nextPfn++
          me.p = w.host[me.i]
          return 'mmap_read_unlock'
        },
        text: (_w, me) => `hmm_range_fault(page ${me.i})`,
      },
      mmap_read_unlock: {
        run(w) {
          w.mmReaders--
          return 'mutex_lock'
        },
      },
      mutex_lock: {
        guard: (w) => w.mutex === 0,
        run(w) {
          w.mutex = 1
          return retry ? 'mmu_interval_read_retry' : 'map_gpa_pages'
        },
        text: () => 'mutex_lock(&region->mutex)',
      },
      mmu_interval_read_retry: {
        run(w, me) {
          if (w.seq !== me.s) {
            // -EBUSY: drop the mutex and start over.
            w.mutex = 0
            me.s = 0
            me.p = 0
            return 'read_begin_again'
          }
          me.s = 0
          return 'map_gpa_pages'
        },
        text: (w, me) => `mmu_interval_read_retry(seq ${me.s}) ${w.seq !== me.s ? '-> -EBUSY' : '-> ok'}`,
      },
      map_gpa_pages: {
        run(w, me) {
          w.slat[me.i] = me.p
          me.i = 0
          me.p = 0
          return 'mutex_unlock'
        },
        text: (_w, me) => `map_gpa_pages(page ${me.i} -> pfn ${me.p})`,
      },
      mutex_unlock: {
        run(w, me) {
          w.mutex = 0
          me.it++
          return me.it < F ? 'mmu_interval_read_begin' : 'done'
        },
        text: () => 'mutex_unlock(&region->mutex)',
      },
    },
  })
}

/** A host mm event (munmap, migration) that zaps one page, and MSHV's invalidate callback. */
function invalidator(b: Bounds) {
  const { P, K } = b
  return process<W, InvalLocals>({
    name: 'invalidate',
    locals: invalLocals(b),
    start: 'mmap_write_lock',
    steps: {
      mmap_write_lock: {
        guard: (w) => w.mmWriter === 0 && w.mmReaders === 0,
        choices: () => P,
        run(w, me, page) {
          w.mmWriter = 1
          me.j = page
          return 'zap_pte'
        },
        text: (_w, _me, page) => `mmap_write_lock; zap page ${page}`,
      },
      zap_pte: {
        run(w, me) {
          w.host[me.j] = 0
          w.pending = me.j + 1
          return 'mutex_lock'
        },
        text: (w, me) => `zap_pte(page ${me.j})${w.host[me.j] ? `: pfn ${w.host[me.j]} freed` : ''}`,
      },
      mutex_lock: {
        guard: (w) => w.mutex === 0,
        run(w) {
          w.mutex = 1
          return 'mmu_interval_set_seq'
        },
        text: () => 'invalidate: mutex_lock(&region->mutex)',
      },
      mmu_interval_set_seq: {
        run(w) {
          w.seq++
          return 'unmap_gpa_pages'
        },
        text: (w) => `mmu_interval_set_seq(${w.seq + 1})`,
      },
      unmap_gpa_pages: {
        run(w, me) {
          w.slat[me.j] = 0
          w.pending = 0
          me.j = 0
          return 'mutex_unlock'
        },
        text: (_w, me) => `unmap_gpa_pages(page ${me.j})`,
      },
      mutex_unlock: {
        run(w) {
          w.mutex = 0
          return 'mmap_write_unlock'
        },
        text: () => 'invalidate: mutex_unlock(&region->mutex)',
      },
      mmap_write_unlock: {
        run(w, me) {
          w.mmWriter = 0
          me.k++
          return me.k < K ? 'mmap_write_lock' : 'done'
        },
      },
    },
  })
}

export const faultInvalidate: Scenario<ReturnType<typeof globals>> = {
  name: 'fault-invalidate',
  title: 'Reference model: fault vs invalidate (mmu_interval_notifier)',
  description:
    'Exactly the transition system of shared/reference/fault_invalidate.pml (the engine\'s cross-check against SPIN): an abstraction of the mmu_interval_notifier protocol of MSHV movable regions, with no odd/even seq, no read_begin wait, no -EBUSY, and the host PTE cleared before the callback (the kernel calls back first). Its verdicts are the kernel\'s; its step order is the reference model\'s.',
  params: [
    { name: 'P', default: 2, min: 1, max: 8, description: 'pages' },
    { name: 'V', default: 2, min: 1, max: 4, description: 'fault threads' },
    { name: 'I', default: 1, min: 1, max: 3, description: 'invalidator threads' },
    { name: 'K', default: 1, min: 1, max: 4, description: 'invalidations per invalidator' },
    { name: 'F', default: 1, min: 1, max: 4, description: 'faults per fault thread' },
  ],
  variants: [
    { name: 'retry', description: 'mmu_interval_read_retry() under the mutex, retry on -EBUSY (correct)', expect: { violates: [] } },
    { name: 'no-retry', description: 'the seq re-check removed (the bug the protocol prevents)', expect: { violates: ['no-stale-mapping'] } },
  ],
  // Pages are the rows; a pfn missing from `host` has been freed.
  memoryMap: (p: Params) => ({
    rows: p.P,
    lanes: [
      { kind: 'leaf', label: 'SLAT', field: 'slat' },
      { kind: 'host', label: 'host page table', pte: 'host' },
    ],
  }),
  build(params: Params, variant: string) {
    const { P, V, I, K, F } = params
    const retry = variant === 'retry'
    const bounds = { P, V, I, K, F }
    const f = fault(bounds, retry)
    const inv = invalidator(bounds)
    return {
      globals: globals(bounds),
      init: (w) => {
        w.nextPfn = 1
      },
      threads: [
        ...Array.from({ length: V }, (_, t) => ({ name: `fault${t}`, process: f })),
        ...Array.from({ length: I }, (_, t) => ({ name: `inval${t}`, process: inv })),
      ],
      // No step or invariant tells two fault threads (or two invalidators) apart: symmetry reduction may rename them.
      symmetric: [Array.from({ length: V }, (_, t) => `fault${t}`), Array.from({ length: I }, (_, t) => `inval${t}`)],
    }
  },
}
