// Issue 24, "The command-line tool": `status` (and every command that only reads: `sweep --dry-run`,
// the source of `migrate`) changes nothing. A mistyped table or key prefix, or a file that is not a
// store, creates no table, file or key: the binary prints one line naming what it looked for and
// exits 2 (the URL names no store, like a `file:` path that does not exist).
import Database from 'better-sqlite3';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/store/file/store.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { adminQuery, dropTables, enterGate, uniquePrefix } from '../store/fixtures/pg-support.js';
import { SERVICES, serviceAvailable } from '../support/services.js';
import { dropRedisPrefix, recordInput, runBinary, seedPortals, TOKEN } from './helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const postgres = await serviceAvailable('postgres');
const redis = await serviceAvailable('redis');

let dir: string;
let leave: () => Promise<void> = () => Promise.resolve();
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-cli-readonly-'));
  if (postgres) leave = await enterGate('shared');
}, 200_000);
afterAll(async () => {
  await leave();
  await rm(dir, { recursive: true, force: true });
});

/** Every table whose name starts with `prefix_`, from information_schema. */
async function tablesOf(prefix: string): Promise<string[]> {
  const rows = await adminQuery<{ name: string }>('SELECT table_name AS name FROM information_schema.tables WHERE table_name LIKE $1 ORDER BY 1', [`${prefix}\\_%`]);
  return rows.map((row) => row.name);
}

/** Every Redis key under `prefix:`. */
async function keysOf(prefix: string): Promise<string[]> {
  const { Redis } = await import('ioredis');
  const client = new Redis(SERVICES.redis.url);
  try {
    return (await client.keys(`${prefix}:*`)).sort();
  } finally {
    client.disconnect();
  }
}

describe.skipIf(!postgres)('read-only commands on PostgreSQL', () => {
  it('status with a mistyped tablePrefix creates no table, says what it looked for and exits 2', async () => {
    const prefix = uniquePrefix('typo');
    try {
      expect(await tablesOf(prefix)).toStrictEqual([]);
      const run = await runBinary(['status', '--store', `postgres://postgres:pw-b24pt@127.0.0.1:5432/test?tablePrefix=${prefix}`]);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`no tables named ${prefix}_meta, ${prefix}_records, ${prefix}_locks, ${prefix}_budgets in database test`);
      expect(lines[0]).toContain(`?tablePrefix=${prefix}: PostgreSQL token store:`);
      expect(lines[0]).toContain('check tablePrefix and the database (createSchema is off: nothing was created)');
      expect(run.stderr).not.toContain('pw-b24pt');
      expect(await tablesOf(prefix)).toStrictEqual([]);
    } finally {
      await dropTables(prefix);
    }
  });

  it('sweep --dry-run and the source of migrate create no table either', async () => {
    const prefix = uniquePrefix('typo2');
    const url = `${SERVICES.postgres.url}?tablePrefix=${prefix}`;
    try {
      const sweep = await runBinary(['sweep', '--dry-run', '--store', url]);
      expect(sweep.code).toBe(2);
      expect(sweep.stderr).toContain(`no tables named ${prefix}_meta`);
      const target = join(dir, 'migrate-target');
      const migrate = await runBinary(['migrate', '--from', url, '--to', `file:${target}`]);
      expect(migrate.code).toBe(2);
      expect(migrate.stderr).toContain(`no tables named ${prefix}_meta`);
      expect(await tablesOf(prefix)).toStrictEqual([]);
    } finally {
      await dropTables(prefix);
    }
  });

  it('status reads a store whose tables are there, as before', async () => {
    const prefix = uniquePrefix('present');
    const store = new PostgresTokenStore({ connectionString: SERVICES.postgres.url, tablePrefix: prefix });
    try {
      await seedPortals(store, 3, 1);
      const run = await runBinary(['status', '--store', `${SERVICES.postgres.url}?tablePrefix=${prefix}`]);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('3 portals, 3 chains: 3 active');
      expect(run.stdout + run.stderr).not.toMatch(TOKEN);
    } finally {
      await store.close();
      await dropTables(prefix);
    }
  });
});

describe('read-only commands on SQLite and files', () => {
  it('status on a missing sqlite: file leaves no file behind and exits 2', async () => {
    const filename = join(dir, 'typo.sqlite');
    const run = await runBinary(['status', '--store', `sqlite:${filename}`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('does not exist');
    expect((await readdir(dir)).filter((name) => name.startsWith('typo.sqlite'))).toStrictEqual([]);
  });

  it('status on a SQLite file that is not a store creates no table, no -wal file, and exits 2', async () => {
    const filename = join(dir, 'other.sqlite');
    const other = new Database(filename);
    other.exec('CREATE TABLE notes (body TEXT)');
    other.close();
    const run = await runBinary(['status', '--store', `sqlite:${filename}`]);
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`no tables named b24pt_meta, b24pt_chains, b24pt_locks, b24pt_budgets in file ${filename}`);
    expect(lines[0]).toContain('check the file and tablePrefix');
    const db = new Database(filename, { fileMustExist: true });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toStrictEqual([{ name: 'notes' }]);
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
    db.close();
    expect((await readdir(dir)).filter((name) => name.startsWith('other.sqlite'))).toStrictEqual(['other.sqlite']);
  });

  it('status on a file: store writes nothing into its directory (no probe file, no sweep)', async () => {
    const directory = join(dir, 'files');
    const store = new FileTokenStore({ directory });
    await store.upsert(recordInput(1));
    // A temp file old enough for the store's sweep to remove: a read-only command leaves it.
    const stale = join(directory, '.stale.0123456789abcdef.tmp');
    await writeFile(stale, 'x');
    const { utimes } = await import('node:fs/promises');
    await utimes(stale, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const before = { names: (await readdir(directory)).sort(), mtimeMs: (await stat(directory)).mtimeMs };
    const run = await runBinary(['status', '--store', `file:${directory}`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('1 portals, 1 chains');
    expect({ names: (await readdir(directory)).sort(), mtimeMs: (await stat(directory)).mtimeMs }).toStrictEqual(before);
  });

  it('status on a file: path that is a file, not a directory, exits 2', async () => {
    const path = join(dir, 'plain-file');
    await writeFile(path, 'x');
    const run = await runBinary(['status', '--store', `file:${path}`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('is not a directory');
  });
});

describe.skipIf(!redis)('read-only commands on Redis', () => {
  it('status under a key prefix with no records records no layout key, says so and exits 2', async () => {
    const prefix = `b24pt-typo-${process.pid}-${Date.now()}`;
    try {
      const run = await runBinary(['status', '--store', `${SERVICES.redis.url}?keyPrefix=${prefix}`]);
      expect(run.code).toBe(2);
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`no keys under prefix '${prefix}' (neither ${prefix}:layout nor ${prefix}:portals exists)`);
      expect(lines[0]).toContain('check keyPrefix and the database number');
      expect(await keysOf(prefix)).toStrictEqual([]);
    } finally {
      await dropRedisPrefix(SERVICES.redis.url, prefix);
    }
  });

  it('status under a prefix with records reads them, as before', async () => {
    const prefix = `b24pt-present-${process.pid}-${Date.now()}`;
    const store = new RedisTokenStore({ url: SERVICES.redis.url, keyPrefix: prefix });
    try {
      await seedPortals(store, 2, 1);
      const run = await runBinary(['status', '--store', `${SERVICES.redis.url}?keyPrefix=${prefix}`]);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('2 portals, 2 chains: 2 active');
    } finally {
      await store.close();
      await dropRedisPrefix(SERVICES.redis.url, prefix);
    }
  });
});
