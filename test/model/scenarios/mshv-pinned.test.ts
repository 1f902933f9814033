import { describe, expect, it } from 'vitest'
import { bfs } from '../../../explorer/bfs.js'
import { dfs } from '../../../explorer/dfs.js'
import { randomSearch } from '../../../explorer/random.js'
import { instantiate, mshvPinned as mshvPinnedChecked } from '../../../invariants/scenarios.js'
import { FRAME_HUGE } from '../../../model/primitives/folio.js'
import { remapCalls } from '../../../model/drivers/mshv-regions.js'
import { ACCESS_NONE, type Leaf } from '../../../model/primitives/slat.js'
import { canHoldHugePage, mayStrideHuge, misaligned, pinnedLayout } from '../../../model/scenarios/mshv-pinned.js'
import { recordTrace } from '../../../traces/record.js'
import { replaySteps } from '../../../traces/replay.js'

const pinned = (variant: string, params: Record<string, number> = {}) => instantiate('mshv-pinned', variant, params)
const ID = 'ioctl-outcome-deterministic'

describe('mshv-pinned: the flaky ioctl of seed 000', () => {
  it('as-posted at the default (misaligned) parameters: one input, two outcomes, two replayable traces', () => {
    const inst = pinned('as-posted')
    const x = bfs(inst.model)
    expect(x.verdict).toBe('violation')
    const v = x.violations[0]
    expect(v.invariant).toBe(ID)
    expect(v.witnesses).toHaveLength(1)
    const runs = [v, ...v.witnesses!]
    expect(new Set(runs.map((r) => r.outcome)).size).toBe(2)
    for (const run of runs) {
      const trace = recordTrace(inst, x, run)
      expect(trace.violation.outcome).toBe(run.outcome)
      const r = replaySteps(inst.model, trace.init, trace.steps, ID, trace.violation.outcome)
      expect(r.reproduced).toBe(true)
      // The two runs differ only in the host's choice in pin_user_pages_fast, for the same (pinned) input.
      expect(trace.steps.map((s) => s.label)).toEqual(['mshv_map_user_memory', 'mshv_region_pin', 'mshv_region_map'])
      expect(trace.steps[0].choice).toBe(0)
    }
  })

  it('pfn-aligned-stride and reject-misaligned keep the ioctl deterministic there', () => {
    for (const variant of ['pfn-aligned-stride', 'reject-misaligned']) {
      expect(bfs(pinned(variant).model, { allViolations: true }).verdict).toBe('ok')
    }
  })

  it('the outcome check agrees across BFS, DFS and random search', () => {
    const { model } = pinned('as-posted', { pages: 6 })
    for (const x of [bfs(model), dfs(model), randomSearch(model, { seed: 1, runs: 200 })]) {
      expect(x.violations.map((v) => v.invariant)).toEqual([ID])
    }
  })

  it('an aligned region never fails, and the host choosing THP gives guest huge mappings (coverage range)', () => {
    const x = bfs(pinned('as-posted', { uaddr_offset: 0, pages: 4 }).model, { allViolations: true })
    expect(x.verdict).toBe('ok')
    expect(x.metrics['huge-coverage']).toEqual({ min: 0, max: 1 })
  })

  it('the pfn-aligned stride never fails but maps a misaligned region with 4K leaves only', () => {
    for (const pages of [4, 6, 8]) {
      const x = bfs(pinned('pfn-aligned-stride', { uaddr_offset: 1, pages }).model, { allViolations: true })
      expect(x.verdict).toBe('ok')
      expect(x.metrics['huge-coverage']).toEqual({ min: 0, max: 0 })
      expect(x.outcomes[ID]).toEqual({ 'pinned region': ['ok'], 'movable region': ['ok'] })
    }
  })

  it('reject-misaligned refuses exactly the misaligned regions that could hold a huge page', () => {
    for (let pages = 1; pages <= 6; pages++) {
      for (const [u, g] of [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1],
      ]) {
        const params = { pages, uaddr_offset: u, gfn_offset: g }
        const l = pinnedLayout({ H: 1, ...params })
        const x = bfs(pinned('reject-misaligned', params).model, { allViolations: true })
        const outs = Object.values(x.outcomes[ID]).flat()
        const rejected = misaligned(l) && canHoldHugePage(l)
        expect(outs.every((o) => o === 'rejected (-EINVAL)'), canonicalPoint(params)).toBe(rejected)
      }
    }
  })

  it('a movable region never fails at creation (its NO_ACCESS remap sends no pfn)', () => {
    for (const uaddr_offset of [0, 1]) {
      const x = bfs(pinned('as-posted', { uaddr_offset, pages: 6 }).model, { allViolations: true })
      expect(x.outcomes[ID]['movable region']).toEqual(['ok'])
    }
  })

  it('the map as the kernel calls it (0eaed89c: one hv_call_map_gpa_pages per run of same-stride chunks, rep by rep): the failing ioctl maps 4K, then fails at the mid-folio large page, and errout leaves nothing mapped', () => {
    const inst = pinned('as-posted')
    const x = bfs(inst.model)
    const v = x.violations[0]
    const failing = [v, ...v.witnesses!].find((r) => r.outcome === 'map hypercall failed')!
    const trace = recordTrace(inst, x, failing)
    const r = replaySteps(inst.model, trace.init, trace.steps, ID, trace.violation.outcome)
    const l = pinnedLayout({ H: 1, pages: 4, uaddr_offset: 1, gfn_offset: 0 })
    const before = r.steps.at(-1)!.before as any
    // pages 0..1 (gfn 2, 3): order 0 or a THP's second half at gfn 3, one 4K call; pages 2..3: a THP's mid-folio pfn at gfn 4, LARGE.
    expect(remapCalls(l, before, { pfnAlignedStride: false }, 0, l.N)).toEqual([
      { index: 0, count: 2, large: false },
      { index: 2, count: 2, large: true },
    ])
    const after = r.steps.at(-1)!.after as any
    expect(Array.from(after.slat as Leaf[], (leaf) => leaf.access)).toEqual([ACCESS_NONE, ACCESS_NONE, ACCESS_NONE, ACCESS_NONE])
  })

  it('memory the VMM populated before the ioctl: a THP its own touch got fails the ioctl just the same', () => {
    const inst = pinned('as-posted', { uaddr_offset: 1, pages: 4, populated: 3 })
    const x = bfs(inst.model, { allViolations: true })
    expect(x.outcomes[ID]['pinned region']).toEqual(expect.arrayContaining(['ok', 'map hypercall failed']))
    const v = x.violations.find((r) => r.invariant === ID)!
    const failing = [v, ...v.witnesses!].find((r) => r.outcome === 'map hypercall failed')!
    const steps = recordTrace(inst, x, failing).steps
    // The THP was made by the VMM's touch (choice 1); pin_user_pages_fast had nothing left to choose (choice 0).
    expect(steps.find((s) => s.label === 'vmm_populates')?.choice).toBe(1)
    expect(steps.find((s) => s.label === 'mshv_region_pin')?.choice).toBe(0)
  })
})

function canonicalPoint(p: Record<string, number>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
}

describe('mshv-pinned: a VMA larger than the region (fidelity review MB-6)', () => {
  // uaddr_offset=1, gfn_offset=0, pages=2: region page 0 is the second page of a huge block.
  const params = { uaddr_offset: 1, gfn_offset: 0, pages: 2 }
  const broken = (variant: string, margin: number) =>
    bfs(pinned(variant, { ...params, vma_margin: margin }).model, { allViolations: true }).violations.map((v) => v.invariant)

  it('a THP straddling the region edge makes the as-posted stride fail the ioctl, and reject-misaligned lets the region through', () => {
    expect(broken('as-posted', 0)).toEqual([])
    expect(broken('as-posted', 1)).toEqual(['ioctl-outcome-deterministic'])
    expect(broken('reject-misaligned', 1)).toEqual(['ioctl-outcome-deterministic'])
    expect(broken('upstream', 1)).toEqual([])
  })

  it('the region edge inside a THP is reached: region page 0 maps a tail page of a huge folio', () => {
    const probe = { id: 'edge-in-thp', description: 'a probe', check: (w: any) => (w.pte[0] !== 0 && w.frame[w.pte[0]] === FRAME_HUGE && (w.pte[0] & 1) === 1 ? 'reached' : null) }
    const withProbe = { ...mshvPinnedChecked, properties: () => ({ invariants: [probe] }) }
    const reached = (margin: number) => bfs(instantiate(withProbe, 'as-posted', { ...params, vma_margin: margin }).model).violations.some((v) => v.invariant === 'edge-in-thp')
    expect(reached(1)).toBe(true)
    expect(reached(0)).toBe(false)
  })
})

describe('mshv-pinned: folios of other orders (--param mthp, --param pud; fidelity review MB-5)', () => {
  const outcomes = (variant: string, params: Record<string, number>) => {
    const x = bfs(pinned(variant, params).model, { allViolations: true })
    return { broken: x.violations.map((v) => v.invariant), pinned: x.outcomes[ID]['pinned region'], coverage: x.metrics['huge-coverage'] }
  }
  const EINVAL_OUT = 'mshv_region_map: -EINVAL'

  it('an mTHP in an aligned region: the posted stride (and seed 000\'s fix on it) and the PageHead stride fail the ioctl with -EINVAL when the host picks one; upstream never fails', () => {
    const params = { H: 2, pages: 4, uaddr_offset: 0, gfn_offset: 0, mthp: 1 }
    for (const variant of ['as-posted', 'pfn-aligned-stride', 'page-head']) {
      const r = outcomes(variant, params)
      expect(r.broken, variant).toEqual([ID])
      expect([...r.pinned].sort(), variant).toEqual([EINVAL_OUT, 'ok'])
    }
    const up = outcomes('upstream', params)
    expect(up.broken).toEqual([])
    expect(up.pinned).toEqual(['ok'])
    // The same region without mTHPs: every variant is deterministic.
    for (const variant of ['as-posted', 'page-head', 'upstream']) expect(outcomes(variant, { ...params, mthp: 0 }).broken, variant).toEqual([])
  })

  it('a 1G folio (order 2H) over a VMA larger than the region: upstream maps it with 2M leaves (coverage up to 100%, mapping-within-folio holds); the posted and PageHead strides fail with -EINVAL', () => {
    const params = { H: 1, pages: 4, uaddr_offset: 0, gfn_offset: 0, vma_margin: 1, pud: 1 }
    const up = outcomes('upstream', params)
    expect(up.broken).toEqual([])
    expect(up.coverage).toEqual({ min: 0, max: 1 })
    for (const variant of ['as-posted', 'page-head']) {
      const r = outcomes(variant, params)
      expect(r.broken, variant).toEqual([ID])
      expect(r.pinned, variant).toContain(EINVAL_OUT)
    }
  })

  it('mthp must be below H', () => {
    expect(() => pinned('as-posted', { H: 1, mthp: 1 })).toThrow(/mthp=1 must be below H=1/)
  })
})

describe('mshv-pinned: reject-misaligned\'s threshold with a VMA larger than the region (fidelity review MB-6)', () => {
  const points: Record<string, number>[] = []
  for (let pages = 1; pages <= 5; pages++) for (const [u, g] of [[0, 1], [1, 0], [1, 1], [0, 0]]) points.push({ pages, uaddr_offset: u, gfn_offset: g })

  it('seed 000\'s threshold (a huge block wholly inside the region) lets a flaky region through once THPs may straddle its edges; the gfn-based one never does', () => {
    const flaky = (variant: string, p: Record<string, number>) => bfs(pinned(variant, { ...p, vma_margin: 1 }).model, { allViolations: true }).violations.length > 0
    const let_through = points.filter((p) => flaky('reject-misaligned', p))
    expect(let_through.map(canonicalPoint)).toContain('pages=2 uaddr_offset=1 gfn_offset=0')
    for (const p of points) expect(flaky('reject-misaligned-gfn', p), canonicalPoint(p)).toBe(false)
  })

  it('reject-misaligned-gfn refuses exactly the misaligned regions where mshv_chunk_stride could be asked for a huge stride, and lets 0/1/2 through as seed 000\'s does', () => {
    for (const p of points) {
      const l = pinnedLayout({ H: 1, ...p })
      const outs = Object.values(bfs(pinned('reject-misaligned-gfn', p).model, { allViolations: true }).outcomes[ID]).flat()
      expect(outs.every((o) => o === 'rejected (-EINVAL)'), canonicalPoint(p)).toBe(misaligned(l) && mayStrideHuge(l))
    }
    expect(mayStrideHuge(pinnedLayout({ H: 1, pages: 2, uaddr_offset: 0, gfn_offset: 1 }))).toBe(false)
  })

  it('the PageHead stride never strides from a tail, so a straddling THP is mapped 4K there', () => {
    expect(bfs(pinned('page-head', { pages: 2, uaddr_offset: 1, gfn_offset: 0, vma_margin: 1 }).model, { allViolations: true }).violations).toEqual([])
  })
})

describe('mshv-pinned: encrypted partitions (--param encrypted: mshv_region_unshare before the map)', () => {
  const run = (variant: string, params: Record<string, number>) => {
    const x = bfs(pinned(variant, params).model, { allViolations: true })
    return { broken: x.violations.map((v) => v.invariant), pinned: [...x.outcomes[ID]['pinned region']].sort() }
  }

  it('the posted stride now fails in the unshare, through the same chunks: the host access change is refused for a large page from a misaligned pfn', () => {
    const r = run('as-posted', { encrypted: 1 })
    expect(r.broken).toEqual([ID])
    expect(r.pinned).toEqual(['mshv_region_unshare failed', 'ok'])
    // Without encryption the same run fails at the map instead.
    expect(run('as-posted', {}).pinned).toEqual(['map hypercall failed', 'ok'])
  })

  it('every stride that is safe for the map is safe for the unshare: upstream, the pfn-aligned stride and the PageHead stride keep the ioctl deterministic, also with a THP across the region edge', () => {
    for (const variant of ['upstream', 'pfn-aligned-stride', 'page-head']) {
      for (const params of [{ encrypted: 1 }, { encrypted: 1, vma_margin: 1, pages: 2 }, { encrypted: 1, uaddr_offset: 0 }] as Record<string, number>[]) {
        const r = run(variant, params)
        expect(r.broken, `${variant} ${JSON.stringify(params)}`).toEqual([])
        expect(r.pinned, variant).not.toContain('mshv_region_unshare failed')
      }
    }
  })
})
