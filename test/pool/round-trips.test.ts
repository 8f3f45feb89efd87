// How many store round trips one coordinated refresh costs (issue 23, the expiry wave's profile):
// read, lock, re-read under the lock, conditional write, release; this process's own write coming
// back on the change feed must not cost one more read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

const OPEN = { rateLimit: { burstLimit: 1_000_000, drainRate: 1_000_000, adaptiveEnabled: false } };

describe('store round trips per refresh', () => {
  it('a wave of 20 portals x 3 calls: 2 reads, 1 lock, 1 write, 1 release per refresh (no read of our own write from the feed)', async () => {
    const store = new MemoryTokenStore();
    const members = Array.from({ length: 20 }, () => b24.addPortal().memberId);
    for (const m of members) await seedStore(store, b24, m);
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, restrictionParams: OPEN, requestBudget: false });
    try {
      await pool.ready();
      const clients = await Promise.all(members.map((m) => pool.clientFor(m)));
      const calls: Record<string, number> = { get: 0, tryLock: 0, update: 0 };
      for (const name of ['get', 'tryLock', 'update'] as const) {
        const original = store[name].bind(store) as (...args: unknown[]) => Promise<unknown>;
        (store as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
          calls[name]!++;
          return original(...args);
        };
      }
      b24.expireAccessTokens();
      b24.resetStats();
      const results = await Promise.all(clients.flatMap((c) => [0, 1, 2].map(async () => (await c.actions.v2.call.make({ method: 'profile' })).isSuccess)));
      expect(results.every(Boolean)).toBe(true);
      expect(b24.stats.refreshRequests).toBe(20);
      // Let the change feed's deliveries (and any read they cause) settle.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(calls).toEqual({ get: 40, tryLock: 20, update: 20 });
    } finally {
      await pool.close();
    }
  });

  it("the callers go with the new pair before the lock's release reaches the store; close() waits for the release", async () => {
    const store = new MemoryTokenStore();
    const { memberId } = b24.addPortal();
    await seedStore(store, b24, memberId);
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, restrictionParams: OPEN, requestBudget: false });
    let releaseLanded!: () => void;
    const landed = new Promise<void>((resolve) => (releaseLanded = resolve));
    let releases = 0;
    let released = 0;
    const tryLock = store.tryLock.bind(store);
    store.tryLock = async (key, ttlMs) => {
      const lease = await tryLock(key, ttlMs);
      if (lease === undefined) return undefined;
      return {
        ...lease,
        release: async () => {
          releases++;
          await landed; // a slow store: the release has not come back yet
          await lease.release();
          released++;
        },
      };
    };
    try {
      const client = await pool.clientFor(memberId);
      b24.expireAccessTokens(memberId);
      const result = await client.actions.v2.call.make({ method: 'profile' });
      expect(result.isSuccess).toBe(true);
      expect(b24.stats.refreshRequests).toBeGreaterThan(0);
      expect(releases).toBe(1);
      expect(released).toBe(0); // the call came back while the release was still on its way
      const closed = pool.close();
      let closedYet = false;
      void closed.then(() => (closedYet = true));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(closedYet).toBe(false);
      releaseLanded();
      await closed;
      expect(released).toBe(1);
    } finally {
      releaseLanded();
      await pool.close();
    }
  });
});
