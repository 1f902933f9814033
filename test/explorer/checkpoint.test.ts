/**
 * Checkpoint and resume (explorer/checkpoint.ts): a BFS cut short and
 * resumed from its checkpoint ends exactly as the uninterrupted search
 * (states, transitions, depth, verdict, every violation's trace, coverage,
 * metrics, outcomes, the orbit sum), for both stores, with symmetry on and
 * off; and a checkpoint that is cut, altered, foreign or of another run is
 * refused with one line.
 */
import { describe, expect, it } from 'vitest'
import { bfs } from '../../explorer/bfs.js'
import { CheckpointReader, CheckpointWriter, type CheckpointOptions, type CheckpointSink, type CheckpointSource } from '../../explorer/checkpoint.js'
import { BadInput } from '../../explorer/errors.js'
import type { Model, PackedModel } from '../../explorer/model.js'
import type { Exploration } from '../../explorer/result.js'
import type { ExploreOptions } from '../../explorer/options.js'
import { instantiate } from '../../invariants/scenarios.js'

/** Collects what a checkpoint writes (copies: the engine hands out views of its live arrays). */
function memorySink(): CheckpointSink & { bytes(): Uint8Array } {
  const parts: Uint8Array[] = []
  return {
    write: (b) => void parts.push(b.slice()),
    bytes: () => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
      let off = 0
      for (const p of parts) out.set(p, (off += p.length) - p.length)
      return out
    },
  }
}

/** Reads `bytes`, in pieces of at most `piece` bytes (as a file may be read). */
function memorySource(bytes: Uint8Array, piece = 1 << 20): CheckpointSource {
  let off = 0
  return {
    read: (into) => {
      const n = Math.min(into.length, bytes.length - off, piece)
      into.set(bytes.subarray(off, off + n))
      off += n
      return n
    },
  }
}

const ID = { scenario: 'test' }

/** Every checkpoint a search saves, in order, with whether it was the final one. */
function saving(extra: Partial<CheckpointOptions> = {}): { options: CheckpointOptions; saved: { bytes: Uint8Array; final: boolean }[] } {
  const saved: { bytes: Uint8Array; final: boolean }[] = []
  return {
    saved,
    options: {
      identity: ID,
      save: (write, final) => {
        const sink = memorySink()
        write(sink)
        saved.push({ bytes: sink.bytes(), final })
      },
      ...extra,
    },
  }
}

/** An interrupt after `n` states stored. */
const interruptAt = (n: number) => (states: number) => (states >= n ? 'interrupted' : null)

/** What must be equal between an uninterrupted and a resumed search (not the times). */
/** What a run found and counted (not its time, its store's bytes, or why POR did not run: a checkpointed run is a plain BFS). */
function outcome(r: Exploration<unknown>) {
  const { seconds: _s, statesPerSecond: _r, storeBytes: _b, por: _p, ...stats } = r.stats
  return { verdict: r.verdict, incomplete: r.incomplete, violations: r.violations, stats, coverage: r.coverage, metrics: r.metrics, metricsAll: r.metricsAll, outcomes: r.outcomes }
}

const CASES: { name: string; scenario: string; variant: string; params?: Record<string, number> }[] = [
  { name: 'reference model, violation', scenario: 'fault-invalidate', variant: 'no-retry', params: { P: 3 } },
  { name: 'reference model, holds', scenario: 'fault-invalidate', variant: 'retry', params: { P: 3 } },
  { name: 'mshv-pinned (an outcome property broken)', scenario: 'mshv-pinned', variant: 'as-posted' },
  { name: 'kvm-gmem-binding (metrics)', scenario: 'kvm-gmem-binding', variant: 'no-synchronize-srcu' },
]

/**
 * A tiny packed model whose whole-run findings straddle a cut: branch 1 ends
 * at once with outcome "a", branch 2 after 10 steps with "b" (an outcome
 * property broken only by both); evidence fact x at step 2 of branch 2,
 * fact y at step 9 (a conflict only together); a metric over every state.
 */
function straddling(): Model<readonly [number, number], number> {
  type S = readonly [number, number]
  const actions = (s: S): number[] => (s[0] === 0 ? [1, 2] : (s[0] === 1 && s[1] < 1) || (s[0] === 2 && s[1] < 10) ? [0] : [])
  const next = (s: S, a: number): S => (s[0] === 0 ? [a, 0] : [s[0], s[1] + 1])
  const terminal = (s: S): boolean => s[0] !== 0 && actions(s).length === 0
  const facts = (s: S): number[] => (s[0] === 2 && s[1] === 2 ? [0] : s[0] === 2 && s[1] === 9 ? [1] : [])
  const cur = new Int16Array(2)
  const nxt = new Int16Array(2)
  const packed: PackedModel<S> = {
    stateBytes: 2,
    cur,
    next: nxt,
    cellRanges: [
      { min: 0, max: 2 },
      { min: 0, max: 10 },
    ],
    encode: (s, out) => out.set(s),
    decode: (b) => [b[0], b[1]],
    initial: (emit) => {
      nxt.set([0, 0])
      emit()
    },
    expand: (emit) => {
      const s: S = [cur[0], cur[1]]
      const as = actions(s)
      as.forEach((a, k) => {
        nxt.set(next(s, a))
        emit(k, 0)
      })
      return as.length
    },
    holds: () => true,
    facts: () => facts([nxt[0], nxt[1]]),
    measure: () => nxt[1],
    terminal: () => terminal([cur[0], cur[1]]),
  }
  return {
    name: 'straddling',
    initialStates: () => [[0, 0]],
    actions,
    next,
    invariants: [],
    outcomes: [{ id: 'same-end', description: '', outcome: (s) => (s[0] === 1 ? 'a' : 'b') }],
    evidence: [{ id: 'x-and-y', description: '', names: ['x', 'y'], facts, conflict: (seen) => (seen.has(0) && seen.has(1) ? [0, 1] : []), message: () => 'x and y' }],
    metrics: [{ id: 'n', description: '', unit: 'count', measure: (s) => s[1] }],
    fingerprint: (s) => s.join(','),
    describe: (a) => ({ thread: 't', label: String(a), choice: a, text: String(a) }),
    terminal,
    packed,
  }
}

/** A packed model of a graph over states 0..n-1 (one cell), from state 0; `terminal` states may have no successor. */
function graphModel(succ: readonly number[][], terminal: readonly number[]): Model<number, number> {
  const cur = new Int16Array(1)
  const next = new Int16Array(1)
  return {
    name: 'graph',
    initialStates: () => [0],
    actions: (s) => succ[s].map((_, k) => k),
    next: (s, k) => succ[s][k],
    invariants: [],
    fingerprint: String,
    describe: (a) => ({ thread: 't', label: String(a), choice: a, text: String(a) }),
    terminal: (s) => terminal.includes(s),
    packed: {
      stateBytes: 1,
      cur,
      next,
      cellRanges: [{ min: 0, max: succ.length - 1 }],
      encode: (s, out) => void (out[0] = s),
      decode: (b) => b[0],
      initial: (emit) => {
        next[0] = 0
        emit()
      },
      expand: (emit) => {
        const out = succ[cur[0]]
        out.forEach((t, k) => {
          next[0] = t
          emit(k, 0)
        })
        return out.length
      },
      holds: () => true,
      terminal: () => terminal.includes(cur[0]),
    },
  }
}

describe('checkpoint and resume', () => {
  it('findings of the whole run (outcomes, evidence, metrics) seen before the cut count after the resume', () => {
    const model = straddling()
    const whole = bfs(model, { allViolations: true })
    expect(whole.violations.map((v) => v.invariant)).toEqual(['x-and-y', 'same-end'])
    // Cut when 7 states are stored: "a" and fact x seen, "b" and fact y not yet.
    const s = saving()
    const part = bfs(model, { allViolations: true, stop: interruptAt(7), checkpoint: s.options })
    expect(part.violations).toEqual([])
    expect(part.outcomes).toEqual({ 'same-end': { '': ['a'] } })
    const resumed = bfs(model, { allViolations: true, checkpoint: { identity: ID, resume: memorySource(s.saved[0].bytes) } })
    expect(outcome(resumed)).toEqual(outcome(whole))
    // Without what the checkpoint restores, the resumed half alone would see neither violation.
    expect(resumed.violations.length).toBe(2)
  })

  it('a model without a packed form (states interned in memory) cannot be checkpointed', () => {
    const { packed: _p, ...unpacked } = straddling()
    expect(() => bfs(unpacked, { checkpoint: saving().options })).toThrow(BadInput)
    expect(() => bfs(unpacked, { checkpoint: saving().options })).toThrow(/no packed form/)
  })

  for (const c of CASES) {
    for (const store of ['full', 'fingerprint'] as const) {
      for (const symmetry of [true, false]) {
        it(`${c.name}, ${store} store, symmetry ${symmetry ? 'on' : 'off'}: interrupted, resumed: the same as uninterrupted`, () => {
          const model = instantiate(c.scenario, c.variant, c.params ?? {}).model
          const base: ExploreOptions = { store, symmetry, allViolations: true }
          const whole = bfs(model, base)
          const cut = Math.max(2, Math.floor(whole.stats.states / 3))
          const first = saving()
          const part = bfs(model, { ...base, stop: interruptAt(cut), checkpoint: first.options })
          expect(part.verdict).not.toBe('ok')
          expect(part.incomplete).toBe('interrupted')
          expect(first.saved.map((s) => s.final)).toEqual([true])
          const resumed = bfs(model, { ...base, checkpoint: { identity: ID, resume: memorySource(first.saved[0].bytes, 4093) } })
          expect(outcome(resumed)).toEqual(outcome(whole))
          expect(whole.stats.states).toBeGreaterThan(cut)
        })
      }
    }
  }

  it('periodic checkpoints (every 500 states expanded): resuming from any of them, or a resumed run cut and resumed again, ends the same', () => {
    const model = instantiate('fault-invalidate', 'no-retry', { P: 3, V: 2, K: 2 }).model
    for (const store of ['full', 'fingerprint'] as const) {
      const base: ExploreOptions = { store, allViolations: true }
      const whole = bfs(model, base)
      const periodic = saving({ everyStates: 500 })
      const same = bfs(model, { ...base, checkpoint: periodic.options })
      expect(outcome(same)).toEqual(outcome(whole))
      // One per 500 states expanded, none final (the search ended exhaustively).
      expect(periodic.saved.length).toBe(Math.floor((whole.stats.states - 1) / 500))
      expect(periodic.saved.some((s) => s.final)).toBe(false)
      for (const k of [0, Math.floor(periodic.saved.length / 2), periodic.saved.length - 1]) {
        const r = bfs(model, { ...base, checkpoint: { identity: ID, resume: memorySource(periodic.saved[k].bytes) } })
        expect(outcome(r)).toEqual(outcome(whole))
      }
      // Resumed, cut again, resumed again.
      const again = saving()
      const mid = periodic.saved[1].bytes
      bfs(model, { ...base, stop: interruptAt(Math.floor(whole.stats.states * 0.8)), checkpoint: { ...again.options, resume: memorySource(mid) } })
      expect(again.saved.length).toBe(1)
      const r = bfs(model, { ...base, checkpoint: { identity: ID, resume: memorySource(again.saved[0].bytes) } })
      expect(outcome(r)).toEqual(outcome(whole))
    }
  })

  it('a depth bound reached before a checkpoint still makes the resumed run incomplete; a violation saves no final checkpoint', () => {
    // 0 -> 1, 2; 1 -> 3 -> 5; 2 -> 4 (terminal). With max-depth 2, state 3 is cut, then 4 is expanded: a checkpoint before 4 comes after the cut.
    const model = graphModel([[1, 2], [3], [4], [5], [], []], [4, 5])
    const whole = bfs(model, { maxDepth: 2 })
    expect(whole.incomplete).toBe('max-depth 2 reached')
    const s = saving({ everyStates: 1 })
    bfs(model, { maxDepth: 2, checkpoint: s.options })
    const last = s.saved[s.saved.length - 1].bytes
    expect(outcome(bfs(model, { maxDepth: 2, checkpoint: { identity: ID, resume: memorySource(last) } }))).toEqual(outcome(whole))
    // A violation ends a search with its verdict: nothing to resume, no final checkpoint.
    const b = saving()
    const r = bfs(instantiate('fault-invalidate', 'no-retry', { P: 3 }).model, { checkpoint: b.options })
    expect(r.verdict).toBe('violation')
    expect(b.saved).toEqual([])
  })

  it('a bound (max-states) ends the run with a final checkpoint; resumed with a larger bound, it goes on', () => {
    const model = instantiate('fault-invalidate', 'retry', { P: 3 }).model
    const whole = bfs(model, {})
    const s = saving()
    const part = bfs(model, { maxStates: 1000, checkpoint: s.options })
    expect(part.incomplete).toBe('max-states 1000 reached')
    expect(s.saved.map((x) => x.final)).toEqual([true])
    const r = bfs(model, { checkpoint: { identity: ID, resume: memorySource(s.saved[0].bytes) } })
    expect(outcome(r)).toEqual(outcome(whole))
    // Seconds add up over the runs.
    expect(r.stats.seconds).toBeGreaterThanOrEqual(part.stats.seconds)
  })

  it('fingerprint store with its parent links on disk (pages of them past the cut): the checkpoint holds them all, resumed on disk or in memory', () => {
    // The reference model's seeded bug at 4,2,1,2,2, every violation: 579,213 states, 8 pages of 2^16 links on disk by the end.
    const model = instantiate('fault-invalidate', 'no-retry', { P: 4, V: 2, I: 1, K: 2, F: 2 }).model
    const base: ExploreOptions = { store: 'fingerprint', allViolations: true }
    const whole = bfs(model, base)
    const cut = 400_000
    const first = saving()
    const part = bfs(model, { ...base, stop: interruptAt(cut), checkpoint: first.options })
    expect(part.incomplete).toBe('interrupted')
    expect(part.stats.diskBytes).toBeGreaterThanOrEqual(5 * 2 ** 18)
    expect(first.saved.map((x) => x.final)).toEqual([true])
    // Its links are all in it: the same link sections as a memory store's checkpoint.
    const inMemory = saving()
    bfs(model, { ...base, links: 'memory', stop: interruptAt(cut), checkpoint: inMemory.options })
    const links = linkSections(first.saved[0].bytes)
    const memoryLinks = linkSections(inMemory.saved[0].bytes)
    expect(links.length).toBe(part.stats.states)
    expect(memoryLinks.length).toBe(links.length)
    expect(links.findIndex((l, i) => l !== memoryLinks[i])).toBe(-1)
    const resumed = bfs(model, { ...base, checkpoint: { identity: ID, resume: memorySource(first.saved[0].bytes) } })
    expect(outcome(resumed)).toEqual(outcome(whole))
    expect(resumed.stats.diskBytes).toBe(whole.stats.diskBytes)
    expect(whole.stats.diskBytes).toBeGreaterThan(part.stats.diskBytes!)
    const toMemory = bfs(model, { ...base, links: 'memory', checkpoint: { identity: ID, resume: memorySource(first.saved[0].bytes) } })
    expect({ ...outcome(toMemory), stats: { ...outcome(toMemory).stats, diskBytes: whole.stats.diskBytes } }).toEqual(outcome(whole))
    expect(toMemory.stats.diskBytes).toBe(0)
  })
})

/** A fingerprint store's checkpoint's parent links (its sections after the header, the store's JSON and its table). */
function linkSections(bytes: Uint8Array): Uint32Array {
  const r = new CheckpointReader(memorySource(bytes), 'links')
  r.json('the header')
  const m = r.json<{ size: number; slots: number }>('the store')
  r.array(new Uint32Array(m.slots * 2), 'the table')
  const links = new Uint32Array(m.size)
  for (let at = 0; at < m.size; at += 65_536) r.array(links.subarray(at), 'the links', Math.min(65_536, m.size - at))
  return links
}

describe('a bad checkpoint is refused in one line', () => {
  const model = instantiate('fault-invalidate', 'no-retry', { P: 3 }).model
  const s = saving()
  bfs(model, { allViolations: true, stop: interruptAt(300), checkpoint: s.options })
  const good = s.saved[0].bytes
  const resume = (bytes: Uint8Array, options: ExploreOptions = {}, identity: Record<string, string> = ID, m = model) =>
    bfs(m, { allViolations: true, ...options, checkpoint: { identity, resume: memorySource(bytes), resumeName: 'run.ckpt' } })
  const refused = (f: () => unknown): string => {
    try {
      f()
    } catch (e) {
      expect(e).toBeInstanceOf(BadInput)
      const message = (e as Error).message
      expect(message).not.toContain('\n')
      return message
    }
    throw new Error('not refused')
  }

  it('the good one resumes', () => {
    expect(resume(good).verdict).toBe('violation')
  })

  it('truncated anywhere: in its header, its arrays, before its checksum', () => {
    for (const at of [0, 10, 25, 40, Math.floor(good.length / 2), good.length - 40, good.length - 1]) {
      const m = refused(() => resume(good.subarray(0, at)))
      expect(m).toMatch(at < 20 ? /^checkpoint run\.ckpt: not a mapcheck checkpoint$/ : /^checkpoint run\.ckpt: truncated \(it ends at byte \d+, (in|before) .*\)$/)
    }
  })

  it('a byte altered: the checksum (or the structure) does not match', () => {
    for (const at of [Math.floor(good.length / 2), good.length - 60, good.length - 5]) {
      const bad = good.slice()
      bad[at] ^= 0x10
      expect(refused(() => resume(bad))).toMatch(/^checkpoint run\.ckpt: corrupted \(/)
    }
    const longer = new Uint8Array(good.length + 1)
    longer.set(good)
    expect(refused(() => resume(longer))).toBe('checkpoint run.ckpt: corrupted (bytes after its end)')
  })

  it('foreign: another kind of file', () => {
    expect(refused(() => resume(new TextEncoder().encode('{"scenario": "fault-invalidate"}\n')))).toBe('checkpoint run.ckpt: not a mapcheck checkpoint')
    expect(refused(() => resume(new Uint8Array(0)))).toBe('checkpoint run.ckpt: not a mapcheck checkpoint')
  })

  it('of another run: model, parameters, options, identity', () => {
    expect(refused(() => resume(good, {}, ID, instantiate('fault-invalidate', 'retry', { P: 3 }).model))).toBe('checkpoint run.ckpt: is of another run: model fault-invalidate/no-retry there, fault-invalidate/retry here')
    // Another parameter: the engine sees another state layout (the CLI's identity names the parameter itself).
    expect(refused(() => resume(good, {}, ID, instantiate('fault-invalidate', 'no-retry', { P: 2 }).model))).toMatch(/^checkpoint run\.ckpt: is of another run: state layout [0-9a-f]{16} there, [0-9a-f]{16} here$/)
    expect(refused(() => resume(good, { store: 'fingerprint' }))).toBe('checkpoint run.ckpt: is of another run: store full there, fingerprint here')
    expect(refused(() => resume(good, { symmetry: false }))).toBe('checkpoint run.ckpt: is of another run: symmetry on there, off here')
    expect(refused(() => resume(good, { maxDepth: 5 }))).toBe('checkpoint run.ckpt: is of another run: max-depth 10000 there, 5 here')
    expect(refused(() => resume(good, { allViolations: false }))).toBe('checkpoint run.ckpt: is of another run: all-violations yes there, no here')
    expect(refused(() => resume(good, {}, { scenario: 'other' }))).toBe('checkpoint run.ckpt: is of another run: scenario test there, other here')
  })

  it('the format: sections read back as written; a section of another length is corruption', () => {
    const sink = memorySink()
    const w = new CheckpointWriter(sink)
    w.json({ a: 1 })
    w.array(Uint32Array.of(1, 2, 3))
    w.end()
    const bytes = sink.bytes()
    const r = new CheckpointReader(memorySource(bytes, 3), 'x')
    expect(r.json('j')).toEqual({ a: 1 })
    const out = new Uint32Array(3)
    r.array(out, 'the words')
    expect([...out]).toEqual([1, 2, 3])
    r.end()
    const r2 = new CheckpointReader(memorySource(bytes), 'x')
    r2.json('j')
    expect(() => r2.array(new Uint32Array(4), 'the words')).toThrow('checkpoint x: corrupted (the words: 12 bytes where 16 were expected)')
  })
})
