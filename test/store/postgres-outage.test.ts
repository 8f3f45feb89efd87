// PostgresTokenStore through a real database outage: the test stops a PostgreSQL server of its own
// (test/support/private-servers.ts) and starts it again, so it runs beside every other test file.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import type { PortalRecord, StoreChange } from '../../src/store/token-store.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { type PrivateServer, privateServerAvailable, startPrivatePostgres } from '../support/private-servers.js';
import { uniquePrefix } from './fixtures/pg-support.js';

const available = privateServerAvailable('postgres');
async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe.skipIf(!available)('PostgresTokenStore through a database restart', () => {
  let database: PrivateServer | undefined;
  beforeAll(async () => {
    database = await startPrivatePostgres();
  }, 120_000);
  afterAll(async () => {
    await database?.dispose();
  }, 120_000);

  it('rejects with transient errors while the server is down, then works again in the same instance, losing nothing', async () => {
    const prefix = uniquePrefix('outage');
    const store = new PostgresTokenStore({ connectionString: database!.url, tablePrefix: prefix, connectTimeoutMs: 3_000 });
    const statuses: string[] = [];
    const changes: StoreChange[] = [];
    try {
      const before: PortalRecord[] = [];
      for (let i = 0; i < 20; i++) before.push(await store.upsert(sampleRecord(`portal-${String(i).padStart(2, '0')}`)));
      before[0] = (await store.update('portal-00', 1, { accessToken: 'moved' }).then((r) => (r.ok ? r.record : undefined)))!;
      const subscription = await store.subscribe({
        onChange: (change) => changes.push(change),
        onStatus: (status) => statuses.push(status),
      });

      await database!.stop();
      try {
        await until(() => statuses.includes('lost'), 'the feed to report lost');
        for (const attempt of [
          () => store.get('portal-01'),
          () => store.upsert(sampleRecord('portal-01', { accessToken: 'during-outage' })),
          () => store.update('portal-02', 1, { accessToken: 'during-outage' }),
          () => store.tryLock('portal-03', 5_000),
          () => store.list(),
        ]) {
          const error = await attempt().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(StoreError);
          expect((error as StoreError).transient).toBe(true);
        }
      } finally {
        await database!.start();
      }

      // The same instance works again, without being recreated.
      expect(await store.get('portal-05')).toStrictEqual(before[5]);
      const listed = await store.list({ limit: 100 });
      expect(listed.records).toStrictEqual(before);
      await until(() => statuses.includes('restored'), 'the feed to report restored');
      expect(statuses).toStrictEqual(['lost', 'restored']);
      const written = await store.update('portal-02', 1, { accessToken: 'after-restart' });
      expect(written.ok).toBe(true);
      await until(() => changes.some((change) => change.memberId === 'portal-02'), 'the change after the restart');
      expect(changes).toStrictEqual([{ memberId: 'portal-02', chain: 'portal', version: 2, deleted: false }]);
      await subscription.close();
    } finally {
      await database!.start(); // a no-op unless the test failed while the server was down
      await store.close();
    }
  }, 300_000);
});
