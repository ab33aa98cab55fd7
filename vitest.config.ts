import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests (no network), and integration tests against real etcd and
// RabbitMQ servers that test/support/global-setup.ts starts (or finds) once per run.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          // After each file: removes the data dirs of the hearth processes it started (test/support/test-dirs.ts).
          setupFiles: ['test/support/remove-dirs.setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          // In CI (2 shared cores, servers restarted under load) an integration test that fails
          // runs once more; scripts/ci-summary.mjs lists every test that passed only on its
          // retry, with its first failure, so a flaky test stays visible instead of hidden.
          retry: process.env.CI ? 1 : 0,
        },
      },
    ],
  },
});
