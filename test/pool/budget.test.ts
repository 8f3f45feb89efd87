// The pool's request budget against a stand-in that enforces Bitrix24's leaky bucket: one budget per
// portal for v2, v3 and batch; a bucket another app filled costs a 503 per worker, not per call;
// portals never wait for each other. Counts only, never times.
import { describe, expect, it } from 'vitest';
import { RateLimitedError, StoreError, findPortalTokensError } from '../../src/errors.js';
import { withRequestDeadline } from '../../src/budget/budget.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { basicStore, recordingLogger } from './helpers.js';
import { b24, LIMITS, newPool, seeded, useBudgetRig } from './budget-rig.js';

useBudgetRig();

describe('the stand-in enforces the documented bucket', () => {
  it('answers 503 QUERY_LIMIT_EXCEEDED past the burst and after fillBucket, and nothing when off', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store, { requestBudget: false });
    const b = await pool.clientFor(memberId);
    b24.limitRequests({ drainPerSec: 1, burst: 3 });
    const answers = await Promise.allSettled(Array.from({ length: 6 }, () => b.actions.v2.call.make({ method: 'profile' })));
    expect(b24.stats.rest.queryLimitExceeded).toBeGreaterThanOrEqual(1);
    expect(answers.length).toBe(6);
    b24.resetStats();
    b24.fillBucket(memberId);
    expect(b24.bucketLevel(memberId)).toBeGreaterThan(2.5);
    b24.limitRequests(null);
    await b.actions.v2.call.make({ method: 'profile' });
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
    expect(() => b24.fillBucket(memberId)).toThrow(/limitRequests/);
    await pool.close();
  });
});

describe('PortalClientPool request budget', () => {
  it('mixed v2, v3 and batch calls of one process stay within one budget: no 503 at the stand-in', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store);
    const b = await pool.clientFor(memberId);
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    b24.resetStats();
    const calls = Array.from({ length: 30 }, (_, i) => {
      if (i % 3 === 0) return b.actions.v2.call.make({ method: 'profile' });
      if (i % 3 === 1) return b.actions.v3.call.make({ method: 'profile' });
      return b.actions.v2.batch.make({ calls: [['profile', {}], ['profile', {}]] });
    });
    const results = await Promise.all(calls);
    expect(results.every((r) => r.isSuccess)).toBe(true);
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
    expect((b24.stats.restByMethod['profile'] ?? 0) + (b24.stats.restByMethod['batch'] ?? 0)).toBe(30);
    const stats = pool.stats();
    // Burst 9 (the documented 10, less the unit every step leaves free) at once; the other 21 waited for a slot.
    expect(stats.budgets[memberId]?.waits).toBeGreaterThanOrEqual(18);
    expect(stats.budgetWaits).toBe(stats.budgets[memberId]?.waits);
    expect(stats.queryLimitExceeded).toBe(0);
    await pool.close();
  }, 30_000);

  it('a 503 that still comes back pushes the budget back, and the call is retried and succeeds', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store);
    const pushBacks: number[] = [];
    pool.on('budget-push-back', ({ ms }) => pushBacks.push(ms));
    const b = await pool.clientFor(memberId);
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    b24.fillBucket(memberId);
    b24.resetStats();
    const results = await Promise.all(Array.from({ length: 5 }, () => b.actions.v2.call.make({ method: 'profile' })));
    expect(results.every((r) => r.isSuccess)).toBe(true);
    const stats = pool.stats();
    // The first request goes alone on a portal it has not heard from, so the full bucket costs one 503.
    expect(b24.stats.rest.queryLimitExceeded).toBe(1);
    expect(stats.queryLimitExceeded).toBe(1);
    expect(stats.budgetPushBacks).toBe(1);
    expect(pushBacks).toHaveLength(1);
    await pool.close();
  }, 30_000);

  it('a wait past maxBudgetWaitMs or a caller deadline fails at once with RateLimitedError', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store, { requestBudget: { ratePerSec: 1, burst: 2 }, budgetHeadroom: 1, maxBudgetWaitMs: 60_000 });
    const b = await pool.clientFor(memberId);
    await Promise.all([b.actions.v2.call.make({ method: 'profile' }), b.actions.v2.call.make({ method: 'profile' })]);
    const error = await withRequestDeadline({ maxWaitMs: 100 }, () => b.actions.v2.call.make({ method: 'profile' })).catch((e: unknown) => e);
    const typed = findPortalTokensError(error);
    expect(typed).toBeInstanceOf(RateLimitedError);
    expect((typed as RateLimitedError).reason).toBe('rate');
    expect((typed as RateLimitedError).waitMs).toBeGreaterThan(100);
    expect(pool.stats().budgets[memberId]?.rateLimited).toBe(1);
    await pool.close();
  });

  it('a method past its share of the operating time waits cluster-wide (here: refused at its deadline); other methods do not', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store);
    const b = await pool.clientFor(memberId);
    b24.setOperatingTime('profile', 100);
    try {
      // 4 answers of 100 s each: past 80% of 480 s.
      for (let i = 0; i < 4; i++) {
        await b.actions.v2.call.make({ method: 'profile' });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const error = await withRequestDeadline({ maxWaitMs: 1_000 }, () => b.actions.v2.call.make({ method: 'profile' })).catch((e: unknown) => e);
      const typed = findPortalTokensError(error);
      expect(typed).toBeInstanceOf(RateLimitedError);
      expect((typed as RateLimitedError).reason).toBe('operating');
      // (400 - 384) s of operating time drain at 0.8 s a second: about 20 s.
      expect((typed as RateLimitedError).waitMs).toBeGreaterThan(10_000);
      const other = await withRequestDeadline({ maxWaitMs: 1_000 }, () => b.actions.v2.call.make({ method: 'app.info' }));
      expect(other.isSuccess).toBe(true);
    } finally {
      b24.setOperatingTime('profile', null);
      await pool.close();
    }
  });

  it('ten portals: each gets its own budget, and a portal with no load waits for nobody', async () => {
    const store = new MemoryTokenStore();
    const members: string[] = [];
    for (let i = 0; i < 10; i++) members.push(await seeded(store));
    // A fixed share: this test is about portals' separate budgets, nine loaded at once on a shared
    // machine at 5 times Bitrix24's rate (one interval of margin is 100 ms here); the learned share
    // is tested in budget-learned.test.ts.
    const pool = newPool(store, { budgetHeadroom: 0.8 });
    const clients = await Promise.all(members.map((m) => pool.clientFor(m)));
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    b24.resetStats();
    const loaded = clients.slice(0, 9);
    const storm = Promise.all(loaded.flatMap((b) => Array.from({ length: 16 }, () => b.actions.v2.call.make({ method: 'profile' }))));
    const quiet = await clients[9]!.actions.v2.call.make({ method: 'profile' });
    await storm;
    expect(quiet.isSuccess).toBe(true);
    const stats = pool.stats();
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
    expect(stats.budgets[members[9]!]?.waits ?? 0).toBe(0);
    for (const memberId of members.slice(0, 9)) {
      // Each portal's own burst of 7 (80% of 10, less the unit every step leaves free) went at once;
      // its other 9 waited for its own slots only (one more when a lone request leased a slot).
      expect(stats.budgets[memberId]?.waits).toBeGreaterThanOrEqual(6);
      expect(stats.budgets[memberId]?.waits).toBeLessThanOrEqual(10);
    }
    await pool.close();
  }, 30_000);

  it('leases slots while the budget does not bind: 3 pools x 30 calls one after another on one store take far fewer budget steps than calls, and no 503', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const acquire = store.acquire.bind(store);
    let steps = 0;
    store.acquire = (key, spec) => {
      if (key.startsWith('rest:')) steps++;
      return acquire(key, spec);
    };
    // 200 a second and a burst of 1,000: a margin of 20 units, a lease window of 100 ms (leaseMarginOf).
    const wide = { ratePerSec: 200, burst: 1000 };
    const pools = [newPool(store, { requestBudget: wide }), newPool(store, { requestBudget: wide }), newPool(store, { requestBudget: wide })];
    const clients = await Promise.all(pools.map((pool) => pool.clientFor(memberId)));
    b24.limitRequests({ drainPerSec: wide.ratePerSec, burst: wide.burst });
    b24.resetStats();
    steps = 0;
    const ok = await Promise.all(
      clients.map(async (b) => {
        let n = 0;
        for (let i = 0; i < 30; i++) if ((await b.actions.v2.call.make({ method: 'profile' })).isSuccess) n++;
        return n;
      }),
    );
    expect(ok).toEqual([30, 30, 30]);
    expect(b24.stats.rest.queryLimitExceeded, 'the fleet never passed the portal limit').toBe(0);
    // One step per call without leases (90); leased slots serve calls locally. How many depends on
    // how fast the calls come (a leased slot is usable for its window): about a third on a quiet
    // machine, more on a busy one.
    expect(steps).toBeLessThan(90);
    console.info(`[budget] ${steps} budget steps for 90 calls`);
    for (const pool of pools) await pool.close();
  }, 60_000);

  it("a budget step the database refuses reaches the caller as the store's typed StoreError, whatever the SDK wraps it in", async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    store.acquire = () =>
      Promise.reject(
        new StoreError('PostgreSQL token store failed to take a budget step for: the database could not be reached (SQLSTATE 53300)', { transient: true }),
      );
    const pool = newPool(store);
    const b = await pool.clientFor(memberId);
    const failure = await b.actions.v2.call.make({ method: 'profile' }).then(
      (result) => result,
      (error: unknown) => error,
    );
    const typed = findPortalTokensError(failure);
    expect(typed, `caught ${String((failure as { code?: unknown }).code ?? failure)}`).toBeInstanceOf(StoreError);
    expect(typed?.code).toBe('STORE_FAILURE');
    expect((typed as StoreError).transient).toBe(true);
    await pool.close();
  }, 30_000);

  it('without a shared budget in the store it keeps a local one and warns once', async () => {
    const inner = new MemoryTokenStore();
    const memberId = await seeded(inner);
    const store = basicStore(inner, { list: false });
    const logger = recordingLogger();
    const pool = newPool(store, { logger });
    const b = await pool.clientFor(memberId);
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    await Promise.all(Array.from({ length: 12 }, () => b.actions.v2.call.make({ method: 'profile' })));
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
    expect(logger.lines.filter((line) => line.includes('no shared request budget'))).toHaveLength(1);
    await pool.close();
  }, 30_000);
});
