import { spawnSync } from 'node:child_process'
import { basename } from 'node:path'
import { defineConfig, type Options } from 'tsup'

type Plugin = NonNullable<Options['plugins']>[number]

/**
 * `#!/usr/bin/env node` on the CLI bundle alone. esbuild's `banner` goes on
 * every output file and one build has one banner; two builds would not share
 * chunks, and the CLI must share module instances with `index.js` (a review
 * file's `import { BadInput } from 'mapcheck'` must get the CLI's BadInput).
 */
const cliShebang = (file: string): Plugin => ({
  name: 'cli-shebang',
  renderChunk(code, info) {
    if (basename(info.path) !== file) return
    if (typeof info.map === 'string') {
      // One more generated line before the first: one more ';' in the mappings.
      const map = JSON.parse(info.map) as { mappings: string }
      info.map = JSON.stringify({ ...map, mappings: ';' + map.mappings })
    }
    info.mode = 0o755
    return { code: `#!/usr/bin/env node\n${code}` }
  },
})

/**
 * One ESM build with code splitting: dist/mapcheck.js (the package's bin),
 * dist/index.js (the public API, the package's "."), dist/bench.js, and
 * chunks that they import in common, so the CLI and `index.js` run the same
 * module instances. `dist/review-file.js` exposes the review-file loader of
 * the bundle to the tests of the built package (test/cli/review-file.test.ts).
 *
 * Declarations: tsup's `dts` needs TypeScript's JS compiler API, which the
 * native TypeScript 7 here has not; `tsc -p tsconfig.dts.json` writes them
 * to dist/types once the bundles are written (so `tsup` alone builds all).
 */
export default defineConfig({
  // parallel-worker and model-recipe: what a parallel BFS worker thread loads (explorer/parallel-bfs.ts).
  entry: { mapcheck: 'cli/main.ts', index: 'index.ts', bench: 'bench/run.ts', 'review-file': 'cli/review-file.ts', 'parallel-worker': 'explorer/parallel-worker.ts', 'model-recipe': 'cli/model-recipe.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  splitting: true,
  clean: true,
  sourcemap: true,
  plugins: [cliShebang('mapcheck.js')],
  onSuccess: async () => {
    const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.dts.json'], { stdio: 'inherit' })
    if (tsc.status !== 0) {
      console.error('mapcheck: declarations: tsc -p tsconfig.dts.json failed')
      process.exitCode = tsc.status ?? 1
    }
  },
})
