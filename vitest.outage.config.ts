// The outage tests stop and restart the shared PostgreSQL and Redis: they run in a pass of their
// own after the main run, one file at a time, so no other test meets the outage; the fleet test (30
// worker processes on one PostgreSQL) runs here too, with the machine to itself.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*-outage.test.ts', 'test/**/*-fleet.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    // An unhandled rejection or uncaught exception while a file runs fails the file.
    setupFiles: ['test/support/crash-check.ts'],
  },
});
