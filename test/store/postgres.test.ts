// PostgresTokenStore: the conformance suite (cross-process cases in real child processes) on real
// PostgreSQL, plus what is specific to it: tombstone rows, no token in an error, the change feed.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import type { StoreChange } from '../../src/store/token-store.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { adminQuery, dropTables, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';
import { childModule } from '../support/children.js';

const available = await serviceAvailable('postgres');
const SECRET = 'SECRET-ACCESS-TOKEN-5c1d';

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

if (!available) {
  it.skip('PostgresTokenStore (PostgreSQL is not reachable)', () => undefined);
} else {
  let leave: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    leave = await enterGate('shared');
  }, 200_000);
  afterAll(async () => {
    await leave();
  });

  await describeTokenStore('PostgresTokenStore', {
    create: () => new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: uniquePrefix('conf') }),
    destroy: async (store) => {
      await store.close();
      await dropTables(store.tablePrefix);
    },
    crossProcess: {
      ...childModule(new URL('./fixtures/open-postgres-store.ts', import.meta.url)),
      args: (store) => ({ connectionString: PG_URL, tablePrefix: store.tablePrefix }),
    },
    extraTests: (getStore) => {
      it('keeps a deleted chain as a tombstone row with its version and no token', async () => {
        const store = getStore();
        await store.upsert(sampleRecord('member', { accessToken: SECRET, refreshToken: `${SECRET}-r` }));
        await store.update('member', 1, { scope: 'crm' });
        expect(await store.delete('member')).toBe(true);
        const rows = await adminQuery(`SELECT * FROM "${store.tablePrefix}_records" WHERE member_id = 'member'`);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ deleted: true, version: '2', access_token: null, refresh_token: null, domain: null });
        expect(JSON.stringify(rows)).not.toContain(SECRET);
        expect((await store.upsert(sampleRecord('member'))).version).toBe(3);
      });

      it('deletePortal tombstones every chain of the portal and only that portal', async () => {
        const store = getStore();
        await store.upsert(sampleRecord('member'));
        await store.upsert({ ...sampleRecord('member', { userId: 7 }), chain: 'user:7' });
        await store.upsert({ ...sampleRecord('member', { userId: 12 }), chain: 'user:12' });
        await store.upsert(sampleRecord('other'));
        expect((await store.listChains('member')).map((record) => record.chain)).toStrictEqual(['user:12', 'user:7']);
        expect(await store.deletePortal('member')).toBe(3);
        expect(await store.deletePortal('member')).toBe(0);
        expect(await store.listChains('member')).toStrictEqual([]);
        expect(await store.get({ memberId: 'member', chain: 'user:7' })).toBeUndefined();
        expect((await store.get('other'))?.version).toBe(1);
        expect((await store.upsert({ ...sampleRecord('member'), chain: 'user:7' })).version).toBe(2);
      });

      it('never puts a token into an error message, even when the database quotes the row', async () => {
        const store = getStore();
        await store.ready();
        // The database reports a CHECK violation with the failing row, tokens included, in `detail`.
        await adminQuery(`ALTER TABLE "${store.tablePrefix}_records" ADD CONSTRAINT no_scope CHECK (scope <> 'forbidden')`);
        const error = await store.upsert(sampleRecord('member', { accessToken: SECRET, scope: 'forbidden' })).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).transient).toBe(false);
        expect((error as StoreError).message).toMatch(/23514/);
        expect((error as StoreError).message).not.toContain(SECRET);
        expect(String((error as StoreError).stack)).not.toContain(SECRET);
        expect(JSON.stringify((error as { cause: { detail?: string } }).cause.detail)).toContain(SECRET);
        expect(await store.get('member')).toBeUndefined();
      });

      it('rejects what PostgreSQL cannot hold with a TypeError and writes nothing', async () => {
        const store = getStore();
        await expect(store.upsert(sampleRecord('nul\u0000member'))).rejects.toThrow(TypeError);
        await expect(store.upsert(sampleRecord('member', { scope: 'a\u0000b' }))).rejects.toThrow(/record\.scope/);
        await expect(store.upsert(sampleRecord('m'.repeat(1025)))).rejects.toThrow(TypeError);
        await store.upsert(sampleRecord('member'));
        await expect(store.update('member', 1, { accessToken: 'x\u0000' })).rejects.toThrow(/patch\.accessToken/);
        expect((await store.get('member'))?.version).toBe(1);
        expect((await store.list()).records.map((record) => record.memberId)).toStrictEqual(['member']);
      });

      it('announces every write on the change feed, with versions and without tokens', async () => {
        const store = getStore();
        const changes: StoreChange[] = [];
        const subscription = await store.subscribe({ onChange: (change) => changes.push(change) });
        // A raw listener sees the payload text itself.
        const raw: string[] = [];
        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        client.on('notification', (message) => raw.push(message.payload ?? ''));
        await client.query(`LISTEN "${store.tablePrefix}_changes"`);
        try {
          await store.upsert(sampleRecord('member', { accessToken: SECRET }));
          await store.update('member', 1, { refreshToken: SECRET });
          await store.update('member', 1, { refreshToken: 'stale' });
          await store.upsert({ ...sampleRecord('member'), chain: 'user:3' });
          await store.delete('member');
          await store.delete('member');
          await store.deletePortal('member');
          await until(() => changes.length >= 5 && raw.length >= 5, 'five changes');
          await sleep(100);
          expect(changes).toStrictEqual([
            { memberId: 'member', chain: 'portal', version: 1, deleted: false },
            { memberId: 'member', chain: 'portal', version: 2, deleted: false },
            { memberId: 'member', chain: 'user:3', version: 1, deleted: false },
            { memberId: 'member', chain: 'portal', version: 2, deleted: true },
            { memberId: 'member', chain: undefined, version: undefined, deleted: true },
          ]);
          for (const payload of raw) expect(payload).not.toContain(SECRET);
        } finally {
          await client.end();
          await subscription.close();
        }
        await store.upsert(sampleRecord('after-close'));
        await sleep(100);
        expect(changes).toHaveLength(5);
      });

      it('keeps delivering when a listener throws', async () => {
        const store = getStore();
        let calls = 0;
        const subscription = await store.subscribe({
          onChange: () => {
            calls++;
            throw new Error('listener bug');
          },
        });
        await store.upsert(sampleRecord('member'));
        await store.upsert(sampleRecord('member'));
        await until(() => calls === 2, 'two deliveries');
        await subscription.close();
        await subscription.close();
      });
    },
  });

  describe('durable chain writes (synchronous_commit)', () => {
    /** A pg.Pool whose sessions run with `setting`, keeping what each write's row said of its commit. */
    function poolWith(setting: string): { pool: pg.Pool; commits: unknown[]; leases: unknown[] } {
      const pool = new pg.Pool({ connectionString: PG_URL, max: 2, options: `-c synchronous_commit=${setting}` });
      pool.on('error', () => undefined);
      const commits: unknown[] = [];
      const leases: unknown[] = [];
      const query = pool.query.bind(pool) as (text: string, values?: unknown[]) => Promise<pg.QueryResult>;
      (pool as unknown as { query: typeof query }).query = async (text, values) => {
        const result = await query(text, values);
        for (const row of result.rows as Record<string, unknown>[]) {
          if ('chain_commit' in row) commits.push(row['chain_commit']);
          if ('lease_commit' in row) leases.push(row['lease_commit']);
        }
        return result;
      };
      return { pool, commits, leases };
    }

    for (const [setting, durable, expected] of [
      ['off', true, 'on'],
      ['local', true, 'on'],
      ['remote_apply', true, 'remote_apply'],
    ] as const) {
      it(`a session with synchronous_commit=${setting}: every chain write commits with ${expected}`, async () => {
        const { pool, commits } = poolWith(setting);
        const store = new PostgresTokenStore({ pool, tablePrefix: uniquePrefix('sync'), durableChainWrites: durable });
        try {
          const written = await store.upsert(sampleRecord('member'));
          await store.update('member', written.version, { scope: 'crm' });
          await store.upsert(sampleRecord('member', { chain: 'user:3' }));
          await store.delete({ memberId: 'member', chain: 'user:3' });
          await store.deletePortal('member');
          expect(commits).toEqual([expected, expected, expected, expected, expected]);
          // Reads and a write that changed nothing pay nothing.
          await store.get('member');
          await store.update('member', 99, { scope: 'x' });
          expect(commits).toHaveLength(5);
        } finally {
          await store.close();
          await dropTables(store.tablePrefix);
          await pool.end();
        }
      });
    }

    it('lock rows and budget steps commit without waiting for the flush (synchronous_commit off for their transaction only)', async () => {
      const { pool, commits, leases } = poolWith('remote_apply');
      const store = new PostgresTokenStore({ pool, tablePrefix: uniquePrefix('light') });
      try {
        const lease = await store.tryLock('member', 5_000);
        expect(await store.tryLock('member', 5_000)).toBeUndefined();
        await lease?.renew?.(5_000);
        await lease?.release();
        await store.acquire('rest:member', { ratePerSec: 2, burst: 10 });
        expect(leases).toEqual(['off', 'off', 'off', 'off']);
        await store.upsert(sampleRecord('member'));
        expect(commits).toEqual(['remote_apply']);
      } finally {
        await store.close();
        await dropTables(store.tablePrefix);
        await pool.end();
      }
    });

    it('durableChainWrites: false leaves the session setting alone', async () => {
      const { pool, commits } = poolWith('off');
      const store = new PostgresTokenStore({ pool, tablePrefix: uniquePrefix('async'), durableChainWrites: false });
      try {
        await store.upsert(sampleRecord('member'));
        expect(commits).toEqual([]);
        expect((await store.get('member'))?.version).toBe(1);
      } finally {
        await store.close();
        await dropTables(store.tablePrefix);
        await pool.end();
      }
    });
  });

  describe('PostgresTokenStore without a database', () => {
    it('fails fast with a transient StoreError when nothing listens on the port', async () => {
      const store = new PostgresTokenStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', tablePrefix: uniquePrefix('down') });
      const error = await store.ready().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).transient).toBe(true);
      expect((error as StoreError).message).toMatch(/could not be reached \(ECONNREFUSED\)/);
      await expect(store.get('member')).rejects.toMatchObject({ transient: true });
      await store.close();
      await expect(store.get('member')).rejects.toThrow(/closed/);
    });
  });
}
