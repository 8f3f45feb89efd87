// Coherence across real processes on PostgreSQL and on Redis, counted at the stand-in: after worker
// A refreshes a portal, worker B's next calls meet no refused token; after A handles an uninstall,
// B's next clientFor throws PortalNotInstalledError without a REST call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { serviceAvailable } from '../support/services.js';
import { clusterStores, startWorker } from './worker-process.js';

const postgres = await serviceAvailable('postgres');
const redis = await serviceAvailable('redis');

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

const cases = clusterStores('coh', { postgres, redis });

describe.each(cases)('coherence across two processes on $name', ({ available, kind, url, prefix, open, cleanup, gate }) => {
  it.skipIf(!available)("follows worker A's refresh and uninstall in worker B, with no refused call", async () => {
    const leave = await gate();
    const store = open(prefix);
    const a = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId);
    const b = startWorker(b24, kind, url, prefix, portal.memberId);
    try {
      expect(await b.ask('calls 1')).toMatchObject({ ok: 1 });

      // A refreshes the portal; B's cached client must follow without a refused call.
      b24.expireAccessTokens(portal.memberId);
      expect((await (await a.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 200)); // the notification crosses processes
      const refusedBefore = b24.stats.rest.invalidToken + b24.stats.rest.expiredToken;
      const tenCalls = await b.ask('calls 10');
      expect(tenCalls).toMatchObject({ ok: 10 });
      expect(b24.stats.rest.invalidToken + b24.stats.rest.expiredToken).toBe(refusedBefore);
      expect((tenCalls['stats'] as { refreshes: number }).refreshes).toBe(0);

      // A handles an uninstall; B's next clientFor knows without calling the portal.
      await store.deletePortal(portal.memberId);
      a.notify({ type: 'uninstalled', memberId: portal.memberId });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const restBefore = b24.stats.restByMethod['profile'] ?? 0;
      expect(await b.ask('clientFor')).toEqual({ error: 'PORTAL_NOT_INSTALLED' });
      expect(b24.stats.restByMethod['profile'] ?? 0).toBe(restBefore);
    } finally {
      await b.stop();
      await a.close();
      await store.close?.();
      await cleanup(prefix);
      await leave();
    }
  }, 60_000);
});
