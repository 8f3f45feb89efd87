// The hot path of clientFor (a cached portal chain, issue 23 item 5) skips the argument checks on a
// hit: what it may skip must still be refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, PoolClosedError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

describe('clientFor hot path', () => {
  it('returns the cached client without a store read, and still refuses bad arguments and a closed pool', async () => {
    const store = new MemoryTokenStore();
    const { memberId } = b24.addPortal();
    await seedStore(store, b24, memberId);
    const pool = new PortalClientPool({ store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    const first = await pool.clientFor(memberId);
    let reads = 0;
    const get = store.get.bind(store);
    store.get = (key) => (reads++, get(key));
    expect(await pool.clientFor(memberId)).toBe(first);
    expect(await pool.clientFor(memberId, {})).toBe(first);
    expect(reads).toBe(0);
    expect(pool.stats().cacheHits).toBe(2);
    // Not a string (a String object spells the same key): refused, not served from the cache.
    await expect(pool.clientFor(new String(memberId) as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(pool.clientFor(memberId, { userId: '7' as unknown as number })).rejects.toBeInstanceOf(InvalidArgumentError);
    await pool.close();
    await expect(pool.clientFor(memberId)).rejects.toBeInstanceOf(PoolClosedError);
    expect(reads).toBe(0);
  });
});
