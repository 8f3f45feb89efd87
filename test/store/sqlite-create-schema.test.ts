// SqliteTokenStore with `createSchema: false`: no database file is created, no table, no journal-mode
// change on a file that is not the store's; missing tables and another schema version are
// StoreErrors a caller can tell apart by `reason`; with the tables there it reads and writes as usual.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-sqlite-noschema-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The tables of a file, read on a raw connection. */
function tablesIn(filename: string): { names: string[]; journal: unknown } {
  const db = new Database(filename, { fileMustExist: true });
  try {
    const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    return { names: rows.map((row) => row.name), journal: db.pragma('journal_mode', { simple: true }) };
  } finally {
    db.close();
  }
}

describe('SqliteTokenStore with createSchema: false', () => {
  it('must be a boolean', () => {
    expect(() => new SqliteTokenStore({ filename: join(dir, 'x.db'), createSchema: 1 as never })).toThrow(/createSchema must be a boolean/);
  });

  it('does not create a missing database file: every call rejects with reason schema-missing', async () => {
    const filename = join(dir, 'typo.sqlite');
    const store = new SqliteTokenStore({ filename, createSchema: false });
    try {
      const error = await store.ready().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ reason: 'schema-missing', transient: false, code: 'STORE_FAILURE' });
      expect((error as StoreError).message).toContain(`SQLite database file ${filename} does not exist`);
      await expect(store.get('member')).rejects.toMatchObject({ reason: 'schema-missing' });
      await expect(store.upsert(sampleRecord('member'))).rejects.toMatchObject({ reason: 'schema-missing' });
    } finally {
      await store.close();
    }
    expect(await readdir(dir)).toStrictEqual([]);
  });

  it('creates no table in a file without them and leaves its journal mode alone', async () => {
    const filename = join(dir, 'other.sqlite');
    const other = new Database(filename);
    other.exec('CREATE TABLE notes (body TEXT)');
    other.close();
    const before = tablesIn(filename);
    expect(before).toStrictEqual({ names: ['notes'], journal: 'delete' });
    const store = new SqliteTokenStore({ filename, tablePrefix: 'app', createSchema: false });
    const error = await store.ready().catch((e: unknown) => e);
    await store.close();
    expect(error).toMatchObject({ reason: 'schema-missing' });
    expect((error as StoreError).message).toContain(`no tables named app_meta, app_chains, app_locks, app_budgets in file ${filename}`);
    expect(tablesIn(filename)).toStrictEqual(before);
    expect(await readdir(dir)).toStrictEqual(['other.sqlite']);
  });

  it('checks a database it is given, without creating anything in it', async () => {
    const db = new Database(join(dir, 'given.sqlite'));
    try {
      const store = new SqliteTokenStore({ database: db, createSchema: false });
      await expect(store.ready()).rejects.toMatchObject({ reason: 'schema-missing' });
      await store.close();
      expect(db.prepare("SELECT count(*) AS n FROM sqlite_master").get()).toStrictEqual({ n: 0 });
    } finally {
      db.close();
    }
  });

  it('reads and writes as usual when the tables are there, and changes no table', async () => {
    const filename = join(dir, 'tokens.sqlite');
    const creator = new SqliteTokenStore({ filename });
    await creator.upsert(sampleRecord('member'));
    await creator.close();
    const before = tablesIn(filename);
    const store = new SqliteTokenStore({ filename, createSchema: false });
    try {
      await store.ready();
      expect((await store.get('member'))?.version).toBe(1);
      expect((await store.upsert(sampleRecord('member'))).version).toBe(2);
      expect((await store.list()).records.map((record) => record.memberId)).toStrictEqual(['member']);
    } finally {
      await store.close();
    }
    expect(tablesIn(filename)).toStrictEqual(before);
  });

  it('refuses an older schema without migrating it, and a newer one, with reason schema-version', async () => {
    const filename = join(dir, 'tokens.sqlite');
    const creator = new SqliteTokenStore({ filename });
    await creator.ready();
    await creator.close();
    const setVersion = (version: number): void => {
      const db = new Database(filename);
      db.prepare("UPDATE b24pt_meta SET value = ? WHERE key = 'schema_version'").run(version);
      db.close();
    };
    setVersion(2);
    const older = new SqliteTokenStore({ filename, createSchema: false });
    const error = await older.ready().catch((e: unknown) => e);
    await older.close();
    expect(error).toMatchObject({ reason: 'schema-version', transient: false });
    expect((error as StoreError).message).toMatch(/is version 2, older than this library's 3, and createSchema is off/);
    const db = new Database(filename);
    expect(db.prepare("SELECT value FROM b24pt_meta WHERE key = 'schema_version'").get()).toStrictEqual({ value: 2 });
    db.close();
    setVersion(99);
    const newer = new SqliteTokenStore({ filename, createSchema: false });
    await expect(newer.ready()).rejects.toMatchObject({ reason: 'schema-version' });
    await newer.close();
  });
});
