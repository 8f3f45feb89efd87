// Conformance cases every store runs: declared capabilities, startup, reads, upserts and round trips,
// copies, and the refusal of a malformed memberId by every method.

import type { PortalRecord } from '../../store/token-store.js';
import { LONE_SURROGATE_MEMBER, MEMBER, type SuiteContext } from './context.js';
import { randomRecord, sampleRecord, seededRandom, withVersion } from './records.js';

/** Registers the basic-record cases. */
export function registerBasicCases({ test, expect, store }: SuiteContext): void {
  test('declares capabilities that match the methods it has', () => {
    const target = store();
    const { lock, list, crossProcess, changes } = target.capabilities;
    expect(typeof lock, 'capabilities.lock is a boolean').toBe('boolean');
    expect(typeof list, 'capabilities.list is a boolean').toBe('boolean');
    expect(typeof crossProcess, 'capabilities.crossProcess is a boolean').toBe('boolean');
    expect(changes === undefined || typeof changes === 'boolean', 'capabilities.changes is a boolean or absent').toBe(true);
    expect(typeof target.tryLock === 'function', 'tryLock exists exactly when capabilities.lock').toBe(lock);
    expect(typeof target.list === 'function', 'list exists exactly when capabilities.list').toBe(list);
    expect(typeof target.listChains === 'function', 'listChains exists exactly when capabilities.list').toBe(list);
    expect(typeof target.subscribe === 'function', 'subscribe exists exactly when capabilities.changes').toBe(
      changes === true,
    );
    expect(typeof target.deletePortal, 'deletePortal is required').toBe('function');
  });

  test('ready() resolves when the store has it, and again when called twice', async () => {
    const target = store();
    if (target.ready === undefined) return;
    await expect(target.ready(), 'ready() resolves on a usable store').resolves.toBeUndefined();
    await expect(target.ready(), 'ready() is idempotent').resolves.toBeUndefined();
    expect(await target.get(MEMBER), 'ready() creates no record').toBeUndefined();
  });

  test('get of a portal that was never stored returns undefined', async () => {
    expect(await store().get(MEMBER), 'get of a missing record returns undefined').toBeUndefined();
    expect(
      await store().get({ memberId: MEMBER, chain: 'user:1' }),
      'get of a missing user chain returns undefined',
    ).toBeUndefined();
  });

  test('upsert of a new portal stores version 1 and get returns every field unchanged', async () => {
    const input = sampleRecord(MEMBER);
    const stored = await store().upsert(input);
    expect(stored, 'upsert returns the record with version 1 and chain portal').toStrictEqual(withVersion(input, 1));
    expect(await store().get(MEMBER), 'get returns what upsert stored').toStrictEqual(withVersion(input, 1));
    expect(
      await store().get({ memberId: MEMBER, chain: 'portal' }),
      'a memberId string and { memberId, chain: "portal" } name the same record',
    ).toStrictEqual(withVersion(input, 1));
  });

  test('round-trips non-ASCII domains, an 8 KB scope, and null versus set optional fields', async () => {
    const scope = Array.from({ length: 800 }, (_, i) => `scope_${i}`).join(',').slice(0, 8192);
    const nulls = sampleRecord('member-nulls', {
      domain: 'пример.рф',
      clientEndpoint: 'https://пример.рф/rest/',
      scope,
      userId: null,
      applicationToken: null,
      revokedReason: null,
      revokedAt: null,
    });
    const values = sampleRecord('member-values', {
      domain: 'xn--e1afmkfd.xn--p1ai:8443',
      clientEndpoint: 'https://xn--e1afmkfd.xn--p1ai:8443/rest/',
      userId: 0,
      applicationToken: '',
      state: 'revoked',
      revokedReason: 'invalid_grant',
      revokedAt: 1_767_312_000_123,
      status: 'X',
      expires: 0,
    });
    for (const input of [nulls, values]) {
      await store().upsert(input);
      expect(await store().get(input.memberId), 'every field round-trips exactly, null stays null').toStrictEqual(
        withVersion(input, 1),
      );
    }
  });

  test('round-trips 25 random records (seeded, reproducible)', async () => {
    const random = seededRandom(0x5eed);
    for (let i = 0; i < 25; i++) {
      const input = randomRecord(random, `random-${String(i).padStart(2, '0')}`);
      const stored = await store().upsert(input);
      expect(stored, `upsert returns random record ${i} unchanged`).toStrictEqual(withVersion(input, 1));
      expect(await store().get(input.memberId), `random record ${i} round-trips unchanged`).toStrictEqual(
        withVersion(input, 1),
      );
    }
  });

  test('returns copies: mutating a returned or passed record does not change the store', async () => {
    const input = { ...sampleRecord(MEMBER) };
    const stored = (await store().upsert(input)) as { -readonly [K in keyof PortalRecord]: PortalRecord[K] };
    (input as { accessToken: string }).accessToken = 'mutated-input';
    stored.accessToken = 'mutated-result';
    const read = (await store().get(MEMBER)) as { accessToken: string } | undefined;
    expect(read?.accessToken, 'mutating the passed or returned record does not reach the store').toBe(
      sampleRecord(MEMBER).accessToken,
    );
    if (read !== undefined) read.accessToken = 'mutated-read';
    expect((await store().get(MEMBER))?.accessToken, 'mutating a read record does not reach the store').toBe(
      sampleRecord(MEMBER).accessToken,
    );
  });

  test('upsert of an existing portal replaces the whole record and increments the version', async () => {
    await store().upsert(sampleRecord(MEMBER));
    const second = sampleRecord(MEMBER, {
      domain: 'renamed.bitrix24.com',
      accessToken: 'second-access',
      refreshToken: 'second-refresh',
      applicationToken: null,
      userId: null,
    });
    expect(await store().upsert(second), 'upsert replaces every field and gives version 2').toStrictEqual(
      withVersion(second, 2),
    );
    expect(await store().get(MEMBER), 'get returns the replacing record').toStrictEqual(withVersion(second, 2));
  });

  test('a memberId with a lone surrogate is rejected with a TypeError by every method, changing nothing', async () => {
    const target = store();
    const bad = LONE_SURROGATE_MEMBER;
    const key = { memberId: bad, chain: 'user:1' } as const;
    const attempts: [string, () => Promise<unknown> | undefined][] = [
      ['get', () => target.get(bad)],
      ['get (chain key)', () => target.get(key)],
      ['upsert', () => target.upsert(sampleRecord(bad))],
      ['update', () => target.update(bad, 1, { accessToken: 'x' })],
      ['update (chain key)', () => target.update(key, 1, { accessToken: 'x' })],
      ['delete', () => target.delete(bad)],
      ['deletePortal', () => target.deletePortal(bad)],
      ['tryLock', () => target.tryLock?.(bad, 10_000)],
      ['listChains', () => target.listChains?.(bad)],
    ];
    for (const [method, attempt] of attempts) {
      const outcome = attempt();
      if (outcome === undefined) continue; // an optional method the store does not have
      const error: unknown = await outcome.then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error, `${method} rejects a lone-surrogate memberId with a TypeError`).toBeInstanceOf(TypeError);
    }
    const wellFormed = 'portal-\uD83D\uDE00-x';
    expect(await target.get(wellFormed), 'a surrogate pair is well-formed and accepted').toBeUndefined();
    if (target.list !== undefined) {
      expect((await target.list()).records, 'a refused upsert stored nothing').toStrictEqual([]);
    }
  });

  test('a bad key or record is a TypeError and changes nothing', async () => {
    const target = store();
    const stored = await target.upsert(sampleRecord(MEMBER));
    const attempts: [string, () => Promise<unknown>][] = [
      ['get with an empty memberId', () => target.get('')],
      ['get with an unknown chain', () => target.get({ memberId: MEMBER, chain: 'admin' as never })],
      ['get with user:0', () => target.get({ memberId: MEMBER, chain: 'user:0' })],
      ['upsert with a bad chain', () => target.upsert({ ...sampleRecord(MEMBER), chain: 'user:x' as never })],
      ['update of the chain field', () => target.update(MEMBER, 1, { chain: 'user:1' } as never)],
    ];
    for (const [what, attempt] of attempts) {
      const error: unknown = await attempt().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error, `${what} is a TypeError`).toBeInstanceOf(TypeError);
    }
    expect(await target.get(MEMBER), 'refused calls changed nothing').toStrictEqual(stored);
  });
}
