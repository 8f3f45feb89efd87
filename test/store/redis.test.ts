// RedisTokenStore: the conformance suite (cross-process cases in real child processes) against the
// real Redis on 127.0.0.1:6379, each test under its own key prefix, removed afterwards by SCAN + DEL.
import { afterAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { dropPrefix, inspector, keysUnder, REDIS_URL, uniquePrefix } from './fixtures/redis-support.js';
import { childModule } from '../support/children.js';

const available = await serviceAvailable('redis');
const SECRET = 'SECRET-ACCESS-TOKEN-5e1c';
const admin = inspector();

afterAll(() => {
  admin.disconnect();
});

async function destroy(store: RedisTokenStore): Promise<void> {
  await store.close();
  await dropPrefix(admin, store.keyPrefix);
}

if (available) {
  await describeTokenStore('RedisTokenStore', {
    create: () => new RedisTokenStore({ url: REDIS_URL, keyPrefix: uniquePrefix('conf') }),
    destroy,
    crossProcess: {
      ...childModule(new URL('./fixtures/open-redis-store.ts', import.meta.url)),
      args: (store) => ({ url: REDIS_URL, keyPrefix: store.keyPrefix }),
    },
    extraTests: (getStore) => {
      it('keeps one hash per chain, indexes in sorted sets, and only the version after a delete', async () => {
        const store = getStore();
        const p = store.keyPrefix;
        await store.upsert(sampleRecord('m1', { accessToken: SECRET, refreshToken: `${SECRET}-r` }));
        await store.upsert({ ...sampleRecord('m1'), chain: 'user:7', userId: 7 });
        expect(await keysUnder(admin, p)).toStrictEqual(
          [`${p}:chains:m1`, `${p}:layout`, `${p}:portals`, `${p}:rec:m1:portal`, `${p}:rec:m1:user:7`].sort(),
        );
        expect(await admin.get(`${p}:layout`)).toBe('1');
        expect(await admin.hget(`${p}:rec:m1:portal`, 'version')).toBe('1');
        expect(await admin.hget(`${p}:rec:m1:portal`, 'accessToken')).toBe(JSON.stringify(SECRET));
        expect(await admin.zrange(`${p}:portals`, '0', '-1')).toStrictEqual(['m1']);
        expect(await admin.zrange(`${p}:chains:m1`, '0', '-1')).toStrictEqual(['user:7']);
        expect(await store.delete('m1')).toBe(true);
        expect(await store.deletePortal('m1')).toBe(1);
        expect(await keysUnder(admin, p)).toStrictEqual([`${p}:layout`, `${p}:tomb:m1`]);
        expect(await admin.hgetall(`${p}:tomb:m1`)).toStrictEqual({ portal: '1', 'user:7': '1' });
        expect((await store.upsert(sampleRecord('m1'))).version).toBe(2);
      });

      it('lists user chains in chain order, deletes a whole portal, and keeps each chain versioned', async () => {
        const store = getStore();
        for (const id of [12, 3, 7]) await store.upsert({ ...sampleRecord('m1'), chain: `user:${id}`, userId: id });
        await store.upsert(sampleRecord('m1'));
        await store.upsert(sampleRecord('m2'));
        const chains = await store.listChains('m1');
        expect(chains.map((record) => record.chain)).toStrictEqual(['user:12', 'user:3', 'user:7']);
        expect(chains.map((record) => record.userId)).toStrictEqual([12, 3, 7]);
        expect((await store.get({ memberId: 'm1', chain: 'user:3' }))?.userId).toBe(3);
        expect((await store.update({ memberId: 'm1', chain: 'user:3' }, 1, { scope: 'crm' })).ok).toBe(true);
        expect(await store.deletePortal('m1')).toBe(4);
        expect(await store.deletePortal('m1')).toBe(0);
        expect(await store.listChains('m1')).toStrictEqual([]);
        expect((await store.list()).records.map((record) => record.memberId)).toStrictEqual(['m2']);
        const again = await store.upsert({ ...sampleRecord('m1'), chain: 'user:3', userId: 3 });
        expect(again.version).toBe(3);
      });

      it('reports a corrupt record hash as a StoreError naming the field, never its value', async () => {
        const store = getStore();
        await store.upsert(sampleRecord('m1', { accessToken: SECRET }));
        const key = `${store.keyPrefix}:rec:m1:portal`;
        for (const [field, value, named] of [
          ['expires', `"${SECRET}"`, 'expires'],
          ['accessToken', `{${SECRET}`, 'accessToken'],
          ['memberId', '"other"', 'memberId/chain do not match the key'],
          ['version', 'x', 'version'],
        ] as const) {
          await store.upsert(sampleRecord('m1', { accessToken: SECRET }));
          await admin.hset(key, field, value);
          const error: unknown = await store.get('m1').catch((caught: unknown) => caught);
          expect(error).toBeInstanceOf(StoreError);
          expect((error as StoreError).message).toContain(`corrupt (bad field ${named})`);
          expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain(SECRET);
        }
      });

      it('counts versions up to Number.MAX_SAFE_INTEGER exactly and refuses to go past it', async () => {
        const store = getStore();
        await store.upsert(sampleRecord('m1'));
        await admin.hset(`${store.keyPrefix}:rec:m1:portal`, 'version', String(Number.MAX_SAFE_INTEGER - 1));
        const last = await store.update('m1', Number.MAX_SAFE_INTEGER - 1, { accessToken: 'last' });
        expect(last.ok && last.record.version).toBe(Number.MAX_SAFE_INTEGER);
        await expect(store.update('m1', Number.MAX_SAFE_INTEGER, { accessToken: 'over' })).rejects.toThrow(/MAX_SAFE_INTEGER/);
        await expect(store.upsert(sampleRecord('m1'))).rejects.toBeInstanceOf(StoreError);
        expect(await store.get('m1')).toMatchObject({ accessToken: 'last', version: Number.MAX_SAFE_INTEGER });
        expect(await store.delete('m1')).toBe(true);
        expect(await admin.hget(`${store.keyPrefix}:tomb:m1`, 'portal')).toBe(String(Number.MAX_SAFE_INTEGER));
      });

      it('renews a held lease, and a lapsed lease that was taken over neither renews nor releases', async () => {
        const store = getStore();
        const first = await store.tryLock('m1', 150);
        expect(await first?.renew?.(10_000)).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(await store.tryLock('m1', 10_000)).toBeUndefined();
        await admin.del(`${store.keyPrefix}:lock:m1:portal`); // as if the renewed lease had lapsed
        const second = await store.tryLock('m1', 10_000);
        expect(second).toBeDefined();
        expect(await first?.renew?.(10_000)).toBe(false);
        await first?.release();
        expect(await store.tryLock('m1', 10_000)).toBeUndefined();
        await second?.release();
        expect(await store.tryLock({ memberId: 'm1', chain: 'user:1' }, 10_000)).toBeDefined();
      });

      it('rejects bad arguments with a TypeError and changes nothing', async () => {
        const store = getStore();
        await store.upsert(sampleRecord('m1'));
        const before = await keysUnder(admin, store.keyPrefix);
        await expect(store.get({ memberId: 'm1', chain: 'user:0' as 'user:1' })).rejects.toBeInstanceOf(TypeError);
        await expect(store.update('m1', 1, { version: 5 } as never)).rejects.toBeInstanceOf(TypeError);
        await expect(store.upsert({ ...sampleRecord('m2'), expires: Number.NaN })).rejects.toBeInstanceOf(TypeError);
        await expect(store.deletePortal('\uD800')).rejects.toBeInstanceOf(TypeError);
        await expect(store.list({ after: '\uDC00' })).rejects.toBeInstanceOf(TypeError);
        await expect(store.tryLock('m1', 0)).rejects.toBeInstanceOf(TypeError);
        await expect(store.subscribe({} as never)).rejects.toBeInstanceOf(TypeError);
        expect(await keysUnder(admin, store.keyPrefix)).toStrictEqual(before);
        expect((await store.get('m1'))?.version).toBe(1);
      });
    },
  });
} else {
  describe.skip('RedisTokenStore (Redis not reachable)', () => {
    it('needs Redis', () => undefined);
  });
}
