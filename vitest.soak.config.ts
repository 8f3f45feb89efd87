// The fleet test (30 worker processes on one PostgreSQL, test/store/postgres-fleet.test.ts) runs in a
// pass of its own after the main run, with the machine to itself. (The outage tests stop servers of
// their own, test/support/private-servers.ts, and run in the main pass.)
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*-fleet.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    // An unhandled rejection or uncaught exception while a file runs fails the file.
    setupFiles: ['test/support/crash-check.ts'],
  },
});
