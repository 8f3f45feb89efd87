// `migrate`: version continuity, verification, dry runs, records that
// change during the copy; against the file store, SQLite, PostgreSQL and Redis.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrate, migrateReport } from '../../src/cli/migrate.js';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { serviceAvailable, SERVICES } from '../support/services.js';
import { dropRedisPrefix, memoryIo, recordInput, runBinary, seedPortals, TOKEN, expectSameRecords } from './helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const redis = await serviceAvailable('redis');
const run = `${process.pid}_${Date.now().toString(36)}`;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-cli-migrate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('small migrations', () => {
  it('SQLite to an encrypted Redis store: dry run writes nothing, then versions carry over', async () => {
    if (!redis) return;
    const filename = join(dir, 'small.db');
    const source = new SqliteTokenStore({ filename });
    await seedPortals(source, 30, 4);
    await source.upsert(recordInput(4, { chain: 'user:9', userId: 9 }));
    await source.upsert(recordInput(4, { chain: 'user:9', userId: 9 }));
    await source.delete(recordInput(5).memberId);
    const keyPrefix = `clitest${run}`;
    const url = `${SERVICES.redis.url}?keyPrefix=${keyPrefix}`;
    const env = { B24PT_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}` };
    const plain = new RedisTokenStore({ url: SERVICES.redis.url, keyPrefix });
    try {
      const dry = await runBinary(['migrate', '--from', `sqlite:${filename}`, '--to', url, '--dry-run'], env);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/30 chains read: would copy 30, already present 0/);
      expect((await plain.list()).records).toHaveLength(0);

      const done = await runBinary(['migrate', '--from', `sqlite:${filename}`, '--to', url, '--page-size', '7'], env);
      expect(done.code).toBe(0);
      expect(done.stdout).toContain('verify: source 29 portals, 30 chains; target 30 chains: ok');
      const encrypted = new EncryptedTokenStore(plain, { keys: { k1: Buffer.alloc(32, 7) }, writeKeyId: 'k1' });
      expect(await expectSameRecords(source, encrypted)).toBe(30);
      const raw = await plain.get(recordInput(4).memberId);
      expect(raw?.refreshToken).toMatch(/^v2\.k1\./);
      expect(raw?.version).toBe(2);
      expect((await plain.get({ memberId: recordInput(4).memberId, chain: 'user:9' }))?.version).toBe(2);

      const again = await runBinary(['migrate', '--from', `sqlite:${filename}`, '--to', url], env);
      expect(again.stdout).toMatch(/copied 0, already present 30/);
    } finally {
      await source.close();
      await plain.close();
      await dropRedisPrefix(SERVICES.redis.url, keyPrefix);
    }
  });

  it('reports a record that changed in the source during the copy, and fails', async () => {
    const source = new MemoryTokenStore();
    await seedPortals(source, 10, 1);
    const moving = recordInput(3).memberId;
    let reads = 0;
    const read = source.get.bind(source);
    source.get = async (key) => {
      const id = typeof key === 'string' ? key : key.memberId;
      if (id === moving && reads++ === 0) await source.upsert(recordInput(3));
      return read(key);
    };
    const target = new MemoryTokenStore();
    const io = memoryIo();
    const result = await runMigrate(source, target, io, { dryRun: false, pageSize: 4, concurrency: 2 });
    expect(result.changed).toEqual([expect.objectContaining({ memberId: moving, chain: 'portal' })]);
    const report = migrateReport(result, false);
    expect(report.ok).toBe(false);
    expect(report.text).toContain(`changed ${moving} portal`);
    expect(report.text).not.toMatch(TOKEN);
  });

  it('leaves a target chain that moved on past the source as it is, and reports the conflict (issue 20 case 4)', async () => {
    const source = new MemoryTokenStore();
    const target = new MemoryTokenStore();
    await source.upsert(recordInput(1));
    for (let i = 0; i < 3; i++) await target.upsert(recordInput(1));
    const before = await target.get(recordInput(1).memberId);
    const result = await runMigrate(source, target, memoryIo(), { dryRun: false, pageSize: 10, concurrency: 1 });
    expect(result.conflicts).toHaveLength(1);
    expect(migrateReport(result, false).ok).toBe(false);
    expect(await target.get(recordInput(1).memberId)).toStrictEqual(before);
  });
});
