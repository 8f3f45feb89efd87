// PostgresTokenStore's options and set-up: credentials with URL-special characters, who closes the
// pool, the lazily loaded driver, the versioned schema and the errors of a wrong configuration.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { loadDriver } from '../../src/store/postgres/driver.js';
import { storeFailure } from '../../src/store/postgres/errors.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { adminQuery, dropTables, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';

const available = await serviceAvailable('postgres');
const run = promisify(execFile);

describe('PostgresTokenStore options', () => {
  it('refuses bad options with a TypeError', () => {
    const make = (options: unknown) => () => new PostgresTokenStore(options as never);
    expect(make(undefined)).toThrow(TypeError);
    expect(make({})).toThrow(/exactly one of connectionString and pool/);
    expect(make({ connectionString: PG_URL, pool: {} })).toThrow(/exactly one/);
    expect(make({ connectionString: '' })).toThrow(/connectionString/);
    expect(make({ pool: { query: 1 } })).toThrow(/pg\.Pool/);
    for (const tablePrefix of ['', 'Upper', '1abc', 'a-b', 'a"b', 'x'.repeat(41), 'a b']) {
      expect(make({ connectionString: PG_URL, tablePrefix })).toThrow(/tablePrefix/);
    }
    expect(make({ connectionString: PG_URL, maxConnections: 0 })).toThrow(/maxConnections/);
    expect(new PostgresTokenStore({ connectionString: PG_URL }).tablePrefix).toBe('b24pt');
  });

  it('a missing driver is a StoreError that says what to install', async () => {
    const error = await loadDriver('pg-not-installed-b24pt').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toContain('npm install pg');
    expect((error as StoreError).transient).toBe(false);
  });
});

describe('PostgresTokenStore error mapping', () => {
  const coded = (code: string, message = 'driver text with SECRET-TOKEN-9'): Error => Object.assign(new Error(message), { code });

  it('marks connection failures transient and everything else not, without the driver text', () => {
    const transient = [
      coded('ECONNREFUSED'),
      coded('ECONNRESET'),
      coded('ETIMEDOUT'),
      coded('57P01'),
      coded('57P03'),
      coded('08006'),
      coded('08001'),
      coded('53300'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'connect failed'),
    ];
    for (const cause of transient) {
      const error = storeFailure(cause, 'read', 'member');
      expect(error).toBeInstanceOf(StoreError);
      expect([cause.message, (error as StoreError).transient]).toStrictEqual([cause.message, true]);
      expect(error.message).not.toContain('SECRET-TOKEN-9');
      expect((error as StoreError).cause).toBe(cause);
    }
    for (const cause of [coded('23505'), coded('42P01'), coded('28P01'), coded('3D000'), new Error('SECRET-TOKEN-9 syntax'), new TypeError('x')]) {
      const error = storeFailure(cause, 'write', 'member');
      expect([cause.message, (error as StoreError).transient]).toStrictEqual([cause.message, false]);
      expect(error.message).not.toContain('SECRET-TOKEN-9');
    }
    expect(storeFailure(coded('28P01'), 'connect').message).toMatch(/SQLSTATE 28P01.*check the user and password/);
    const own = new StoreError('ours', { transient: true });
    expect(storeFailure(own, 'read')).toBe(own);
  });
});

describe.skipIf(!available)('PostgresTokenStore on PostgreSQL', () => {
  let leave: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    leave = await enterGate('shared');
  }, 200_000);
  afterAll(async () => {
    await leave();
  });

  it('loads pg only when a store first connects, not when the package or the adapter is imported', async () => {
    const prefix = uniquePrefix('lazy');
    try {
      const script = fileURLToPath(new URL('./fixtures/pg-lazy-driver.ts', import.meta.url));
      const { stdout } = await run(process.execPath, ['--import', 'tsx', script, PG_URL, prefix], { cwd: process.cwd() });
      expect(JSON.parse(stdout)).toStrictEqual({ before: false, after: true });
    } finally {
      await dropTables(prefix);
    }
  });

  it('connects with a user name and password full of URL-special characters, percent-encoded', async () => {
    const suffix = Math.random().toString(36).slice(2, 8);
    const user = `b24pt user@${suffix}:/#%?&=`;
    const password = `p@ss:w/o#r%d?&= ${suffix}`;
    const quoted = `"${user.replaceAll('"', '""')}"`;
    const prefix = uniquePrefix('cred');
    await adminQuery(`CREATE ROLE ${quoted} LOGIN PASSWORD '${password.replaceAll("'", "''")}'`);
    await adminQuery(`GRANT CREATE ON SCHEMA public TO ${quoted}`);
    const url = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:5432/test`;
    const store = new PostgresTokenStore({ connectionString: url, tablePrefix: prefix });
    try {
      await store.ready();
      expect((await store.upsert(sampleRecord('member'))).version).toBe(1);
      // The tables belong to the role, so the user name reached the server intact.
      const owners = await adminQuery<{ tableowner: string }>('SELECT tableowner FROM pg_tables WHERE tablename = $1', [`${prefix}_records`]);
      expect(owners).toStrictEqual([{ tableowner: user }]);
    } finally {
      await store.close();
      await dropTables(prefix);
      await adminQuery(`REVOKE CREATE ON SCHEMA public FROM ${quoted}`);
      await adminQuery(`DROP ROLE ${quoted}`);
    }
  });

  it('a store built from a connection string closes its pool; one given a pool leaves it open', async () => {
    const app = `b24pt_own_${Math.random().toString(36).slice(2, 10)}`;
    const prefix = uniquePrefix('own');
    const connections = async (): Promise<number> =>
      Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [app]))[0]?.n);
    const owned = new PostgresTokenStore({ connectionString: `${PG_URL}?application_name=${app}`, tablePrefix: prefix });
    const pool = new pg.Pool({ connectionString: PG_URL });
    pool.on('error', () => undefined);
    const lent = new PostgresTokenStore({ pool, tablePrefix: prefix });
    try {
      await owned.upsert(sampleRecord('member'));
      expect(await connections()).toBeGreaterThan(0);
      await owned.close();
      await owned.close();
      expect(await connections()).toBe(0);
      await expect(owned.get('member')).rejects.toThrow(StoreError);

      expect((await lent.get('member'))?.version).toBe(1);
      await lent.close();
      await expect(lent.get('member')).rejects.toThrow(/closed/);
      expect((await pool.query('SELECT 1 AS one')).rows).toStrictEqual([{ one: 1 }]);
    } finally {
      await pool.end();
      await dropTables(prefix);
    }
  });

  it('the change feed of a store given a pool opens its own connection with the pool options', async () => {
    const prefix = uniquePrefix('feedpool');
    const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
    pool.on('error', () => undefined);
    const store = new PostgresTokenStore({ pool, tablePrefix: prefix });
    const seen: string[] = [];
    try {
      const subscription = await store.subscribe({ onChange: (change) => seen.push(change.memberId) });
      // With max: 1 the write can only run if the feed did not take the pool's one connection.
      await store.upsert(sampleRecord('member'));
      for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toStrictEqual(['member']);
      await subscription.close();
    } finally {
      await store.close();
      await pool.end();
      await dropTables(prefix);
    }
  });

  it('records its schema version, and refuses tables of a newer version with a clear error', async () => {
    const prefix = uniquePrefix('schema');
    const first = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix });
    const second = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix });
    try {
      await first.ready();
      await first.ready();
      expect(await adminQuery(`SELECT key, value FROM "${prefix}_meta"`)).toStrictEqual([{ key: 'schema_version', value: '3' }]);
      await first.upsert(sampleRecord('member'));
      await adminQuery(`UPDATE "${prefix}_meta" SET value = '99' WHERE key = 'schema_version'`);
      const error = await second.ready().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).transient).toBe(false);
      expect((error as StoreError).message).toMatch(/schema version 99, newer than this library's 3/);
      await expect(second.get('member')).rejects.toThrow(/newer/);
    } finally {
      await first.close();
      await second.close();
      await dropTables(prefix);
    }
  });

  it('a database that does not exist is a StoreError that is not transient', async () => {
    const store = new PostgresTokenStore({ connectionString: 'postgres://postgres@127.0.0.1:5432/b24pt_no_such_db', tablePrefix: uniquePrefix('nodb') });
    const error = await store.ready().catch((e: unknown) => e);
    await store.close();
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(false);
    expect((error as StoreError).message).toMatch(/SQLSTATE 3D000/);
  });
});
