import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Namespaced network tests and real servers share the host: run files one at a time per worker pool.
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    // json: .ci/run prints a plain 'N passed, N failed' line from it.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
