// Conformance cases for conditional writes: update applies only on the expected version, a conflict
// never overwrites and returns what is stored, versions count every write, one racer wins.

import type { PortalRecordPatch } from '../../store/token-store.js';
import { MEMBER, type SuiteContext } from './context.js';
import { sampleRecord, withVersion } from './records.js';

const RACERS = 20;

/** Registers the conditional-write cases. */
export function registerConditionalCases({ test, expect, store }: SuiteContext): void {
  test('update with the current version applies the patch, keeps other fields and increments the version', async () => {
    const input = sampleRecord(MEMBER);
    await store().upsert(input);
    const patch: PortalRecordPatch = { accessToken: 'next-access', refreshToken: 'next-refresh', expires: 1_767_232_800 };
    const result = await store().update(MEMBER, 1, patch);
    const expected = { ...withVersion(input, 2), ...patch };
    expect(result, 'update on the current version applies the patch and increments the version').toStrictEqual({
      ok: true,
      record: expected,
    });
    expect(await store().get(MEMBER), 'the applied patch is what get returns').toStrictEqual(expected);
  });

  test('update can set nullable fields to null and back', async () => {
    const input = sampleRecord(MEMBER);
    await store().upsert(input);
    const revoked = await store().update(MEMBER, 1, {
      state: 'revoked',
      revokedReason: 'invalid_grant',
      revokedAt: 1_767_300_000_000,
      applicationToken: null,
      userId: null,
    });
    expect(revoked.ok, 'update may set nullable fields to null').toBe(true);
    const active = await store().update(MEMBER, 2, { state: 'active', revokedReason: null, revokedAt: null });
    expect(active, 'update may set nullable fields back, other fields unchanged').toStrictEqual({
      ok: true,
      record: { ...withVersion(input, 3), applicationToken: null, userId: null },
    });
  });

  test('update with a stale version is a conflict that returns the current record and changes nothing', async () => {
    const input = sampleRecord(MEMBER);
    await store().upsert(input);
    await store().update(MEMBER, 1, { accessToken: 'moved-on' });
    const stale = await store().update(MEMBER, 1, { accessToken: 'stale-write' });
    const expected = { ...withVersion(input, 2), accessToken: 'moved-on' };
    expect(stale, 'a stale update is a conflict returning the current record').toStrictEqual({
      ok: false,
      current: expected,
    });
    expect(await store().get(MEMBER), 'a conflict never overwrites').toStrictEqual(expected);
  });

  test('update with a version ahead of the stored one is a conflict too', async () => {
    await store().upsert(sampleRecord(MEMBER));
    const ahead = await store().update(MEMBER, 2, { accessToken: 'from-the-future' });
    expect(ahead.ok, 'an update from a version ahead of the stored one conflicts').toBe(false);
    expect((await store().get(MEMBER))?.version, 'a conflict never changes the version').toBe(1);
  });

  test('update of a portal that was never stored is a conflict with current undefined and creates nothing', async () => {
    expect(await store().update(MEMBER, 1, { accessToken: 'x' }), 'update of a missing record conflicts').toStrictEqual({
      ok: false,
      current: undefined,
    });
    expect(await store().update(MEMBER, 0, { accessToken: 'x' }), 'version 0 never matches a record').toStrictEqual({
      ok: false,
      current: undefined,
    });
    expect(await store().get(MEMBER), 'a conflicting update creates nothing').toBeUndefined();
  });

  test('versions count every write: 50 updates, then upserts, with stale writes refused', async () => {
    await store().upsert(sampleRecord(MEMBER));
    for (let version = 1; version <= 50; version++) {
      const result = await store().update(MEMBER, version, { expires: version });
      expect(result.ok && result.record.version, 'every update increments the version by one').toBe(version + 1);
    }
    expect((await store().upsert(sampleRecord(MEMBER))).version, 'an upsert continues the version').toBe(52);
    expect((await store().update(MEMBER, 51, { expires: 1 })).ok, 'an upsert makes older versions stale').toBe(false);
    expect((await store().upsert(sampleRecord(MEMBER))).version, 'a refused update does not count').toBe(53);
    expect((await store().get(MEMBER))?.version, 'get sees the last version').toBe(53);
  });

  test(`of ${RACERS} parallel conditional writes from one version exactly one wins`, async () => {
    await store().upsert(sampleRecord(MEMBER));
    const results = await Promise.all(
      Array.from({ length: RACERS }, (_, i) => store().update(MEMBER, 1, { accessToken: `racer-${i}` })),
    );
    const winners = results.filter((result) => result.ok);
    expect(winners, 'exactly one of racing conditional writes wins').toHaveLength(1);
    const winner = winners[0]?.ok === true ? winners[0].record : undefined;
    expect(winner?.version, 'the winner wrote version 2').toBe(2);
    for (const result of results) {
      if (!result.ok) expect(result.current, "every loser's conflict returns the winner's record").toStrictEqual(winner);
    }
    expect(await store().get(MEMBER), "the stored record is the winner's").toStrictEqual(winner);
  });
}
