// RedisTokenStore through a Redis outage: a real server of the test's own (test/support/private-servers.ts)
// is shut down and started again, so the file runs beside every other test file. While it is
// down every call rejects with a transient StoreError (none hangs); afterwards the same store works,
// and its change feed reports 'lost', then 'restored', and delivers later changes.
//
// This Redis keeps nothing on disk (--save "" --appendonly no), so what was written before the outage
// is gone after it. A production Redis must persist: see RedisTokenStore's TSDoc.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import type { StoreChange } from '../../src/store/token-store.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { type PrivateServer, privateServerAvailable, startPrivateRedis } from '../support/private-servers.js';
import { uniquePrefix } from './fixtures/redis-support.js';

const available = privateServerAvailable('redis');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(20);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
}

let redis: PrivateServer | undefined;
beforeAll(async () => {
  if (available) redis = await startPrivateRedis();
}, 60_000);
afterAll(async () => {
  await redis?.dispose();
}, 60_000);

describe.skipIf(!available)('RedisTokenStore through a Redis outage', () => {
  it('fails fast while Redis is down, then the same store and its feed work again', async () => {
    const keyPrefix = uniquePrefix('outage');
    const url = redis!.url;
    const store = new RedisTokenStore({ url, keyPrefix, timeoutMs: 120_000 });
    const given = new Redis(url);
    given.on('error', () => undefined); // its reconnect attempts while Redis is down are expected
    const borrowed = new RedisTokenStore({ client: given, keyPrefix, timeoutMs: 1_000 });
    const statuses: string[] = [];
    const changes: StoreChange[] = [];
    try {
      await store.upsert(sampleRecord('m1'));
      await borrowed.ready();
      await store.subscribe({ onChange: (change) => changes.push(change), onStatus: (status) => statuses.push(status) });
      const closing = new RedisTokenStore({ url, keyPrefix, timeoutMs: 120_000 });
      await closing.ready();
      await closing.subscribe({ onChange: () => undefined });
      try {
        await redis!.stop();
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
        await redis!.start();
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
    }
  }, 60_000);
});
