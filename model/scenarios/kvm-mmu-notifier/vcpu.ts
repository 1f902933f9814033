/**
 * A vCPU's EPT violation on ordinary memory, the x86 TDP MMU path
 * (arch/x86/kvm/mmu/mmu.c, kvm_tdp_page_fault -> kvm_tdp_mmu_page_fault):
 *
 *   fault->mmu_seq = kvm->mmu_invalidate_seq; smp_rmb();   kvm_mmu_faultin_pfn
 *   mmu_invalidate_retry_gfn_unsafe -> RET_PF_RETRY
 *   __kvm_faultin_pfn -> hva_to_pfn (may sleep: outside mmu_lock)
 *   read_lock(&kvm->mmu_lock)                                kvm_tdp_mmu_page_fault
 *   is_page_fault_stale -> RET_PF_RETRY
 *   kvm_tdp_mmu_map: kvm_mmu_hugepage_adjust, install the SPTE
 *   read_unlock(&kvm->mmu_lock)
 *   kvm_mmu_finish_page_fault -> kvm_release_faultin_page
 *
 * RET_PF_RETRY re-enters the guest, which faults on the same gfn again.
 * (kvm_mmu_faultin_pfn checks mmu_invalidate_retry_gfn_unsafe before and
 * after getting the pfn; the step is atomic, so once is the same.)
 *
 * The fault runs in an SRCU read section (kvm_vcpu_srcu_read_lock) and
 * looks its memslot up once (kvm_mmu_do_page_fault: fault.slot =
 * kvm_vcpu_gfn_to_memslot), keeping that struct to the end: no memslot is
 * an emulated MMIO access (kvm_handle_noslot_fault: nothing mapped here),
 * the INVALID copy of a slot being deleted is RET_PF_RETRY
 * (kvm_mmu_faultin_pfn), and lpage_info is the looked-up slot's.
 */
import { freeFolio, folioHead, FRAME_HUGE, isFreed } from '../../primitives/folio.js'
import { folioMapped } from '../../primitives/host-page-table.js'
import { isPageFaultStale } from '../../kvm/invalidation.js'
import { MEMSLOT_INVALID, srcuReadLock, srcuReadUnlock, vcpuGfnToMemslot } from '../../kvm/memslot-update.js'
import { faultinChoices, hvaToPfn, kvmMmuHugepageAdjust, kvmTdpMmuMap, PG_LEVEL_2M } from '../../kvm/tdp-fault.js'
import { process, type Process } from '../../process.js'
import { hex, kvmLocks, MMAP_LOCK, mmuLock, refHeld, vcpuLocals, type KvmMmuContext, type KvmMmuWorld as W, type VcpuLocals } from './world.js'

/** Region pages the guest may fault on: no SPTE maps them. */
const unmapped = (ctx: KvmMmuContext, w: W): number[] => {
  const out: number[] = []
  for (let i = 0; i < ctx.l.N; i++) if (w.spte[i] === 0) out.push(i)
  return out
}

export function vcpu(ctx: KvmMmuContext): Process<W, VcpuLocals> {
  const { l } = ctx
  const gfn = (me: VcpuLocals) => l.startGfn + me.gfn
  /** The fault's memslot (lpage_info is this struct's). */
  const faultSlot = (me: VcpuLocals) => (me.slot ? [ctx.slots[me.slot - 1]] : [])
  const next = (me: VcpuLocals) => (me.touched < ctx.touches ? 'touch' : 'done')
  /** kvm_mmu_do_page_fault in a fresh SRCU read section: the memslot lookup, and what kvm_mmu_faultin_pfn does when there is none or it is INVALID. */
  const doPageFault = (w: W, me: VcpuLocals): 'mmu_invalidate_seq' | 'touch' | 'done' | 'kvm_mmu_do_page_fault' => {
    srcuReadLock(w, me.vcpu)
    const s = vcpuGfnToMemslot(ctx.slots, w, gfn(me))
    if (s && w.memslotState[s.id] !== MEMSLOT_INVALID) {
      me.slot = s.id + 1
      return 'mmu_invalidate_seq'
    }
    srcuReadUnlock(w, me.vcpu)
    me.slot = 0
    // KVM_MEMSLOT_INVALID: RET_PF_RETRY, the guest faults on the gfn again; no memslot: emulated MMIO, nothing mapped.
    return s ? 'kvm_mmu_do_page_fault' : next(me)
  }
  const lookupText = (w: W, g: number): string => {
    const s = vcpuGfnToMemslot(ctx.slots, w, g)
    return !s ? ': no memslot, emulated MMIO' : w.memslotState[s.id] === MEMSLOT_INVALID ? `: slot ${s.id} KVM_MEMSLOT_INVALID, RET_PF_RETRY` : ''
  }
  return process<W, VcpuLocals>()({
    name: 'vcpu',
    locals: vcpuLocals,
    start: 'touch',
    gotos: ['mmu_invalidate_seq', 'kvm_mmu_do_page_fault'],
    steps: {
      /** The guest touches a gfn no SPTE maps: an EPT violation. */
      touch: {
        choices: (w) => Math.max(1, unmapped(ctx, w).length),
        run(w, me, choice) {
          const free = unmapped(ctx, w)
          if (free.length === 0) return 'done'
          me.gfn = free[choice]
          me.touched++
          return doPageFault(w, me)
        },
        text: (w, _me, choice) => {
          const free = unmapped(ctx, w)
          return free.length ? `EPT violation at gfn ${hex(l.startGfn + free[choice])}${lookupText(w, l.startGfn + free[choice])}` : 'every gfn mapped: nothing to fault'
        },
      },
      /** RET_PF_RETRY: the guest faults on the same gfn again, in a new SRCU read section. */
      kvm_mmu_do_page_fault: {
        run: (w, me) => doPageFault(w, me),
        text: (w, me) => `EPT violation at gfn ${hex(gfn(me))} again${lookupText(w, gfn(me))}`,
      },
      /** kvm_mmu_faultin_pfn: fault->mmu_seq = kvm->mmu_invalidate_seq; smp_rmb(). */
      mmu_invalidate_seq: {
        run(w, me) {
          me.seq = w.mmuInvalidateSeq
          return 'kvm_faultin_pfn'
        },
        text: (w, me) => `fault->mmu_seq = mmu_invalidate_seq (${w.mmuInvalidateSeq}), gfn ${hex(gfn(me))}`,
      },
      /** kvm_mmu_faultin_pfn: mmu_invalidate_retry_gfn_unsafe, then __kvm_faultin_pfn -> hva_to_pfn (get_user_pages: may sleep). */
      kvm_faultin_pfn: {
        // hva_to_pfn_fast (GUP-fast) reads a present PTE locklessly; an empty one takes get_user_pages' mmap_read_lock, which waits for a writer (khugepaged).
        guard: (w, me) => w.pte[me.gfn] !== 0 || kvmLocks.readable(w, MMAP_LOCK),
        choices: (w, me) => faultinChoices(l, w, me.gfn),
        run(w, me, choice) {
          if (ctx.mmu_invalidate_retry_gfn(w, me.seq, gfn(me))) {
            srcuReadUnlock(w, me.vcpu)
            me.slot = 0
            return 'kvm_mmu_do_page_fault'
          }
          kvmLocks.mightSleep(w, me, 'kvm_faultin_pfn (hva_to_pfn: get_user_pages)')
          me.pfn = hvaToPfn(l, w, w, me.gfn, choice)
          w.pageRef[me.vcpu] = me.pfn
          return 'read_lock'
        },
        text: (w, me, choice) =>
          ctx.mmu_invalidate_retry_gfn(w, me.seq, gfn(me))
            ? 'kvm_faultin_pfn: mmu_invalidate_retry_gfn_unsafe: RET_PF_RETRY'
            : `kvm_faultin_pfn(hva ${hex(l.startUaddr + me.gfn)})${w.pte[me.gfn] ? `: pfn ${hex(w.pte[me.gfn])}` : choice === 1 ? ': faults in a THP' : ': faults in a page'}`,
      },
      read_lock: mmuLock.readLockStep('is_page_fault_stale'),
      is_page_fault_stale: {
        run(w, me) {
          if (isPageFaultStale(w, me.seq, gfn(me), me.slot !== 0, ctx.mmu_invalidate_retry_gfn)) {
            me.retry = 1
            return 'read_unlock'
          }
          return 'kvm_mmu_hugepage_adjust'
        },
        text: (w, me) => `is_page_fault_stale(seq ${me.seq})${isPageFaultStale(w, me.seq, gfn(me), me.slot !== 0, ctx.mmu_invalidate_retry_gfn) ? ': RET_PF_RETRY' : ': no'}`,
      },
      kvm_mmu_hugepage_adjust: {
        run(w, me) {
          const r = kvmMmuHugepageAdjust(l, faultSlot(me), w, w, me.gfn, me.pfn, ctx.host_pfn_mapping_level)
          me.level = r.level
          me.pfn = r.pfn
          return 'kvm_tdp_mmu_map'
        },
        text: (w, me) => {
          const r = kvmMmuHugepageAdjust(l, faultSlot(me), w, w, me.gfn, me.pfn, ctx.host_pfn_mapping_level)
          return `kvm_mmu_hugepage_adjust: ${r.level === PG_LEVEL_2M ? `2M, pfn ${hex(r.pfn)}` : '4K'}`
        },
      },
      kvm_tdp_mmu_map: {
        // The fault's work done (check --livelock): a cycle through it is not a livelock.
        progress: true,
        run(w, me) {
          kvmTdpMmuMap(l, w, me.gfn, me.level, me.pfn)
          return 'read_unlock'
        },
        text: (w, me) => (w.spte[me.gfn] ? 'kvm_tdp_mmu_map: RET_PF_SPURIOUS' : `kvm_tdp_mmu_map(gfn ${hex(gfn(me))} -> pfn ${hex(me.pfn)}${me.level ? ', 2M' : ''})`),
      },
      read_unlock: mmuLock.readUnlockStep('kvm_release_faultin_page'),
      /** kvm_mmu_finish_page_fault -> kvm_release_faultin_page: put the page; the last reference of a folio the host unmapped frees it. */
      kvm_release_faultin_page: {
        run(w, me) {
          const p = w.pageRef[me.vcpu]
          w.pageRef[me.vcpu] = 0
          if (p !== 0 && !isFreed(w, p)) {
            const head = folioHead(w, p, l.H)
            const n = w.frame[p] === FRAME_HUGE ? l.HP : 1
            if (!folioMapped(l, w, w, p) && !refHeld(w, head, n)) freeFolio(w, p, l.H)
          }
          me.pfn = 0
          me.level = 0
          // kvm_vcpu_srcu_read_unlock before re-entering the guest.
          srcuReadUnlock(w, me.vcpu)
          me.slot = 0
          if (me.retry) {
            me.retry = 0
            return 'kvm_mmu_do_page_fault'
          }
          return next(me)
        },
        text: (w, me) => {
          const p = w.pageRef[me.vcpu]
          const frees = p !== 0 && !isFreed(w, p) && !folioMapped(l, w, w, p)
          return `kvm_release_faultin_page(pfn ${hex(p)})${frees ? ': last reference, the folio is freed' : ''}${me.retry ? ': RET_PF_RETRY' : ''}`
        },
      },
    },
  })
}
