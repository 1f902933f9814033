/**
 * KVM guest_memfd bindings and hugepage eligibility (seed 003: "KVM:
 * Disallow hugepages for incompatible gmem bindings, but let 'em succeed").
 *
 * The layout is the seed's QEMU boot, scaled down: all RAM starts as slot 0
 * bound to one guest_memfd at offset 0; QEMU then deletes it and re-creates
 * slot 0 for the low pages and slot 5 for the rest, at a gmem offset that is
 * not huge-aligned (0x100000 at full scale). vCPUs fault gfns meanwhile, in
 * any order: kvm_tdp_page_fault -> kvm_faultin_pfn -> kvm_gmem_get_pfn
 * (index = pgoff + gfn - base_gfn; the folio there, allocated naturally
 * aligned in file offset on first use, of order 0, H or 2H; max_order is
 * its order, then the variant's clamp) -> the mapping level (KVM's head/tail
 * limit: an aligned range wholly inside the slot) -> the leaf is installed
 * under mmu_lock with the pfn aligned down to the level, as
 * kvm_mmu_hugepage_adjust does (`fault->pfn &= ~mask`).
 *
 * Memslot updates follow kvm_set_memslot() (virt/kvm/kvm_main.c): a fault
 * looks its memslot up once, at its start, inside its SRCU read section
 * (kvm_vcpu_srcu_read_lock; kvm_mmu_do_page_fault's kvm_vcpu_gfn_to_memslot)
 * and keeps that slot to the end. Deletion installs an INVALID copy
 * (kvm_invalidate_memslot -> kvm_swap_active_memslots), waits in
 * synchronize_srcu for the faults that began before the swap (they may still
 * map from the old slot), zaps the slot's leaves
 * (kvm_arch_flush_shadow_memslot), then swaps the slot out
 * (kvm_delete_memslot). A fault that finds the INVALID copy retries
 * (kvm_mmu_faultin_pfn: KVM_MEMSLOT_INVALID -> RET_PF_RETRY).
 *
 * Each slot also has a user address (`ua_offset`: the RAM's hva minus its
 * gpa, in pages, modulo the "1G" size): KVM disallows every hugepage of a
 * level in a slot whose base_gfn and hva are not congruent
 * (kvm_alloc_memslot_metadata), whatever guest_memfd allows.
 *
 * Scaled: a huge page ("2M") is 2^H small pages and "1G" is 2^(2H).
 */
import { BadInput } from '../../explorer/errors.js'
import { hugepageAllowed, type Binding, type BindingPolicy } from '../kvm/gmem-binding-rules.js'
import { process } from '../process.js'
import type { Params, Scenario } from '../scenario.js'
import { array, struct, u8, type ValueOf } from '../schema.js'

export const SLOT_NONE = 0
export const SLOT_VALID = 1
/** KVM_MEMSLOT_INVALID: being deleted; faults that see it retry. */
export const SLOT_INVALID = 2

/** The layout a parameter set gives: gfn space, the file, and QEMU's slot operations in order. */
export interface GmemLayout {
  readonly H: number
  /** Small pages per "2M" and per "1G" leaf. */
  readonly levels: readonly number[]
  /** Guest RAM in pages (gfn 0 .. gfns-1), all bound to one guest_memfd of the same size. */
  readonly gfns: number
  /** Memslot ids used, in state order. */
  readonly slots: readonly number[]
  readonly ops: readonly SlotOp[]
  /** The slots bound at the start. */
  readonly initial: readonly ({ id: number } & Binding)[]
  /** The folio orders guest_memfd may allocate. */
  readonly orders: readonly number[]
}

export type SlotOp = { readonly kind: 'delete'; readonly id: number } | ({ readonly kind: 'create'; readonly id: number } & Binding)

/**
 * The seed's log scaled down: slot 0 = all RAM at gmem offset 0; then delete
 * slot 0, re-create it for the first `low` pages (0xc0000 at full scale), and
 * create slot 5 for the rest, bound at gmem offset = its gpa (0x100000),
 * or `shift` pages further (not the seed's layout: a binding whose gfn and
 * file index are not congruent, the case a binding check exists for).
 */
export function seedLayout(H: number, hugePagesOfRam: number, low: number, shift = 0, uaOffset = 0, orders?: readonly number[]): GmemLayout {
  const HP = 1 << H
  const gfns = hugePagesOfRam * HP
  if (low < 1 || low >= gfns) throw new BadInput(`low=${low} must be in 1..${gfns - 1}`)
  if (low + shift > gfns - 1) throw new BadInput(`offset_shift=${shift} puts slot 5 past the end of the file`)
  // QEMU maps guest RAM once (qemu_ram_mmap aligns it to the "1G" size here); every slot's hva is that base plus its gpa.
  const ugfn = (baseGfn: number) => HP * HP + uaOffset + baseGfn
  return {
    H,
    levels: [HP, HP * HP],
    gfns,
    slots: [0, 5],
    initial: [{ id: 0, baseGfn: 0, npages: gfns, pgoff: 0, ugfn: ugfn(0) }],
    ops: [
      { kind: 'delete', id: 0 },
      { kind: 'create', id: 0, baseGfn: 0, npages: low, pgoff: 0, ugfn: ugfn(0) },
      // The file is as large as RAM; a shifted binding is shortened to fit it.
      { kind: 'create', id: 5, baseGfn: low, npages: gfns - low - shift, pgoff: low + shift, ugfn: ugfn(low) },
    ],
    orders: orders ?? [0, H, 2 * H],
  }
}

function globals(l: GmemLayout, vcpus: number) {
  return {
    /** The active memslots, one record per slot id of the layout (ua: userspace_addr >> PAGE_SHIFT). */
    slot: array(l.slots.length, struct({ state: u8(SLOT_INVALID), base: u8(), npages: u8(), pgoff: u8(), ua: u8() })),
    /** kvm_swap_active_memslots' generation: bumped by every swap. */
    memslotsGen: u8(),
    /** Per vCPU: 0 outside an SRCU read section, else 1 + the generation it entered under. */
    srcuReader: array(vcpus, u8()),
    /** The guest_memfd's page cache: the pfn of each file index (0 = no folio yet) and its folio's order. */
    filePfn: array(l.gfns, u8()),
    fileOrder: array(l.gfns, u8()),
    nextPfn: u8(),
    /** The EPT: per gfn, the pfn its leaf maps (0 = none) and the leaf's size in pages (1, or a huge level). */
    ept: array(l.gfns, struct({ pfn: u8(), pages: u8(), slot: u8() })),
  }
}
type G = ReturnType<typeof globals>
export type GmemWorld = ValueOf<G>

/** The valid slot holding gfn, as its index in l.slots, or -1. */
export function slotOf(l: GmemLayout, w: GmemWorld, gfn: number, states: readonly number[] = [SLOT_VALID]): number {
  return w.slot.findIndex((s) => states.includes(s.state) && gfn >= s.base && gfn < s.base + s.npages)
}

export const bindingOf = (s: { base: number; npages: number; pgoff: number; ua: number }): Binding => ({ baseGfn: s.base, npages: s.npages, pgoff: s.pgoff, ugfn: s.ua })

/** synchronize_srcu's wait: no fault still in a read section it entered before the current generation. */
export const srcuGracePeriodOver = (w: GmemWorld): boolean => {
  for (let v = 0; v < w.srcuReader.length; v++) if (w.srcuReader[v] !== 0 && w.srcuReader[v] - 1 < w.memslotsGen) return false
  return true
}

/** Orders a folio can be allocated with at `index`: naturally aligned, inside the file, over no existing folio. */
function allocatableOrders(l: GmemLayout, w: GmemWorld, index: number): number[] {
  return l.orders.filter((order) => {
    const n = 1 << order
    const first = index & ~(n - 1)
    if (first + n > l.gfns) return false
    for (let k = first; k < first + n; k++) if (w.filePfn[k] !== 0) return false
    return true
  })
}

/** kvm_gmem_get_pfn's folio allocation (filemap_grab_folio): order `order` at `index`, pfns naturally aligned. */
function allocFolio(w: GmemWorld, index: number, order: number): void {
  const n = 1 << order
  const first = index & ~(n - 1)
  const pfn = (w.nextPfn + n - 1) & ~(n - 1)
  for (let k = 0; k < n; k++) {
    w.filePfn[first + k] = pfn + k
    w.fileOrder[first + k] = order
  }
  w.nextPfn = pfn + n
}

/** The largest leaf the policy and KVM allow at gfn (in pages: 1, 2^H or 2^2H). */
export function mappingPages(l: GmemLayout, policy: BindingPolicy, binding: Binding, gfn: number, folioPages: number): number {
  for (const level of [...l.levels].reverse()) {
    if (hugepageAllowed(policy, binding, gfn - (gfn % level), level, folioPages)) return level
  }
  return 1
}

type VcpuLocals = { vcpu: number; gfn: number; slot: number; base: number; npages: number; pgoff: number; ua: number; pages: number; faults: number }

/** The fault's memslot, as it looked it up (the slot struct its SRCU snapshot points to). */
const snapshot = (me: VcpuLocals): Binding => ({ baseGfn: me.base, npages: me.npages, pgoff: me.pgoff, ugfn: me.ua })
const indexOf = (me: VcpuLocals): number => me.pgoff + me.gfn - me.base

function vcpu(l: GmemLayout, policy: BindingPolicy, faults: number) {
  const finish = (w: GmemWorld, me: VcpuLocals): string => {
    w.srcuReader[me.vcpu] = 0 // kvm_vcpu_srcu_read_unlock
    me.gfn = 0
    me.slot = 0
    me.base = 0
    me.npages = 0
    me.pgoff = 0
    me.ua = 0
    me.pages = 0
    me.faults++
    return me.faults < faults ? 'kvm_tdp_page_fault' : 'done'
  }
  return process<GmemWorld, VcpuLocals>({
    name: 'vcpu',
    locals: { vcpu: u8(), gfn: u8(), slot: u8(), base: u8(), npages: u8(), pgoff: u8(), ua: u8(), pages: u8(), faults: u8() },
    start: 'kvm_tdp_page_fault',
    steps: {
      /**
       * The guest touches a gfn; the fault runs in an SRCU read section and looks
       * its memslot up now (kvm_vcpu_gfn_to_memslot), keeping it to the end.
       */
      kvm_tdp_page_fault: {
        choices: () => l.gfns,
        run(w, me, gfn) {
          me.gfn = gfn
          w.srcuReader[me.vcpu] = w.memslotsGen + 1
          const s = slotOf(l, w, gfn, [SLOT_VALID, SLOT_INVALID])
          // No memslot: emulated MMIO, nothing mapped. KVM_MEMSLOT_INVALID: RET_PF_RETRY (kvm_mmu_faultin_pfn).
          if (s < 0 || w.slot[s].state === SLOT_INVALID) return finish(w, me)
          const slot = w.slot[s]
          me.slot = s
          me.base = slot.base
          me.npages = slot.npages
          me.pgoff = slot.pgoff
          me.ua = slot.ua
          return 'kvm_faultin_pfn'
        },
        text: (w, _me, gfn) => {
          const s = slotOf(l, w, gfn, [SLOT_VALID, SLOT_INVALID])
          return `EPT violation at gfn ${gfn}${s < 0 ? ': no memslot (MMIO)' : w.slot[s].state === SLOT_INVALID ? `: slot ${l.slots[s]} KVM_MEMSLOT_INVALID, RET_PF_RETRY` : `: slot ${l.slots[s]}`}`
        },
      },
      /** kvm_faultin_pfn -> kvm_gmem_get_pfn: the file index, the folio (allocated on first use) and max_order. */
      kvm_faultin_pfn: {
        choices: (w, me) => (w.filePfn[indexOf(me)] ? 1 : allocatableOrders(l, w, indexOf(me)).length),
        run(w, me, choice) {
          const index = indexOf(me)
          if (!w.filePfn[index]) allocFolio(w, index, allocatableOrders(l, w, index)[choice])
          me.pages = mappingPages(l, policy, snapshot(me), me.gfn, 1 << w.fileOrder[index])
          return 'kvm_tdp_mmu_map'
        },
        text: (w, me, choice) => {
          const index = indexOf(me)
          const order = w.filePfn[index] ? w.fileOrder[index] : allocatableOrders(l, w, index)[choice]
          return `kvm_gmem_get_pfn(slot ${l.slots[me.slot]}, index ${index})${w.filePfn[index] ? '' : ' allocates'}: max_order ${order}`
        },
      },
      /** Under mmu_lock (one atomic step here): install the leaf from the fault's memslot, whatever became of the active one. */
      kvm_tdp_mmu_map: {
        run(w, me) {
          // A gfn another fault mapped meanwhile: RET_PF_SPURIOUS.
          if (w.ept[me.gfn].pfn !== 0) return finish(w, me)
          const start = me.gfn - (me.gfn % me.pages)
          // kvm_mmu_hugepage_adjust: fault->pfn &= ~mask.
          const pfn = w.filePfn[indexOf(me)] & ~(me.pages - 1)
          for (let k = 0; k < me.pages; k++) {
            w.ept[start + k].pfn = pfn + k
            w.ept[start + k].pages = me.pages
            w.ept[start + k].slot = me.slot + 1
          }
          return finish(w, me)
        },
        text: (_w, me) => {
          const start = me.gfn - (me.gfn % me.pages)
          return `kvm_tdp_mmu_map(gfn ${start}..${start + me.pages - 1}, ${me.pages > 1 ? `huge leaf of ${me.pages} pages` : '4K'})`
        },
      },
    },
  })
}

type QemuLocals = { op: number }

/** QEMU's KVM_SET_USER_MEMORY_REGION2 calls, in the seed's order, as kvm_set_memslot() carries them out. */
function qemu(l: GmemLayout) {
  const next = (me: QemuLocals): string => {
    me.op++
    return me.op < l.ops.length ? 'kvm_set_memory_region' : 'done'
  }
  const idx = (id: number) => l.slots.indexOf(id)
  const opId = (me: QemuLocals) => (l.ops[me.op] as { id: number }).id
  return process<GmemWorld, QemuLocals>({
    name: 'qemu',
    locals: { op: u8() },
    start: 'kvm_set_memory_region',
    steps: {
      /** KVM_MR_CREATE: kvm_create_memslot -> kvm_activate_memslot (a swap; no fault can hold the new slot before it). Deletion: kvm_invalidate_memslot's swap to an INVALID copy. */
      kvm_set_memory_region: {
        run(w, me) {
          const op = l.ops[me.op]
          w.memslotsGen++
          if (op.kind === 'create') {
            const s = w.slot[idx(op.id)]
            s.state = SLOT_VALID
            s.base = op.baseGfn
            s.npages = op.npages
            s.pgoff = op.pgoff
            s.ua = op.ugfn ?? 0
            return next(me)
          }
          w.slot[idx(op.id)].state = SLOT_INVALID
          return 'synchronize_srcu'
        },
        text: (_w, me) => {
          const op = l.ops[me.op]
          return op.kind === 'create'
            ? `KVM_SET_USER_MEMORY_REGION2 slot ${op.id}: gfn ${op.baseGfn}..${op.baseGfn + op.npages - 1}, gmem offset ${op.pgoff}, hva page ${op.ugfn}`
            : `KVM_SET_USER_MEMORY_REGION2 slot ${op.id} size 0: kvm_invalidate_memslot (swap in an INVALID copy)`
        },
      },
      /** kvm_swap_active_memslots' synchronize_srcu: the faults that began before the swap (and may map from the old slot) finish. */
      synchronize_srcu: {
        guard: srcuGracePeriodOver,
        run: () => 'kvm_arch_flush_shadow_memslot',
      },
      kvm_arch_flush_shadow_memslot: {
        run(w, me) {
          const s = idx(opId(me))
          for (let g = 0; g < l.gfns; g++) {
            if (w.ept[g].slot === s + 1) {
              w.ept[g].pfn = 0
              w.ept[g].pages = 0
              w.ept[g].slot = 0
            }
          }
          return 'kvm_delete_memslot'
        },
        text: (_w, me) => `kvm_arch_flush_shadow_memslot(slot ${opId(me)}): zap its leaves`,
      },
      /** kvm_delete_memslot -> kvm_activate_memslot: swap the slot out (its synchronize_srcu only frees the old array). */
      kvm_delete_memslot: {
        run(w, me) {
          const slot = w.slot[idx(opId(me))]
          w.memslotsGen++
          slot.state = SLOT_NONE
          slot.base = 0
          slot.npages = 0
          slot.pgoff = 0
          slot.ua = 0
          return next(me)
        },
        text: (_w, me) => `kvm_delete_memslot(slot ${opId(me)})`,
      },
    },
  })
}

export const kvmGmemBinding: Scenario<G> = {
  name: 'kvm-gmem-binding',
  title: 'KVM guest_memfd bindings and hugepage eligibility (seed 003)',
  description:
    "The seed's QEMU x86 layout, scaled: slot 0 over all RAM, then split into slot 0 and slot 5 bound at an unaligned gmem offset, while vCPUs fault. Which huge leaves may KVM install (kvm_gmem_get_pfn's max_order, the binding clamp, lpage_info head/tail)?",
  params: [
    { name: 'H', default: 1, min: 1, max: 2, description: 'a "2M" page is 2^H small pages, a "1G" page 2^(2H)' },
    { name: 'ram', default: 4, min: 2, max: 8, description: 'guest RAM in "2M" pages' },
    { name: 'low', default: 1, min: 1, max: 15, description: 'pages of the re-created low slot 0 (slot 5 starts there, at that gmem offset)' },
    { name: 'offset_shift', default: 0, min: 0, max: 7, description: "slot 5's gmem offset minus its gpa, in pages (0 in the seed's log)" },
    { name: 'ua_offset', default: 0, min: 0, max: 7, description: "the RAM's hva minus its gpa, in pages (0: congruent, as QEMU maps RAM)" },
    { name: 'vcpus', default: 1, min: 1, max: 3, description: 'vCPU threads' },
    { name: 'faults', default: 2, min: 1, max: 4, description: 'faults per vCPU' },
  ],
  variants: [
    { name: 'upstream', description: 'mainline: guest_memfd allocates order-0 folios (kvm_gmem_get_folio), so max_order is 0 and every private leaf is 4K', expect: { violates: [] } },
    { name: 'whole-binding', description: 'the 2023 patch: hugepages only if slot->gmem.pgoff and slot->npages are aligned to the folio', expect: { violates: [] } },
    { name: 'interior-hugepages', description: 'a hugepage where the gfn range is aligned, inside the slot, and congruent with the file index', expect: { violates: [] } },
    { name: 'no-clamp', description: "the folio's order with no binding check at all", expect: { violates: [] } },
    {
      name: 'no-synchronize-srcu',
      from: 'interior-hugepages',
      description: 'interior-hugepages with a memslot deletion that zaps without waiting for the faults still using the old slot (kvm_swap_active_memslots without synchronize_srcu)',
      steps: { qemu: { synchronize_srcu: { run: () => 'kvm_arch_flush_shadow_memslot', text: () => 'synchronize_srcu skipped' } } },
      expect: { violates: ['mapping-within-slot', 'no-stale-mapping'] },
    },
  ],
  // Rows are gfns (the file is bound at gfn = file index + shift); the file's folios are drawn by file index.
  memoryMap: (p: Params) => {
    const l = gmemLayout(p)
    return {
      rows: l.gfns,
      hugePages: 1 << l.H,
      lanes: [
        { kind: 'leaf', label: 'EPT', field: 'ept', pfn: 'pfn', pages: 'pages' },
        { kind: 'folio', label: 'gmem folios (by file index)', pfn: 'filePfn', order: 'fileOrder' },
        { kind: 'range', label: 'memslot', field: 'slot', start: 'base', count: 'npages', live: 'state' },
      ],
    }
  },
  build(p: Params, variant: string) {
    const l = gmemLayout(p, variant === 'upstream' ? [0] : undefined)
    // Mainline has no binding clamp to speak of: with order-0 folios every policy gives 4K.
    const policy = (variant === 'upstream' ? 'interior-hugepages' : variant) as BindingPolicy
    return {
      globals: globals(l, p.vcpus),
      init(w: GmemWorld) {
        w.nextPfn = 1
        for (const b of l.initial) {
          const s = w.slot[l.slots.indexOf(b.id)]
          s.state = SLOT_VALID
          s.base = b.baseGfn
          s.npages = b.npages
          s.pgoff = b.pgoff
          s.ua = b.ugfn ?? 0
        }
      },
      threads: [
        ...Array.from({ length: p.vcpus }, (_, k) => ({ name: `vcpu${k}`, process: vcpu(l, policy, p.faults), locals: { vcpu: k } })),
        { name: 'qemu', process: qemu(l) },
      ],
    }
  },
}

export function gmemLayout(p: Params, orders?: readonly number[]): GmemLayout {
  const l = seedLayout(p.H, p.ram, p.low, p.offset_shift, p.ua_offset ?? 0, orders)
  if (l.gfns * 2 + l.levels[1] > 255) throw new BadInput(`ram=${p.ram} at H=${p.H} is too large for byte-sized pfns`)
  return l
}
