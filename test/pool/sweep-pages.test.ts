// The keep-alive sweep on PostgreSQL pages through the store (never all records at once) and makes
// exactly one refresh per idle chain: pages smaller than the concurrency, two sweepers at once, and
// a pool closed mid-wave just before (its refreshes not yet sent must not reach the host later and
// count as the sweep's). Counts only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { SERVICES, serviceAvailable } from '../support/services.js';

const available = await serviceAvailable('postgres');
const prefix = `sweep_pages_${process.pid}`;
let b24: FakeBitrix24;
let store: PostgresTokenStore;

beforeAll(async () => {
  if (!available) return;
  b24 = await FakeBitrix24.start();
  store = new PostgresTokenStore({ connectionString: SERVICES.postgres.url, tablePrefix: prefix });
  await store.ready();
});
afterAll(async () => {
  if (!available) return;
  await store.close();
  await b24.close();
  const client = new pg.Client({ connectionString: SERVICES.postgres.url });
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS "${prefix}_records", "${prefix}_locks", "${prefix}_meta", "${prefix}_budgets" CASCADE`);
  await client.end();
});

describe.skipIf(!available)('sweep over PostgreSQL pages', () => {
  it('refreshes each of 60 idle portals exactly once, reading 7 at a time, with two sweepers and a wave closed just before', async () => {
    const pool = (extra = {}) => new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, requestBudget: false, ...extra });
    // A wave on 8 other portals, closed while most of its refreshes still wait for a turn.
    const wave = pool({ maxConcurrentRefreshes: 1 });
    const busy = Array.from({ length: 8 }, () => b24.addPortal().memberId);
    for (const m of busy) await seedStore(store, b24, m);
    const clients = await Promise.all(busy.map((m) => wave.clientFor(m)));
    b24.expireAccessTokens();
    b24.setOAuthDelay(100);
    const calls = clients.map((c) => c.actions.v2.call.make({ method: 'profile' }).then(() => true, () => false));
    for (let i = 0; i < 300 && b24.stats.refreshRequests === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    await wave.close(); // its calls are not awaited: what close() left running would count below
    b24.resetStats();

    const idleSince = Date.now() - 30 * 86_400_000;
    const idle = Array.from({ length: 60 }, () => b24.addPortal().memberId);
    for (const m of idle) await seedStore(store, b24, m, { record: { chainUpdatedAt: idleSince, updatedAt: idleSince } });
    b24.setOAuthDelay(0);
    const [x, y] = [pool(), pool()];
    const pages: number[] = [];
    const list = store.list.bind(store);
    store.list = async (options) => {
      const page = await list(options);
      pages.push(page.records.length);
      return page;
    };
    try {
      const [rx, ry] = await Promise.all([x.sweep({ idleDays: 20, pageSize: 7, concurrency: 16 }), y.sweep({ idleDays: 20, pageSize: 7, concurrency: 16 })]);
      expect(b24.stats.refreshRequests).toBe(60);
      expect(b24.stats.refreshReuse).toBe(0);
      expect(rx.failed + ry.failed).toBe(0);
      expect(Math.max(...pages)).toBeLessThanOrEqual(7);
      for (const m of idle) expect((await store.get(m))?.chainUpdatedAt).toBeGreaterThan(idleSince);
      await Promise.all(calls);
      expect(b24.stats.refreshRequests).toBe(60);
    } finally {
      store.list = list;
      await x.close();
      await y.close();
    }
  });
});
