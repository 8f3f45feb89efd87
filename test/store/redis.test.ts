// RedisTokenStore: the conformance suite (cross-process cases in real child processes) against the
// real Redis on 127.0.0.1:6379, each test under its own key prefix, removed afterwards by SCAN + DEL.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { dropPrefix, inspector, keysUnder, REDIS_URL, uniquePrefix } from './fixtures/redis-support.js';

const available = await serviceAvailable('redis');
const SECRET = 'SECRET-ACCESS-TOKEN-5e1c';
const admin = inspector();

afterAll(async () => {
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
      module: fileURLToPath(new URL('./fixtures/open-redis-store.ts', import.meta.url)),
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
        expect(await admin.zrange(`${p}:portals`, 0, -1)).toStrictEqual(['m1']);
        expect(await admin.zrange(`${p}:chains:m1`, 0, -1)).toStrictEqual(['user:7']);
        expect(await store.delete('m1')).toBe(true);
        expect(await store.deletePortal('m1')).toBe(1);
        expect(await keysUnder(admin, p)).toStrictEqual([`${p}:layout`, `${p}:tomb:m1`]);
        expect(await admin.hgetall(`${p}:tomb:m1`)).toStrictEqual({ portal: '1', 'user:7': '1' });
        expect((await store.upsert(sampleRecord('m1'))).version).toBe(2);
      });
    },
  });
} else {
  describe.skip('RedisTokenStore (Redis not reachable)', () => {
    it('needs Redis', () => undefined);
  });
}
