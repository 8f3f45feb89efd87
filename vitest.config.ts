import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import LongestFirst from './test/support/sequencer.js';

// Most test files wait (on child processes, the stand-in, the databases) more than they compute, so
// the main pass runs more files at once than there are cores (vitest's default is cores - 1: one
// file at a time on a 2-core machine). B24PT_TEST_WORKERS overrides it.
const workers = Number(process.env['B24PT_TEST_WORKERS'] ?? availableParallelism() + 2);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Longest files first (from this machine's last run, or test/timings.json on a fresh clone).
    sequence: { sequencer: LongestFirst },
    // The 30-process fleet needs the machine to itself, and the long soaks (*.soak.test.ts: crash
    // trials, 10,000-portal migrate, 10,000-body fuzz) take minutes: both run in `npm run test:soak`
    // (vitest.soak.config.ts), which CI runs too. The outage tests stop servers of their own
    // (test/support/private-servers.ts), so they run here, beside everything else.
    exclude: ['test/**/*-fleet.test.ts', 'test/**/*.soak.test.ts', 'node_modules/**'],
    // Builds dist/ when it is missing or older than src/, beside the files that do not need it (the
    // CLI, package and README tests wait for it: test/support/dist.ts).
    globalSetup: ['test/global-setup.ts'],
    // Every file: whatever the library lets out (logs, events, errors, answers, stats) is searched for
    // every secret the stand-in Bitrix24 minted in that file; a find fails the file.
    // Every file, too: an unhandled rejection or uncaught exception while it runs fails the file
    // (test/support/crash-check.ts).
    setupFiles: ['test/support/leak-setup.ts', 'test/support/crash-check.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Cross-process and database tests share real resources; files run in parallel, tests in a file serially.
    pool: 'forks',
    maxWorkers: workers,
    // As many workers from start to end: tinypool retires a worker that idles while there are more
    // than `minWorkers`, and with `isolate: false` the retired worker can be handed one more task as it
    // goes (its teardown answer makes it look free): that file never reports and the run dies on an
    // unhandled "Terminating worker thread", leaving workers behind. Equal bounds never retire one.
    minWorkers: workers,
    // A worker runs file after file in one process: the SDK, the drivers and src are imported once per
    // worker instead of once per file (7.1 CPU-minutes for the suite became 5.3). Files keep
    // their own state: each test file builds its own stores, stand-ins and pools, the setup files
    // unsubscribe what they subscribed, and the one file that mocks a module imports the library
    // afresh (test/store/sqlite-driver.test.ts).
    isolate: false,
    // Off unless asked for (`--coverage`, as .ci/test.sh does when CI=true). Child processes
    // (cross-process tests, examples) are not measured, only the test workers.
    coverage: {
      provider: 'v8',
      include: ['src/**'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      // The refresh coordinator's branches are all driven by its unit tests.
      thresholds: { 'src/coordinator/**': { branches: 95 } },
    },
  },
});
