// EncryptedTokenStore around RedisTokenStore: the conformance suite (with the cross-process cases in
// real child processes) against the real Redis, and no key under the test's prefix holds a token in clear.
import { afterAll, expect, it } from 'vitest';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { chainRecord, sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { expectNoneInClear, KEY1, secretTokens } from './fixtures/encryption.js';
import { dropPrefix, inspector, keysUnder, REDIS_URL, uniquePrefix } from './fixtures/redis-support.js';
import { childModule } from '../support/children.js';

const available = await serviceAvailable('redis');

if (!available) {
  it.skip('EncryptedTokenStore(RedisTokenStore) (Redis is not reachable)', () => undefined);
} else {
  const admin = inspector();
  afterAll(() => {
    admin.disconnect();
  });
  const redisOf = (store: EncryptedTokenStore): RedisTokenStore => store.inner as RedisTokenStore;

  await describeTokenStore('EncryptedTokenStore(RedisTokenStore)', {
    create: () => new EncryptedTokenStore(new RedisTokenStore({ url: REDIS_URL, keyPrefix: uniquePrefix('enc') }), { keys: { k1: KEY1 }, writeKeyId: 'k1' }),
    destroy: async (store) => {
      await store.close();
      await dropPrefix(admin, redisOf(store).keyPrefix);
    },
    crossProcess: {
      ...childModule(new URL('./fixtures/open-encrypted-store.ts', import.meta.url)),
      args: (store) => ({ kind: 'redis', key: KEY1, url: REDIS_URL, keyPrefix: redisOf(store).keyPrefix }),
    },
    extraTests: (getStore) => {
      it('leaves no token in clear in any Redis key', async () => {
        const store = getStore();
        const first = secretTokens('first');
        const second = secretTokens('second');
        const user = secretTokens('user');
        await store.upsert(sampleRecord('member', first));
        await store.update('member', 1, { accessToken: second.accessToken, refreshToken: second.refreshToken });
        await store.upsert(chainRecord('member', 7, user));
        expect(await store.get('member')).toMatchObject({ accessToken: second.accessToken, version: 2 });
        const keys = await keysUnder(admin, redisOf(store).keyPrefix);
        expect(keys.length, 'the store wrote keys').toBeGreaterThanOrEqual(2);
        const dumps: string[] = [];
        for (const key of keys) {
          const type = await admin.type(key);
          if (type === 'hash') dumps.push(JSON.stringify(await admin.hgetall(key)));
          else if (type === 'string') dumps.push((await admin.get(key)) ?? '');
          else if (type === 'zset') dumps.push(JSON.stringify(await admin.zrange(key, '0', '-1')));
          else dumps.push(`${key}: ${type}`);
        }
        const raw = dumps.join('\n');
        expect(raw, 'sealed values are in the hashes').toMatch(/v2\.k1\.[A-Za-z0-9_-]{16}\./);
        expectNoneInClear(raw, [...Object.values(first), ...Object.values(second), ...Object.values(user)], 'Redis');
      });
    },
  });
}
