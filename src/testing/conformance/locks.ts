// Conformance cases for the per-chain lock (capability `lock`): exclusion, release, lease lapse and
// takeover, and lease renewal.

import { setTimeout as sleep } from 'node:timers/promises';
import { lockOf, MEMBER, waitPast, type SuiteContext } from './context.js';

/** Registers the lock cases; only for stores that declare `capabilities.lock`. */
export function registerLockCases({ test, expect, store, ttl }: SuiteContext): void {
  test('a held lock excludes a second holder until it is released', async () => {
    const tryLock = lockOf(store());
    const first = await tryLock(MEMBER, 10_000);
    expect(first, 'a free lock is taken').toBeDefined();
    expect(typeof first?.token, 'a lease has a string token').toBe('string');
    expect(first?.token.length, 'a lease token is not empty').toBeGreaterThan(0);
    expect(Number.isFinite(first?.expiresAt), 'a lease has a finite expiry').toBe(true);
    expect(await tryLock(MEMBER, 10_000), 'a held lock excludes a second holder').toBeUndefined();
    await first?.release();
    const second = await tryLock(MEMBER, 10_000);
    expect(second, 'a released lock is taken again').toBeDefined();
    expect(second?.token, 'every lease has its own token').not.toBe(first?.token);
    await second?.release();
  });

  test('release is idempotent and locks of different portals are independent', async () => {
    const tryLock = lockOf(store());
    const one = await tryLock('portal-one', 10_000);
    const two = await tryLock('portal-two', 10_000);
    expect(one, "one portal's lock is free").toBeDefined();
    expect(two, "another portal's lock is free while the first is held").toBeDefined();
    await one?.release();
    await one?.release();
    expect(await tryLock('portal-two', 10_000), "releasing one portal's lock twice does not free another's").toBeUndefined();
    const again = await tryLock('portal-one', 10_000);
    expect(again, 'a released lock is taken again').toBeDefined();
    await again?.release();
    await two?.release();
  });

  test('a lock works for a portal that has no record', async () => {
    const lease = await lockOf(store())('no-record-yet', 10_000);
    expect(lease, 'a lock needs no record').toBeDefined();
    await lease?.release();
    expect(await store().get('no-record-yet'), 'taking a lock creates no record').toBeUndefined();
  });

  test(
    'an expired lease can be taken over',
    async () => {
      const tryLock = lockOf(store());
      const lapsed = await tryLock(MEMBER, ttl);
      expect(lapsed, 'a free lock is taken').toBeDefined();
      if (lapsed === undefined) return;
      await waitPast(lapsed.expiresAt);
      const taker = await tryLock(MEMBER, 10_000);
      expect(taker, 'a lapsed lease is taken over').toBeDefined();
      await taker?.release();
    },
    10_000 + ttl,
  );

  test(
    'releasing a lapsed lease that was taken over does not free the new holder',
    async () => {
      const tryLock = lockOf(store());
      const lapsed = await tryLock(MEMBER, ttl);
      if (lapsed === undefined) throw new Error('the first tryLock failed');
      await waitPast(lapsed.expiresAt);
      const taker = await tryLock(MEMBER, 10_000);
      expect(taker, 'a lapsed lease is taken over').toBeDefined();
      await lapsed.release();
      expect(await tryLock(MEMBER, 10_000), "a lapsed holder's release never frees the new holder").toBeUndefined();
      await taker?.release();
      const after = await tryLock(MEMBER, 10_000);
      expect(after, "the new holder's release frees the lock").toBeDefined();
      await after?.release();
    },
    10_000 + ttl,
  );

  test(
    'a live lease is not taken over before it lapses',
    async () => {
      const tryLock = lockOf(store());
      const holder = await tryLock(MEMBER, ttl * 5);
      if (holder === undefined) throw new Error('the first tryLock failed');
      await sleep(ttl);
      expect(await tryLock(MEMBER, 10_000), 'a live lease is never taken over').toBeUndefined();
      await holder.release();
    },
    10_000 + ttl * 5,
  );

  test(
    'renew extends a held lease past its first expiry',
    async () => {
      // Generous TTLs: the renew must land while the first lease is live even on a loaded machine.
      const holder = await lockOf(store())(MEMBER, ttl * 5);
      if (holder === undefined) throw new Error('the first tryLock failed');
      if (holder.renew === undefined) return; // renew is optional
      const firstExpiry = holder.expiresAt;
      expect(await holder.renew(ttl * 25), 'renew of a held, live lease returns true').toBe(true);
      await waitPast(firstExpiry);
      expect(await lockOf(store())(MEMBER, 10_000), 'a renewed lease is not taken over at its first expiry').toBeUndefined();
      await holder.release();
      const after = await lockOf(store())(MEMBER, 10_000);
      expect(after, 'a renewed lease is still released by its holder').toBeDefined();
      await after?.release();
    },
    10_000 + ttl * 25,
  );

  test(
    'renew of a lapsed lease that was taken over returns false and leaves the new holder',
    async () => {
      const tryLock = lockOf(store());
      const lapsed = await tryLock(MEMBER, ttl);
      if (lapsed === undefined) throw new Error('the first tryLock failed');
      if (lapsed.renew === undefined) return; // renew is optional
      await waitPast(lapsed.expiresAt);
      const taker = await tryLock(MEMBER, 10_000);
      expect(taker, 'a lapsed lease is taken over').toBeDefined();
      expect(await lapsed.renew(10_000), 'renew of a lease that was taken over returns false').toBe(false);
      expect(await tryLock(MEMBER, 10_000), "a failed renew never frees or steals the new holder's lock").toBeUndefined();
      await taker?.release();
    },
    10_000 + ttl,
  );
}
