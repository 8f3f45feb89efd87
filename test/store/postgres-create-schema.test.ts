// PostgresTokenStore with `createSchema: false`: it never creates or migrates a table; missing tables
// and another schema version are StoreErrors a caller can tell apart by `reason`; with the tables
// there it reads and writes as usual.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { adminQuery, dropTables, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';

const available = await serviceAvailable('postgres');

/** The tables (and index) of a prefix that exist now, by name. */
async function tablesOf(prefix: string): Promise<string[]> {
  const rows = await adminQuery<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_name LIKE $1 ORDER BY 1",
    [`${prefix}\\_%`],
  );
  return rows.map((row) => row.name);
}

describe('PostgresTokenStore createSchema option', () => {
  it('must be a boolean', () => {
    expect(() => new PostgresTokenStore({ connectionString: PG_URL, createSchema: 'no' as never })).toThrow(/createSchema must be a boolean/);
  });
});

describe.skipIf(!available)('PostgresTokenStore with createSchema: false', () => {
  let leave: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    leave = await enterGate('shared');
  }, 200_000);
  afterAll(async () => {
    await leave();
  });

  it('creates no table under a prefix that has none: ready() and every call reject with reason schema-missing', async () => {
    const prefix = uniquePrefix('noschema');
    // A password in the URL (trust auth ignores it) must not reach the message.
    const url = PG_URL.replace('postgres@', 'postgres:pw-b24pt-secret@');
    const store = new PostgresTokenStore({ connectionString: url, tablePrefix: prefix, createSchema: false });
    try {
      expect(await tablesOf(prefix)).toStrictEqual([]);
      const error = await store.ready().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      const failure = error as StoreError;
      expect(failure.reason).toBe('schema-missing');
      expect(failure.code).toBe('STORE_FAILURE');
      expect(failure.transient).toBe(false);
      expect(failure.message).toContain(`no tables named ${prefix}_meta, ${prefix}_records, ${prefix}_locks, ${prefix}_budgets in database test`);
      expect(failure.message).not.toContain('pw-b24pt-secret');
      await expect(store.get('member')).rejects.toMatchObject({ reason: 'schema-missing' });
      await expect(store.list()).rejects.toMatchObject({ reason: 'schema-missing' });
      await expect(store.upsert(sampleRecord('member'))).rejects.toMatchObject({ reason: 'schema-missing' });
      expect(await tablesOf(prefix)).toStrictEqual([]);
    } finally {
      await store.close();
      await dropTables(prefix);
    }
  });

  it('reads and writes as usual when the tables are there, and changes no table', async () => {
    const prefix = uniquePrefix('hasschema');
    const creator = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix });
    const store = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix, createSchema: false });
    try {
      await creator.upsert(sampleRecord('member'));
      const before = await tablesOf(prefix);
      expect(before).toStrictEqual([`${prefix}_budgets`, `${prefix}_locks`, `${prefix}_meta`, `${prefix}_records`]);
      await store.ready();
      expect((await store.get('member'))?.version).toBe(1);
      expect((await store.upsert(sampleRecord('member'))).version).toBe(2);
      expect((await store.list()).records.map((record) => record.memberId)).toStrictEqual(['member']);
      expect(await tablesOf(prefix)).toStrictEqual(before);
    } finally {
      await creator.close();
      await store.close();
      await dropTables(prefix);
    }
  });

  it('refuses an older schema without migrating it, and a newer one, with reason schema-version', async () => {
    const prefix = uniquePrefix('oldschema');
    const creator = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix });
    try {
      await creator.ready();
      await adminQuery(`UPDATE "${prefix}_meta" SET value = '2' WHERE key = 'schema_version'`);
      const older = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix, createSchema: false });
      const error = await older.ready().catch((e: unknown) => e);
      await older.close();
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ reason: 'schema-version', transient: false });
      expect((error as StoreError).message).toMatch(/schema version 2, older than this library's 3, and createSchema is off/);
      expect(await adminQuery(`SELECT value FROM "${prefix}_meta"`)).toStrictEqual([{ value: '2' }]);

      await adminQuery(`UPDATE "${prefix}_meta" SET value = '99' WHERE key = 'schema_version'`);
      const newer = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix, createSchema: false });
      const tooNew = await newer.ready().catch((e: unknown) => e);
      await newer.close();
      expect(tooNew).toMatchObject({ reason: 'schema-version' });
      expect((tooNew as StoreError).message).toMatch(/schema version 99, newer than this library's 3/);
    } finally {
      await creator.close();
      await dropTables(prefix);
    }
  });
});
