// Coherence across real processes on PostgreSQL and on Redis, counted at the stand-in: after worker
// A refreshes a portal, worker B's next calls meet no refused token; after A handles an uninstall,
// B's next clientFor throws PortalNotInstalledError without a REST call.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { serviceAvailable } from '../support/services.js';
import { clusterStores, expectCoherence, startWorker } from './worker-process.js';

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
    try {
      await expectCoherence(b24, store, (memberId) => startWorker(b24, kind, url, prefix, memberId));
    } finally {
      await store.close?.();
      await cleanup(prefix);
      await leave();
    }
  }, 60_000);
});
