// Every branch of the refresh coordinator, driven deterministically: MemoryTokenStore, a scripted
// refresher and a ManualClock. No SDK, no HTTP, no sleeping.
import { describe, expect, it } from 'vitest';
import {
  LockTimeoutError,
  OAuthRejectedError,
  OAuthUnavailableError,
  PortalNotInstalledError,
  PortalRevokedError,
  StoreError,
} from '../../src/errors.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { PortalRecord, StoreLease, TokenStore } from '../../src/store/token-store.js';
import type { ChangeWait } from '../../src/coordinator/types.js';
import { chainRecord, harness, T0, tokens, view } from './helpers.js';

const NOW = T0 + 3_500_000; // 100 s before the seeded pair expires: inside the refresh-ahead window

async function seeded(h: ReturnType<typeof harness>, overrides = {}): Promise<PortalRecord> {
  const record = await h.store.upsert(chainRecord(overrides));
  h.clock.set(NOW);
  return record;
}

describe('RefreshCoordinator: fresh pairs and single flight', () => {
  it('returns a usable pair without touching the store or the OAuth host', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    const v = view(record);
    await expect(h.coordinator.ensureFresh(v, { reason: 'expiring' })).resolves.toBe(record);
    expect(h.refresh.calls).toHaveLength(0);
  });

  it('sends one refresh for many concurrent callers and persists it before anyone sees it', async () => {
    const h = harness();
    const record = await seeded(h);
    const views = Array.from({ length: 10 }, () => view(record));
    let persistedFirst = true;
    h.store.beforeUpdate = () => {
      persistedFirst = views.every((v) => v.adopted.length === 0);
    };
    const results = await Promise.all(views.map((v) => h.coordinator.ensureFresh(v, { reason: 'expiring' })));
    expect(h.refresh.calls).toHaveLength(1);
    expect(new Set(results.map((r) => r.accessToken))).toEqual(new Set(['access-1']));
    expect(persistedFirst).toBe(true);
    expect((await h.store.get('member-a'))?.refreshToken).toBe('refresh-1');
    expect(h.events.map((e) => e.event)).toEqual(['refreshed']);
    expect(h.coordinator.counters.refreshes).toBe(1);
  });

  it('exposes the flight in progress so leaving requests can wait for it', async () => {
    const h = harness();
    const record = await seeded(h);
    let release!: () => void;
    h.script(() => new Promise((resolve) => (release = () => resolve(tokens(1, NOW)))));
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    await h.clock.advance(0);
    const flight = h.coordinator.flight('member-a', 'portal');
    expect(flight).toBeDefined();
    expect(h.coordinator.flight('member-a', 'user:7')).toBeUndefined();
    release();
    expect((await flight)?.accessToken).toBe('access-1');
    await pending;
    expect(h.coordinator.flight('member-a', 'portal')).toBeUndefined();
  });

  it('adopts a pair another worker stored (step 2) instead of refreshing', async () => {
    const h = harness();
    const record = await seeded(h);
    await h.store.update('member-a', record.version, { accessToken: 'other', refreshToken: 'other-r', expires: Math.floor(NOW / 1000) + 3600, chainUpdatedAt: NOW });
    const v = view(record);
    const result = await h.coordinator.ensureFresh(v, { reason: 'expiring' });
    expect(result.accessToken).toBe('other');
    expect(v.record.accessToken).toBe('other');
    expect(h.refresh.calls).toHaveLength(0);
    expect(h.events.map((e) => e.event)).toEqual(['adopted']);
    expect(h.coordinator.counters.adoptions).toBe(1);
  });

  it('refreshes a pair the portal refused even when it has not expired', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'rejected', rejectedToken: 'access-0' });
    expect(result.accessToken).toBe('access-1');
    expect(h.refresh.calls).toHaveLength(1);
  });

  it('does not adopt a stored pair that holds the refused token', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    // A stale holder saw access-x refused; the store already holds access-0, which is fine for it.
    const v = view({ ...record, accessToken: 'access-x' });
    const result = await h.coordinator.ensureFresh(v, { reason: 'rejected', rejectedToken: 'access-x' });
    expect(result.accessToken).toBe('access-0');
    expect(h.refresh.calls).toHaveLength(0);
  });

  it('settles for what it has after three flights that all return the refused token', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script((r) => tokens(0, NOW, { accessToken: r.accessToken, refreshToken: `${r.refreshToken}+` }));
    const v = view(record);
    const result = await h.coordinator.ensureFresh(v, { reason: 'rejected', rejectedToken: 'access-0' });
    expect(result.accessToken).toBe('access-0');
    expect(h.refresh.calls).toHaveLength(3);
  });
});

describe('RefreshCoordinator: the lock (step 3) and the re-read under it (step 4)', () => {
  it('waits for another holder by the injected clock and adopts what it stored', async () => {
    const h = harness();
    const record = await seeded(h);
    const other = (await h.store.tryLock('member-a', 60_000)) as StoreLease;
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    await h.clock.advance(50);
    expect(h.coordinator.counters.lockWaits).toBe(1);
    await h.store.update('member-a', record.version, { accessToken: 'theirs', refreshToken: 'theirs-r', expires: Math.floor(NOW / 1000) + 3600, chainUpdatedAt: NOW });
    await other.release();
    await h.clock.advance(1000);
    expect((await pending).accessToken).toBe('theirs');
    expect(h.refresh.calls).toHaveLength(0);
  });

  it('times out with a frozen clock: the pauses it took count as waiting', async () => {
    const h = harness({ lockWaitMs: 100 });
    const record = await seeded(h);
    await h.store.tryLock('member-a', 3_600_000);
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    const outcome = expect(pending).rejects.toBeInstanceOf(LockTimeoutError);
    // Wake each sleeper without moving the clock's reading.
    for (let i = 0; i < 20 && h.clock.pending >= 0; i++) {
      await h.clock.advance(300);
      h.clock.set(NOW);
    }
    await outcome;
    expect(h.events.map((e) => e.event)).toEqual(['refresh-failed']);
    expect(h.refresh.calls).toHaveLength(0);
  });

  it('takes the lock when the holder releases it and refreshes once', async () => {
    const h = harness();
    const record = await seeded(h);
    const other = (await h.store.tryLock('member-a', 60_000)) as StoreLease;
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    await h.clock.advance(20);
    await other.release();
    await h.clock.advance(1000);
    expect((await pending).accessToken).toBe('access-1');
    expect(h.refresh.calls).toHaveLength(1);
  });

  it.each([
    ['with tryLockAndGet: a pair stored before the read that comes with the lock', true, 1],
    ['without it: a pair stored between the first read and the lock', false, 2],
  ] as const)('adopts %s', async (_title, fused, racedRead) => {
    const h = harness();
    if (!fused) h.store.withoutLockAndGet();
    const record = await seeded(h);
    let reads = 0;
    h.store.beforeGet = async () => {
      reads++;
      if (reads === racedRead) {
        const current = (await MemoryTokenStore.prototype.get.call(h.store, 'member-a')) as PortalRecord;
        await MemoryTokenStore.prototype.update.call(h.store, 'member-a', current.version, {
          accessToken: 'raced',
          refreshToken: 'raced-r',
          expires: Math.floor(NOW / 1000) + 3600,
          chainUpdatedAt: NOW,
        });
      }
    };
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(result.accessToken).toBe('raced');
    expect(h.refresh.calls).toHaveLength(0);
    expect(reads, 'reads of the chain').toBe(racedRead);
    expect(await h.store.tryLock('member-a', 1000), 'the lock taken to read is released').toBeDefined();
  });

  it('works without a lock on a store that declares none', async () => {
    const inner = new MemoryTokenStore();
    const store: TokenStore = {
      capabilities: { lock: false, crossProcess: false, list: false },
      get: (k) => inner.get(k),
      upsert: (r) => inner.upsert(r),
      update: (k, v, p) => inner.update(k, v, p),
      delete: (k) => inner.delete(k),
      deletePortal: (m) => inner.deletePortal(m),
    };
    const h = harness({ store });
    const record = await store.upsert(chainRecord());
    h.clock.set(NOW);
    expect((await h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).accessToken).toBe('access-1');
  });

  it.each([
    ['with tryLockAndGet (the next try reads)', true],
    ['without it (a read after the wait)', false],
  ] as const)('wakes on a reported change of the chain instead of after the pause, and adopts without refreshing, %s', async (_title, fused) => {
    const waits: { key: string; ms: number; wake: (changed: boolean) => void; signal: AbortSignal | undefined }[] = [];
    const waitForChange: ChangeWait = (key, ms, signal) =>
      new Promise<boolean>((resolve, reject) => {
        waits.push({ key: `${key.memberId} ${key.chain}`, ms, wake: resolve, signal });
        signal?.addEventListener('abort', () => reject(new Error('disarmed')), { once: true });
      });
    const h = harness({ waitForChange });
    if (!fused) h.store.withoutLockAndGet();
    const record = await seeded(h);
    const other = (await h.store.tryLock('member-a', 60_000)) as StoreLease;
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    await h.clock.advance(0);
    expect(waits.map((w) => [w.key, w.ms])).toEqual([['member-a portal', 10]]);
    await h.store.update('member-a', record.version, { accessToken: 'theirs', refreshToken: 'theirs-r', expires: Math.floor(NOW / 1000) + 3600, chainUpdatedAt: NOW });
    await other.release();
    waits[0]!.wake(true); // the change feed reported the write; the clock has not moved
    expect((await pending).accessToken).toBe('theirs');
    expect(h.refresh.calls).toHaveLength(0);
    expect(h.clock.now()).toBe(NOW);
    // The next try arms its wait first and disarms it when it takes the lock (to read, then adopt).
    expect(waits.map((w) => w.signal?.aborted ?? false)).toEqual(fused ? [false, true] : [false]);
  });

  it('adopts what the holder stored from the refused try itself, without waiting (tryLockAndGet)', async () => {
    const h = harness();
    const record = await seeded(h);
    const other = (await h.store.tryLock('member-a', 60_000)) as StoreLease;
    await h.store.update('member-a', record.version, { accessToken: 'theirs', refreshToken: 'theirs-r', expires: Math.floor(NOW / 1000) + 3600, chainUpdatedAt: NOW });
    expect((await h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).accessToken).toBe('theirs');
    expect(h.coordinator.counters.lockWaits, 'no wait').toBe(0);
    expect(h.refresh.calls).toHaveLength(0);
    await other.release();
  });

  it('releases the lock it took when the record that came with it is revoked (tryLockAndGet)', async () => {
    const h = harness();
    const record = await seeded(h);
    await h.store.update('member-a', record.version, { state: 'revoked', revokedReason: 'invalid_grant', revokedAt: NOW });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(PortalRevokedError);
    await h.coordinator.close();
    expect(await h.store.tryLock('member-a', 1000), 'the lock is free again').toBeDefined();
    expect(h.refresh.calls).toHaveLength(0);
  });

  it('disarms the wait armed before a try that takes the lock or fails', async () => {
    const signals: (AbortSignal | undefined)[] = [];
    const waitForChange: ChangeWait = (_key, _ms, signal) => {
      signals.push(signal);
      return new Promise<boolean>((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('disarmed')), { once: true }));
    };
    const h = harness({ waitForChange });
    const record = await seeded(h);
    expect((await h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).accessToken).toBe('access-1');
    expect(signals.map((s) => s?.aborted)).toEqual([true]);
    h.clock.set(NOW + 3_600_000);
    h.store.tryLock = () => Promise.reject(new StoreError('lock table gone'));
    const fresh = (await h.store.get('member-a')) as PortalRecord;
    await expect(h.coordinator.ensureFresh(view(fresh), { reason: 'expiring' })).rejects.toBeInstanceOf(StoreError);
    expect(signals.map((s) => s?.aborted)).toEqual([true, true]);
    expect(h.refresh.calls).toHaveLength(1);
  });

  it('logs a failed lock release and still returns the persisted pair', async () => {
    const h = harness();
    const record = await seeded(h);
    const tryLock = h.store.tryLock.bind(h.store);
    h.store.tryLock = async (key, ttl) => {
      const lease = await tryLock(key, ttl);
      return lease && { ...lease, release: () => Promise.reject(new Error('disk gone')) };
    };
    expect((await h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).accessToken).toBe('access-1');
    expect(h.logger.lines.some((l) => l.level === 'warn' && l.message === 'releasing the refresh lock failed')).toBe(true);
  });
});

describe('RefreshCoordinator: the conditional write (step 6) and its one conflict rule', () => {
  it('retries a store failure and persists the pair', async () => {
    const h = harness();
    const record = await seeded(h);
    let failures = 2;
    h.store.beforeUpdate = () => {
      if (failures-- > 0) throw new Error('connection reset');
    };
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    await h.clock.advance(1000);
    expect((await pending).accessToken).toBe('access-1');
    expect((await h.store.get('member-a'))?.accessToken).toBe('access-1');
    expect(h.logger.lines.filter((l) => l.level === 'error')).toHaveLength(2);
  });

  it('gives up with a StoreError after five failed writes', async () => {
    const h = harness();
    const record = await seeded(h);
    h.store.beforeUpdate = () => {
      throw new Error('read-only file system');
    };
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    const outcome = expect(pending).rejects.toBeInstanceOf(StoreError);
    await h.clock.advance(10_000);
    await outcome;
    expect(h.store.updates).toBe(5);
    expect(h.coordinator.counters.refreshFailures).toBe(1);
  });

  it('passes a StoreError from the store through unchanged', async () => {
    const h = harness();
    const record = await seeded(h);
    const original = new StoreError('down', { transient: true });
    h.store.beforeUpdate = () => {
      throw original;
    };
    const pending = h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    const outcome = expect(pending).rejects.toBe(original);
    await h.clock.advance(10_000);
    await outcome;
  });

  it('merges a change that left the chain alone and writes again', async () => {
    const h = harness();
    const record = await seeded(h);
    let once = true;
    h.store.beforeUpdate = async (key) => {
      if (!once) return;
      once = false;
      const current = (await MemoryTokenStore.prototype.get.call(h.store, key)) as PortalRecord;
      await MemoryTokenStore.prototype.update.call(h.store, key, current.version, { applicationToken: 'rotated' });
    };
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(result.accessToken).toBe('access-1');
    expect(result.applicationToken).toBe('rotated');
    expect(result.version).toBe(3);
  });

  it('adopts a chain an install stored while refreshing (it wins over ours)', async () => {
    const h = harness();
    const record = await seeded(h);
    h.store.beforeUpdate = async () => {
      h.store.beforeUpdate = undefined;
      await h.store.upsert(chainRecord({ accessToken: 'installed', refreshToken: 'installed-r', expires: Math.floor(NOW / 1000) + 3600 }));
    };
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(result.accessToken).toBe('installed');
    expect((await h.store.get('member-a'))?.accessToken).toBe('installed');
    expect(h.events.map((e) => e.event)).not.toContain('refreshed');
  });

  it('throws PortalNotInstalledError when the portal was deleted while refreshing', async () => {
    const h = harness();
    const record = await seeded(h);
    h.store.beforeUpdate = async () => {
      await h.store.deletePortal('member-a');
    };
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(PortalNotInstalledError);
  });

  it('throws PortalRevokedError when another chain was stored and revoked while refreshing', async () => {
    const h = harness();
    const record = await seeded(h);
    h.store.beforeUpdate = async (key) => {
      h.store.beforeUpdate = undefined;
      const current = (await h.store.get(key)) as PortalRecord;
      await h.store.update(key, current.version, { refreshToken: 'other-chain', state: 'revoked', revokedReason: 'NOT_INSTALLED' });
    };
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toMatchObject({
      constructor: PortalRevokedError,
      reason: 'NOT_INSTALLED',
    });
  });

  it('a pair minted from the stored refresh token wins over a revocation caused by spending that token', async () => {
    const h = harness();
    const record = await seeded(h);
    // Another worker, whose lease had lapsed into ours, sent the same (now spent) token, got
    // invalid_grant and marked the chain revoked while our answer was on its way.
    h.store.beforeUpdate = async (key) => {
      h.store.beforeUpdate = undefined;
      const current = (await h.store.get(key)) as PortalRecord;
      await h.store.update(key, current.version, { state: 'revoked', revokedReason: 'invalid_grant', revokedAt: NOW });
    };
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(result).toMatchObject({ accessToken: 'access-1', state: 'active', revokedReason: null, revokedAt: null });
    expect(await h.store.get('member-a')).toMatchObject({ accessToken: 'access-1', state: 'active' });
  });

  it('gives up with a StoreError when the record keeps changing', async () => {
    const h = harness();
    const record = await seeded(h);
    h.store.beforeUpdate = async (key) => {
      const current = (await MemoryTokenStore.prototype.get.call(h.store, key)) as PortalRecord;
      await MemoryTokenStore.prototype.update.call(h.store, key, current.version, { updatedAt: current.updatedAt + 1 });
    };
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toThrow(/kept changing/);
  });

  it('carries forward what a refresh answer lacks and follows a new REST root', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(() =>
      tokens(1, NOW, { refreshToken: undefined, scope: undefined, status: undefined, userId: null, clientEndpoint: 'https://renamed.example.com/rest/' }),
    );
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(result).toMatchObject({ refreshToken: 'refresh-0', scope: 'crm', status: 'L', userId: 1, domain: 'renamed.example.com' });
    expect(h.drops).toEqual([{ memberId: 'member-a', chain: 'portal', reason: 'endpoint-changed' }]);
  });

  it('ignores a refresh answer whose REST root is not an http(s) URL', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(() => tokens(1, NOW, { clientEndpoint: 'javascript:alert(1)' }));
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(result.clientEndpoint).toBe('https://a.example.com/rest/');
    expect(h.drops).toEqual([]);
  });
});

describe('RefreshCoordinator: OAuth errors', () => {
  it('marks a chain revoked on a terminal error, once, and says so', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(() => {
      throw new OAuthRejectedError('invalid_grant', 400);
    });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(PortalRevokedError);
    expect(await h.store.get('member-a')).toMatchObject({ state: 'revoked', revokedReason: 'invalid_grant', revokedAt: NOW });
    expect(h.events).toEqual([{ event: 'revoked', payload: { memberId: 'member-a', chain: 'portal', reason: 'invalid_grant' } }]);
    expect(h.drops).toEqual([{ memberId: 'member-a', chain: 'portal', reason: 'revoked' }]);
    expect(h.coordinator.counters.revocations).toBe(1);
  });

  it('adopts a live chain an install stored while the old one was failing (revoke-then-adopt)', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(async () => {
      await h.store.upsert(chainRecord({ accessToken: 'fresh', refreshToken: 'fresh-r', expires: Math.floor(NOW / 1000) + 3600 }));
      throw new OAuthRejectedError('invalid_grant', 400);
    });
    const result = await h.coordinator.ensureFresh(view(record), { reason: 'expiring' });
    expect(result.accessToken).toBe('fresh');
    expect((await h.store.get('member-a'))?.state).toBe('active');
    expect(h.events.map((e) => e.event)).toEqual(['adopted']);
    expect(h.coordinator.counters.revocations).toBe(0);
  });

  it('does not announce a revocation another writer already made', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(async () => {
      await h.store.update('member-a', record.version, { state: 'revoked', revokedReason: 'NOT_INSTALLED' });
      throw new OAuthRejectedError('invalid_grant', 400);
    });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toMatchObject({ reason: 'NOT_INSTALLED' });
    expect(h.events).toEqual([]);
    expect(h.coordinator.counters.revocations).toBe(0);
  });

  it('revokes on top of a change that left the chain alone', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(async () => {
      await h.store.update('member-a', record.version, { applicationToken: 'rotated' });
      throw new OAuthRejectedError('NOT_INSTALLED', 401);
    });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(PortalRevokedError);
    expect(await h.store.get('member-a')).toMatchObject({ state: 'revoked', applicationToken: 'rotated' });
    expect(h.events.map((e) => e.event)).toEqual(['revoked']);
  });

  it('reports a portal deleted while its refresh was refused as not installed', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(async () => {
      await h.store.deletePortal('member-a');
      throw new OAuthRejectedError('invalid_grant', 400);
    });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(PortalNotInstalledError);
    expect(h.drops).toEqual([{ memberId: 'member-a', chain: 'portal', reason: 'lifecycle' }]);
  });

  it('changes nothing on a transient error and reports it', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(() => {
      throw new OAuthUnavailableError('OAuth host answered 503', 503);
    });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toBeInstanceOf(OAuthUnavailableError);
    expect((await h.store.get('member-a'))?.version).toBe(record.version);
    expect(h.events).toEqual([{ event: 'refresh-failed', payload: { memberId: 'member-a', chain: 'portal', code: 'OAUTH_UNAVAILABLE' } }]);
  });

  it('reports an unknown error with the code UNKNOWN', async () => {
    const h = harness();
    const record = await seeded(h);
    h.script(() => {
      throw new Error('boom');
    });
    await expect(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })).rejects.toThrow('boom');
    expect(h.events).toEqual([{ event: 'refresh-failed', payload: { memberId: 'member-a', chain: 'portal', code: 'UNKNOWN' } }]);
  });
});

describe('RefreshCoordinator: reads', () => {
  it('drops and throws typed errors for a missing or revoked chain', async () => {
    const h = harness();
    await expect(h.coordinator.readActive('member-a', 'portal')).rejects.toBeInstanceOf(PortalNotInstalledError);
    await h.store.upsert(chainRecord({ state: 'revoked', revokedReason: 'invalid_grant' }));
    await expect(h.coordinator.readActive('member-a', 'portal')).rejects.toBeInstanceOf(PortalRevokedError);
    expect(h.drops.map((d) => d.reason)).toEqual(['lifecycle', 'revoked']);
  });

  it('wraps a store read failure in a StoreError and passes its own errors through', async () => {
    const h = harness();
    h.store.beforeGet = () => {
      throw new Error('EIO');
    };
    await expect(h.coordinator.read('member-a', 'portal')).rejects.toMatchObject({ constructor: StoreError, memberId: 'member-a' });
    const own = new StoreError('corrupt');
    h.store.beforeGet = () => {
      throw own;
    };
    await expect(h.coordinator.read('member-a', 'portal')).rejects.toBe(own);
  });
});

describe('RefreshCoordinator: keep-alive and moves', () => {
  it('refreshes an idle chain, or adopts one another worker refreshed since it was read', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    h.clock.set(T0 + 21 * 86_400_000);
    const idleMs = 20 * 86_400_000;
    const first = await h.coordinator.keepAlive(record, idleMs);
    expect(first.outcome).toBe('refreshed');
    expect(h.refresh.calls).toHaveLength(1);
    const second = await h.coordinator.keepAlive(record, idleMs);
    expect(second).toMatchObject({ outcome: 'refreshed', record: { accessToken: 'access-1' } });
    expect(h.refresh.calls).toHaveLength(1);
  });

  it('reports revoked and failed chains without throwing', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    h.clock.set(T0 + 21 * 86_400_000);
    h.script(() => {
      throw new OAuthUnavailableError('down', 503);
    });
    expect((await h.coordinator.keepAlive(record, 1)).outcome).toBe('failed');
    h.script(() => {
      throw new OAuthRejectedError('invalid_grant', 400);
    });
    expect((await h.coordinator.keepAlive(record, 1)).outcome).toBe('revoked');
  });

  it('counts a keep-alive whose stored chain is still idle as failed', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    h.clock.set(T0 + 21 * 86_400_000);
    h.script(() => tokens(1, T0));
    h.store.beforeUpdate = (_key, patch) => {
      Object.assign(patch, { chainUpdatedAt: T0 });
    };
    expect((await h.coordinator.keepAlive(record, 86_400_000)).outcome).toBe('failed');
  });

  it('stores a portal move and drops the client; a gone or replaced chain is not moved', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    const moved = await h.coordinator.moveEndpoint(record, 'https://new.example.com/rest/', 'new.example.com');
    expect(moved).toMatchObject({ clientEndpoint: 'https://new.example.com/rest/', domain: 'new.example.com' });
    expect(h.drops).toEqual([{ memberId: 'member-a', chain: 'portal', reason: 'endpoint-changed' }]);
    await h.store.upsert(chainRecord({ accessToken: 'other', refreshToken: 'other-r' }));
    const replaced = await h.coordinator.moveEndpoint(moved as PortalRecord, 'https://x.example.com/rest/', 'x.example.com');
    expect(replaced?.clientEndpoint).toBe('https://a.example.com/rest/');
    await h.store.deletePortal('member-a');
    expect(await h.coordinator.moveEndpoint(record, 'https://y.example.com/rest/', 'y.example.com')).toBeUndefined();
  });
});

describe('RefreshCoordinator: chains are independent', () => {
  it('refreshes a user chain without touching the portal chain', async () => {
    const h = harness();
    const portal = await h.store.upsert(chainRecord());
    const user = await h.store.upsert(chainRecord({ chain: 'user:7', userId: 7, accessToken: 'u-0', refreshToken: 'u-r0' }));
    h.clock.set(NOW);
    const result = await h.coordinator.ensureFresh(view(user), { reason: 'expiring' });
    expect(result).toMatchObject({ chain: 'user:7', accessToken: 'access-1' });
    expect(await h.store.get('member-a')).toEqual(portal);
  });
});

describe('RefreshCoordinator: windows and URLs', () => {
  it('gives each holder a window inside half the pair lifetime', async () => {
    const h = harness();
    const record = await h.store.upsert(chainRecord());
    expect(h.coordinator.windowFor(record)).toBe(300);
    const short = await h.store.upsert(chainRecord({ expires: Math.floor(T0 / 1000) + 120 }));
    expect(h.coordinator.windowFor(short)).toBe(60);
  });

  it('tells http(s) URLs from others', async () => {
    const { isHttpUrl } = await import('../../src/coordinator/coordinator.js');
    expect(isHttpUrl('https://a.example.com/rest/')).toBe(true);
    expect(isHttpUrl('http://a.example.com/')).toBe(true);
    expect(isHttpUrl('ws://a.example.com/')).toBe(false);
    expect(isHttpUrl('::')).toBe(false);
  });
});
