/**
 * vitest globalSetup: builds dist/ (`tsup`: bundles and declarations) when
 * it is missing or older than any source, for the tests of the built package
 * (test/cli/review-file.test.ts). A failed build fails those tests only, with
 * the build's output (`inject('distBuild')`), not the whole run.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Whether dist/ is built from the current sources; if not, why. */
    distBuild: { ok: true } | { ok: false; output: string }
  }
}

const root = join(import.meta.dirname, '../..')
const outputs = ['dist/index.js', 'dist/mapcheck.js', 'dist/review-file.js', 'dist/types/index.d.ts'].map((f) => join(root, f))
const sourceDirs = ['cli', 'explorer', 'model', 'invariants', 'traces', 'bench']
const sourceFiles = ['index.ts', 'package.json', 'tsconfig.json', 'tsconfig.dts.json', 'tsup.config.ts']

/** mtime of the newest TypeScript source or build configuration. */
function newestSource(): number {
  let newest = 0
  const visit = (path: string, config: boolean): void => {
    const st = statSync(path, { throwIfNoEntry: false })
    if (st === undefined) return
    if (st.isDirectory()) {
      for (const entry of readdirSync(path)) visit(join(path, entry), false)
    } else if (config || path.endsWith('.ts')) {
      newest = Math.max(newest, st.mtimeMs)
    }
  }
  for (const dir of sourceDirs) visit(join(root, dir), false)
  for (const file of sourceFiles) visit(join(root, file), true)
  return newest
}

export default function setup(project: TestProject): void {
  const built = outputs.every(existsSync) ? Math.min(...outputs.map((f) => statSync(f).mtimeMs)) : -1
  if (built >= newestSource()) {
    project.provide('distBuild', { ok: true })
    return
  }
  const r = spawnSync(process.execPath, [join(root, 'node_modules/tsup/dist/cli-default.js'), '--silent'], { cwd: root, encoding: 'utf8' })
  const ok = r.status === 0 && outputs.every(existsSync)
  // Half built (bundles written, declarations failed): built again next run.
  if (!ok && existsSync(outputs[0])) utimesSync(outputs[0], 0, 0)
  project.provide('distBuild', ok ? { ok } : { ok, output: `tsup exited ${r.status}:\n${r.stdout}${r.stderr}` })
}
