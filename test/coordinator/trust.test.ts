// The coordinator against a hostile or unlucky world: refused credentials, unpaid portals, an
// OAuth host that keeps failing, a lease that would lapse mid-refresh, a machine clock that is off.
import { describe, expect, it } from 'vitest';
import { OAuthCredentialsError, OAuthRejectedError, OAuthUnavailableError, PortalRevokedError, PortalSuspendedError } from '../../src/errors.js';
import type { PortalRecord, StoreLease } from '../../src/store/token-store.js';
import { chainRecord, harness, T0, tokens, view } from './helpers.js';

const NOW = T0 + 3_500_000;

describe('refused app credentials', () => {
  it('change no record, reach the caller typed, are logged and announced once, and pause every refresh', async () => {
    const h = harness({ backoff: { credentialsMs: 60_000 } });
    const a = await h.store.upsert(chainRecord());
    const b = await h.store.upsert(chainRecord({ memberId: 'member-b' }));
    h.clock.set(NOW);
    h.script(() => {
      throw new OAuthRejectedError('invalid_client', 401);
    });
    await expect(h.coordinator.ensureFresh(view(a), { reason: 'expiring' })).rejects.toBeInstanceOf(OAuthCredentialsError);
    await expect(h.coordinator.ensureFresh(view(b), { reason: 'expiring' })).rejects.toBeInstanceOf(OAuthCredentialsError);
    expect(h.refresh.calls).toHaveLength(1); // the second portal was not even tried
    expect(await h.store.get('member-a')).toEqual(a);
    expect(await h.store.get('member-b')).toEqual(b);
    expect(h.events.filter((e) => e.event === 'credentials-rejected')).toHaveLength(1);
    expect(h.logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(h.coordinator.counters.revocations).toBe(0);

    // After the pause, a corrected configuration refreshes normally.
    h.clock.set(NOW + 61_000);
    h.script((r) => tokens(1, NOW + 61_000, { memberId: r.memberId }));
    expect((await h.coordinator.ensureFresh(view(a), { reason: 'expiring' })).accessToken).toBe('access-1');
  });
});

describe('PAYMENT_REQUIRED', () => {
  it('suspends the chain (not revoked), and tries it again after the retry time', async () => {
    const h = harness({ suspendRetryMs: 3_600_000 });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    h.script(() => {
      throw new OAuthRejectedError('PAYMENT_REQUIRED', 402);
    });
    const failure = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PortalSuspendedError);
    expect((failure as PortalSuspendedError).retryAt).toBe(NOW + 3_600_000);
    const stored = (await h.store.get('member-a')) as PortalRecord;
    expect(stored).toMatchObject({ state: 'suspended', revokedReason: 'PAYMENT_REQUIRED', refreshToken: 'refresh-0' });
    expect(h.events.map((e) => e.event)).toEqual(['suspended']);
    await expect(h.coordinator.readActive('member-a', 'portal')).rejects.toBeInstanceOf(PortalSuspendedError);

    h.clock.set(NOW + 3_600_001);
    h.script(() => tokens(1, NOW + 3_600_001));
    const back = await h.coordinator.ensureFresh(view(stored), { reason: 'expiring' });
    expect(back).toMatchObject({ state: 'active', revokedReason: null, accessToken: 'access-1' });
  });
});

describe('reactivate', () => {
  it('tries a revoked chain once: a fresh pair makes it active; a refusal leaves it revoked', async () => {
    const h = harness();
    await h.store.upsert(chainRecord({ state: 'revoked', revokedReason: 'invalid_grant', revokedAt: T0 }));
    h.clock.set(NOW);
    h.script(() => {
      throw new OAuthRejectedError('invalid_grant', 400);
    });
    await expect(h.coordinator.reactivate('member-a', 'portal')).rejects.toBeInstanceOf(PortalRevokedError);
    expect(h.refresh.calls).toHaveLength(1);
    expect((await h.store.get('member-a'))?.state).toBe('revoked');

    h.script(() => tokens(1, NOW));
    const record = await h.coordinator.reactivate('member-a', 'portal');
    expect(record).toMatchObject({ state: 'active', accessToken: 'access-1', revokedAt: null });
    expect(h.refresh.calls).toHaveLength(2);
    // An active chain is left alone.
    expect(await h.coordinator.reactivate('member-a', 'portal')).toEqual(record);
    expect(h.refresh.calls).toHaveLength(2);
  });

  it('throws for a portal that is not stored', async () => {
    const h = harness();
    await expect(h.coordinator.reactivate('nobody', 'portal')).rejects.toMatchObject({ code: 'PORTAL_NOT_INSTALLED' });
  });
});

describe('no hammering', () => {
  it('pauses a chain after a transient failure, answering at once, then retries with growing pauses', async () => {
    const h = harness({ backoff: { transientMinMs: 1000, transientMaxMs: 8000 } });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    h.script(() => {
      throw new OAuthUnavailableError('OAuth host answered 503', 503);
    });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(OAuthUnavailableError);
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toThrow(/paused/);
    expect(h.refresh.calls).toHaveLength(1);
    h.clock.set(NOW + 1001);
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(OAuthUnavailableError);
    expect(h.refresh.calls).toHaveLength(2);
    // The second pause is at least 1 s (half of 2 s) long.
    h.clock.set(NOW + 1001 + 999);
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toThrow(/paused/);
    h.clock.set(NOW + 1001 + 2001);
    h.script(() => tokens(1, NOW + 3002));
    expect((await h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).accessToken).toBe('access-1');
    // A success clears the pause.
    const fresh = (await h.store.get('member-a')) as PortalRecord;
    expect(fresh.accessToken).toBe('access-1');
  });
});

describe('the lease while a refresh is in flight', () => {
  it('is renewed, so another worker cannot take the lock mid-refresh', async () => {
    const h = harness({ lockTtlMs: 3000 });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    let answer!: () => void;
    h.script(() => new Promise((resolve) => (answer = () => resolve(tokens(1, h.clock.now())))));
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    // Ten lease lifetimes pass while the OAuth answer is on its way.
    for (let i = 0; i < 30; i++) await h.clock.advance(1000);
    const other: StoreLease | undefined = await h.store.tryLock('member-a', 3000);
    expect(other).toBeUndefined();
    answer();
    expect((await pending).accessToken).toBe('access-1');
    expect(await h.store.tryLock('member-a', 3000)).toBeDefined();
  });
});

describe("the OAuth host's clock", () => {
  it('judges freshness by the host: a machine clock an hour ahead does not refresh a fresh pair', async () => {
    const h = harness();
    // Issued by the host at T0; this machine's clock reads T0 + 1 h when it is stored.
    const record = await h.store.upsert(chainRecord({ chainUpdatedAt: T0 + 3_600_000 }));
    h.clock.set(T0 + 3_600_000 + 60_000);
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(result).toBe(record);
    expect(h.refresh.calls).toHaveLength(0);
    expect(h.coordinator.hostClock.offsetSec).toBe(-3600);
  });

  it('learns the offset from every answer and ignores small differences', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    h.script(() => tokens(1, NOW - 7_200_000)); // the host's clock is two hours behind
    await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(h.coordinator.hostClock.offsetSec).toBe(-7200);
    h.coordinator.hostClock.learnFromAnswer(Math.floor(NOW / 1000) + 3600 + 30, 3600, NOW);
    expect(h.coordinator.hostClock.offsetSec).toBe(0);
    h.coordinator.hostClock.learnFromAnswer(Number.NaN, 3600, NOW);
    expect(h.coordinator.hostClock.offsetSec).toBe(0);
  });

  it('takes no offset from a hand-edited record', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord({ expires: 1 }));
    h.clock.set(NOW);
    await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(h.refresh.calls).toHaveLength(1);
  });
});

describe('the rest of the edges', () => {
  it('passes a request error (not a chain, payment or credentials error) through unchanged', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    const refused = new OAuthRejectedError('invalid_scope', 400);
    h.script(() => {
      throw refused;
    });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBe(refused);
    expect((await h.store.get('member-a'))?.state).toBe('active');
  });

  it('logs a failed lease renewal and still persists the pair (the conditional write is the fence)', async () => {
    const h = harness({ lockTtlMs: 3000 });
    const record = await h.store.upsert(chainRecord());
    h.clock.set(NOW);
    const tryLock = h.store.tryLock.bind(h.store);
    h.store.tryLock = async (key, ttl) => {
      const lease = await tryLock(key, ttl);
      return lease && { ...lease, renew: () => Promise.reject(new Error('connection reset')) };
    };
    let answer!: () => void;
    h.script(() => new Promise((resolve) => (answer = () => resolve(tokens(1, h.clock.now())))));
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    await h.clock.advance(1500);
    answer();
    expect((await pending).accessToken).toBe('access-1');
    expect(h.logger.lines.some((l) => l.message === 'renewing the refresh lock failed')).toBe(true);
  });

  it('counts a pair taken from the change feed as an adoption', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    h.coordinator.noteAdopted(record);
    expect(h.coordinator.counters.adoptions).toBe(1);
    expect(h.events).toEqual([{ event: 'adopted', payload: { memberId: 'member-a', chain: 'portal', version: 1 } }]);
  });

  it('learns nothing more from records once it learned from an answer', () => {
    const h = harness();
    h.coordinator.hostClock.learnFromAnswer(Math.floor(T0 / 1000) + 3600, 3600, T0 + 7_200_000);
    expect(h.coordinator.hostClock.offsetSec).toBe(-7200);
    h.coordinator.hostClock.learnFromRecord(chainRecord({ chainUpdatedAt: T0 + 3_600_000 }) as PortalRecord);
    expect(h.coordinator.hostClock.offsetSec).toBe(-7200);
  });
});
