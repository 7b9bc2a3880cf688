import { defineConfig } from 'vitest/config';

// One GPU device per test file, and files run one after another: lavapipe is a CPU driver on a
// 2-core machine, so parallel files only fight over the same cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
