// The crash-trial bench (bench/crash-trials.ts, `npm run bench:crash`) works: 3 trials on each store,
// a worker killed with SIGKILL in each. The figures are a measurement, reported in the README; what
// is asserted here holds in every run: a control run without a kill loses nothing and leaves no
// refresh answer uncommitted, and any chain lost to a kill is lost the one acceptable way (the OAuth
// host answered, the killed worker never committed, so the stored refresh token is spent).
import { describe, expect, it } from 'vitest';
import { runCrashTrials, type CrashSummary } from '../../bench/crash-trials.js';
import { serviceAvailable } from '../support/services.js';
import { enterGate } from '../store/fixtures/pg-support.js';

const pgAvailable = await serviceAvailable('postgres');

function check(summary: CrashSummary): void {
  expect(summary.trials).toBe(4);
  const [control, ...killed] = summary.results;
  expect(control!.kill).toBeUndefined();
  expect(control!.lostTotal).toBe(0);
  expect(control!.uncommitted).toBe(0);
  expect(control!.refreshReuse).toBe(0);
  expect(control!.failedCalls).toBe(0);
  for (const result of killed) {
    expect(result.kill).toBeDefined();
    expect(Object.keys(result.lost).filter((cause) => cause !== 'spent')).toEqual([]);
    // Each chain lost is a refresh answer that never reached the store.
    expect(result.lostTotal).toBeLessThanOrEqual(result.uncommitted);
  }
}

describe('crash trials', () => {
  it('file store: a control trial loses nothing; 3 trials with a kill lose chains only in the answer-to-commit window', async () => {
    check(await runCrashTrials({ store: 'file', trials: 4, controlTrials: 1, seed: 1 }));
  }, 120_000);

  it.skipIf(!pgAvailable)('PostgreSQL: the same', async () => {
    const leave = await enterGate('shared');
    try {
      check(await runCrashTrials({ store: 'postgres', trials: 4, controlTrials: 1, seed: 1 }));
    } finally {
      await leave();
    }
  }, 120_000);
});
