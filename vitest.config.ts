import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // End-to-end suites spawn xDS client processes; keep CPU contention bounded on 2 cores.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
