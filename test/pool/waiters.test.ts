// Workers waiting for another's refresh wake on the store's change feed (ChangeWaiters), not after a
// polling pause: driven with a ManualClock that never moves, so only the feed can wake them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { ChangeWaiters } from '../../src/pool/coherence.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { recordingLogger } from './helpers.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

describe('ChangeWaiters', () => {
  it('wakes the waiters of the written chain only, every chain of a portal on a portal-wide write', async () => {
    const clock = new ManualClock();
    const waiters = new ChangeWaiters(clock, () => true);
    const woken: string[] = [];
    const wait = (memberId: string, chain: 'portal' | 'user:7') =>
      void waiters.wait({ memberId, chain }, 60_000).then(() => woken.push(`${memberId} ${chain}`));
    wait('a', 'portal');
    wait('a', 'user:7');
    wait('b', 'portal');
    expect(waiters.size).toBe(3);
    waiters.changed({ memberId: 'a', chain: 'portal', version: 2, deleted: false });
    await clock.advance(0);
    expect(woken).toEqual(['a portal']);
    waiters.changed({ memberId: 'a', chain: undefined, version: undefined, deleted: true });
    await clock.advance(0);
    expect(woken).toEqual(['a portal', 'a user:7']);
    expect(waiters.size).toBe(1);
    await clock.advance(60_000); // the pause ends the last wait
    expect(woken).toEqual(['a portal', 'a user:7', 'b portal']);
    expect(waiters.size).toBe(0);
    expect(clock.pending).toBe(0); // each woken wait cancelled its timer
  });

  it('rejects and forgets an aborted wait; without a feed a wait is the clock sleeping', async () => {
    const clock = new ManualClock();
    const waiters = new ChangeWaiters(clock, () => true);
    const stop = new AbortController();
    const aborted = waiters.wait({ memberId: 'a', chain: 'portal' }, 1000, stop.signal);
    stop.abort();
    await expect(aborted).rejects.toThrow();
    await expect(waiters.wait({ memberId: 'a', chain: 'portal' }, 1000, stop.signal)).rejects.toThrow();
    expect(waiters.size).toBe(0);
    expect(clock.pending).toBe(0);

    const polling = new ChangeWaiters(clock, () => false);
    let done = false;
    void polling.wait({ memberId: 'a', chain: 'portal' }, 1000).then(() => (done = true));
    polling.changed({ memberId: 'a', chain: 'portal', version: 2, deleted: false });
    await clock.advance(999);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
  });
});

describe('a pool waiting for another worker refresh', () => {
  it('learns of the new pair from the change feed while its clock stands still: one refresh, no failed call', async () => {
    const clock = new ManualClock(Date.now());
    const store = new MemoryTokenStore();
    const logger = recordingLogger();
    const make = () => new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger, clock });
    const [a, b] = [make(), make()];
    try {
      const portal = b24.addPortal();
      await seedStore(store, b24, portal.memberId);
      await Promise.all([a.ready(), b.ready()]);
      const profile = async (pool: PortalClientPool) => (await (await pool.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess;
      expect(await profile(a)).toBe(true);
      expect(await profile(b)).toBe(true);
      b24.expireAccessTokens(portal.memberId);
      b24.resetStats();
      b24.setOAuthDelay(300); // a's refresh holds the lock while b asks
      let bWaiting = false;
      const first = profile(a);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const second = profile(b);
      // b's first pause (10 ms and more) never ends by this clock: only the feed can wake it.
      for (let i = 0; i < 100 && !bWaiting; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        bWaiting = b.stats().lockWaits === 1;
      }
      expect(bWaiting).toBe(true);
      expect(await Promise.all([first, second])).toEqual([true, true]);
      expect(b24.stats.refreshRequests).toBe(1);
      expect(b24.stats.refreshReuse).toBe(0);
      expect(b.stats()).toMatchObject({ refreshes: 0, lockWaits: 1 });
      expect(b.stats().adoptions).toBeGreaterThanOrEqual(1);
    } finally {
      b24.setOAuthDelay(0);
      await a.close();
      await b.close();
    }
  });
});
