// RedisTokenStore through a Redis outage: the real server is shut down and started again. While it is
// down every call rejects with a transient StoreError (none hangs); afterwards the same store works,
// and its change feed reports 'lost', then 'restored', and delivers later changes.
//
// This Redis keeps nothing on disk (--save "" --appendonly no), so what was written before the outage
// is gone after it. A production Redis must persist: see RedisTokenStore's TSDoc.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import type { StoreChange } from '../../src/store/token-store.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { dropPrefix, inspector, REDIS_URL, uniquePrefix } from './fixtures/redis-support.js';

const run = promisify(execFile);
const available = await serviceAvailable('redis');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function ping(): Promise<boolean> {
  return run('redis-cli', ['-p', '6379', 'ping']).then(
    ({ stdout }) => stdout.trim() === 'PONG',
    () => false,
  );
}

async function stopRedis(): Promise<void> {
  await run('redis-cli', ['-p', '6379', 'shutdown', 'nosave']).catch(() => undefined); // the connection drops as it stops
  for (let i = 0; i < 200 && (await ping()); i++) await sleep(25);
}

async function startRedis(): Promise<void> {
  if (await ping()) return;
  await run('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
  for (let i = 0; i < 400 && !(await ping()); i++) await sleep(25);
  if (!(await ping())) throw new Error('Redis did not come back');
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(20);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
}

afterAll(async () => {
  await startRedis(); // whatever happened, leave Redis running for everyone else
});

describe.skipIf(!available)('RedisTokenStore through a Redis outage', () => {
  it('fails fast while Redis is down, then the same store and its feed work again', async () => {
    const keyPrefix = uniquePrefix('outage');
    const store = new RedisTokenStore({ url: REDIS_URL, keyPrefix, timeoutMs: 120_000 });
    const given = new Redis(REDIS_URL);
    given.on('error', () => undefined); // its reconnect attempts while Redis is down are expected
    const borrowed = new RedisTokenStore({ client: given, keyPrefix, timeoutMs: 1_000 });
    const statuses: string[] = [];
    const changes: StoreChange[] = [];
    try {
      await store.upsert(sampleRecord('m1'));
      await borrowed.ready();
      await store.subscribe({ onChange: (change) => changes.push(change), onStatus: (status) => statuses.push(status) });
      const closing = new RedisTokenStore({ url: REDIS_URL, keyPrefix, timeoutMs: 120_000 });
      await closing.ready();
      await closing.subscribe({ onChange: () => undefined });
      try {
        await stopRedis();
        await until(() => statuses.length > 0);
        expect(statuses).toStrictEqual(['lost']);
        // A store with a 2-minute deadline still fails at once: its own connection gives up per call.
        for (const call of [store.get('m1'), store.upsert(sampleRecord('m2')), store.tryLock('m1', 1_000), store.list()]) {
          const error = await rejection(call);
          expect(error).toBeInstanceOf(StoreError);
          expect((error as StoreError).transient).toBe(true);
          expect((error as StoreError).message).toMatch(/unreachable/);
        }
        // A borrowed client that queues commands while offline is cut off by the store's deadline.
        const late = await rejection(borrowed.get('m1'));
        expect(late).toMatchObject({ transient: true });
        await expect(store.subscribe({ onChange: () => undefined })).rejects.toMatchObject({ transient: true });
        // Closing while Redis is down does not wait for its 2-minute deadline (the test would time out).
        await closing.close();
        await expect(closing.get('m1')).rejects.toThrow(/closed/);
      } finally {
        await startRedis();
      }
      // Redis came back empty (no persistence here): m1 is gone, and the store works again as it is.
      await until(() => statuses.length > 1);
      expect(statuses).toStrictEqual(['lost', 'restored']);
      expect(await store.get('m1')).toBeUndefined();
      expect((await store.upsert(sampleRecord('m3'))).version).toBe(1);
      expect((await borrowed.get('m3'))?.version).toBe(1);
      await until(() => changes.some((change) => change.memberId === 'm3'));
      expect(changes).toStrictEqual([{ memberId: 'm3', chain: 'portal', version: 1, deleted: false }]);
      expect(statuses).toStrictEqual(['lost', 'restored']);
    } finally {
      await store.close();
      await borrowed.close();
      given.disconnect();
      const admin = inspector();
      await dropPrefix(admin, keyPrefix).catch(() => undefined);
      admin.disconnect();
    }
  }, 60_000);
});
