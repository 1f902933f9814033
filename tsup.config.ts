import { defineConfig } from 'tsup'

// Two entry points: the CLI (package "bin") and the benchmark runner.
export default defineConfig({
  entry: { mapcheck: 'cli/main.ts', bench: 'bench/run.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  clean: true,
  sourcemap: true,
  banner: { js: '#!/usr/bin/env node' },
})
