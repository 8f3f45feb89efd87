// The pool through a PostgreSQL outage (a server of the test's own, test/support/private-servers.ts,
// stopped and started from the test): while it is down callers get a typed transient StoreError;
// afterwards the same pool works without a restart, its change subscription is back (another
// worker's refresh is followed), and no stored chain is lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { recordingLogger } from '../coordinator/helpers.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { uniquePrefix } from '../store/fixtures/pg-support.js';
import { type PrivateServer, privateServerAvailable, startPrivatePostgres } from '../support/private-servers.js';

const available = privateServerAvailable('postgres');
let database: PrivateServer | undefined;
beforeAll(async () => {
  if (available) database = await startPrivatePostgres();
}, 120_000);
afterAll(async () => {
  await database?.dispose();
}, 120_000);

describe.skipIf(!available)('the pool through a PostgreSQL outage', () => {
  it('answers typed transient errors while down, then recovers with its feed, and loses no chain', async () => {
    const b24 = await FakeBitrix24.start();
    const prefix = uniquePrefix('pooloutage');
    const store = new PostgresTokenStore({ connectionString: database!.url, tablePrefix: prefix });
    const writer = new PostgresTokenStore({ connectionString: database!.url, tablePrefix: prefix });
    const logger = recordingLogger();
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger });
    const other = new PortalClientPool({ ...b24.trust, store: writer, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    try {
      const cached = b24.addPortal();
      const uncached = b24.addPortal();
      await seedStore(store, b24, cached.memberId);
      await seedStore(store, b24, uncached.memberId);
      await pool.ready();
      await pool.clientFor(cached.memberId);
      const before = JSON.stringify(await store.get(uncached.memberId));

      await database!.stop();
      const failure = await pool.clientFor(uncached.memberId).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(StoreError);
      expect((failure as StoreError).transient).toBe(true);
      await database!.start();

      // The same pool works again, and nothing stored was lost.
      expect((await (await pool.clientFor(uncached.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
      expect(JSON.stringify(await store.get(uncached.memberId))).toBe(before);

      // The subscription is back: another worker's refresh reaches the cached client without a refused call.
      // Waits for the pool's own word that its feed is back (it reconnects with back-off), not a fixed time.
      const feedBack = (): boolean => logger.lines.some((line) => /change feed is back|subscribed to the store change feed/.test(line.message ?? ''));
      for (let i = 0; i < 600 && !feedBack(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(logger.lines.some((line) => /change feed is down/.test(line.message ?? ''))).toBe(true);
      expect(feedBack()).toBe(true);
      b24.expireAccessTokens(cached.memberId);
      expect((await (await other.clientFor(cached.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const refused = b24.stats.rest.invalidToken + b24.stats.rest.expiredToken;
      expect((await (await pool.clientFor(cached.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
      expect(b24.stats.rest.invalidToken + b24.stats.rest.expiredToken).toBe(refused);
      expect(pool.stats().refreshes).toBe(0);
    } finally {
      await database!.start(); // a no-op unless the test failed while the server was down
      await pool.close();
      await other.close();
      await store.close();
      await writer.close();
      await b24.close();
    }
  }, 120_000);
});
