// Conformance cases for `tryLockAndGet` (optional even with capability `lock`): the lease follows
// tryLock's rules, and the record that comes with it is never older than the last write committed
// before the lease was taken. Each case passes at once for a store without the method.

import type { TokenStore } from '../../store/token-store.js';
import { lockOf, MEMBER, OTHER_MEMBER, waitPast, type SuiteContext } from './context.js';
import { chainRecord, sampleRecord } from './records.js';

/** The store's `tryLockAndGet`, bound, or `undefined` when it has none. */
function lockAndGetOf(target: TokenStore): NonNullable<TokenStore['tryLockAndGet']> | undefined {
  const method = target.tryLockAndGet?.bind(target);
  return method === undefined ? undefined : (key, ttlMs) => method(key, ttlMs);
}

/** Registers the cases; only for stores that declare `capabilities.lock`. */
export function registerLockReadCases({ test, expect, store, ttl }: SuiteContext): void {
  test('tryLockAndGet takes a free lock and answers the stored record; the lease excludes until released', async () => {
    const lockAndGet = lockAndGetOf(store());
    if (lockAndGet === undefined) return; // the method is optional
    const stored = await store().upsert(sampleRecord(MEMBER));
    const first = await lockAndGet(MEMBER, 10_000);
    expect(first.lease, 'a free lock is taken').toBeDefined();
    expect(first.record, 'the record comes with the lease, every field as get answers it').toStrictEqual(await store().get(MEMBER));
    expect(first.record?.version, 'the stored version').toBe(stored.version);
    expect(await lockOf(store())(MEMBER, 10_000), 'the lease excludes a tryLock').toBeUndefined();
    const refused = await lockAndGet(MEMBER, 10_000);
    expect(refused.lease, 'the lease excludes a tryLockAndGet').toBeUndefined();
    expect(refused.record, 'a refused try still answers the record').toStrictEqual(stored);
    await first.lease?.release();
    const again = await lockAndGet(MEMBER, 10_000);
    expect(again.lease, 'a released lock is taken again').toBeDefined();
    expect(again.lease?.token, 'every lease has its own token').not.toBe(first.lease?.token);
    await again.lease?.release();
  });

  test('tryLockAndGet of a chain with no record takes the lock, answers undefined and creates nothing', async () => {
    const lockAndGet = lockAndGetOf(store());
    if (lockAndGet === undefined) return;
    const { lease, record } = await lockAndGet(OTHER_MEMBER, 10_000);
    expect(lease, 'a lock needs no record').toBeDefined();
    expect(record, 'no record, undefined').toBeUndefined();
    await lease?.release();
    expect(await store().get(OTHER_MEMBER), 'taking a lock creates no record').toBeUndefined();
  });

  test("tryLockAndGet of a user chain locks and reads that chain alone, not the portal's", async () => {
    const lockAndGet = lockAndGetOf(store());
    if (lockAndGet === undefined) return;
    await store().upsert(sampleRecord(MEMBER));
    const user = await store().upsert(chainRecord(MEMBER, 7));
    const portalLease = await lockOf(store())(MEMBER, 10_000);
    const { lease, record } = await lockAndGet({ memberId: MEMBER, chain: 'user:7' }, 10_000);
    expect(lease, "a user chain's lock is free while the portal chain's is held").toBeDefined();
    expect(record, "the user chain's record").toStrictEqual(user);
    await lease?.release();
    await portalLease?.release();
  });

  test('holders taking turns through tryLockAndGet each read the previous holder’s write (no conditional write conflicts)', async () => {
    const lockAndGet = lockAndGetOf(store());
    if (lockAndGet === undefined) return;
    await store().upsert(sampleRecord(MEMBER));
    const rounds = 5;
    const conflicts: number[] = [];
    let written = 0;
    // Eight workers, each writing `rounds` times under the lock from the record that came with it:
    // a record older than the last holder's write makes that write conflict.
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let round = 0; round < rounds; ) {
          const { lease, record } = await lockAndGet(MEMBER, 10_000);
          if (lease === undefined) {
            await new Promise((resolve) => setTimeout(resolve, 1));
            continue;
          }
          try {
            const result = await store().update(MEMBER, record?.version ?? -1, { accessToken: `w${worker}-r${round}`, updatedAt: Date.now() });
            if (result.ok) written++;
            else conflicts.push(record?.version ?? -1);
          } finally {
            await lease.release();
          }
          round++;
        }
      }),
    );
    expect(conflicts, 'every holder read the write of the holder before it').toEqual([]);
    expect(written, 'every turn wrote').toBe(8 * rounds);
  }, 60_000);

  test(
    'tryLockAndGet takes over a lapsed lease and answers the write its holder made before it lapsed',
    async () => {
      const lockAndGet = lockAndGetOf(store());
      if (lockAndGet === undefined) return;
      const stored = await store().upsert(sampleRecord(MEMBER));
      const { lease: lapsed } = await lockAndGet(MEMBER, ttl);
      if (lapsed === undefined) throw new Error('the first tryLockAndGet failed');
      const written = await store().update(MEMBER, stored.version, { accessToken: 'written-before-the-lapse', updatedAt: Date.now() });
      await waitPast(lapsed.expiresAt);
      const taker = await lockAndGet(MEMBER, 10_000);
      expect(taker.lease, 'a lapsed lease is taken over').toBeDefined();
      expect(taker.record, "the lapsed holder's write").toStrictEqual(written.ok ? written.record : undefined);
      await lapsed.release();
      expect((await lockAndGet(MEMBER, 10_000)).lease, "a lapsed holder's release never frees the new holder").toBeUndefined();
      await taker.lease?.release();
    },
    10_000 + ttl,
  );
}
