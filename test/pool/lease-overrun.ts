// Issue 14, case 8, over real processes: worker A's refresh is in flight when A is stopped (SIGSTOP)
// past its lock lease, with default settings. Worker B takes the lapsed lock, sends the refresh
// token A already spent, gets invalid_grant and marks the chain revoked. When A resumes, the pair
// minted from the stored refresh token wins over that revocation: the chain ends working, in A and
// in B, with no reinstall.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { serviceAvailable } from '../support/services.js';
import { clusterStores, startWorker } from './worker-process.js';

/** Registers the case on one store (one file per store, so the two run side by side). */
export async function describeLeaseOverrun(store: 'PostgreSQL' | 'Redis'): Promise<void> {
  const service = store === 'PostgreSQL' ? 'postgres' : 'redis';
  const available = await serviceAvailable(service);
  const cases = clusterStores('overrun', { postgres: available, redis: available }).filter((c) => c.name === store);

  let b24: FakeBitrix24;
  beforeAll(async () => {
    b24 = await FakeBitrix24.start();
  });
  afterAll(async () => {
    await b24.close();
  });

  async function until(condition: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 6_000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    if (!condition()) throw new Error(`timed out waiting for ${what}`);
  }

  describe.each(cases)('a lease overrun on $name', ({ available, kind, url, prefix, open, cleanup, gate }) => {
    it.skipIf(!available)('a worker stopped mid-refresh past its lease does not cost the portal its chain', async () => {
      const leave = await gate();
      const store = open(prefix);
      const portal = b24.addPortal();
      await seedStore(store, b24, portal.memberId);
      b24.expireAccessTokens(portal.memberId);
      const a = startWorker(b24, kind, url, prefix, portal.memberId);
      const b = startWorker(b24, kind, url, prefix, portal.memberId);
      try {
        expect(await b.ask('clientFor')).toEqual({ ok: true }); // B is up, its pool ready
        const before = b24.stats.refreshRequests;
        // The OAuth host answers A's refresh 2 s after it arrives: A is stopped before the answer.
        b24.setOAuthDelay(2_000);
        const aCall = a.ask('calls 1');
        await until(() => b24.stats.refreshRequests === before + 1, "A's refresh request");
        expect(a.child.kill('SIGSTOP')).toBe(true);
        b24.setOAuthDelay(0);

        // B waits out A's lease (15 s by default), refreshes with the token the host already rotated.
        const bFirst = await b.ask('calls 1');
        expect(b24.stats.refreshRequests).toBe(before + 2);
        expect(b24.stats.refreshErrors['invalid_grant']).toBeGreaterThanOrEqual(1);
        expect(bFirst).not.toMatchObject({ ok: 1 });
        expect((await store.get(portal.memberId))?.state).toBe('revoked');

        // A resumes with the pair the host minted from the stored refresh token: it wins. A's caller
        // may have been told its wait ran out (it did, by the wall clock), but the answer is kept.
        expect(a.child.kill('SIGCONT')).toBe(true);
        const aFirst = await aCall;
        if (aFirst['ok'] !== 1) expect(aFirst).toEqual({ error: 'OAUTH_UNAVAILABLE' });
        let record = await store.get(portal.memberId);
        for (let i = 0; i < 100 && record?.state !== 'active'; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          record = await store.get(portal.memberId);
        }
        expect(record?.state).toBe('active');
        expect(record?.revokedReason).toBeNull();
        expect(await a.ask('calls 1')).toMatchObject({ ok: 1 });

        // B follows (its change feed, or its next read), and no third refresh was needed.
        let bAgain: Record<string, unknown> = {};
        for (let i = 0; i < 50 && bAgain['ok'] !== 1; i++) {
          bAgain = await b.ask('calls 1');
          if (bAgain['ok'] !== 1) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(bAgain).toMatchObject({ ok: 1 });
        expect(b24.stats.refreshRequests).toBe(before + 2);
      } finally {
        b24.setOAuthDelay(0);
        await Promise.all([a.stop(), b.stop()]);
        await store.close?.();
        await cleanup(prefix);
        await leave();
      }
    }, 120_000);
  });
}
