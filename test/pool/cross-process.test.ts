// The central promise on every shared store: 4 real worker processes, each with its own pool on one
// store, storm one expired portal through the stand-in Bitrix24: 1 refresh request in total, no
// refresh-token reuse, every call succeeds; the other workers adopt the stored pair.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { dropTables, enterGate, PG_URL, uniquePrefix as pgPrefix } from '../store/fixtures/pg-support.js';
import { dropPrefix, inspector, REDIS_URL, uniquePrefix as redisPrefix } from '../store/fixtures/redis-support.js';
import { serviceAvailable } from '../support/services.js';
import { expectOneRefreshAcrossProcesses } from '../support/storm.js';

const postgres = await serviceAvailable('postgres');
const redis = await serviceAvailable('redis');
const STORM = '4 worker processes x 25 concurrent calls on one expired portal: 1 refresh, 0 reuse, 100 of 100 succeed';

let b24: FakeBitrix24;
let dir: string;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-storm-'));
});
afterAll(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

describe('FileTokenStore', () => {
  it(STORM, () => expectOneRefreshAcrossProcesses(b24, { kind: 'file', directory: join(dir, 'files') }), 90_000);
});

describe("one user's chain on the FileTokenStore", () => {
  it("4 worker processes x 25 concurrent calls on one user's expired chain: 1 refresh, 0 failed, the portal's chain untouched", () =>
    expectOneRefreshAcrossProcesses(b24, { kind: 'file', directory: join(dir, 'user-files') }, { userId: 7 }), 90_000);
});

describe('SqliteTokenStore', () => {
  it(STORM, () => expectOneRefreshAcrossProcesses(b24, { kind: 'sqlite', filename: join(dir, 'tokens.db') }), 90_000);
});

describe.skipIf(!postgres)('PostgresTokenStore', () => {
  it(STORM, async () => {
    const leave = await enterGate('shared');
    const prefix = pgPrefix('storm');
    try {
      await expectOneRefreshAcrossProcesses(b24, { kind: 'postgres', url: PG_URL, prefix });
    } finally {
      await dropTables(prefix);
      await leave();
    }
  }, 200_000);
});

describe.skipIf(!redis)('RedisTokenStore', () => {
  it(STORM, async () => {
    const prefix = redisPrefix('storm');
    try {
      await expectOneRefreshAcrossProcesses(b24, { kind: 'redis', url: REDIS_URL, prefix });
    } finally {
      const client = inspector();
      await dropPrefix(client, prefix);
      client.disconnect();
    }
  }, 90_000);
});
