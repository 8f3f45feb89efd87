// No install lost to an outage: PostgreSQL is stopped while 50 verified installs arrive; each is
// spooled and answered 200; after the restart the spool is replayed and all 50 portals work.
// Runs in the serial outage pass (vitest.outage.config.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLifecycleHandler } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { FileInstallSpool } from '../../src/spool/file-spool.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { dropTables, ensurePostgresRunning, enterGate, PG_URL, pgCtl, uniquePrefix, waitForPostgres } from '../store/fixtures/pg-support.js';
import { serviceAvailable } from '../support/services.js';
import { listen, post } from './helpers.js';

const available = await serviceAvailable('postgres');
afterAll(async () => {
  await ensurePostgresRunning();
});

describe.skipIf(!available)('installs during a PostgreSQL outage', () => {
  it('spools 50 verified installs while the store is down and applies every one after the restart', async () => {
    const leave = await enterGate('exclusive');
    const b24 = await FakeBitrix24.start();
    const spoolDir = await mkdtemp(join(tmpdir(), 'b24pt-spool-outage-'));
    const prefix = uniquePrefix('spool');
    const store = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix });
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    const spool = new FileInstallSpool({ directory: spoolDir, logger: silentLogger });
    const handler = createLifecycleHandler({ pool, trustedOAuthHosts: [b24.oauthUrl], spool, logger: silentLogger });
    const server = await listen(createServer(toNodeHandler(handler)));
    try {
      await store.ready();
      const portals = Array.from({ length: 50 }, () => b24.addPortal());
      const events = portals.map((portal) => b24.installEvent(portal.memberId).form);

      await pgCtl('stop');
      const answers = [];
      for (const body of events) answers.push((await post(`${server.url}/events`, body)).status);
      expect(answers.filter((status) => status === 200)).toHaveLength(50);
      expect(await spool.size()).toBe(50);
      await pgCtl('start');
      await waitForPostgres();

      expect(await handler.replaySpool()).toMatchObject({ applied: 50 });
      expect(await spool.size()).toBe(0);
      for (const portal of portals) {
        const client = await pool.clientFor(portal.memberId);
        expect((await client.actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
      }
    } finally {
      await ensurePostgresRunning();
      handler.close();
      await server.close();
      await pool.close();
      await store.close();
      await dropTables(prefix);
      await rm(spoolDir, { recursive: true, force: true });
      await b24.close();
      await leave();
    }
  }, 180_000);
});
