// The TokenStore conformance suite: registers vitest tests that check every rule of the contract in
// src/store/token-store.ts against any store factory, including the cross-process cases.

import type * as Vitest from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PortalRecord, PortalRecordPatch, StoreCapabilities, TokenStore } from '../store/token-store.js';
import { defaultExecArgv, moduleUrl, StoreChild } from './conformance/child.js';
import { randomRecord, sampleRecord, seededRandom, withVersion } from './conformance/records.js';

/** How the suite runs a store in other processes; see {@link TokenStoreSuiteOptions.crossProcess}. */
export interface CrossProcessOptions<S extends TokenStore = TokenStore> {
  /**
   * The absolute path (or `file:` URL) of a module whose default export, or whose `createStore`
   * export, is a function `(args) => TokenStore | Promise<TokenStore>` that opens a store on the
   * **same backing data** as the store {@link TokenStoreSuiteOptions.create} returned. The suite
   * loads it in real child processes.
   */
  readonly module: string | URL;
  /**
   * Computes the argument passed to the module's function from the test's store (for example its
   * directory, database schema or key prefix). The value crosses a process boundary as JSON.
   * @defaultValue `() => undefined`
   */
  readonly args?: ((store: S) => unknown) | undefined;
  /**
   * Node flags for the child processes. `tsx` must then be resolvable from the current directory.
   * @defaultValue `['--import', 'tsx']` when `module` ends in `.ts`, `.mts` or `.cts`; otherwise `[]`
   */
  readonly execArgv?: readonly string[] | undefined;
}

/** Options of {@link describeTokenStore}. */
export interface TokenStoreSuiteOptions<S extends TokenStore = TokenStore> {
  /**
   * Creates a fresh, empty store for one test (called before every test). It must use the real
   * clock: the lease tests wait real time.
   */
  readonly create: () => S | Promise<S>;
  /**
   * Disposes of a test's store (drop its tables, remove its directory...).
   * @defaultValue calls `store.close()` when the store has one
   */
  readonly destroy?: ((store: S) => void | Promise<void>) | undefined;
  /** Names of tests to skip, exactly as the suite names them; an unknown name is an error. */
  readonly skip?: readonly string[] | undefined;
  /**
   * Registers adapter-specific tests inside the suite's `describe` block; `getStore()` returns the
   * current test's store.
   */
  readonly extraTests?: ((getStore: () => S) => void) | undefined;
  /**
   * Enables the cross-process cases (lock exclusion, crashed holders, racing conditional writes
   * from several processes). They run only when this is given and the store declares
   * `capabilities.crossProcess`.
   */
  readonly crossProcess?: CrossProcessOptions<S> | undefined;
  /**
   * The lease TTL of the real-time lock tests, in milliseconds. Raise it for a store whose lock
   * round trip is slow.
   * @defaultValue 200
   */
  readonly leaseTtlMs?: number | undefined;
}

type Requirement = keyof StoreCapabilities;

const MEMBER = 'a223c6b3710f85df22e9377d6c4f7553';
const RACERS = 20;
const CHILD_PROCESSES = 4;
const ATTEMPTS_PER_CHILD = 10;
// Lets a lapsed lease be judged lapsed even if the store's clock runs a little behind ours.
const CLOCK_MARGIN_MS = 50;

/**
 * Registers the TokenStore conformance suite for one store implementation with vitest.
 *
 * Await it at the top level of a test file (an ES module): it loads vitest, then registers every
 * test in one `describe` block. Each test gets a fresh store from `create` and disposes of it with
 * `destroy`. Tests for a capability the store declares missing are skipped, and so are the
 * cross-process tests unless `crossProcess` is given.
 *
 * @param name - the name of the `describe` block, such as `'RedisTokenStore'`.
 * @param options - how to create, dispose of and share the store.
 * @returns a promise that settles once the tests are registered.
 *
 * @example
 * ```ts
 * import { describeTokenStore } from 'b24-portal-tokens/testing';
 * import { MyStore } from '../src/my-store.js';
 *
 * await describeTokenStore('MyStore', {
 *   create: () => new MyStore({ url: process.env.DB_URL, prefix: crypto.randomUUID() }),
 *   destroy: (store) => store.dropAndClose(),
 *   crossProcess: {
 *     module: new URL('./open-my-store.ts', import.meta.url),
 *     args: (store) => ({ prefix: store.prefix }),
 *   },
 * });
 * ```
 */
export async function describeTokenStore<S extends TokenStore>(
  name: string,
  options: TokenStoreSuiteOptions<S>,
): Promise<void> {
  // vitest refuses to be loaded outside its runner (and through require), so it is loaded only
  // here: importing `b24-portal-tokens/testing` for FakeBitrix24 works anywhere, CJS included.
  const { afterEach, beforeEach, describe, expect, it } = await loadVitest();
  if (typeof options.create !== 'function') throw new TypeError('options.create must be a function');
  const ttl = options.leaseTtlMs ?? 200;
  if (!Number.isFinite(ttl) || ttl <= 0) throw new TypeError('options.leaseTtlMs must be a positive number');
  const cross = options.crossProcess;
  const crossUrl = cross === undefined ? undefined : moduleUrl(cross.module);
  const skip = new Set(options.skip ?? []);

  describe(name, () => {
    let current: S | undefined;
    const children = new Set<StoreChild>();
    const store = (): S => {
      if (current === undefined) throw new Error('the store is only available inside a test');
      return current;
    };

    beforeEach(async () => {
      current = await options.create();
    });

    afterEach(async () => {
      const running = [...children];
      children.clear();
      await Promise.all(running.map((child) => child.stop()));
      const finished = current;
      current = undefined;
      if (finished === undefined) return;
      if (options.destroy !== undefined) await options.destroy(finished);
      else await finished.close?.();
    });

    const spawnChild = async (): Promise<StoreChild> => {
      if (cross === undefined || crossUrl === undefined) throw new Error('crossProcess is not configured');
      const args = cross.args?.(store());
      const child = await StoreChild.start({ module: crossUrl, args }, cross.execArgv ?? defaultExecArgv(crossUrl));
      children.add(child);
      return child;
    };

    const registered = new Set<string>();
    const test = (
      title: string,
      body: () => Promise<void> | void,
      { requires = [], timeout }: { requires?: readonly Requirement[]; timeout?: number } = {},
    ): void => {
      registered.add(title);
      if (skip.has(title)) {
        it.skip(title, body);
        return;
      }
      const crossMissing = requires.includes('crossProcess') && cross === undefined;
      it(
        title,
        async (context) => {
          const capabilities = store().capabilities;
          if (crossMissing || requires.some((requirement) => !capabilities[requirement])) {
            context.skip();
            return;
          }
          await body();
        },
        timeout,
      );
    };

    const lockOf = (target: TokenStore): NonNullable<TokenStore['tryLock']> => {
      if (target.tryLock === undefined) throw new Error('capabilities.lock is true but tryLock is missing');
      return (memberId, ttlMs) => (target.tryLock as NonNullable<TokenStore['tryLock']>).call(target, memberId, ttlMs);
    };
    const listOf = (target: TokenStore): NonNullable<TokenStore['list']> => {
      if (target.list === undefined) throw new Error('capabilities.list is true but list is missing');
      return (listOptions) => (target.list as NonNullable<TokenStore['list']>).call(target, listOptions);
    };
    const waitPast = async (expiresAt: number): Promise<void> => {
      await sleep(Math.max(0, expiresAt - Date.now()) + CLOCK_MARGIN_MS);
    };

    // ---- capabilities and reads -------------------------------------------------------------

    test('declares capabilities that match the methods it has', () => {
      const target = store();
      const { lock, list, crossProcess } = target.capabilities;
      expect(typeof lock).toBe('boolean');
      expect(typeof list).toBe('boolean');
      expect(typeof crossProcess).toBe('boolean');
      expect(typeof target.tryLock === 'function').toBe(lock);
      expect(typeof target.list === 'function').toBe(list);
    });

    test('get of a portal that was never stored returns undefined', async () => {
      expect(await store().get(MEMBER)).toBeUndefined();
    });

    // ---- upsert and round trips -------------------------------------------------------------

    test('upsert of a new portal stores version 1 and get returns every field unchanged', async () => {
      const input = sampleRecord(MEMBER);
      const stored = await store().upsert(input);
      expect(stored).toStrictEqual(withVersion(input, 1));
      expect(await store().get(MEMBER)).toStrictEqual(withVersion(input, 1));
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
        expect(await store().get(input.memberId)).toStrictEqual(withVersion(input, 1));
      }
    });

    test('round-trips 25 random records (seeded, reproducible)', async () => {
      const random = seededRandom(0x5eed);
      for (let i = 0; i < 25; i++) {
        const input = randomRecord(random, `random-${String(i).padStart(2, '0')}`);
        const stored = await store().upsert(input);
        expect(stored).toStrictEqual(withVersion(input, 1));
        expect(await store().get(input.memberId)).toStrictEqual(withVersion(input, 1));
      }
    });

    test('returns copies: mutating a returned or passed record does not change the store', async () => {
      const input = { ...sampleRecord(MEMBER) };
      const stored = (await store().upsert(input)) as { -readonly [K in keyof PortalRecord]: PortalRecord[K] };
      (input as { accessToken: string }).accessToken = 'mutated-input';
      stored.accessToken = 'mutated-result';
      const read = (await store().get(MEMBER)) as { accessToken: string } | undefined;
      expect(read?.accessToken).toBe(sampleRecord(MEMBER).accessToken);
      if (read !== undefined) read.accessToken = 'mutated-read';
      expect((await store().get(MEMBER))?.accessToken).toBe(sampleRecord(MEMBER).accessToken);
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
      expect(await store().upsert(second)).toStrictEqual(withVersion(second, 2));
      expect(await store().get(MEMBER)).toStrictEqual(withVersion(second, 2));
    });

    // ---- conditional writes -----------------------------------------------------------------

    test('update with the current version applies the patch, keeps other fields and increments the version', async () => {
      const input = sampleRecord(MEMBER);
      await store().upsert(input);
      const patch: PortalRecordPatch = { accessToken: 'next-access', refreshToken: 'next-refresh', expires: 1_767_232_800 };
      const result = await store().update(MEMBER, 1, patch);
      const expected = { ...withVersion(input, 2), ...patch };
      expect(result).toStrictEqual({ ok: true, record: expected });
      expect(await store().get(MEMBER)).toStrictEqual(expected);
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
      expect(revoked.ok).toBe(true);
      const active = await store().update(MEMBER, 2, { state: 'active', revokedReason: null, revokedAt: null });
      expect(active).toStrictEqual({
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
      expect(stale).toStrictEqual({ ok: false, current: expected });
      expect(await store().get(MEMBER)).toStrictEqual(expected);
    });

    test('update with a version ahead of the stored one is a conflict too', async () => {
      await store().upsert(sampleRecord(MEMBER));
      const ahead = await store().update(MEMBER, 2, { accessToken: 'from-the-future' });
      expect(ahead.ok).toBe(false);
      expect((await store().get(MEMBER))?.version).toBe(1);
    });

    test('update of a portal that was never stored is a conflict with current undefined and creates nothing', async () => {
      expect(await store().update(MEMBER, 1, { accessToken: 'x' })).toStrictEqual({ ok: false, current: undefined });
      expect(await store().update(MEMBER, 0, { accessToken: 'x' })).toStrictEqual({ ok: false, current: undefined });
      expect(await store().get(MEMBER)).toBeUndefined();
    });

    test('versions count every write: 50 updates, then upserts, with stale writes refused', async () => {
      await store().upsert(sampleRecord(MEMBER));
      for (let version = 1; version <= 50; version++) {
        const result = await store().update(MEMBER, version, { expires: version });
        expect(result.ok && result.record.version).toBe(version + 1);
      }
      expect((await store().upsert(sampleRecord(MEMBER))).version).toBe(52);
      expect((await store().update(MEMBER, 51, { expires: 1 })).ok).toBe(false);
      expect((await store().upsert(sampleRecord(MEMBER))).version).toBe(53);
      expect((await store().get(MEMBER))?.version).toBe(53);
    });

    test(`of ${RACERS} parallel conditional writes from one version exactly one wins`, async () => {
      await store().upsert(sampleRecord(MEMBER));
      const results = await Promise.all(
        Array.from({ length: RACERS }, (_, i) => store().update(MEMBER, 1, { accessToken: `racer-${i}` })),
      );
      const winners = results.filter((result) => result.ok);
      expect(winners).toHaveLength(1);
      const winner = winners[0]?.ok === true ? winners[0].record : undefined;
      expect(winner?.version).toBe(2);
      for (const result of results) {
        if (!result.ok) expect(result.current).toStrictEqual(winner);
      }
      expect(await store().get(MEMBER)).toStrictEqual(winner);
    });

    // ---- delete -----------------------------------------------------------------------------

    test('delete is idempotent: true when a record was deleted, then false', async () => {
      await store().upsert(sampleRecord(MEMBER));
      expect(await store().delete(MEMBER)).toBe(true);
      expect(await store().get(MEMBER)).toBeUndefined();
      expect(await store().delete(MEMBER)).toBe(false);
      expect(await store().delete('never-stored')).toBe(false);
    });

    test('delete leaves other portals alone', async () => {
      await store().upsert(sampleRecord(MEMBER));
      await store().upsert(sampleRecord('other-member'));
      await store().delete(MEMBER);
      expect((await store().get('other-member'))?.version).toBe(1);
    });

    test('a conditional write after delete is a conflict with current undefined and does not resurrect', async () => {
      await store().upsert(sampleRecord(MEMBER));
      await store().delete(MEMBER);
      expect(await store().update(MEMBER, 1, { accessToken: 'late-refresh' })).toStrictEqual({
        ok: false,
        current: undefined,
      });
      expect(await store().get(MEMBER)).toBeUndefined();
    });

    test('a record re-created after a delete continues the version, so a write based on the old read conflicts', async () => {
      // Without this, a refresh that read v1 before an uninstall and a reinstall would land on the new chain.
      const { version } = await store().upsert(sampleRecord(MEMBER));
      await store().delete(MEMBER);
      const recreated = await store().upsert(sampleRecord(MEMBER, { accessToken: 'new-chain' }));
      expect(recreated.version).toBeGreaterThan(version);
      expect(await store().update(MEMBER, version, { accessToken: 'late-refresh' })).toStrictEqual({
        ok: false,
        current: recreated,
      });
      expect(await store().delete(MEMBER)).toBe(true);
      expect(await store().delete(MEMBER)).toBe(false);
    });

    test('a delete racing conditional writes never leaves the record resurrected', async () => {
      // The delete lands at a different point of the writes' read-compare-write each round.
      for (let round = 0; round < 12; round++) {
        const { version } = await store().upsert(sampleRecord(MEMBER));
        const writes = Array.from({ length: 5 }, (_, i) => store().update(MEMBER, version, { accessToken: `w${i}` }));
        const late = sleep(round / 2).then(() => store().delete(MEMBER));
        const [deleted] = await Promise.all([late, ...writes]);
        expect(deleted).toBe(true);
        expect(await store().get(MEMBER)).toBeUndefined();
      }
    });

    // ---- list -------------------------------------------------------------------------------

    test(
      'list returns records in ascending memberId order, a page at a time',
      async () => {
        const ids = ['m-07', 'm-03', 'm-10', 'm-01', 'm-05', 'm-02', 'm-09', 'm-04', 'm-08', 'm-06', 'm-11'];
        for (const id of ids) await store().upsert(sampleRecord(id, { domain: `${id}.bitrix24.com` }));
        const list = listOf(store());
        const sorted = [...ids].sort();
        const seen: string[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await list({ after, limit: 4 });
          expect(page.records.length).toBeLessThanOrEqual(4);
          for (const record of page.records) {
            expect(record).toStrictEqual(withVersion(sampleRecord(record.memberId, { domain: `${record.memberId}.bitrix24.com` }), 1));
          }
          seen.push(...page.records.map((record) => record.memberId));
          after = page.next;
          pages++;
        } while (after !== undefined && pages < 10);
        expect(seen).toStrictEqual(sorted);
        expect(pages).toBe(3);
        const all = await list();
        expect(all.records.map((record) => record.memberId)).toStrictEqual(sorted);
        expect(all.next).toBeUndefined();
      },
      { requires: ['list'] },
    );

    test(
      'list of an empty store, or after the last memberId, is an empty last page',
      async () => {
        const list = listOf(store());
        expect(await list()).toStrictEqual({ records: [], next: undefined });
        await store().upsert(sampleRecord('m-1'));
        expect(await list({ after: 'm-1' })).toStrictEqual({ records: [], next: undefined });
        expect((await list({ after: 'm-0' })).records.map((record) => record.memberId)).toStrictEqual(['m-1']);
      },
      { requires: ['list'] },
    );

    test(
      'list does not return deleted portals',
      async () => {
        await store().upsert(sampleRecord('m-1'));
        await store().upsert(sampleRecord('m-2'));
        await store().delete('m-1');
        expect((await listOf(store())()).records.map((record) => record.memberId)).toStrictEqual(['m-2']);
      },
      { requires: ['list'] },
    );

    // ---- locks ------------------------------------------------------------------------------

    test(
      'a held lock excludes a second holder until it is released',
      async () => {
        const tryLock = lockOf(store());
        const first = await tryLock(MEMBER, 10_000);
        expect(first).toBeDefined();
        expect(typeof first?.token).toBe('string');
        expect(first?.token.length).toBeGreaterThan(0);
        expect(Number.isFinite(first?.expiresAt)).toBe(true);
        expect(await tryLock(MEMBER, 10_000)).toBeUndefined();
        await first?.release();
        const second = await tryLock(MEMBER, 10_000);
        expect(second).toBeDefined();
        expect(second?.token).not.toBe(first?.token);
        await second?.release();
      },
      { requires: ['lock'] },
    );

    test(
      'release is idempotent and locks of different portals are independent',
      async () => {
        const tryLock = lockOf(store());
        const one = await tryLock('portal-one', 10_000);
        const two = await tryLock('portal-two', 10_000);
        expect(one).toBeDefined();
        expect(two).toBeDefined();
        await one?.release();
        await one?.release();
        expect(await tryLock('portal-two', 10_000)).toBeUndefined();
        const again = await tryLock('portal-one', 10_000);
        expect(again).toBeDefined();
        await again?.release();
        await two?.release();
      },
      { requires: ['lock'] },
    );

    test(
      'a lock works for a portal that has no record',
      async () => {
        const lease = await lockOf(store())('no-record-yet', 10_000);
        expect(lease).toBeDefined();
        await lease?.release();
        expect(await store().get('no-record-yet')).toBeUndefined();
      },
      { requires: ['lock'] },
    );

    test(
      'an expired lease can be taken over',
      async () => {
        const tryLock = lockOf(store());
        const lapsed = await tryLock(MEMBER, ttl);
        expect(lapsed).toBeDefined();
        if (lapsed === undefined) return;
        await waitPast(lapsed.expiresAt);
        const taker = await tryLock(MEMBER, 10_000);
        expect(taker).toBeDefined();
        await taker?.release();
      },
      { requires: ['lock'], timeout: 10_000 + ttl },
    );

    test(
      'releasing a lapsed lease that was taken over does not free the new holder',
      async () => {
        const tryLock = lockOf(store());
        const lapsed = await tryLock(MEMBER, ttl);
        if (lapsed === undefined) throw new Error('the first tryLock failed');
        await waitPast(lapsed.expiresAt);
        const taker = await tryLock(MEMBER, 10_000);
        expect(taker).toBeDefined();
        await lapsed.release();
        expect(await tryLock(MEMBER, 10_000)).toBeUndefined();
        await taker?.release();
        const after = await tryLock(MEMBER, 10_000);
        expect(after).toBeDefined();
        await after?.release();
      },
      { requires: ['lock'], timeout: 10_000 + ttl },
    );

    test(
      'a live lease is not taken over before it lapses',
      async () => {
        const tryLock = lockOf(store());
        const holder = await tryLock(MEMBER, ttl * 5);
        if (holder === undefined) throw new Error('the first tryLock failed');
        await sleep(ttl);
        expect(await tryLock(MEMBER, 10_000)).toBeUndefined();
        await holder.release();
      },
      { requires: ['lock'], timeout: 10_000 + ttl * 5 },
    );

    // ---- across processes -------------------------------------------------------------------

    test(
      'a record written in one process is read in another',
      async () => {
        const child = await spawnChild();
        const input = sampleRecord(MEMBER, { domain: 'пример.рф' });
        await store().upsert(input);
        expect(await child.call('get', { memberId: MEMBER })).toStrictEqual(withVersion(input, 1));
      },
      { requires: ['crossProcess'], timeout: 30_000 },
    );

    test(
      'a lock held in another process excludes this one, and the reverse',
      async () => {
        const tryLock = lockOf(store());
        const child = await spawnChild();
        const theirs = await child.call<{ token: string } | null>('tryLock', { memberId: MEMBER, ttlMs: 10_000 });
        expect(theirs).not.toBeNull();
        expect(await tryLock(MEMBER, 10_000)).toBeUndefined();
        await child.call('release', { token: theirs?.token });
        const ours = await tryLock(MEMBER, 10_000);
        expect(ours).toBeDefined();
        expect(await child.call('tryLock', { memberId: MEMBER, ttlMs: 10_000 })).toBeNull();
        await ours?.release();
        expect(await child.call('tryLock', { memberId: MEMBER, ttlMs: 10_000 })).not.toBeNull();
      },
      { requires: ['lock', 'crossProcess'], timeout: 30_000 },
    );

    test(
      'the lock of a process killed while holding it lapses and can be taken over',
      async () => {
        const tryLock = lockOf(store());
        const child = await spawnChild();
        const crashTtl = Math.max(ttl, 300);
        const theirs = await child.call<{ expiresAt: number } | null>('tryLock', { memberId: MEMBER, ttlMs: crashTtl });
        if (theirs === null) throw new Error('the child could not take the lock');
        await child.kill();
        expect(await tryLock(MEMBER, 10_000)).toBeUndefined();
        await waitPast(theirs.expiresAt);
        const ours = await tryLock(MEMBER, 10_000);
        expect(ours).toBeDefined();
        await ours?.release();
      },
      { requires: ['lock', 'crossProcess'], timeout: 30_000 },
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
        expect(attempts).toHaveLength(CHILD_PROCESSES * ATTEMPTS_PER_CHILD);
        const winners = attempts.flatMap((attempt) => (attempt.ok ? [attempt.record] : []));
        expect(winners).toHaveLength(1);
        const winner = winners[0];
        expect(winner?.version).toBe(2);
        for (const attempt of attempts) {
          if (!attempt.ok) expect(attempt.current).toStrictEqual(winner);
        }
        expect(await store().get(MEMBER)).toStrictEqual(winner);
      },
      { requires: ['crossProcess'], timeout: 60_000 },
    );

    options.extraTests?.(store);

    const unknown = [...skip].filter((title) => !registered.has(title));
    if (unknown.length > 0) {
      throw new TypeError(`options.skip names tests that do not exist: ${unknown.map((t) => JSON.stringify(t)).join(', ')}`);
    }
  });
}

async function loadVitest(): Promise<typeof Vitest> {
  return import('vitest');
}
