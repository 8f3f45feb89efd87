// SqliteTokenStore: the conformance suite (cross-process cases in real child processes on the same
// database file), plus the SQLite-specific promises: file mode, tombstones, ownership of the
// connection, table prefixes, key order, corrupt rows, busy errors and fail-fast startup.
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { childModule } from '../support/children.js';

const SECRET = 'SECRET-ACCESS-TOKEN-7f3a';

/** A second, raw connection to the store's file: what another program (or an attacker) would see. */
function raw(store: SqliteTokenStore): Database.Database {
  return new Database(store.filename, { timeout: 5000 });
}

function leaks(error: unknown): boolean {
  return JSON.stringify(error, Object.getOwnPropertyNames(error)).includes(SECRET);
}

async function freshStore(): Promise<SqliteTokenStore> {
  const base = await mkdtemp(join(tmpdir(), 'b24pt-sqlite-'));
  const store = new SqliteTokenStore({ filename: join(base, 'tokens.sqlite') });
  await store.ready();
  return store;
}

async function removeStore(store: SqliteTokenStore): Promise<void> {
  await store.close();
  await rm(join(store.filename as string, '..'), { recursive: true, force: true });
}

await describeTokenStore('SqliteTokenStore', {
  create: freshStore,
  destroy: removeStore,
  crossProcess: {
    ...childModule(new URL('./fixtures/open-sqlite-store.ts', import.meta.url)),
    args: (store) => ({ filename: store.filename, tablePrefix: store.tablePrefix }),
  },
  extraTests: (getStore) => {
    it('creates its database file, and SQLite its WAL file, 0600, in WAL mode', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const db = raw(store);
      try {
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      } finally {
        db.close();
      }
      if (process.platform === 'win32') return;
      expect((await stat(store.filename as string)).mode & 0o777).toBe(0o600);
      expect((await stat(`${store.filename as string}-wal`)).mode & 0o777).toBe(0o600);
    });

    it('keeps a deleted chain as a tombstone row holding its version and no token', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member', { accessToken: SECRET, refreshToken: `${SECRET}-r` }));
      await store.upsert(sampleRecord('member', { chain: 'user:7', userId: 7, accessToken: SECRET }));
      await store.update('member', 1, { scope: 'crm' });
      expect(await store.delete('member')).toBe(true);
      const db = raw(store);
      try {
        const rows = db.prepare('SELECT * FROM b24pt_chains ORDER BY chain').all() as Record<string, unknown>[];
        expect(rows.map((row) => [row['chain'], row['deleted'], row['version']])).toStrictEqual([
          ['portal', 1, 2],
          ['user:7', 0, 1],
        ]);
        expect(JSON.stringify(rows[0])).not.toContain(SECRET);
        expect(rows[0]?.['access_token']).toBeNull();
        expect(rows[0]?.['refresh_token']).toBeNull();
      } finally {
        db.close();
      }
      expect(await store.get('member')).toBeUndefined();
      expect(await store.deletePortal('member')).toBe(1);
      expect(await store.deletePortal('member')).toBe(0);
      expect((await store.upsert(sampleRecord('member'))).version).toBe(3);
      expect((await store.upsert(sampleRecord('member', { chain: 'user:7', userId: 7 }))).version).toBe(2);
    });

    it('lists portals in JavaScript string order, NUL and astral characters included', async () => {
      const store = getStore();
      const ids = ['\uffff-last-bmp', '😀-astral', 'a', 'nul\u0000byte', 'nul', 'ПОРТАЛ', "quo'te", 'Z'];
      for (const id of ids) await store.upsert(sampleRecord(id));
      for (const id of ids) expect((await store.get(id))?.memberId).toBe(id);
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await store.list({ after, limit: 3 });
        seen.push(...page.records.map((record) => record.memberId));
        after = page.next;
      } while (after !== undefined);
      expect(seen).toStrictEqual([...ids].sort());
    });

    it('lists user chains in chain order and never the portal chain', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      for (const userId of [9, 10, 1]) await store.upsert(sampleRecord('member', { chain: `user:${userId}`, userId }));
      await store.upsert(sampleRecord('other', { chain: 'user:2', userId: 2 }));
      const chains = await store.listChains('member');
      expect(chains.map((record) => record.chain)).toStrictEqual(['user:1', 'user:10', 'user:9']);
      expect((await store.list()).records.map((record) => record.memberId)).toStrictEqual(['member']);
    });

    it('reports a corrupt row as a StoreError naming the field, never quoting a token', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member', { accessToken: SECRET }));
      const db = raw(store);
      db.prepare("UPDATE b24pt_chains SET expires = 'soon'").run();
      db.close();
      for (const attempt of [() => store.get('member'), () => store.update('member', 1, { expires: 1 }), () => store.list()]) {
        const error: unknown = await attempt().catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).message).toMatch(/corrupt \(bad field expires\)/);
        expect((error as StoreError).transient).toBe(false);
        expect(leaks(error)).toBe(false);
      }
    });

    it('counts versions up to Number.MAX_SAFE_INTEGER exactly and refuses to go past it', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const db = raw(store);
      db.prepare('UPDATE b24pt_chains SET version = ?').run(Number.MAX_SAFE_INTEGER - 1);
      db.close();
      const last = await store.update('member', Number.MAX_SAFE_INTEGER - 1, { accessToken: 'last' });
      expect(last.ok && last.record.version).toBe(Number.MAX_SAFE_INTEGER);
      await expect(store.update('member', Number.MAX_SAFE_INTEGER, { accessToken: 'over' })).rejects.toBeInstanceOf(StoreError);
      await expect(store.upsert(sampleRecord('member'))).rejects.toBeInstanceOf(StoreError);
      expect(await store.get('member')).toMatchObject({ accessToken: 'last', version: Number.MAX_SAFE_INTEGER });
    });

    it('turns a write lock held past the busy timeout into a transient StoreError, reads still work', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const impatient = new SqliteTokenStore({ filename: store.filename as string, busyTimeoutMs: 20 });
      const db = raw(store);
      db.exec('BEGIN IMMEDIATE');
      try {
        const error: unknown = await impatient.upsert(sampleRecord('member', { accessToken: SECRET })).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).transient).toBe(true);
        expect((error as StoreError).message).toMatch(/SQLITE_BUSY/);
        expect(leaks(error)).toBe(false);
        await expect(impatient.tryLock('member', 1000)).rejects.toMatchObject({ transient: true });
        expect((await impatient.get('member'))?.version).toBe(1);
      } finally {
        db.exec('ROLLBACK');
        db.close();
      }
      expect((await impatient.upsert(sampleRecord('member'))).version).toBe(2);
      await impatient.close();
    });

    it('measures leases by the injected clock; chains of one portal lock independently', async () => {
      let now = 1_000_000;
      const store = new SqliteTokenStore({ filename: getStore().filename as string, now: () => now });
      const portal = await store.tryLock('member', 1000);
      const user = await store.tryLock({ memberId: 'member', chain: 'user:7' }, 1000);
      expect(portal?.expiresAt).toBe(1_001_000);
      expect(user).toBeDefined();
      expect(await store.tryLock('member', 1000)).toBeUndefined();
      now = 1_000_999;
      expect(await portal?.renew?.(1000)).toBe(true); // now held until 1_001_999
      now = 1_001_500;
      expect(await store.tryLock('member', 1000)).toBeUndefined();
      now = 1_002_000;
      expect(await portal?.renew?.(1000)).toBe(false);
      const next = await store.tryLock('member', 1000);
      expect(next).toBeDefined();
      await portal?.release(); // lapsed and taken over: frees nothing
      expect(await store.tryLock('member', 1000)).toBeUndefined();
      await store.close();
    });

    it('rejects bad input with a TypeError and changes nothing', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      await expect(store.upsert({ ...sampleRecord('member'), expires: Number.NaN })).rejects.toBeInstanceOf(TypeError);
      await expect(store.update('member', 1, { memberId: 'x' } as never)).rejects.toBeInstanceOf(TypeError);
      await expect(store.get({ memberId: 'member', chain: 'user:0' as never })).rejects.toBeInstanceOf(TypeError);
      await expect(store.tryLock('member', 0)).rejects.toBeInstanceOf(TypeError);
      await expect(store.list({ limit: 0 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.deletePortal('')).rejects.toBeInstanceOf(TypeError);
      expect((await store.get('member'))?.version).toBe(1);
    });

    it('creates its schema once and reopens it idempotently, keeping the data', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const again = new SqliteTokenStore({ filename: store.filename as string });
      await again.ready();
      await again.ready();
      expect((await again.get('member'))?.version).toBe(1);
      await again.close();
      const db = raw(store);
      try {
        expect(db.prepare("SELECT value FROM b24pt_meta WHERE key = 'schema_version'").get()).toStrictEqual({ value: 3 });
      } finally {
        db.close();
      }
    });
  },
});

describe('SqliteTokenStore set-up', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'b24pt-sqlite-setup-'));
  });
  afterEach(async () => {
    await chmod(dir, 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('rejects bad options with a TypeError', () => {
    const filename = join(dir, 'x.sqlite');
    const database = new Database(':memory:');
    const bad: unknown[] = [
      undefined,
      {},
      { filename: '' },
      { filename: ':memory:' },
      { filename, database },
      { database: {} },
      { filename, tablePrefix: 'a-b' },
      { filename, tablePrefix: '' },
      { filename, busyTimeoutMs: -1 },
      { filename, now: 5 },
    ];
    for (const options of bad) expect(() => new SqliteTokenStore(options as never)).toThrow(TypeError);
    database.close();
  });

  it('closes a database it opened itself, and then refuses calls; close is idempotent', async () => {
    const store = new SqliteTokenStore({ filename: join(dir, 'owned.sqlite') });
    await store.upsert(sampleRecord('member'));
    await store.close();
    await store.close();
    await expect(store.get('member')).rejects.toThrow(/closed/);
    await expect(store.get('member')).rejects.toBeInstanceOf(StoreError);
    // No other connection is left: the file can be opened exclusively.
    const db = new Database(join(dir, 'owned.sqlite'));
    db.pragma('locking_mode = EXCLUSIVE');
    expect(db.prepare('SELECT count(*) AS n FROM b24pt_chains').get()).toStrictEqual({ n: 1 });
    db.close();
  });

  it('leaves a database it was given open, with its tables in it', async () => {
    const database = new Database(join(dir, 'given.sqlite'));
    const store = new SqliteTokenStore({ database, tablePrefix: 'app_tokens_' });
    expect(store.filename).toBeUndefined();
    await store.upsert(sampleRecord('member'));
    await store.close();
    expect(database.open).toBe(true);
    expect(database.prepare('SELECT member_id, version FROM app_tokens_chains').get()).toStrictEqual({
      member_id: 'member',
      version: 1,
    });
    await expect(store.get('member')).rejects.toBeInstanceOf(StoreError);
    database.close();
  });

  it('keeps stores with different table prefixes in one file apart', async () => {
    const filename = join(dir, 'shared.sqlite');
    const a = new SqliteTokenStore({ filename, tablePrefix: 'a_' });
    const b = new SqliteTokenStore({ filename, tablePrefix: 'b_' });
    await a.upsert(sampleRecord('member', { domain: 'a.bitrix24.com' }));
    expect(await b.get('member')).toBeUndefined();
    await b.upsert(sampleRecord('member', { domain: 'b.bitrix24.com' }));
    expect((await a.get('member'))?.domain).toBe('a.bitrix24.com');
    expect((await b.tryLock('member', 10_000)) !== undefined && (await a.tryLock('member', 10_000)) !== undefined).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });

  it('fails fast in ready() when the directory does not exist, and creates nothing', async () => {
    const store = new SqliteTokenStore({ filename: join(dir, 'missing', 'tokens.sqlite') });
    const error: unknown = await store.ready().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toMatch(/directory does not exist/);
    expect((error as StoreError).transient).toBe(false);
    await expect(stat(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    // Fixed, it works: the failure was not remembered.
    await mkdir(join(dir, 'missing'));
    await store.ready();
    await store.close();
  });

  it('fails fast in ready() when the path is a directory', async () => {
    const store = new SqliteTokenStore({ filename: dir });
    await expect(store.ready()).rejects.toThrow(/is a directory/);
    await expect(store.get('member')).rejects.toBeInstanceOf(StoreError);
  });

  it('fails fast in ready() in a read-only location', async () => {
    if (process.platform === 'win32') return;
    // root ignores permission bits; sysfs refuses new files even to root.
    const root = process.getuid?.() === 0;
    if (!root) await chmod(dir, 0o500);
    const filename = root ? '/sys/b24pt-test.sqlite' : join(dir, 'tokens.sqlite');
    const store = new SqliteTokenStore({ filename });
    const error: unknown = await store.ready().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toMatch(/permission denied|read-only/);
    expect((error as StoreError).transient).toBe(false);
  });

  it('fails fast in ready() on a file that is not a SQLite database, leaving it alone', async () => {
    const filename = join(dir, 'tokens.sqlite');
    await writeFile(filename, 'this is not a database, just text that is long enough to have a header'.repeat(20));
    const store = new SqliteTokenStore({ filename });
    await expect(store.ready()).rejects.toThrow(/corrupt or not a SQLite database \(SQLITE_NOTADB\)/);
    expect((await stat(filename)).size).toBe(1400);
  });

  it('refuses a schema newer than it knows', async () => {
    const filename = join(dir, 'tokens.sqlite');
    const store = new SqliteTokenStore({ filename });
    await store.ready();
    await store.close();
    const db = new Database(filename);
    db.prepare("UPDATE b24pt_meta SET value = 99 WHERE key = 'schema_version'").run();
    db.close();
    const newer = new SqliteTokenStore({ filename });
    await expect(newer.ready()).rejects.toThrow(/schema is version 99, newer than this library supports \(3\)/);
  });
});
