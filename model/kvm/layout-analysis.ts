/**
 * How much of a memslot layout could KVM map with huge leaves, under each
 * guest_memfd binding policy of seed 003? Arithmetic at full scale (4 KiB
 * pages), on the rules of gmem-binding-rules.ts.
 *
 * Best case, stated in the output: every guest_memfd folio (and, for plain
 * user-memory slots, every host mapping) is as large as the level, so the
 * only limits are the slot's. First KVM's own limits, under every policy and
 * for every slot, gmem-bound ones included (`kvmLimitsAllow`, x86
 * kvm_alloc_memslot_metadata's lpage_info, which __kvm_mmu_max_mapping_level
 * reads before it returns for private faults):
 * - a huge leaf covers an aligned gfn range of `level` pages that lies wholly
 *   inside the slot (head/tail disallow_lpage);
 * - gfn and userspace address are congruent modulo the level,
 *   `(base_gfn ^ (ua >> 12)) & (level - 1) == 0`, else no leaf of that level
 *   anywhere in the slot (`uaCongruent` in the output says which). Seed 003's
 *   slot 5 (gpa 0x100000, ua 0x7f24afd00000) is 2M- but not 1G-congruent:
 *   0% at 1G under every policy.
 * Then, by slot kind:
 * - gmem slots: `hugepageAllowed(policy, binding, start, level, level)`, the
 *   binding carrying `ugfn` so that the ua rule applies; its leaves are
 *   unsafe (they map file pages other than the gfns' own) where gfn and file
 *   index are not congruent modulo the level, `!congruent(binding, level)`:
 *   no-clamp, and whole-binding when an aligned pgoff and npages hide a
 *   misaligned base_gfn;
 * - plain slots, for every policy: KVM's own limits alone; never unsafe.
 *
 * Closed form: the aligned ranges inside [base, base + npages) are the
 * multiples of `level` from ceil(base / level) to floor(end / level), and
 * every rule above is the same for all of them: the ua rule looks at
 * (base_gfn - ugfn) mod level only, and beyond `kvmLimitsAllow` the policies look
 * at pgoff, npages and (base_gfn - pgoff) mod level only, never at the
 * range's position (test/model/kvm/layout-analysis.test.ts checks this on
 * random slots, and checks the counts against a per-page brute force). So the
 * rules are evaluated once, on the first aligned range, and the count is
 * blocks x level: O(1) per slot, policy and level.
 */
import { congruent, hugepageAllowed, kvmLimitsAllow, type Binding, type BindingPolicy } from './gmem-binding-rules.js'

export const POLICIES = ['whole-binding', 'interior-hugepages', 'no-clamp'] as const satisfies readonly BindingPolicy[]

export interface Level {
  readonly name: string
  /** Pages (4 KiB) per huge leaf. */
  readonly pages: number
}

/** x86 huge leaves: 2 MiB = 512 pages, 1 GiB = 262144 pages. */
export const X86_LEVELS: readonly Level[] = [
  { name: '2M', pages: 512 },
  { name: '1G', pages: 262144 },
]

export const BEST_CASE_ASSUMPTION =
  'best case: every guest_memfd folio (and, for plain user-memory slots, every host mapping) is as large as the level; ' +
  'only the memslot and the binding policy limit huge leaves'

/** What the analyzer needs of a slot: addresses in 4 KiB pages. */
export interface LayoutSlot {
  readonly baseGfn: number
  readonly npages: number
  /** userspace_addr >> 12 */
  readonly uaPage: number
  /** guest_memfd binding (pgoff = offset / 4096), or null for plain user memory. */
  readonly gmem: { readonly pgoff: number } | null
}

export interface PolicyCount {
  /** Pages inside aligned ranges the policy maps with one huge leaf. */
  readonly allowedPages: number
  /** allowedPages / npages (0 for no pages). */
  readonly share: number
  /** Of allowedPages, those in leaves that would map the wrong file pages. */
  readonly unsafePages: number
}

export interface LevelAnalysis {
  readonly level: string
  readonly levelPages: number
  /** Aligned ranges of the level wholly inside the slot, and their pages: the most any policy can map. */
  readonly alignedBlocks: number
  readonly alignedPages: number
  /**
   * gfn and ua congruent modulo the level: KVM's rule, applied to every slot and policy (gmem slots
   * included); false zeroes the level's counts whatever alignedBlocks says.
   */
  readonly uaCongruent: boolean
  /** gmem slots: gfn and file index congruent modulo the level (null for plain slots). */
  readonly gmemCongruent: boolean | null
  readonly policies: Readonly<Record<BindingPolicy, PolicyCount>>
}

export interface SlotAnalysis {
  readonly npages: number
  readonly levels: readonly LevelAnalysis[]
}

const mod = (a: number, m: number): number => ((a % m) + m) % m
const share = (part: number, whole: number): number => (whole === 0 ? 0 : part / whole)

/** The aligned ranges of `level` pages wholly inside [base, base + npages): the first one's start and how many. */
export function alignedBlocks(base: number, npages: number, level: number): { first: number; blocks: number } {
  const first = base + mod(-base, level)
  const end = base + npages - mod(base + npages, level)
  return { first, blocks: end > first ? (end - first) / level : 0 }
}

/**
 * gfn and userspace address congruent modulo the level: `(gfn ^ (ua >> 12)) & (level - 1) == 0` for a
 * power-of-two level. The part of `kvmLimitsAllow` that zeroes a whole level, reported on its own as the reason.
 */
export function uaCongruent(slot: LayoutSlot, level: number): boolean {
  return mod(slot.baseGfn - slot.uaPage, level) === 0
}

export function analyzeSlot(slot: LayoutSlot, levels: readonly Level[] = X86_LEVELS): SlotAnalysis {
  return {
    npages: slot.npages,
    levels: levels.map(({ name, pages: level }) => {
      const { first, blocks } = alignedBlocks(slot.baseGfn, slot.npages, level)
      const alignedPages = blocks * level
      // ugfn: KVM's ua rule (in kvmLimitsAllow) applies to gmem slots as to plain ones.
      const limits: Binding = { baseGfn: slot.baseGfn, npages: slot.npages, pgoff: slot.gmem?.pgoff ?? 0, ugfn: slot.uaPage }
      const binding: Binding | null = slot.gmem && limits
      const count = (policy: BindingPolicy): PolicyCount => {
        if (blocks === 0) return { allowedPages: 0, share: 0, unsafePages: 0 }
        // One representative range: the rules do not depend on its position (see the header).
        const allowed = binding ? hugepageAllowed(policy, binding, first, level, level) : kvmLimitsAllow(limits, first, level)
        const allowedPages = allowed ? alignedPages : 0
        const unsafePages = binding && !congruent(binding, level) ? allowedPages : 0
        return { allowedPages, share: share(allowedPages, slot.npages), unsafePages }
      }
      return {
        level: name,
        levelPages: level,
        alignedBlocks: blocks,
        alignedPages,
        uaCongruent: uaCongruent(slot, level),
        gmemCongruent: binding && congruent(binding, level),
        policies: Object.fromEntries(POLICIES.map((p) => [p, count(p)])) as Record<BindingPolicy, PolicyCount>,
      }
    }),
  }
}

export interface LevelTotals {
  readonly level: string
  readonly levelPages: number
  readonly alignedPages: number
  readonly policies: Readonly<Record<BindingPolicy, PolicyCount>>
}

export interface LayoutTotals {
  readonly npages: number
  readonly levels: readonly LevelTotals[]
}

/** Sums over slots, shares of all their pages. */
export function totals(analyses: readonly SlotAnalysis[], levels: readonly Level[] = X86_LEVELS): LayoutTotals {
  const npages = analyses.reduce((n, a) => n + a.npages, 0)
  return {
    npages,
    levels: levels.map(({ name, pages }, i) => {
      const policies = Object.fromEntries(
        POLICIES.map((p) => {
          const allowedPages = analyses.reduce((n, a) => n + a.levels[i].policies[p].allowedPages, 0)
          const unsafePages = analyses.reduce((n, a) => n + a.levels[i].policies[p].unsafePages, 0)
          return [p, { allowedPages, share: share(allowedPages, npages), unsafePages }]
        }),
      ) as Record<BindingPolicy, PolicyCount>
      return { level: name, levelPages: pages, alignedPages: analyses.reduce((n, a) => n + a.levels[i].alignedPages, 0), policies }
    }),
  }
}
