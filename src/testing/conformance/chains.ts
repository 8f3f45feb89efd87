// Conformance cases for chains: the portal's own chain and its users' chains are independent records
// (own versions, own conflicts, own deletes, own locks) under one memberId.

import { lockOf, MEMBER, userKey, type SuiteContext } from './context.js';
import { chainRecord, sampleRecord, withVersion } from './records.js';

/** Registers the chain-independence cases. */
export function registerChainCases({ test, expect, store, capabilities }: SuiteContext): void {
  test('a user chain is its own record: upsert and get per chain, versions counted per chain', async () => {
    const portalInput = sampleRecord(MEMBER);
    await store().upsert(portalInput);
    await store().update(MEMBER, 1, { scope: 'crm' });
    const userInput = chainRecord(MEMBER, 7);
    const user = await store().upsert(userInput);
    expect(user, 'the first write of a user chain gives version 1, whatever the portal chain is at').toStrictEqual(
      withVersion(userInput, 1),
    );
    expect(await store().get(userKey(MEMBER, 7)), 'get of the user chain returns its record').toStrictEqual(user);
    expect(await store().get(userKey(MEMBER, 8)), 'another user of the same portal has no record').toBeUndefined();
    expect((await store().get(MEMBER))?.chain, "a memberId key still reads the portal's chain").toBe('portal');
  });

  test("writes to a user chain never change the portal chain's record or version", async () => {
    const portal = await store().upsert(sampleRecord(MEMBER));
    const key = userKey(MEMBER, 7);
    await store().upsert(chainRecord(MEMBER, 7));
    await store().update(key, 1, { accessToken: 'user-next' });
    await store().upsert(chainRecord(MEMBER, 7, { domain: 'other.bitrix24.com' }));
    await store().delete(key);
    expect(await store().get(MEMBER), "the portal's chain is byte for byte what it was").toStrictEqual(portal);
  });

  test("writes to the portal chain never change a user chain's record or version", async () => {
    const user = await store().upsert(chainRecord(MEMBER, 3));
    await store().upsert(sampleRecord(MEMBER));
    await store().update(MEMBER, 1, { accessToken: 'portal-next' });
    await store().delete(MEMBER);
    expect(await store().get(userKey(MEMBER, 3)), "a user's chain is untouched by the portal chain's writes").toStrictEqual(
      user,
    );
  });

  test('conditional writes compare the version of their own chain only', async () => {
    await store().upsert(sampleRecord(MEMBER));
    await store().update(MEMBER, 1, { scope: 'a' });
    await store().update(MEMBER, 2, { scope: 'b' });
    const key = userKey(MEMBER, 9);
    const userInput = chainRecord(MEMBER, 9);
    await store().upsert(userInput);
    const wrongChain = await store().update(key, 3, { accessToken: 'portal-version' });
    expect(wrongChain, "the portal chain's version is stale on a user chain").toStrictEqual({
      ok: false,
      current: withVersion(userInput, 1),
    });
    const applied = await store().update(key, 1, { accessToken: 'user-next' });
    expect(applied, "the user chain's own version applies").toStrictEqual({
      ok: true,
      record: { ...withVersion(userInput, 2), accessToken: 'user-next' },
    });
    expect((await store().get(MEMBER))?.version, 'the portal chain stays at its own version').toBe(3);
    expect(
      (await store().update(MEMBER, 2, { accessToken: 'user-version' })).ok,
      "a user chain's version is stale on the portal chain",
    ).toBe(false);
  });

  test('an update of a user chain that was never stored conflicts and creates nothing', async () => {
    await store().upsert(sampleRecord(MEMBER));
    expect(
      await store().update(userKey(MEMBER, 4), 1, { accessToken: 'x' }),
      'update of a missing user chain conflicts with current undefined',
    ).toStrictEqual({ ok: false, current: undefined });
    expect(await store().get(userKey(MEMBER, 4)), 'a conflicting update creates no user chain').toBeUndefined();
  });

  test('a user chain is deleted alone, and its version continues when it is re-created', async () => {
    const portal = await store().upsert(sampleRecord(MEMBER));
    const key = userKey(MEMBER, 2);
    await store().upsert(chainRecord(MEMBER, 2));
    await store().update(key, 1, { accessToken: 'user-next' });
    expect(await store().delete(key), 'delete of a stored user chain returns true').toBe(true);
    expect(await store().delete(key), 'and is idempotent').toBe(false);
    expect(await store().get(key), 'the deleted user chain reads as undefined').toBeUndefined();
    expect(await store().get(MEMBER), "deleting a user chain leaves the portal's chain").toStrictEqual(portal);
    const recreated = await store().upsert(chainRecord(MEMBER, 2));
    expect(recreated.version, "a re-created user chain continues its own deleted version").toBe(3);
    expect((await store().update(key, 2, { accessToken: 'late' })).ok, 'a write based on the old chain conflicts').toBe(false);
  });

  test('two portals with the same user id have separate user chains', async () => {
    const other = 'b334d7c4821f96ef33f0488e7f418664';
    const mine = await store().upsert(chainRecord(MEMBER, 1));
    const theirs = await store().upsert(chainRecord(other, 1, { domain: 'other.bitrix24.com' }));
    expect(await store().get(userKey(MEMBER, 1)), "a user chain is keyed by its portal too").toStrictEqual(mine);
    expect(await store().get(userKey(other, 1)), "the other portal's user 1 is its own record").toStrictEqual(theirs);
    await store().delete(userKey(other, 1));
    expect(await store().get(userKey(MEMBER, 1)), "deleting one portal's user chain leaves another's").toStrictEqual(mine);
  });

  if (capabilities.lock) {
    test('chains of one portal lock independently', async () => {
      const tryLock = lockOf(store());
      const portal = await tryLock(MEMBER, 10_000);
      const user = await tryLock(userKey(MEMBER, 7), 10_000);
      expect(portal, "the portal chain's lock is free").toBeDefined();
      expect(user, "a user chain's lock is free while the portal chain's is held").toBeDefined();
      expect(await tryLock(userKey(MEMBER, 8), 10_000), "another user's chain locks on its own").toBeDefined();
      expect(await tryLock(userKey(MEMBER, 7), 10_000), 'a held user-chain lock excludes a second holder').toBeUndefined();
      expect(
        await tryLock({ memberId: MEMBER, chain: 'portal' }, 10_000),
        'a memberId and { chain: "portal" } name the same lock',
      ).toBeUndefined();
      await user?.release();
      expect(await tryLock(MEMBER, 10_000), "releasing a user chain's lock does not free the portal's").toBeUndefined();
      const again = await tryLock(userKey(MEMBER, 7), 10_000);
      expect(again, 'a released user-chain lock can be taken again').toBeDefined();
      await again?.release();
      await portal?.release();
    });
  }
}
