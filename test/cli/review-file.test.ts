import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, inject, it } from 'vitest'
import { loadReviewFile, looksLikeReviewFile, reviewFileHash } from '../../cli/review-file.js'
import { BadInput } from '../../explorer/errors.js'
import { tempDir } from '../support/cli.js'

const root = join(import.meta.dirname, '../..')
const fixtures = join(root, 'test/fixtures/review')
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')

/** The review fixtures copied to a fresh directory outside the repository (no node_modules, no package.json). */
function outside(): string {
  const dir = tempDir()
  cpSync(fixtures, dir, { recursive: true })
  return dir
}

/** The BadInput `loadReviewFile(file)` rejects with. */
async function failure(file: string): Promise<BadInput> {
  const e: unknown = await loadReviewFile(file).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(e).toBeInstanceOf(BadInput)
  expect((e as Error).message).not.toContain('\n')
  return e as BadInput
}

/** A message's shape, with `(line n)` where the cause was. */
const cause = (file: string, what: string, line: number): RegExp => new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot load: ${what} \\(line ${line}\\)$`)

describe('loadReviewFile (from source)', () => {
  it('loads a TypeScript review file; its mapcheck is the running one', async () => {
    const file = relative(process.cwd(), join(fixtures, 'ok.ts'))
    const r = await loadReviewFile(file)
    expect(r.file).toBe(file)
    expect(r.absolute).toBe(join(fixtures, 'ok.ts'))
    expect(r.sha256).toBe(sha256(r.absolute))
    expect(r.sha256).toBe(reviewFileHash(file))
    expect(r.module.BadInput).toBe(BadInput)
    expect(r.module.bound).toBe(3)
    expect(r.module.kind).toBe('review')
    expect(() => (r.module.reject as (why: string) => never)('no')).toThrow(BadInput)
  })

  it('loads review files outside the repository, .ts and .mjs', async () => {
    const dir = outside()
    const ts = await loadReviewFile(join(dir, 'ok.ts'))
    expect(ts.module.BadInput).toBe(BadInput)
    expect(ts.module.bound).toBe(3)
    const mjs = await loadReviewFile(join(dir, 'ok.mjs'))
    expect(mjs.module.BadInput).toBe(BadInput)
    expect((mjs.module.isBadInput as (e: unknown) => boolean)(new BadInput('x'))).toBe(true)
  })

  it('a missing file is one line of BadInput', async () => {
    const dir = tempDir()
    const missing = join(dir, 'missing.ts')
    expect((await failure(missing)).message).toBe(`${missing}: cannot load: no such file`)
    expect(() => reviewFileHash(missing)).toThrow(new BadInput(`${missing}: cannot load: no such file`))
    expect((await failure(dir)).message).toBe(`${dir}: cannot load: is a directory`)
  })

  it('a syntax error is one line of BadInput with its line, .mjs and .ts', async () => {
    const dir = outside()
    const mjs = join(dir, 'syntax-error.mjs')
    expect((await failure(mjs)).message).toMatch(cause(mjs, 'SyntaxError: .+', 3))
    const ts = join(dir, 'syntax-error.ts')
    writeFileSync(ts, "import { BadInput } from 'mapcheck'\nexport const a: number = 1\nexport const broken = (;\n")
    // What vitest's transform says of it (the built package's test checks what tsx says).
    expect((await failure(ts)).message).toMatch(cause(ts, '.*Unexpected token.*', 3))
  })

  it('an exception while the file evaluates is one line of BadInput', async () => {
    const file = join(outside(), 'throws.ts')
    expect((await failure(file)).message).toMatch(cause(file, 'RangeError: limit 2 is too small for BadInput', 5))
  })

  it('loads the new content of a file changed since it was loaded', async () => {
    const file = join(tempDir(), 'changing.ts')
    writeFileSync(file, 'export const version: number = 1\n')
    const first = await loadReviewFile(file)
    writeFileSync(file, 'export const version: number = 2\n')
    const second = await loadReviewFile(file)
    expect([first.module.version, second.module.version]).toEqual([1, 2])
    expect(second.sha256).not.toBe(first.sha256)
  })
})

describe('looksLikeReviewFile', () => {
  it('file names and paths, not scenario names', () => {
    for (const arg of ['review.ts', 'review.mts', 'review.js', 'review.mjs', './review', '../x/review', '/abs/review', 'dir/review', '.review']) {
      expect(looksLikeReviewFile(arg), arg).toBe(true)
    }
    for (const arg of ['mshv-movable', 'fault-invalidate', 'review.json', 'kvm-gmem-binding']) {
      expect(looksLikeReviewFile(arg), arg).toBe(false)
    }
  })
})

interface ProbeReport {
  loads: Record<string, { error?: string; badInput?: boolean; sameBadInput?: boolean; file?: string; absolute?: string; sha256?: string; exports?: string[]; bound?: number }>
  first: { version?: number }
  second: { version?: number }
  cliSameBadInput: boolean
}

/**
 * The CLI (`main`, after the `preload` modules) with test/fixtures/review/cli-probe.mjs
 * preloaded, in a copy of the fixtures outside the repository: what its
 * loader (`loader`) made of the review files, next to that mapcheck's
 * public API (`api`).
 */
function probe(files: string[], run: { preload: string[]; main: string; api: string; loader: string; cliErrors: string }): ProbeReport {
  const dir = outside()
  writeFileSync(join(dir, 'syntax-error.ts'), "import { BadInput } from 'mapcheck'\nexport const a: number = 1\nexport const broken = (;\n")
  const args = [...run.preload.flatMap((m) => ['--import', m]), '--import', join(dir, 'cli-probe.mjs'), run.main, 'no-such-command']
  const r = spawnSync(process.execPath, args, {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', MAPCHECK_API: run.api, MAPCHECK_LOADER: run.loader, MAPCHECK_CLI_ERRORS: run.cliErrors, REVIEW_FILES: files.join(',') },
  })
  expect(r.stderr).toMatch(/^mapcheck: unknown command 'no-such-command'/)
  expect(r.status).toBe(2)
  const report = JSON.parse(r.stdout) as ProbeReport
  expect(report.loads['ok.ts']).toEqual({
    file: 'ok.ts',
    absolute: resolve(dir, 'ok.ts'),
    sha256: sha256(join(dir, 'ok.ts')),
    exports: ['BadInput', 'bound', 'kind', 'notAModelError', 'reject'],
    sameBadInput: true,
    bound: 3,
  })
  return report
}

const files = ['ok.ts', 'ok.mjs', 'syntax-error.mjs', 'syntax-error.ts', 'throws.ts', 'missing.ts']

/** What a CLI run from `probe` must report, whichever mapcheck. */
function expectLoads(report: ProbeReport): void {
  expect(report.loads['ok.mjs']).toMatchObject({ exports: ['BadInput', 'isBadInput'], sameBadInput: true })
  expect(report.loads['syntax-error.mjs']).toEqual({ error: expect.stringMatching(cause('syntax-error.mjs', 'SyntaxError: .+', 3)), badInput: true })
  expect(report.loads['syntax-error.ts']).toEqual({ error: expect.stringMatching(cause('syntax-error.ts', 'SyntaxError: .+', 3)), badInput: true })
  expect(report.loads['throws.ts']).toEqual({ error: expect.stringMatching(cause('throws.ts', 'RangeError: limit 2 is too small for BadInput', 5)), badInput: true })
  expect(report.loads['missing.ts']).toEqual({ error: 'missing.ts: cannot load: no such file', badInput: true })
  expect([report.first.version, report.second.version]).toEqual([1, 2])
  // The review files' BadInput is the public API's, and the public API's is the CLI's.
  expect(report.cliSameBadInput).toBe(true)
}

/** The dist/ files `file` imports, itself included, statically and transitively. */
function staticImports(dist: string, file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen
  seen.add(file)
  for (const [, dep] of readFileSync(join(dist, file), 'utf8').matchAll(/(?:from|import)\s*"\.\/([^"]+\.js)"/g)) staticImports(dist, dep, seen)
  return seen
}

/**
 * The one module of dist/ that defines BadInput, after checking that both
 * the CLI bundle and index.js import it: their module instances are shared.
 */
function distErrorsModule(dist: string): string {
  const defining = readdirSync(dist).filter((f) => f.endsWith('.js') && /\b(?:class BadInput\b|BadInput = class\b)/.test(readFileSync(join(dist, f), 'utf8')))
  expect(defining).toHaveLength(1)
  expect(staticImports(dist, 'mapcheck.js')).toContain(defining[0])
  expect(staticImports(dist, 'index.js')).toContain(defining[0])
  return join(dist, defining[0])
}

describe('loadReviewFile in a CLI process, review files outside the repository', () => {
  it('the built package (dist/, built by test/support/build-dist.ts): their BadInput is the CLI bundle\'s', () => {
    const build = inject('distBuild')
    if (!build.ok) expect.fail(`dist/ is not built from the current sources: ${build.output}`)
    const dist = join(root, 'dist')
    const run = { preload: [], main: join(dist, 'mapcheck.js'), api: join(dist, 'index.js'), loader: join(dist, 'review-file.js'), cliErrors: distErrorsModule(dist) }
    expectLoads(probe(files, run))
  })

  it('from source under tsx (as the CLI tests run it): their BadInput is the CLI\'s', () => {
    const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href
    const run = { preload: [tsx], main: join(root, 'cli/main.ts'), api: join(root, 'index.ts'), loader: join(root, 'cli/review-file.ts'), cliErrors: join(root, 'explorer/errors.ts') }
    expectLoads(probe(files, run))
  })
})
