// PostgresTokenStore.tryLockAndGet against the one race a single statement invites: the previous
// holder's write and release commit after the statement took its snapshot but before its insert
// got through. The record must still be that write (the read follows the row to its newest
// committed version), or the next holder would refresh with a spent refresh token.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { adminQuery, dropTables, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';

const available = await serviceAvailable('postgres');
const MEMBER = 'lock-read-member';

if (!available) {
  it.skip('PostgresTokenStore.tryLockAndGet (PostgreSQL is not reachable)', () => undefined);
} else {
  let leave: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    leave = await enterGate('shared');
  }, 200_000);
  afterAll(async () => {
    await leave();
  });

  it("answers the previous holder's write when its write and release commit while the lock-and-read waits", async () => {
    const prefix = uniquePrefix('lockread');
    const store = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix });
    const holder = new pg.Client({ connectionString: PG_URL });
    try {
      const stored = await store.upsert(sampleRecord(MEMBER));
      const lease = await store.tryLock(MEMBER, 60_000);
      if (lease === undefined) throw new Error('the first tryLock failed');
      // The holder writes its new pair and releases, in a transaction left open for now.
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query(`UPDATE "${prefix}_records" SET version = version + 1, access_token = 'the-holders-pair' WHERE member_id = $1 AND chain = 'portal'`, [MEMBER]);
      await holder.query(`DELETE FROM "${prefix}_locks" WHERE member_id = $1 AND chain = 'portal' AND token = $2`, [MEMBER, lease.token]);
      // The next worker's statement starts (its snapshot does not hold the holder's work) and waits
      // on the lease row the holder is deleting.
      const pending = store.tryLockAndGet(MEMBER, 60_000);
      const waiting = async (): Promise<boolean> =>
        (await adminQuery(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%"${prefix}_locks"%ON CONFLICT%`])).length > 0;
      for (let tries = 0; !(await waiting()); tries++) {
        if (tries > 500) throw new Error('the lock-and-read never waited on the lease row');
        await sleep(10);
      }
      await holder.query('COMMIT');
      const { lease: taken, record } = await pending;
      expect(taken, 'the released lock is taken').toBeDefined();
      expect(record?.version, "the holder's version, not the snapshot's").toBe(stored.version + 1);
      expect(record?.accessToken, "the holder's pair").toBe('the-holders-pair');
      await taken?.release();
    } finally {
      await holder.end().catch(() => undefined);
      await store.close();
      await dropTables(prefix);
    }
  });
}
