// Conformance cases for the change feed (capability `changes`): every write reaches a subscriber as
// { memberId, chain, version, deleted }, a closed subscription hears nothing more, no change carries
// a token, and (across processes) a write in another process reaches a subscriber here.

import type { StoreChange } from '../../store/token-store.js';
import { MEMBER, record, userKey, type SuiteContext } from './context.js';
import { chainRecord, sampleRecord } from './records.js';

const CHANGE_KEYS = ['chain', 'deleted', 'memberId', 'version'];

/** A matcher for one expected change; a feed may leave `version` out (`undefined`) when it does not know it. */
function change(memberId: string, chain: string | undefined, version: number | undefined, deleted: boolean) {
  return (seen: StoreChange): boolean =>
    seen.memberId === memberId &&
    seen.chain === chain &&
    seen.deleted === deleted &&
    (seen.version === undefined || version === undefined || seen.version === version);
}

/** Registers the change-feed cases; only for stores that declare `capabilities.changes`. */
export function registerChangeCases({ test, expect, store }: SuiteContext): void {
  test('upsert, update and delete each reach a subscriber as { memberId, chain, version, deleted }', async () => {
    const feed = await record(store());
    try {
      await store().upsert(sampleRecord(MEMBER));
      await feed.waitFor(change(MEMBER, 'portal', 1, false), 'an upsert reaches a subscriber');
      await store().update(MEMBER, 1, { accessToken: 'next' });
      await feed.waitFor(change(MEMBER, 'portal', 2, false), 'an update reaches a subscriber');
      await store().upsert(chainRecord(MEMBER, 7));
      await feed.waitFor(change(MEMBER, 'user:7', 1, false), 'an upsert of a user chain reaches a subscriber');
      await store().delete(userKey(MEMBER, 7));
      await feed.waitFor(change(MEMBER, 'user:7', 1, true), 'a delete of a user chain reaches a subscriber');
      await store().delete(MEMBER);
      await feed.waitFor(change(MEMBER, 'portal', 2, true), 'a delete reaches a subscriber with the tombstone version');
      for (const seen of feed.changes) {
        expect(Object.keys(seen).filter((key) => !CHANGE_KEYS.includes(key)), 'a change carries only its four fields').toStrictEqual(
          [],
        );
        if (seen.version !== undefined) {
          expect(Number.isSafeInteger(seen.version), 'a change version is an integer when given').toBe(true);
        }
      }
      const updated = feed.changes.find(change(MEMBER, 'portal', 2, false));
      expect(updated?.deleted, 'a write that is not a delete says deleted: false').toBe(false);
    } finally {
      await feed.close();
    }
  });

  test('a conflicting update delivers no change', async () => {
    await store().upsert(sampleRecord(MEMBER));
    const feed = await record(store());
    try {
      expect((await store().update(MEMBER, 5, { accessToken: 'stale' })).ok, 'the stale update conflicts').toBe(false);
      await store().update(MEMBER, 1, { accessToken: 'next' });
      await feed.waitFor(change(MEMBER, 'portal', 2, false), 'an update reaches a subscriber');
      // Changes arrive in write order: by the time the update's has come, the conflict's would have.
      expect(
        feed.changes.filter((seen) => seen.memberId === MEMBER),
        'a conflict is not a write and reaches no subscriber',
      ).toHaveLength(1);
    } finally {
      await feed.close();
    }
  });

  test('deletePortal reaches a subscriber as the deletion of every chain of the portal', async () => {
    await store().upsert(sampleRecord(MEMBER));
    await store().upsert(chainRecord(MEMBER, 3));
    const feed = await record(store());
    try {
      expect(await store().deletePortal(MEMBER), 'deletePortal deleted both chains').toBe(2);
      // One change for the whole portal (chain undefined), or one per chain: either tells a cache to drop them all.
      const covered = (chain: string): boolean =>
        feed.changes.some((seen) => seen.memberId === MEMBER && seen.deleted && (seen.chain === undefined || seen.chain === chain));
      await feed.waitFor(() => covered('portal') && covered('user:3'), 'deletePortal reaches a subscriber');
      expect(covered('portal'), "deletePortal's change covers the portal chain").toBe(true);
      expect(covered('user:3'), "deletePortal's change covers every user chain").toBe(true);
    } finally {
      await feed.close();
    }
  });

  test('no change carries a token, and a closed subscription hears nothing more', async () => {
    const secret = 'SECRET-TOKEN-MUST-NOT-TRAVEL-0a9b8c';
    const closed = await record(store());
    const open = await record(store());
    try {
      await store().upsert(sampleRecord(MEMBER, { accessToken: secret, refreshToken: `${secret}-r`, applicationToken: `${secret}-a` }));
      await closed.waitFor(change(MEMBER, 'portal', 1, false), 'an upsert reaches every subscriber');
      await open.waitFor(change(MEMBER, 'portal', 1, false), 'an upsert reaches every subscriber');
      expect(JSON.stringify(open.changes), 'no token appears in any change').not.toContain(secret);
      await closed.close();
      const heard = closed.changes.length;
      await store().update(MEMBER, 1, { refreshToken: `${secret}-2` });
      await open.waitFor(change(MEMBER, 'portal', 2, false), 'an update reaches an open subscriber');
      expect(closed.changes.length, 'a closed subscription receives no later change').toBe(heard);
      expect(JSON.stringify(open.changes), 'no token appears in any change').not.toContain(secret);
    } finally {
      await open.close();
      await closed.close();
    }
  });
}

/** Registers the cross-process change-feed case; only with `changes` and the cross-process option. */
export function registerCrossProcessChangeCases({ test, store, spawnChild }: SuiteContext): void {
  test(
    'a write in another process reaches a subscriber in this one',
    async () => {
      const feed = await record(store());
      try {
        const child = await spawnChild();
        await child.call('upsert', { record: chainRecord(MEMBER, 2) });
        await feed.waitFor(change(MEMBER, 'user:2', 1, false), "another process's upsert reaches a subscriber here", 20_000);
        await child.call('delete', { key: userKey(MEMBER, 2) });
        await feed.waitFor(change(MEMBER, 'user:2', 1, true), "another process's delete reaches a subscriber here", 20_000);
      } finally {
        await feed.close();
      }
    },
    60_000,
  );
}
