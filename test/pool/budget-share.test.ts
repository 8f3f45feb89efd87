// withBudgetShare: requests run at low priority reach a portal's request budget at most at their
// share of its rate and burst, so a call made outside is not queued behind them. Counts only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPortalTokensError, RateLimitedError, withBudgetShare, withRequestDeadline } from '../../src/index.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { recordingLogger, seedPortal } from './helpers.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

/** Whether a call made now, allowed no wait at all, gets through; the wait the budget named otherwise. */
async function ownCallWait(pool: PortalClientPool, memberId: string): Promise<number> {
  const client = await pool.clientFor(memberId);
  try {
    await withRequestDeadline({ maxWaitMs: 0 }, () => client.actions.v2.call.make({ method: 'app.info' }));
    return 0;
  } catch (error) {
    const typed = findPortalTokensError(error);
    if (typed instanceof RateLimitedError) return typed.waitMs;
    throw error;
  }
}

describe.each([
  ['inside withBudgetShare(0.5)', true],
  ['without it', false],
])('12 background calls %s, then the app\'s own call', (_name, shared) => {
  it(shared ? 'the own call needs no wait, and nothing is refused by the portal' : 'the own call would wait behind them', async () => {
    const store = new MemoryTokenStore();
    const portal = b24.addPortal();
    await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));
    // 10/s, burst 10 at the stand-in; the budget takes a fixed 80% (this is about the share, not the
    // learned headroom, which starts at the bucket's own numbers): 8/s, burst 8; half of it: 4/s, burst 4.
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, requestBudget: { ratePerSec: 10, burst: 10 }, budgetHeadroom: 0.8, logger: recordingLogger() });
    try {
      const client = await pool.clientFor(portal.memberId);
      await client.actions.v2.call.make({ method: 'profile' }); // the portal's probe, before the burst
      b24.limitRequests({ drainPerSec: 10, burst: 10 });
      b24.resetStats();
      const call = () => client.actions.v2.call.make({ method: 'profile' });
      const background = Array.from({ length: 12 }, () => (shared ? withBudgetShare(0.5, call) : call()));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const waitMs = await ownCallWait(pool, portal.memberId);
      await Promise.all(background);
      if (shared) {
        expect(waitMs).toBe(0);
        expect(b24.stats.rest.queryLimitExceeded).toBe(0);
      } else {
        expect(waitMs).toBeGreaterThan(300);
      }
      expect(b24.stats.restByMethod['profile']).toBe(12);
    } finally {
      b24.limitRequests(null);
      await pool.close();
    }
  }, 30_000);
});

it('withBudgetShare checks its share', () => {
  expect(() => withBudgetShare(0, () => undefined)).toThrow(TypeError);
  expect(() => withBudgetShare(1.5, () => undefined)).toThrow(/\(0, 1\]/);
});
