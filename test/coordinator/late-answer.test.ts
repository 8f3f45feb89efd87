// A refresh answer that comes after the callers stopped waiting (answerWaitMs): the callers get a
// typed transient error, but the request is not abandoned; it keeps its lease and persists the
// pair when the answer arrives, so the chain goes on with exactly one refresh. A request cut off
// by the hard cap (the refresh function's own timeout) is never followed by a refresh of the same
// token without re-reading the store first. ManualClock, scripted refresher, no sleeping.
import { describe, expect, it } from 'vitest';
import { OAuthRejectedError, OAuthUnavailableError, PoolClosedError } from '../../src/errors.js';
import type { TokenResponse } from '../../src/oauth/oauth-client.js';
import type { PortalRecord } from '../../src/store/token-store.js';
import { chainRecord, harness, T0, tokens, view } from './helpers.js';

const NOW = T0 + 3_500_000;

/** A refresh whose answer the test hands over when it likes. */
function held(): { step: () => Promise<TokenResponse>; answer: (t: TokenResponse) => void; fail: (e: unknown) => void } {
  let answer!: (t: TokenResponse) => void;
  let fail!: (e: unknown) => void;
  const promise = new Promise<TokenResponse>((resolve, reject) => {
    answer = resolve;
    fail = reject;
  });
  return { step: () => promise, answer, fail };
}

describe('a refresh answer later than the callers wait', () => {
  it('fails the waiting callers typed, keeps the lease, persists the late pair: one refresh, the chain goes on', async () => {
    const h = harness({ answerWaitMs: 10_000, lockTtlMs: 15_000 });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    const answer = held();
    h.script(answer.step);
    const callers = [view(record), view(record)].map((v) => h.coordinator.ensureFresh(v, { reason: 'expiring' }).catch((e: unknown) => e));
    await h.clock.advance(10_001);
    for (const outcome of await Promise.all(callers)) {
      expect(outcome).toBeInstanceOf(OAuthUnavailableError);
      expect((outcome as OAuthUnavailableError).message).toMatch(/goes on/);
    }
    // Still in flight: the lease is renewed past its lifetime, and later callers join the same request.
    await h.clock.advance(30_000);
    expect(await h.store.tryLock('member-a', 1000)).toBeUndefined();
    const later = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    answer.answer(tokens(1, h.clock.now()));
    expect((await later).accessToken).toBe('access-1');
    expect(h.refresh.calls).toHaveLength(1);
    expect(await h.store.get('member-a')).toMatchObject({ accessToken: 'access-1', refreshToken: 'refresh-1', state: 'active' });
    expect(h.events.map((e) => e.event)).toEqual(['refreshed']);
    expect(h.coordinator.counters).toMatchObject({ refreshes: 1, refreshFailures: 0, revocations: 0 });
    expect(h.coordinator.flight('member-a', 'portal')).toBeUndefined();
    // The lock was released after the late pair was written.
    expect(await h.store.tryLock('member-a', 1000)).toBeDefined();
  });

  it('counts a queued caller’s wait from when its request was ready, like a sent one’s (issue 22 case 4)', async () => {
    const h = harness({ answerWaitMs: 10_000, maxConcurrentRefreshes: 1 });
    const a = await h.store.upsert(chainRecord());
    const b = await h.store.upsert(chainRecord({ memberId: 'member-b' }));
    h.clock.set(NOW);
    const first = held();
    const second = held();
    h.script(first.step, second.step);
    const ca = h.coordinator.ensureFresh(view(a), { reason: 'expiring' }).catch((e: unknown) => e);
    const cb = h.coordinator.ensureFresh(view(b), { reason: 'expiring' }).catch((e: unknown) => e);
    await h.clock.advance(10_001);
    // b's request never left (a holds the only turn): its caller gets the same typed error as a's.
    expect(await ca).toBeInstanceOf(OAuthUnavailableError);
    expect(await cb).toBeInstanceOf(OAuthUnavailableError);
    expect(h.refresh.calls.map((r) => r.memberId)).toEqual(['member-a']);
    // Both refreshes go on: a's answer frees the turn, b's request leaves and its pair is stored.
    first.answer(tokens(1, h.clock.now()));
    await h.clock.advance(0);
    second.answer(tokens(2, h.clock.now(), { memberId: 'member-b' }));
    await h.clock.advance(0);
    expect(h.refresh.calls.map((r) => r.memberId)).toEqual(['member-a', 'member-b']);
    expect((await h.store.get('member-a'))?.accessToken).toBe('access-1');
    expect((await h.store.get('member-b'))?.accessToken).toBe('access-2');
  });

  it('lets requests held for the flight wait only as long as a caller', async () => {
    const h = harness({ answerWaitMs: 5_000 });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    const answer = held();
    h.script(answer.step);
    const caller = h.coordinator.ensureFresh(view(record), { reason: 'expiring' }).catch((e: unknown) => e);
    await h.clock.advance(0);
    const held1 = h.coordinator.flight('member-a', 'portal')?.catch((e: unknown) => e);
    await h.clock.advance(5_001);
    expect(await caller).toBeInstanceOf(OAuthUnavailableError);
    expect(await held1).toBeInstanceOf(OAuthUnavailableError);
    answer.answer(tokens(1, h.clock.now()));
    await h.clock.advance(0);
    expect((await h.store.get('member-a'))?.accessToken).toBe('access-1');
  });

  it('lets the sweep wait only as long as a caller; the late pair is still stored (issue 22 case 4)', async () => {
    const h = harness({ answerWaitMs: 1_000 });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(T0 + 30 * 86_400_000);
    const answer = held();
    h.script(answer.step);
    const kept = h.coordinator.keepAlive(record, 20 * 86_400_000);
    await h.clock.advance(60_000);
    expect((await kept).outcome).toBe('failed');
    answer.answer(tokens(1, h.clock.now()));
    await h.clock.advance(0);
    expect((await h.store.get('member-a'))?.accessToken).toBe('access-1');
    expect(h.refresh.calls).toHaveLength(1);
  });
});

describe('a refresh cut off by the hard cap', () => {
  it('is not followed by a refresh of the same token without re-reading the store: a pair stored meanwhile is adopted', async () => {
    const h = harness({ answerWaitMs: 10_000 });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    const answer = held();
    h.script(answer.step, (r) => tokens(9, h.clock.now(), { memberId: r.memberId }));
    const caller = h.coordinator.ensureFresh(view(record), { reason: 'expiring' }).catch((e: unknown) => e);
    await h.clock.advance(10_001);
    expect(await caller).toBeInstanceOf(OAuthUnavailableError);
    // The hard cap: the refresh function gives up with no answer.
    answer.fail(new OAuthUnavailableError('OAuth host did not answer within 180000 ms', 0));
    await h.clock.advance(0);
    expect(h.coordinator.flight('member-a', 'portal')).toBeUndefined();
    // Meanwhile the rotation landed elsewhere (another worker, an app-page reseed).
    const stored = (await h.store.get('member-a')) as PortalRecord;
    await h.store.update('member-a', stored.version, { accessToken: 'elsewhere', refreshToken: 'elsewhere-r', expires: Math.floor(NOW / 1000) + 3600, chainUpdatedAt: NOW });
    const reads: string[] = [];
    h.store.beforeGet = (key) => void reads.push(String(typeof key === 'string' ? key : key.memberId));
    expect((await h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).accessToken).toBe('elsewhere');
    expect(reads.length).toBeGreaterThan(0);
    expect(h.refresh.calls).toHaveLength(1);
  });

  it('re-reads, and a retry of the same token meeting invalid_grant marks the chain a lost rotation', async () => {
    const h = harness({ answerWaitMs: 10_000 });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    h.script(
      () => Promise.reject(new OAuthUnavailableError('no answer', 0)),
      () => Promise.reject(new OAuthRejectedError('invalid_grant', 400)),
    );
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(OAuthUnavailableError);
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toMatchObject({ reason: 'lost_rotation' });
    expect(h.refresh.calls.map((r) => r.refreshToken)).toEqual(['refresh-0', 'refresh-0']);
  });
});

describe('close', () => {
  it('lets a sent refresh store its pair, refuses the queued and later ones', async () => {
    const h = harness({ maxConcurrentRefreshes: 1 });
    const a = await h.store.upsert(chainRecord());
    const b = await h.store.upsert(chainRecord({ memberId: 'member-b' }));
    h.clock.set(NOW);
    const answer = held();
    h.script(answer.step);
    const ca = h.coordinator.ensureFresh(view(a), { reason: 'expiring' });
    const cb = h.coordinator.ensureFresh(view(b), { reason: 'expiring' }).catch((e: unknown) => e);
    await h.clock.advance(0);
    const closed = h.coordinator.close();
    expect(await cb).toBeInstanceOf(PoolClosedError);
    answer.answer(tokens(1, h.clock.now()));
    await closed;
    expect((await ca).accessToken).toBe('access-1');
    expect(await h.store.get('member-a')).toMatchObject({ accessToken: 'access-1' });
    expect(h.refresh.calls.map((r) => r.memberId)).toEqual(['member-a']);
    await expect(h.coordinator.ensureFresh(view(b), { reason: 'expiring' })).rejects.toBeInstanceOf(PoolClosedError);
    expect(h.events.map((e) => e.event)).toEqual(['refreshed']);
  });
});
