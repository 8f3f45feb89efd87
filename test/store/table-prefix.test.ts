// `tablePrefix` and the table names: the prefix and the name are joined by exactly one underscore, so
// `app_` and `app` both give `app_records` (PostgreSQL) / `app_chains` (SQLite), never `app__records`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { adminQuery, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';

const available = await serviceAvailable('postgres');
const MEMBER = 'f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1';

describe('SqliteTokenStore tablePrefix', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'b24pt-prefix-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['app_', 'app_'],
    ['app', 'app_'],
    [undefined, 'b24pt_'],
  ])('tablePrefix %s names the tables %s*', async (tablePrefix, stem) => {
    const filename = join(dir, `${tablePrefix ?? 'default'}.db`);
    const store = new SqliteTokenStore({ filename, ...(tablePrefix === undefined ? {} : { tablePrefix }) });
    await store.upsert(sampleRecord(MEMBER));
    expect(await store.get(sampleRecord(MEMBER).memberId)).toMatchObject({ memberId: sampleRecord(MEMBER).memberId });
    await store.close();
    const db = new Database(filename, { readonly: true });
    const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    db.close();
    expect(names).toEqual(['budgets', 'chains', 'locks', 'meta'].map((table) => `${stem}${table}`));
  });
});

describe.skipIf(!available)('PostgresTokenStore tablePrefix', () => {
  let leave: () => Promise<void>;
  const base = uniquePrefix('fhpfx').slice(0, 30);
  beforeAll(async () => {
    leave = await enterGate('shared');
  }, 200_000);
  afterAll(async () => {
    await adminQuery(`DROP TABLE IF EXISTS "${base}_records", "${base}_locks", "${base}_budgets", "${base}_meta" CASCADE`);
    await leave();
  });

  it('a prefix ending in "_" names <prefix>records, the same tables as the prefix without it', async () => {
    const withUnderscore = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: `${base}_` });
    await withUnderscore.upsert(sampleRecord(MEMBER));
    await withUnderscore.close();
    const tables = (await adminQuery<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_name LIKE $1 ORDER BY table_name', [`${base}%`])).map((r) => r.table_name);
    expect(tables).toEqual(['budgets', 'locks', 'meta', 'records'].map((table) => `${base}_${table}`));
    // The prefix without the underscore reads the same records.
    const plain = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: base });
    expect(await plain.get(sampleRecord(MEMBER).memberId)).toMatchObject({ memberId: sampleRecord(MEMBER).memberId });
    await plain.close();
  });
});
