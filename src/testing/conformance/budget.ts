// Conformance cases for the shared request budget (capability `budget`): a burst goes at once, then
// waits grow by one interval per request; keys are independent; a deadline takes nothing; a push-back
// holds every caller; and several real processes taking slots at once never exceed the budget.

import type { BudgetGrant, BudgetSpec, TokenStore } from '../../store/token-store.js';
import type { SuiteContext } from './context.js';

/** The store's `acquire`, bound; fails the case if a store declaring `budget` lacks it. */
function acquireOf(target: TokenStore): NonNullable<TokenStore['acquire']> {
  if (target.acquire === undefined) throw new Error('capabilities.budget is true but acquire is missing');
  const acquire = target.acquire.bind(target);
  return (key, spec) => acquire(key, spec);
}

// Slow enough that the few ms a store round trip takes are small against one interval.
const SLOW: BudgetSpec = { ratePerSec: 1, burst: 5 };
// How far a wait may fall short of its exact GCRA value: the time the earlier steps took.
const SLACK_MS = 400;

/** Registers the budget cases; only for stores that declare `capabilities.budget`. */
export function registerBudgetCases({ test, expect, store }: SuiteContext): void {
  test('a burst is granted at once, then every request waits one interval longer', async () => {
    const acquire = acquireOf(store());
    const grants: BudgetGrant[] = [];
    for (let i = 0; i < 8; i++) grants.push(await acquire('budget-a', SLOW));
    for (const [i, grant] of grants.entries()) {
      expect(grant.granted, 'a step without maxWaitMs is always granted').toBe(true);
      if (i < 5) expect(grant.waitMs, 'the first `burst` requests go at once').toBe(0);
      else {
        const exact = (i - 4) * 1000;
        expect(grant.waitMs, 'past the burst each request waits one interval (1/rate) more').toBeLessThanOrEqual(exact);
        expect(grant.waitMs, 'past the burst each request waits one interval (1/rate) more').toBeGreaterThan(exact - SLACK_MS);
      }
    }
  });

  test('keys are independent', async () => {
    const acquire = acquireOf(store());
    for (let i = 0; i < 5; i++) await acquire('budget-busy', SLOW);
    expect((await acquire('budget-busy', SLOW)).waitMs, 'a spent key makes its next request wait').toBeGreaterThan(0);
    expect((await acquire('budget-quiet', SLOW)).waitMs, "one key's spending makes no other key wait").toBe(0);
    expect((await acquire('rest:another', SLOW)).waitMs, "one key's spending makes no other key wait").toBe(0);
  });

  test('cost 0 takes nothing, and a wait past maxWaitMs is refused without taking a slot', async () => {
    const acquire = acquireOf(store());
    for (let i = 0; i < 5; i++) await acquire('budget-deadline', SLOW);
    const peek = await acquire('budget-deadline', { ...SLOW, cost: 0 });
    expect(peek.waitMs, 'cost 0 reports no wait while the budget is not overdrawn').toBe(0);
    const refused = await acquire('budget-deadline', { ...SLOW, maxWaitMs: 100 });
    expect(refused.granted, 'a wait longer than maxWaitMs is not granted').toBe(false);
    expect(refused.waitMs, 'a refused step says how long the wait would have been').toBeGreaterThan(100);
    const next = await acquire('budget-deadline', SLOW);
    expect(next.granted, 'a step without maxWaitMs is granted').toBe(true);
    expect(next.waitMs, 'a refused step took no slot: the next request waits one interval, not two').toBeLessThanOrEqual(1000);
  });

  test('a push-back holds every request of the key for the given time', async () => {
    const acquire = acquireOf(store());
    const fast: BudgetSpec = { ratePerSec: 100, burst: 50 };
    expect((await acquire('budget-push', fast)).waitMs, 'a fresh key grants at once').toBe(0);
    await acquire('budget-push', { ...fast, cost: 0, pushBackMs: 2_000 });
    const after = await acquire('budget-push', fast);
    expect(after.waitMs, 'after a push-back of 2 s the next request waits about 2 s').toBeGreaterThan(2_000 - SLACK_MS);
    expect(after.waitMs, 'after a push-back of 2 s the next request waits about 2 s').toBeLessThanOrEqual(2_000 + 10);
    const following = await acquire('budget-push', fast);
    expect(following.waitMs, 'requests after it are spaced by the interval again').toBeLessThanOrEqual(2_000 + 10 + 10);
  });

  test('bad arguments are refused', async () => {
    const acquire = acquireOf(store());
    await expect(acquire('', SLOW), 'an empty key is refused').rejects.toThrow(TypeError);
    await expect(acquire('k', { ratePerSec: 0, burst: 5 }), 'a zero rate is refused').rejects.toThrow(TypeError);
    await expect(acquire('k', { ratePerSec: 1, burst: 0 }), 'a burst below 1 is refused').rejects.toThrow(TypeError);
    await expect(acquire('k', { ...SLOW, cost: -1 }), 'a negative cost is refused').rejects.toThrow(TypeError);
  });
}

/** Registers the cross-process budget case; only with `crossProcess` and `capabilities.budget`. */
export function registerCrossProcessBudgetCases({ test, expect, spawnChild }: SuiteContext): void {
  test(
    'several processes taking slots at once never exceed the budget',
    async () => {
      const processes = 4;
      const each = 10;
      const spec: BudgetSpec = { ratePerSec: 1, burst: 8 };
      const children = await Promise.all(Array.from({ length: processes }, () => spawnChild()));
      const startAt = Date.now() + 300;
      const answers = await Promise.all(
        children.map((child) =>
          child.call<{ waitMs: number; granted: boolean; at: number }[]>('acquireRace', {
            budgetKey: 'rest:shared-portal',
            spec,
            count: each,
            startAt,
          }),
        ),
      );
      const all = answers.flat();
      expect(all.length, 'every process got an answer for every step').toBe(processes * each);
      expect(all.every((grant) => grant.granted), 'steps without maxWaitMs are granted').toBe(true);
      // When each request may leave, relative to the shared start; sorted, the k-th may leave no
      // earlier than (k - burst + 1) intervals after the start (minus what the steps took).
      const leaves = all.map((grant) => grant.at + grant.waitMs - startAt).sort((a, b) => a - b);
      const took = Math.max(...all.map((grant) => grant.at)) - startAt;
      for (const [k, leave] of leaves.entries()) {
        const earliest = (k - spec.burst + 1) * 1000;
        expect(leave, `slot ${k} of ${leaves.length}: the budget (burst 8, 1/s) is never exceeded across processes`).toBeGreaterThanOrEqual(
          earliest - took - 50,
        );
      }
      const immediate = all.filter((grant) => grant.waitMs === 0).length;
      expect(immediate, 'no more than the burst (plus what refilled while the steps ran) goes at once').toBeLessThanOrEqual(
        spec.burst + Math.ceil(took / 1000),
      );
    },
    30_000,
  );
}
