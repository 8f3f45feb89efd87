// Conformance cases across real child processes (capability `crossProcess`, with the suite's
// `crossProcess` option): shared records and chains, lock exclusion, crashed holders, racing writers.

import type { PortalRecord, StoreLease } from '../../store/token-store.js';
import { lockOf, MEMBER, userKey, waitPast, type SuiteContext } from './context.js';
import { chainRecord, sampleRecord, withVersion } from './records.js';

const CHILD_PROCESSES = 4;
const ATTEMPTS_PER_CHILD = 10;

/** Registers the cross-process cases. */
export function registerCrossProcessCases({ test, expect, store, capabilities, spawnChild, ttl }: SuiteContext): void {
  test(
    'a record written in one process is read in another',
    async () => {
      const child = await spawnChild();
      const input = sampleRecord(MEMBER, { domain: 'пример.рф' });
      await store().upsert(input);
      expect(await child.call('get', { memberId: MEMBER }), 'another process reads the record exactly').toStrictEqual(
        withVersion(input, 1),
      );
    },
    30_000,
  );

  test(
    "chains written in another process are read here, and another process's deletePortal removes them",
    async () => {
      const child = await spawnChild();
      const portal = sampleRecord(MEMBER);
      const user = chainRecord(MEMBER, 7);
      await child.call('upsert', { record: portal });
      await child.call('upsert', { record: user });
      expect(await store().get(MEMBER), "another process's portal chain is read here").toStrictEqual(withVersion(portal, 1));
      expect(await store().get(userKey(MEMBER, 7)), "another process's user chain is read here").toStrictEqual(
        withVersion(user, 1),
      );
      await store().update(userKey(MEMBER, 7), 1, { accessToken: 'moved-here' });
      const conflict = await child.call<{ ok: boolean }>('update', {
        key: userKey(MEMBER, 7),
        expectedVersion: 1,
        patch: { accessToken: 'stale-there' },
      });
      expect(conflict.ok, "another process's stale write to a chain conflicts").toBe(false);
      expect(await child.call('deletePortal', { memberId: MEMBER }), 'deletePortal there counts both chains').toBe(2);
      expect(await store().get(MEMBER), "another process's deletePortal removes the portal chain here").toBeUndefined();
      expect(await store().get(userKey(MEMBER, 7)), 'and the user chain').toBeUndefined();
      expect((await store().upsert(user)).version, 'the version continues across processes').toBe(3);
    },
    30_000,
  );

  test(
    `of ${CHILD_PROCESSES} processes x ${ATTEMPTS_PER_CHILD} conditional writes from one version exactly one wins`,
    async () => {
      await store().upsert(sampleRecord(MEMBER));
      const racers = await Promise.all(Array.from({ length: CHILD_PROCESSES }, () => spawnChild()));
      // A shared start time makes the attempts really overlap instead of trailing the spawn order.
      const startAt = Date.now() + 300;
      type Attempt = { ok: true; record: PortalRecord } | { ok: false; current: PortalRecord | null };
      const outcomes = await Promise.all(
        racers.map((child, i) =>
          child.call<Attempt[]>('race', {
            memberId: MEMBER,
            expectedVersion: 1,
            attempts: ATTEMPTS_PER_CHILD,
            startAt,
            tag: `process-${i}`,
          }),
        ),
      );
      const attempts = outcomes.flat();
      expect(attempts, 'every attempt reported back').toHaveLength(CHILD_PROCESSES * ATTEMPTS_PER_CHILD);
      const winners = attempts.flatMap((attempt) => (attempt.ok ? [attempt.record] : []));
      expect(winners, 'exactly one conditional write wins across processes').toHaveLength(1);
      const winner = winners[0];
      expect(winner?.version, 'the winner wrote version 2').toBe(2);
      for (const attempt of attempts) {
        if (!attempt.ok) expect(attempt.current, "every loser's conflict returns the winner's record").toStrictEqual(winner);
      }
      expect(await store().get(MEMBER), "the stored record is the winner's").toStrictEqual(winner);
    },
    60_000,
  );

  if (!capabilities.lock) return;

  test(
    'a lock held in another process excludes this one, and the reverse',
    async () => {
      const tryLock = lockOf(store());
      const child = await spawnChild();
      const theirs = await child.call<{ token: string } | null>('tryLock', { memberId: MEMBER, ttlMs: 10_000 });
      expect(theirs, 'the other process takes the free lock').not.toBeNull();
      expect(await tryLock(MEMBER, 10_000), "another process's lease excludes this one").toBeUndefined();
      await child.call('release', { token: theirs?.token });
      const ours = await tryLock(MEMBER, 10_000);
      expect(ours, "the other process's release frees the lock here").toBeDefined();
      expect(await child.call('tryLock', { memberId: MEMBER, ttlMs: 10_000 }), 'our lease excludes the other process').toBeNull();
      await ours?.release();
      expect(
        await child.call('tryLock', { memberId: MEMBER, ttlMs: 10_000 }),
        "our release frees the lock for the other process",
      ).not.toBeNull();
    },
    30_000,
  );

  test(
    "a user chain's lock held in another process excludes only that chain",
    async () => {
      const tryLock = lockOf(store());
      const child = await spawnChild();
      const theirs = await child.call<{ token: string } | null>('tryLock', { key: userKey(MEMBER, 4), ttlMs: 10_000 });
      expect(theirs, 'the other process takes the user chain lock').not.toBeNull();
      expect(await tryLock(userKey(MEMBER, 4), 10_000), 'the same chain is excluded across processes').toBeUndefined();
      const portal = await tryLock(MEMBER, 10_000);
      expect(portal, "the portal chain's lock stays free").toBeDefined();
      await portal?.release();
    },
    30_000,
  );

  test(
    'the lock of a process killed while holding it lapses and can be taken over',
    async () => {
      const tryLock = lockOf(store());
      const child = await spawnChild();
      // Long enough that killing the child and asking again fit inside it on a busy machine.
      const crashTtl = Math.max(ttl, 2_000);
      const theirs = await child.call<{ expiresAt: number } | null>('tryLock', { memberId: MEMBER, ttlMs: crashTtl });
      if (theirs === null) throw new Error('the child could not take the lock');
      await child.kill();
      const early = await tryLock(MEMBER, 10_000);
      // Asserted for an answer that came back while the lease lived; a slower one took the lapsed lock.
      if (Date.now() < theirs.expiresAt) expect(early, "a killed holder's lease still excludes until it lapses").toBeUndefined();
      if (early === undefined) await waitPast(theirs.expiresAt);
      const ours = early ?? (await tryLock(MEMBER, 10_000));
      expect(ours, "a killed holder's lapsed lease is taken over").toBeDefined();
      await ours?.release();
    },
    30_000,
  );

  test(
    'a lease renewed in another process keeps excluding this one past its first expiry',
    async () => {
      const child = await spawnChild();
      const theirs = await child.call<{ token: string; expiresAt: number } | null>('tryLock', {
        memberId: MEMBER,
        ttlMs: Math.max(ttl * 5, 1_000),
      });
      if (theirs === null) throw new Error('the child could not take the lock');
      const renewed = await child.call<{ renewed: boolean } | null>('renew', { token: theirs.token, ttlMs: 20_000 });
      if (renewed === null) return; // the store's leases have no renew
      expect(renewed.renewed, 'renew of a held lease returns true').toBe(true);
      await waitPast(theirs.expiresAt);
      const ours: StoreLease | undefined = await lockOf(store())(MEMBER, 10_000);
      expect(ours, 'a renewed lease is not taken over at its first expiry').toBeUndefined();
    },
    30_000,
  );
}
