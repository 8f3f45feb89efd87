// `npm run test:soak` (CI runs it after `npm test`): the long soaks, one file at a time: the crash
// trials (workers killed with SIGKILL mid-refresh), `migrate` of 10,000 portals killed midway and
// resumed, and 10,000 fuzzed bodies at the lifecycle handler. Each asserts what it asserts in every
// run; they are here only because they take minutes, not seconds.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.soak.test.ts'],
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
