import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    // A review file's `import ... from 'mapcheck'` (cli/review-file.ts): the
    // source public API. vitest's module runner does not go through the Node
    // module hooks that do this for the CLI.
    alias: [{ find: /^mapcheck$/, replacement: fileURLToPath(new URL('./index.ts', import.meta.url)) }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // dist/, for the tests of the built package (test/cli/review-file.test.ts).
    globalSetup: ['test/support/build-dist.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
})
