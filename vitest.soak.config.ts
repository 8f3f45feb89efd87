// `npm run test:soak` (CI runs it after `npm test`), one file at a time: the long soaks
// (*.soak.test.ts: the crash trials, workers killed with SIGKILL mid-refresh; `migrate` of 10,000
// portals killed midway and resumed; 10,000 fuzzed bodies at the lifecycle handler) and the fleet
// test (30 worker processes on one PostgreSQL, test/store/postgres-fleet.test.ts), which needs the
// machine to itself. Each asserts what it asserts in every run; they are here only because they take
// minutes, not seconds. (The outage tests stop servers of their own, test/support/private-servers.ts,
// and run in the main pass.)
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.soak.test.ts', 'test/**/*-fleet.test.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/global-setup.ts'],
    // Every file: an unhandled rejection or uncaught exception fails it; the library's output is
    // searched for the stand-in's secrets, as in the main pass.
    setupFiles: ['test/support/leak-setup.ts', 'test/support/crash-check.ts'],
  },
});
