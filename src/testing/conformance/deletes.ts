// Conformance cases for deletes and version continuity: delete is idempotent, a deleted record is
// never resurrected, versions continue across a re-create; deletePortal removes every chain.

import { setTimeout as sleep } from 'node:timers/promises';
import { MEMBER, OTHER_MEMBER, userKey, type SuiteContext } from './context.js';
import { chainRecord, sampleRecord } from './records.js';

/** Registers the delete and version-continuity cases. */
export function registerDeleteCases({ test, expect, store }: SuiteContext): void {
  test('delete is idempotent: true when a record was deleted, then false', async () => {
    await store().upsert(sampleRecord(MEMBER));
    expect(await store().delete(MEMBER), 'delete of a stored record returns true').toBe(true);
    expect(await store().get(MEMBER), 'a deleted record reads as undefined').toBeUndefined();
    expect(await store().delete(MEMBER), 'a second delete returns false').toBe(false);
    expect(await store().delete('never-stored'), 'delete of a never-stored record returns false').toBe(false);
  });

  test('delete leaves other portals alone', async () => {
    await store().upsert(sampleRecord(MEMBER));
    await store().upsert(sampleRecord(OTHER_MEMBER));
    await store().delete(MEMBER);
    expect((await store().get(OTHER_MEMBER))?.version, "a delete never touches another portal's record").toBe(1);
  });

  test('a conditional write after delete is a conflict with current undefined and does not resurrect', async () => {
    await store().upsert(sampleRecord(MEMBER));
    await store().delete(MEMBER);
    expect(
      await store().update(MEMBER, 1, { accessToken: 'late-refresh' }),
      'an update after a delete conflicts with current undefined',
    ).toStrictEqual({ ok: false, current: undefined });
    expect(await store().get(MEMBER), 'an update never resurrects a deleted record').toBeUndefined();
  });

  test('a record re-created after a delete continues the version, so a write based on the old read conflicts', async () => {
    // Without this, a refresh that read v1 before an uninstall and a reinstall would land on the new chain.
    const { version } = await store().upsert(sampleRecord(MEMBER));
    await store().delete(MEMBER);
    const recreated = await store().upsert(sampleRecord(MEMBER, { accessToken: 'new-chain' }));
    expect(recreated.version, 'a re-created record continues from the deleted version').toBeGreaterThan(version);
    expect(
      await store().update(MEMBER, version, { accessToken: 'late-refresh' }),
      'a write based on a read from before the delete conflicts with the re-created record',
    ).toStrictEqual({ ok: false, current: recreated });
    expect(await store().delete(MEMBER), 'the re-created record can be deleted').toBe(true);
    expect(await store().delete(MEMBER), 'and the delete stays idempotent').toBe(false);
  });

  test('a delete racing conditional writes never leaves the record resurrected', async () => {
    // The delete lands at a different point of the writes' read-compare-write each round.
    for (let round = 0; round < 12; round++) {
      const { version } = await store().upsert(sampleRecord(MEMBER));
      const writes = Array.from({ length: 5 }, (_, i) => store().update(MEMBER, version, { accessToken: `w${i}` }));
      const late = sleep(round / 2).then(() => store().delete(MEMBER));
      const [deleted] = await Promise.all([late, ...writes]);
      expect(deleted, `round ${round}: the delete found a record`).toBe(true);
      expect(await store().get(MEMBER), `round ${round}: no racing write resurrects a deleted record`).toBeUndefined();
    }
  });

  test('deletePortal removes every chain of the portal, returns the count and is idempotent', async () => {
    await store().upsert(sampleRecord(MEMBER));
    await store().upsert(chainRecord(MEMBER, 7));
    await store().upsert(chainRecord(MEMBER, 12));
    await store().upsert(sampleRecord(OTHER_MEMBER));
    await store().upsert(chainRecord(OTHER_MEMBER, 7));
    expect(await store().deletePortal(MEMBER), 'deletePortal returns how many chains it deleted').toBe(3);
    expect(await store().get(MEMBER), "deletePortal removes the portal's own chain").toBeUndefined();
    expect(await store().get(userKey(MEMBER, 7)), 'deletePortal removes every user chain').toBeUndefined();
    expect(await store().get(userKey(MEMBER, 12)), 'deletePortal removes every user chain').toBeUndefined();
    expect((await store().get(OTHER_MEMBER))?.version, 'deletePortal leaves other portals alone').toBe(1);
    expect((await store().get(userKey(OTHER_MEMBER, 7)))?.version, "and other portals' user chains").toBe(1);
    expect(await store().deletePortal(MEMBER), 'a second deletePortal deletes nothing').toBe(0);
    expect(await store().deletePortal('never-stored'), 'deletePortal of an unknown portal returns 0').toBe(0);
  });

  test('deletePortal of a portal with only user chains removes them', async () => {
    await store().upsert(chainRecord(MEMBER, 3));
    expect(await store().deletePortal(MEMBER), 'a portal without its own chain still has its user chains deleted').toBe(1);
    expect(await store().get(userKey(MEMBER, 3)), 'the user chain is gone').toBeUndefined();
  });

  test('versions continue on every chain re-created after deletePortal', async () => {
    await store().upsert(sampleRecord(MEMBER));
    await store().update(MEMBER, 1, { scope: 'crm' });
    await store().upsert(chainRecord(MEMBER, 5));
    await store().deletePortal(MEMBER);
    const portal = await store().upsert(sampleRecord(MEMBER, { accessToken: 'reinstalled' }));
    const user = await store().upsert(chainRecord(MEMBER, 5, { accessToken: 'reopened' }));
    expect(portal.version, "the portal chain's version continues after deletePortal").toBe(3);
    expect(user.version, "a user chain's version continues after deletePortal").toBe(2);
    expect(
      await store().update(MEMBER, 2, { accessToken: 'late-refresh' }),
      'a write based on a read from before deletePortal conflicts',
    ).toStrictEqual({ ok: false, current: portal });
    expect(
      await store().update(userKey(MEMBER, 5), 1, { accessToken: 'late-refresh' }),
      'on user chains too',
    ).toStrictEqual({ ok: false, current: user });
  });

  test('a conditional write after deletePortal is a conflict and resurrects no chain', async () => {
    await store().upsert(sampleRecord(MEMBER));
    await store().upsert(chainRecord(MEMBER, 2));
    await store().deletePortal(MEMBER);
    expect((await store().update(MEMBER, 1, { accessToken: 'late' })).ok, 'update of a deleted portal chain conflicts').toBe(
      false,
    );
    expect(
      (await store().update(userKey(MEMBER, 2), 1, { accessToken: 'late' })).ok,
      'update of a deleted user chain conflicts',
    ).toBe(false);
    expect(await store().get(MEMBER), 'no chain is resurrected').toBeUndefined();
    expect(await store().get(userKey(MEMBER, 2)), 'no user chain is resurrected').toBeUndefined();
  });
}
