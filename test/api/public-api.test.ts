/**
 * The public API as a user imports it (`from 'mapcheck'`), on the review
 * files of examples/: a variant that breaks an invariant, a vacuous fix, a
 * scenario from scratch with a counter underflow; labels the compiler and
 * the build check; a model error in one scenario leaves the others' rows.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { check, compare, kvmGmemConversion, loadScenarios, mmuInvalidateRetrySeqOnly, replay, scenariosOf, variant } from 'mapcheck'
import { checkAllCommand } from '../../cli/compare.js'

const root = join(import.meta.dirname, '../..')
const example = (name: string) => join(root, 'examples', name)
const fixture = (name: string) => join(root, 'test/fixtures/review-labels', name)
const dirs: string[] = []
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'mapcheck-api-'))
  dirs.push(d)
  return d
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

describe('examples through the public API', () => {
  it('a variant that deletes read_retry breaks no-stale-mapping; its trace replays', async () => {
    const dir = temp()
    const r = await check(example('drop-read-retry.ts'), { out: join(dir, 'trace.json') })
    expect(r.result).toBe('violation')
    expect(r.variant).toBe('drop-read-retry')
    expect(r.invariant).toBe('no-stale-mapping')
    expect(r.steps).toBe(20)
    expect(r.patched).toEqual(['vp.mutex_lock'])
    expect(r.coverage.vp.mutex_lock).toBeGreaterThan(0)
    // The step the patch deletes is gone from the process, not merely unreached.
    expect(r.coverage.vp.mmu_interval_read_retry).toBeUndefined()
    const again = await replay(join(dir, 'trace.json'))
    expect(again.reproduced).toBe(true)
    expect(again.source).toBe(example('drop-read-retry.ts'))
  })

  it('compare flags a fix whose patched step the bounds never reach, and not once they do', async () => {
    const c = await compare(example('unmap-again-before-free.ts'), { params: { vps: 1 }, variants: ['unmap-again-before-free', 'upstream-fixed'] })
    const fix = c.variants.find((v) => v.variant === 'unmap-again-before-free')!
    expect(fix.result).toBe('ok')
    expect(fix.patchUnreached).toEqual(['vmm.vfree'])
    // upstream-fixed's own reorder of the release is not exercised without destroy either: the flag says so of it too.
    expect(c.variants.find((v) => v.variant === 'upstream-fixed')!.patchUnreached).toContain('vp.mshv_region_destroy')
    const exercised = await compare(example('unmap-again-before-free.ts'), { params: { destroy: 1, vps: 1 }, variants: ['unmap-again-before-free'] })
    expect(exercised.variants[0].result).toBe('ok')
    expect(exercised.variants[0].patchUnreached).toEqual([])
  })

  it('a scenario from scratch: upstream holds, no-retry breaks no-stale-mapping, an unbalanced end is a field-in-range violation', async () => {
    const [s] = await loadScenarios(example('notifier-counter.ts'))
    expect(s.name).toBe('notifier-counter')
    expect((await check(s, { variant: 'upstream' })).result).toBe('ok')
    const noRetry = await check(s, { variant: 'no-retry' })
    expect([noRetry.result, noRetry.invariant]).toEqual(['violation', 'no-stale-mapping'])
    const doubleEnd = await check(s, { variant: 'double-end' })
    expect(doubleEnd.invariant).toBe('field-in-range')
    expect(doubleEnd.message).toBe('inProgress = -1 is not an integer in 0..2')
    expect(doubleEnd.steps).toBe(5)
    // Coverage names every step, and the ones never taken.
    expect(doubleEnd.unreached).toEqual(['fault.retry'])
  })
})

describe('variants of variants', () => {
  it("a review variant from a built-in patch leaves the built-in patches on their own base (they do not become patches of the review's)", async () => {
    const review = variant(kvmGmemConversion, {
      name: 'seq-only-retry',
      from: 'split-ept-first',
      description: 'split-ept-first retrying only on a sequence change',
      context: () => ({ mmu_invalidate_retry_gfn: mmuInvalidateRetrySeqOnly }),
    })
    const [s] = scenariosOf({ default: review })
    expect(s.variants[0].name).toBe('seq-only-retry')
    // split-ept-first was a patch of the first variant (upstream); it still is.
    expect(s.variants.find((v) => v.name === 'split-ept-first')?.from).toBe('upstream')
    const c = await compare(s)
    const row = (name: string) => c.variants.find((v) => v.variant === name)
    expect(row('seq-only-retry')?.error).toBeUndefined()
    expect(row('split-ept-first')?.violated).toEqual([])
    // Without the in-progress test a fault maps while the conversion runs: the S-EPT split is undone.
    expect(row('seq-only-retry')?.violated).toContain('mapping-within-folio')
  })
})

describe('labels', () => {
  it('tsc rejects a mistyped goto in a typed process', () => {
    const dir = temp()
    const config = (file: string) => {
      const path = join(dir, `tsconfig-${file.replace(/\W/g, '')}.json`)
      writeFileSync(
        path,
        JSON.stringify({
          compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: ['node'], typeRoots: [join(root, 'node_modules/@types')], paths: { mapcheck: [join(root, 'index.ts')] } },
          files: [file],
        }),
      )
      return path
    }
    const tsc = (file: string) => spawnSync(join(root, 'node_modules/.bin/tsc'), ['-p', config(file), '--pretty', 'false'], { encoding: 'utf8' })
    const bad = tsc(fixture('mistyped-goto.ts'))
    expect(bad.status).not.toBe(0)
    expect(bad.stdout).toMatch(/mistyped-goto\.ts\(12,24\): error TS\d+: Type '"mutex_lok"' is not assignable to type '"done" \| "mutex_lock" \| "take"'/)
    // The examples, written the same way, type-check.
    expect(tsc(example('notifier-counter.ts')).stdout).toBe('')
  })

  it('an untyped review file with a mistyped goto fails when it is built, naming process, step and label', async () => {
    const [s] = await loadScenarios(fixture('mistyped-goto.mjs'))
    await expect(check(s)).rejects.toThrow("mistyped/as-written: process worker, step take: goto 'mutex_lok' is not a label of the process")
  })
})

describe('model errors', () => {
  it('a step that throws in one scenario is a model error in its cells; the other scenario is checked', async () => {
    const scenarios = await loadScenarios(fixture('two-scenarios.mjs'))
    let out = ''
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true))
    let status
    try {
      status = checkAllCommand(scenarios, {}, false)
    } finally {
      spy.mockRestore()
    }
    // In-process, the colours follow the test runner's terminal (CI forces them on): compare the text.
    out = stripVTControlCharacters(out)
    expect(status).toBe(2)
    expect(out).toMatch(/^fine\s*\nvariant\s+field-in-range\s+no-deadlock\nplain\s+holds\s+holds/m)
    expect(out).toMatch(/^throwing\s*\nvariant\s+result\nplain\s+model error/m)
    // The note is word-wrapped to the matrix's 100 columns.
    expect(out.replace(/\s+/g, ' ')).toMatch(/plain: model error: throwing\/plain: t0 at inc threw TypeError: folio is NULL \(after 1 steps: inc\)/)
  })
})
