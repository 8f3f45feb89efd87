// RedisTokenStore with `createSchema: false`: ready() only reads. A prefix holding neither the layout
// key nor a portal index is a StoreError with reason schema-missing (no key written); a prefix with
// records is read and written as usual.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { dropRedisPrefix } from '../cli/helpers.js';
import { SERVICES, serviceAvailable } from '../support/services.js';

const available = await serviceAvailable('redis');
const URL = SERVICES.redis.url;
let admin: Redis;
beforeAll(() => {
  if (available) admin = new Redis(URL);
});
afterAll(() => {
  admin?.disconnect();
});

let counter = 0;
const prefixOf = (tag: string): string => `b24pt-cs-${tag}-${process.pid}-${counter++}`;

describe('RedisTokenStore createSchema option', () => {
  it('must be a boolean', () => {
    expect(() => new RedisTokenStore({ url: URL, createSchema: 'no' as never })).toThrow(/createSchema must be a boolean/);
  });
});

describe.skipIf(!available)('RedisTokenStore with createSchema: false', () => {
  it('writes no key under an empty prefix: ready() rejects with reason schema-missing', async () => {
    const keyPrefix = prefixOf('empty');
    const store = new RedisTokenStore({ url: URL, keyPrefix, createSchema: false });
    try {
      const error = await store.ready().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ reason: 'schema-missing', transient: false });
      expect((error as StoreError).message).toContain(`no keys under prefix '${keyPrefix}' (neither ${keyPrefix}:layout nor ${keyPrefix}:portals exists)`);
      expect(await admin.keys(`${keyPrefix}:*`)).toStrictEqual([]);
    } finally {
      await store.close();
      await dropRedisPrefix(URL, keyPrefix);
    }
  });

  it('reads and writes as usual under a prefix with records, and records no lost layout key in ready()', async () => {
    const keyPrefix = prefixOf('present');
    const creator = new RedisTokenStore({ url: URL, keyPrefix });
    try {
      await creator.upsert(sampleRecord('member'));
      // A layout key lost on its own (evicted): the portal index still says a store lives here.
      await admin.del(`${keyPrefix}:layout`);
      const reader = new RedisTokenStore({ url: URL, keyPrefix, createSchema: false });
      try {
        await reader.ready();
        expect(await admin.exists(`${keyPrefix}:layout`)).toBe(0);
        expect((await reader.get('member'))?.version).toBe(1);
        expect((await reader.list()).records.map((record) => record.memberId)).toStrictEqual(['member']);
        expect((await reader.upsert(sampleRecord('member'))).version).toBe(2);
      } finally {
        await reader.close();
      }
      await admin.set(`${keyPrefix}:layout`, '99');
      const other = new RedisTokenStore({ url: URL, keyPrefix, createSchema: false });
      await expect(other.ready()).rejects.toThrow(/use layout 99, but this store reads layout 1/);
      await other.close();
    } finally {
      await creator.close();
      await dropRedisPrefix(URL, keyPrefix);
    }
  });
});
