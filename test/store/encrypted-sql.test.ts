// EncryptedTokenStore around SqliteTokenStore and PostgresTokenStore: the conformance suite (with the
// cross-process cases in real child processes), and the raw database file and table hold no token in clear.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { chainRecord, sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { expectNoneInClear, KEY1, secretTokens } from './fixtures/encryption.js';
import { adminQuery, dropTables, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';
import { childModule } from '../support/children.js';

const crossModule = childModule(new URL('./fixtures/open-encrypted-store.ts', import.meta.url));
const wrap = (inner: SqliteTokenStore | PostgresTokenStore): EncryptedTokenStore =>
  new EncryptedTokenStore(inner, { keys: { k1: KEY1 }, writeKeyId: 'k1' });

/** Writes portal and user chains with distinctive tokens, updates them, and returns every value written. */
async function writeSecrets(store: EncryptedTokenStore): Promise<string[]> {
  const first = secretTokens('first');
  const second = secretTokens('second');
  const user = secretTokens('user');
  await store.upsert(sampleRecord('member', first));
  await store.update('member', 1, { accessToken: second.accessToken, refreshToken: second.refreshToken });
  await store.upsert(chainRecord('member', 7, user));
  expect(await store.get('member'), 'the store reads its own values').toMatchObject({ accessToken: second.accessToken, version: 2 });
  return [...Object.values(first), ...Object.values(second), ...Object.values(user)];
}

const sqliteOf = (store: EncryptedTokenStore): SqliteTokenStore => store.inner as SqliteTokenStore;

await describeTokenStore('EncryptedTokenStore(SqliteTokenStore)', {
  create: async () => {
    const base = await mkdtemp(join(tmpdir(), 'b24pt-enc-sqlite-'));
    const store = wrap(new SqliteTokenStore({ filename: join(base, 'tokens.sqlite') }));
    await store.ready();
    return store;
  },
  destroy: async (store) => {
    await store.close();
    await rm(dirname(sqliteOf(store).filename as string), { recursive: true, force: true });
  },
  crossProcess: {
    ...crossModule,
    args: (store) => ({ kind: 'sqlite', key: KEY1, filename: sqliteOf(store).filename, tablePrefix: sqliteOf(store).tablePrefix }),
  },
  extraTests: (getStore) => {
    it('leaves no token in clear in the database file or its WAL', async () => {
      const store = getStore();
      const values = await writeSecrets(store);
      const directory = dirname(sqliteOf(store).filename as string);
      const names = await readdir(directory);
      expect(names, 'the database file exists').toContain('tokens.sqlite');
      const bytes = (await Promise.all(names.map((name) => readFile(join(directory, name))))).map((b) => b.toString('latin1')).join('\n');
      expect(bytes, 'sealed values are in the file').toMatch(/v2\.k1\.[A-Za-z0-9_-]{16}\./);
      expectNoneInClear(bytes, values, 'the SQLite files');
    });
  },
});

const pgAvailable = await serviceAvailable('postgres');
if (!pgAvailable) {
  it.skip('EncryptedTokenStore(PostgresTokenStore) (PostgreSQL is not reachable)', () => undefined);
} else {
  let leave: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    leave = await enterGate('shared');
  }, 200_000);
  afterAll(async () => {
    await leave();
  });
  const pgOf = (store: EncryptedTokenStore): PostgresTokenStore => store.inner as PostgresTokenStore;

  await describeTokenStore('EncryptedTokenStore(PostgresTokenStore)', {
    create: () => wrap(new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: uniquePrefix('enc') })),
    destroy: async (store) => {
      await store.close();
      await dropTables(pgOf(store).tablePrefix);
    },
    crossProcess: {
      ...crossModule,
      args: (store) => ({ kind: 'postgres', key: KEY1, connectionString: PG_URL, tablePrefix: pgOf(store).tablePrefix }),
    },
    extraTests: (getStore) => {
      it('leaves no token in clear in the PostgreSQL table', async () => {
        const store = getStore();
        const values = await writeSecrets(store);
        const rows = await adminQuery(`SELECT * FROM "${pgOf(store).tablePrefix}_records"`);
        expect(rows, 'both chains are rows').toHaveLength(2);
        const text = JSON.stringify(rows);
        expect(text, 'sealed values are in the table').toMatch(/v2\.k1\.[A-Za-z0-9_-]{16}\./);
        expectNoneInClear(text, values, 'the PostgreSQL table');
      });
    },
  });
}
