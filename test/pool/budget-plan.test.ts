// The pool's request budget and the operating-time limit: a 429 OPERATION_TIME_LIMIT holds the method
// for every worker until its reset; the portal's plan (from app.info) sets its default budget.
// Counts only, never times. (Split from budget.test.ts so the files run side by side.)
import { describe, expect, it } from 'vitest';
import { RateLimitedError, findPortalTokensError } from '../../src/errors.js';
import type { PortalClientPool } from '../../src/pool/pool.js';
import { withRequestDeadline } from '../../src/budget/budget.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { b24, LIMITS, newPool, seeded, useBudgetRig } from './budget-rig.js';

useBudgetRig();

describe('429 OPERATION_TIME_LIMIT and the portal plan', () => {
  const sum = (pools: PortalClientPool[], memberId: string, field: 'operationTimeLimit' | 'operatingWaits'): number =>
    pools.reduce((total, pool) => total + (pool.stats().budgets[memberId]?.[field] ?? 0), 0);

  it('a blocked method is held for every worker until its reset: 4 pools on one store, the 429s bounded by the pools, not the 80 calls', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pools = Array.from({ length: 4 }, () => newPool(store));
    const clients = await Promise.all(pools.map((pool) => pool.clientFor(memberId)));
    // The portal is warm (another method answered): only the method's own gate and account hold it.
    await Promise.all(clients.map((b) => b.actions.v2.call.make({ method: 'user.current' })));
    b24.resetStats();
    b24.exhaustOperatingTime(memberId, 'profile', { seconds: 2 });
    const calls = clients.flatMap((b) => Array.from({ length: 20 }, (_, i) => b.actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' })));
    const results = await Promise.all(calls);
    expect(results.every((r) => r.isSuccess)).toBe(true);
    expect(b24.stats.rest.operationTimeLimit).toBeGreaterThanOrEqual(1);
    expect(b24.stats.rest.operationTimeLimit).toBeLessThanOrEqual(pools.length);
    expect(sum(pools, memberId, 'operationTimeLimit')).toBe(b24.stats.rest.operationTimeLimit);
    expect(sum(pools, memberId, 'operatingWaits')).toBeGreaterThanOrEqual(pools.length);
    // Other methods of the portal were never held.
    const other = await withRequestDeadline({ maxWaitMs: 2_000 }, () => clients[0]!.actions.v2.call.make({ method: 'user.current' }));
    expect(other.isSuccess).toBe(true);
    await Promise.all(pools.map((pool) => pool.close()));
  }, 30_000);

  it('without operating_reset_at in the 429 the method is held a whole window; a caller deadline gets RateLimitedError at once', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store);
    const pushBacks: { ms: number; reason: string | undefined }[] = [];
    pool.on('budget-push-back', ({ ms, reason }) => pushBacks.push({ ms, reason }));
    const b = await pool.clientFor(memberId);
    b24.exhaustOperatingTime(memberId, 'profile', { resetAtInAnswer: false });
    try {
      const error = await withRequestDeadline({ maxWaitMs: 1_000 }, () => b.actions.v2.call.make({ method: 'profile' })).catch((e: unknown) => e);
      const typed = findPortalTokensError(error);
      expect(typed).toBeInstanceOf(RateLimitedError);
      expect((typed as RateLimitedError).reason).toBe('operating');
      expect((typed as RateLimitedError).waitMs).toBeGreaterThan(590_000);
      expect(b24.stats.rest.operationTimeLimit).toBe(1);
      expect(pushBacks).toEqual([{ ms: expect.any(Number) as number, reason: 'operating' }]);
      expect(pool.stats().budgets[memberId]).toMatchObject({ operationTimeLimit: 1, pushBacks: 1, rateLimited: 1 });
    } finally {
      b24.exhaustOperatingTime(memberId, 'profile', { seconds: 0 });
      await pool.close();
    }
  });

  it('the default budget follows the plan an app.info answer names (alone or in the SDK helper\'s batch); requestBudget still wins', async () => {
    const store = new MemoryTokenStore();
    const standard = await seeded(store);
    const enterprise = await seeded(store);
    const viaBatch = await seeded(store);
    const pool = newPool(store, { requestBudget: undefined });
    const explicit = newPool(store, { requestBudget: (memberId) => (memberId === enterprise ? LIMITS : undefined) });
    b24.onMethod('app.info', ({ portal }) => ({
      result: portal.memberId === standard ? { LICENSE: 'en_project', LICENSE_TYPE: 'project', LICENSE_FAMILY: 'project' } : { LICENSE: 'ru_ent250', LICENSE_TYPE: 'ent250', LICENSE_FAMILY: 'ent' },
    }));
    try {
      for (const memberId of [standard, enterprise]) {
        await (await pool.clientFor(memberId)).actions.v2.call.make({ method: 'app.info' });
        await (await explicit.clientFor(memberId)).actions.v2.call.make({ method: 'app.info' });
      }
      await (await pool.clientFor(viaBatch)).actions.v2.batch.make({ calls: { get_app: ['app.info', {}], get_profile: ['profile', {}] } });
      b24.resetStats();
      // 48 calls at once: past the standard burst (40 with the headroom), within the Enterprise one (200).
      const burst = async (p: PortalClientPool, memberId: string, calls = 48): Promise<number> => {
        const b = await p.clientFor(memberId);
        await Promise.all(Array.from({ length: calls }, () => b.actions.v2.call.make({ method: 'profile' })));
        return p.stats().budgets[memberId]?.waits ?? 0;
      };
      expect(await burst(pool, enterprise)).toBe(0);
      expect(await burst(pool, viaBatch)).toBe(0);
      expect(await burst(explicit, enterprise, 12)).toBeGreaterThan(0); // requestBudget named 10/s, burst 10
    } finally {
      b24.onMethod('app.info', () => ({ result: { LICENSE: 'en_project', LICENSE_TYPE: 'project', LICENSE_FAMILY: 'project' } }));
      await pool.close();
      await explicit.close();
    }
  }, 30_000);
});
