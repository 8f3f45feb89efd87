// How many store round trips one coordinated refresh costs (issue 23, the expiry wave's profile):
// with the store's tryLockAndGet, the lock and the read in one, then the conditional write and the
// release; without it (a store of someone else's) read, lock, re-read under the lock, write, release.
// This process's own write coming back on the change feed must not cost one more read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { LockedRead, StoreLease } from '../../src/store/token-store.js';
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
  /** A wave of 20 portals x 3 calls on `store`, counting its calls (and its leases' releases). */
  async function wave(store: MemoryTokenStore): Promise<Record<string, number>> {
    const members = Array.from({ length: 20 }, () => b24.addPortal().memberId);
    for (const m of members) await seedStore(store, b24, m);
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, restrictionParams: OPEN, requestBudget: false });
    try {
      await pool.ready();
      const clients = await Promise.all(members.map((m) => pool.clientFor(m)));
      const calls: Record<string, number> = { get: 0, tryLock: 0, tryLockAndGet: 0, update: 0, release: 0 };
      const countRelease = (lease: StoreLease | undefined): void => {
        if (lease === undefined) return;
        const release = lease.release.bind(lease);
        (lease as { release: () => Promise<void> }).release = () => (calls['release']!++, release());
      };
      for (const name of ['get', 'tryLock', 'tryLockAndGet', 'update'] as const) {
        const original = (store as unknown as Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>)[name]?.bind(store);
        if (original === undefined) continue;
        (store as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
          calls[name]!++;
          const result = await original(...args);
          if (name === 'tryLock') countRelease(result as StoreLease | undefined);
          if (name === 'tryLockAndGet') countRelease((result as LockedRead).lease);
          return result;
        };
      }
      b24.expireAccessTokens();
      b24.resetStats();
      const results = await Promise.all(clients.flatMap((c) => [0, 1, 2].map(async () => (await c.actions.v2.call.make({ method: 'profile' })).isSuccess)));
      expect(results.every(Boolean)).toBe(true);
      expect(b24.stats.refreshRequests).toBe(20);
      // Let the change feed's deliveries (and any read they cause) and the releases settle.
      await new Promise((resolve) => setTimeout(resolve, 50));
      return calls;
    } finally {
      await pool.close();
    }
  }

  it('a wave of 20 portals x 3 calls: 1 lock-and-read, 1 write, 1 release per refresh (no read of our own write from the feed)', async () => {
    expect(await wave(new MemoryTokenStore())).toEqual({ get: 0, tryLock: 0, tryLockAndGet: 20, update: 20, release: 20 });
  });

  it('a store without tryLockAndGet: 2 reads, 1 lock, 1 write, 1 release per refresh', async () => {
    const store = new MemoryTokenStore();
    // A store of someone else's: the contract's required methods and tryLock only.
    (store as { tryLockAndGet?: unknown }).tryLockAndGet = undefined;
    expect(await wave(store)).toEqual({ get: 40, tryLock: 20, tryLockAndGet: 0, update: 20, release: 20 });
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
    const tryLockAndGet = store.tryLockAndGet.bind(store);
    store.tryLockAndGet = async (key, ttlMs) => {
      const { lease, record } = await tryLockAndGet(key, ttlMs);
      if (lease === undefined) return { lease, record };
      const slow: StoreLease = {
        ...lease,
        release: async () => {
          releases++;
          await landed; // a slow store: the release has not come back yet
          await lease.release();
          released++;
        },
      };
      return { lease: slow, record };
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
