// No install lost to an outage: PostgreSQL (a server of the test's own, test/support/private-servers.ts)
// is stopped while 50 verified installs arrive; each is spooled and answered 200; after the restart
// the spool is replayed and all 50 portals work.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLifecycleHandler } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { FileInstallSpool } from '../../src/spool/file-spool.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { uniquePrefix } from '../store/fixtures/pg-support.js';
import { type PrivateServer, privateServerAvailable, startPrivatePostgres } from '../support/private-servers.js';
import { listen, post } from './helpers.js';

const available = privateServerAvailable('postgres');
let database: PrivateServer | undefined;
beforeAll(async () => {
  if (available) database = await startPrivatePostgres();
}, 120_000);
afterAll(async () => {
  await database?.dispose();
}, 120_000);

describe.skipIf(!available)('installs during a PostgreSQL outage', () => {
  it('spools 50 verified installs while the store is down and applies every one after the restart', async () => {
    const b24 = await FakeBitrix24.start();
    const spoolDir = await mkdtemp(join(tmpdir(), 'b24pt-spool-outage-'));
    const prefix = uniquePrefix('spool');
    const store = new PostgresTokenStore({ connectionString: database!.url, tablePrefix: prefix });
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    const spool = new FileInstallSpool({ directory: spoolDir, logger: silentLogger });
    const handler = createLifecycleHandler({ pool, trustedOAuthHosts: [b24.oauthUrl], spool, logger: silentLogger });
    const server = await listen(createServer(toNodeHandler(handler)));
    try {
      await store.ready();
      const portals = Array.from({ length: 50 }, () => b24.addPortal());
      const events = portals.map((portal) => b24.installEvent(portal.memberId).form);

      await database!.stop();
      const answers = [];
      for (const body of events) answers.push((await post(`${server.url}/events`, body)).status);
      expect(answers.filter((status) => status === 200)).toHaveLength(50);
      expect(await spool.size()).toBe(50);
      await database!.start();

      expect(await handler.replaySpool()).toMatchObject({ applied: 50 });
      expect(await spool.size()).toBe(0);
      for (const portal of portals) {
        const client = await pool.clientFor(portal.memberId);
        expect((await client.actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
      }
    } finally {
      await database!.start(); // a no-op unless the test failed while the server was down
      handler.close();
      await server.close();
      await pool.close();
      await store.close();
      await rm(spoolDir, { recursive: true, force: true });
      await b24.close();
    }
  }, 180_000);
});
