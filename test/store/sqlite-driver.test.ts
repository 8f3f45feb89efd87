// The SQLite store without its optional peer: importing the store never loads better-sqlite3, a
// store that must open a file says what to install, and a store given a ready database needs no driver.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { StoreError as StoreErrorClass } from '../../src/errors.js';
import type { SqliteTokenStore as SqliteTokenStoreClass } from '../../src/store/sqlite/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';

const driver = vi.hoisted(() => ({ loads: 0 }));

// As if better-sqlite3 were not installed: every attempt to load it fails the way Node's does.
vi.mock('better-sqlite3', () => {
  driver.loads++;
  throw Object.assign(new Error("Cannot find package 'better-sqlite3'"), { code: 'ERR_MODULE_NOT_FOUND' });
});

// The test worker runs other files before this one (vitest's isolate is off): the store module may
// already hold the real driver it loaded for them. Import the library afresh, after the mock.
let StoreError: typeof StoreErrorClass;
let SqliteTokenStore: typeof SqliteTokenStoreClass;
let dir: string;
beforeAll(async () => {
  vi.resetModules();
  ({ StoreError } = await import('../../src/errors.js'));
  ({ SqliteTokenStore } = await import('../../src/store/sqlite/index.js'));
  dir = await mkdtemp(join(tmpdir(), 'b24pt-sqlite-driver-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('does not load the driver when the store module is imported or a store is constructed', () => {
  const store = new SqliteTokenStore({ filename: join(dir, 'tokens.sqlite') });
  expect(store.capabilities.lock).toBe(true);
  expect(driver.loads).toBe(0);
});

it('rejects with a StoreError naming the package to install when the driver is missing', async () => {
  const store = new SqliteTokenStore({ filename: join(dir, 'tokens.sqlite') });
  for (const attempt of [() => store.ready(), () => store.get('member')]) {
    const error: unknown = await attempt().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreErrorClass).message).toMatch(/optional peer dependency better-sqlite3.*npm install better-sqlite3/);
    expect((error as StoreErrorClass).transient).toBe(false);
    // The loader's own error is kept in the cause chain (vitest wraps it once more).
    const codes: unknown[] = [];
    for (let cause: unknown = (error as StoreErrorClass).cause; cause instanceof Error; cause = cause.cause) {
      codes.push((cause as { code?: unknown }).code);
    }
    expect(codes).toContain('ERR_MODULE_NOT_FOUND');
  }
  expect(driver.loads).toBeGreaterThanOrEqual(1);
});

it('works on a database it is given without loading the driver itself', async () => {
  const { default: Database } = await vi.importActual<{ default: typeof BetterSqlite3 }>('better-sqlite3');
  const database = new Database(join(dir, 'given.sqlite'));
  const loadsBefore = driver.loads;
  const store = new SqliteTokenStore({ database });
  expect((await store.upsert(sampleRecord('member'))).version).toBe(1);
  expect((await store.get('member'))?.memberId).toBe('member');
  await store.close();
  expect(database.open).toBe(true);
  database.close();
  expect(driver.loads).toBe(loadsBefore);
});
