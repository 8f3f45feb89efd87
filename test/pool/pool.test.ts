// PortalClientPool against the stand-in Bitrix24, which enforces single-use refresh tokens and
// kills the previous access token on refresh: counts of refreshes, reuse and failed calls.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { B24OAuth } from '@bitrix24/b24jssdk';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  OAuthUnavailableError,
  InvalidArgumentError,
  PortalNotInstalledError,
  PortalRevokedError,
  findPortalTokensError,
} from '../../src/errors.js';
import type { FetchLike } from '../../src/oauth/oauth-client.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import type { PoolEventMap } from '../../src/pool-events.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { recordingLogger, seedPortal } from './helpers.js';

const TOKEN_PATTERN = /[0-9a-f]{70}/;

let b24: FakeBitrix24;
let dir: string;
let logger: ReturnType<typeof recordingLogger>;

beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});
beforeEach(async () => {
  b24.resetStats();
  b24.failOAuth(null);
  dir = await mkdtemp(join(tmpdir(), 'b24pt-pool-'));
  logger = recordingLogger();
});
afterEach(async () => {
  // No log line of any pool test may carry a token value.
  for (const line of logger.lines) expect(line).not.toMatch(TOKEN_PATTERN);
  await rm(dir, { recursive: true, force: true });
});

/** A fetch whose requests are given up after `ms` (the refresh's hard cap, shortened for a test). */
function hardCapFetch(ms: number): FetchLike {
  return (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(ms) });
}

function newPool(store: TokenStore, extra: Partial<ConstructorParameters<typeof PortalClientPool>[0]> = {}): PortalClientPool {
  return new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger, ...extra });
}

async function installedPortal(store: TokenStore) {
  const portal = b24.addPortal();
  const chain = b24.issueChain(portal.memberId);
  const record = await seedPortal(store, b24, portal.memberId, chain);
  return { portal, chain, record };
}

async function profile(client: B24OAuth, version: 'v2' | 'v3'): Promise<boolean> {
  const result = await client.actions[version].call.make({ method: 'profile' });
  return result.isSuccess;
}

/** Runs calls concurrently and counts outcomes; a thrown call counts as failed. */
async function storm(calls: (() => Promise<boolean>)[]): Promise<{ ok: number; failed: number; errors: unknown[] }> {
  const results = await Promise.allSettled(calls.map((call) => call()));
  const errors = results.filter((r) => r.status === 'rejected').map((r) => (r).reason);
  const ok = results.filter((r) => r.status === 'fulfilled' && r.value).length;
  return { ok, failed: results.length - ok, errors };
}

describe('PortalClientPool', () => {
  it('answers 50 concurrent v2/v3 calls on a server-expired token with exactly one refresh and no failure', async () => {
    const store = new FileTokenStore({ directory: dir });
    const { portal } = await installedPortal(store);
    const pool = newPool(store);
    const refreshed: PoolEventMap['refreshed'][] = [];
    pool.on('refreshed', (event) => refreshed.push(event));
    b24.expireAccessTokens(portal.memberId);

    const calls = Array.from({ length: 50 }, (_, i) => async () =>
      profile(await pool.clientFor(portal.memberId), i % 2 === 0 ? 'v2' : 'v3'),
    );
    const outcome = await storm(calls);

    expect(outcome).toEqual({ ok: 50, failed: 0, errors: [] });
    expect(b24.stats.refreshRequests).toBe(1);
    expect(b24.stats.refreshReuse).toBe(0);
    expect(refreshed).toHaveLength(1);
    expect(refreshed[0]).toMatchObject({ memberId: portal.memberId, reason: 'rejected' });
    expect(pool.stats()).toMatchObject({ refreshes: 1, clientsBuilt: 1 });
  });

  it('persists the new pair before use, so a restarted pool uses it without refreshing', async () => {
    const store = new FileTokenStore({ directory: dir });
    const { portal, record } = await installedPortal(store);
    const first = newPool(store);
    b24.expireAccessTokens(portal.memberId);
    expect(await profile(await first.clientFor(portal.memberId), 'v2')).toBe(true);
    expect(b24.stats.refreshRequests).toBe(1);

    const stored = await store.get(portal.memberId);
    expect(stored?.version).toBe(record.version + 1);
    expect(stored?.accessToken).not.toBe(record.accessToken);
    expect(b24.tokenStatus(stored!.accessToken)).toBe('live');
    expect(b24.tokenStatus(record.refreshToken)).toBe('spent');

    const restarted = newPool(new FileTokenStore({ directory: dir }));
    const outcome = await storm(Array.from({ length: 10 }, () => async () => profile(await restarted.clientFor(portal.memberId), 'v3')));
    expect(outcome.ok).toBe(10);
    expect(b24.stats.refreshRequests).toBe(1);
    expect(restarted.stats().refreshes).toBe(0);
  });

  it('refreshes 10 portals under 20 concurrent calls each with exactly 10 refresh requests', async () => {
    const store = new MemoryTokenStore();
    const portals = await Promise.all(Array.from({ length: 10 }, () => installedPortal(store)));
    const pool = newPool(store);
    for (const { portal } of portals) b24.expireAccessTokens(portal.memberId);

    const calls = portals.flatMap(({ portal }) =>
      Array.from({ length: 20 }, (_, i) => async () => profile(await pool.clientFor(portal.memberId), i % 2 ? 'v2' : 'v3')),
    );
    const outcome = await storm(calls);

    expect(outcome.failed).toBe(0);
    expect(outcome.ok).toBe(200);
    expect(b24.stats.refreshRequests).toBe(10);
    expect(b24.stats.refreshReuse).toBe(0);
  });

  it('marks a revoked portal in the store, evicts it, and never asks the OAuth host again', async () => {
    const store = new MemoryTokenStore();
    const { portal } = await installedPortal(store);
    const pool = newPool(store);
    const client = await pool.clientFor(portal.memberId);
    const evicted: PoolEventMap['evicted'][] = [];
    const revoked: PoolEventMap['revoked'][] = [];
    pool.on('evicted', (e) => evicted.push(e)).on('revoked', (e) => revoked.push(e));

    b24.revoke(portal.memberId, 'invalid_grant');
    b24.expireAccessTokens(portal.memberId);
    const error = await client.actions.v2.call.make({ method: 'profile' }).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(findPortalTokensError(error)).toBeInstanceOf(PortalRevokedError);
    const stored = await store.get(portal.memberId);
    expect(stored).toMatchObject({ state: 'revoked', revokedReason: 'invalid_grant' });
    expect(revoked).toEqual([{ memberId: portal.memberId, chain: 'portal', reason: 'invalid_grant' }]);
    expect(evicted).toEqual([{ memberId: portal.memberId, chain: 'portal', reason: 'revoked' }]);
    await expect(pool.clientFor(portal.memberId)).rejects.toBeInstanceOf(PortalRevokedError);

    // The stale client someone still holds, and further clientFor calls: no more refresh requests.
    await client.actions.v3.call.make({ method: 'profile' }).catch(() => undefined);
    await pool.clientFor(portal.memberId).catch(() => undefined);
    expect(b24.stats.refreshRequests).toBe(1);
    expect(pool.stats().revocations).toBe(1);
  });

  it.each([
    ['answering 503', { status: 503 } as const, { backoff: { transientMinMs: 0 } }],
    // Callers stop waiting after oauthTimeoutMs; the request itself is given up only at the hard cap
    // (its fetch timeout), here cut to 1 s by the injected fetch.
    ['not answering', { mode: 'hang' } as const, { oauthTimeoutMs: 300, backoff: { transientMinMs: 0 }, fetch: hardCapFetch(1000) }],
  ])('surfaces a typed transient error when the OAuth host is %s, keeps the chain, and refreshes next time', async (_label, failure, options) => {
    const store = new MemoryTokenStore();
    const { portal } = await installedPortal(store);
    const pool = newPool(store, options);
    const before = await store.get(portal.memberId);
    b24.expireAccessTokens(portal.memberId);
    b24.failOAuth(failure, 1);

    const error = await (await pool.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(findPortalTokensError(error)).toBeInstanceOf(OAuthUnavailableError);
    expect(await store.get(portal.memberId)).toEqual(before);
    expect(b24.tokenStatus(before!.refreshToken)).not.toBe('spent');
    // The request is given up (at once for a 503, at the hard cap for no answer) before the next refresh.
    for (let i = 0; i < 300 && pool.stats().refreshFailures === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(b24.stats.refreshRequests).toBe(1);

    expect(await profile(await pool.clientFor(portal.memberId), 'v2')).toBe(true);
    expect(b24.stats.refreshSuccess).toBe(1);
    expect(b24.stats.refreshReuse).toBe(0);
    expect(pool.stats().refreshFailures).toBe(1);
  });

  it('refreshes a pair inside the refresh-ahead window once, before any call meets a 401', async () => {
    const store = new MemoryTokenStore();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    const nowSec = Math.floor(Date.now() / 1000);
    // The pair was issued 3500 s ago and has 100 s left: inside the default 300 s window.
    await seedPortal(store, b24, portal.memberId, chain, {
      expires: nowSec + 100,
      chainUpdatedAt: (nowSec - 3500) * 1000,
    });
    const pool = newPool(store);

    const outcome = await storm(Array.from({ length: 20 }, (_, i) => async () => profile(await pool.clientFor(portal.memberId), i % 2 ? 'v2' : 'v3')));

    expect(outcome).toEqual({ ok: 20, failed: 0, errors: [] });
    expect(b24.stats.refreshRequests).toBe(1);
    expect(b24.stats.rest.expiredToken + b24.stats.rest.invalidToken).toBe(0);
    expect((await store.get(portal.memberId))!.expires).toBeGreaterThan(nowSec + 3000);
  });

  it('adopts a pair another pool stored instead of refreshing again', async () => {
    const store = new MemoryTokenStore();
    const { portal } = await installedPortal(store);
    const a = newPool(store);
    const b = newPool(store);
    const clientB = await b.clientFor(portal.memberId);
    expect(await profile(clientB, 'v2')).toBe(true);

    b24.expireAccessTokens(portal.memberId);
    expect(await profile(await a.clientFor(portal.memberId), 'v2')).toBe(true);
    // B's cached client still holds the superseded token; the portal refuses it, B adopts A's pair.
    expect(await profile(clientB, 'v3')).toBe(true);

    expect(b24.stats.refreshRequests).toBe(1);
    expect(a.stats().refreshes).toBe(1);
    expect(b.stats()).toMatchObject({ refreshes: 0, adoptions: 1 });
  });

  it('re-sends a request refused for a token the chain already moved past, without refreshing', async () => {
    const store = new MemoryTokenStore();
    const { portal } = await installedPortal(store);
    const pool = newPool(store);
    const client = await pool.clientFor(portal.memberId);
    b24.expireAccessTokens(portal.memberId);
    // Slow portal answers keep the first wave in flight while the chain moves under it.
    b24.setRestDelay(50);
    try {
      const outcome = await storm(Array.from({ length: 6 }, (_, i) => () => profile(client, i % 2 ? 'v2' : 'v3')));
      expect(outcome.failed).toBe(0);
    } finally {
      b24.setRestDelay(0);
    }
    expect(b24.stats.refreshRequests).toBe(1);
    expect(pool.stats().resentRequests).toBeGreaterThan(0);
  });

  it('puts the current token on requests that waited in the SDK rate limiter while the chain moved', async () => {
    const store = new MemoryTokenStore();
    const { portal } = await installedPortal(store);
    // A small bucket makes most calls queue in the SDK's limiter, holding the token they read before waiting.
    const pool = newPool(store, { restrictionParams: { rateLimit: { burstLimit: 3, drainRate: 25, adaptiveEnabled: false } } });
    const client = await pool.clientFor(portal.memberId);
    b24.expireAccessTokens(portal.memberId);

    const outcome = await storm(Array.from({ length: 15 }, () => () => profile(client, 'v2')));

    expect(outcome).toEqual({ ok: 15, failed: 0, errors: [] });
    expect(b24.stats.refreshRequests).toBe(1);
    // Queued requests left with the new token: none was refused as superseded.
    expect(b24.stats.rest.invalidToken).toBe(0);
  });

  it('follows a renamed portal: stores its new REST root and re-sends the POST there instead of following as GET', async () => {
    const store = new MemoryTokenStore();
    const { portal, record } = await installedPortal(store);
    const pool = newPool(store);
    const evicted: PoolEventMap['evicted'][] = [];
    pool.on('evicted', (e) => evicted.push(e));
    const client = await pool.clientFor(portal.memberId);
    b24.rename(portal.memberId, `renamed-${portal.memberId.slice(0, 8)}.bitrix24.test`);

    expect(await profile(client, 'v2')).toBe(true);
    expect(await profile(client, 'v3')).toBe(true);

    const stored = await store.get(portal.memberId);
    expect(stored!.clientEndpoint).toBe(portal.clientEndpoint);
    expect(stored!.clientEndpoint).not.toBe(record.clientEndpoint);
    expect(stored!.accessToken).toBe(record.accessToken);
    expect(evicted).toEqual([{ memberId: portal.memberId, chain: 'portal', reason: 'endpoint-changed' }]);
    const redirects = b24.stats.rest.redirects;
    expect(redirects).toBeGreaterThanOrEqual(1);

    // A rebuilt client goes straight to the new address.
    expect(await profile(await pool.clientFor(portal.memberId), 'v2')).toBe(true);
    expect(b24.stats.rest.redirects).toBe(redirects);
  });

  it('throws a typed error for a portal that is not installed', async () => {
    const pool = newPool(new MemoryTokenStore());
    await expect(pool.clientFor('0123456789abcdef0123456789abcdef')).rejects.toBeInstanceOf(PortalNotInstalledError);
    await expect(pool.clientFor('')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('bounds the cache with max and reports capacity evictions', async () => {
    const store = new MemoryTokenStore();
    const portals = await Promise.all(Array.from({ length: 3 }, () => installedPortal(store)));
    const pool = newPool(store, { max: 2 });
    const evicted: PoolEventMap['evicted'][] = [];
    pool.on('evicted', (e) => evicted.push(e));
    for (const { portal } of portals) await pool.clientFor(portal.memberId);
    expect(pool.stats().cachedClients).toBe(2);
    expect(evicted).toEqual([{ memberId: portals[0]!.portal.memberId, chain: 'portal', reason: 'capacity' }]);
    expect(pool.evict(portals[2]!.portal.memberId)).toBe(true);
    expect(pool.evict(portals[2]!.portal.memberId)).toBe(false);
    await pool.close();
    expect(pool.stats().cachedClients).toBe(0);
  });

  it('keeps idle chains alive with a sweep that refreshes each once, even with two workers sweeping', async () => {
    const store = new FileTokenStore({ directory: dir });
    const dayMs = 86_400_000;
    const idle = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const { portal, chain } = await installedPortal(store);
        return seedPortal(store, b24, portal.memberId, chain, { chainUpdatedAt: Date.now() - 25 * dayMs });
      }),
    );
    await installedPortal(store); // fresh: left alone
    const [x, y] = [newPool(store), newPool(store)];

    const [rx, ry] = await Promise.all([x.sweep({ idleDays: 20 }), y.sweep({ idleDays: 20, concurrency: 2 })]);

    expect(rx.checked).toBe(4);
    expect(rx.refreshed + ry.refreshed).toBeGreaterThanOrEqual(3);
    expect(b24.stats.refreshRequests).toBe(3);
    expect(b24.stats.refreshReuse).toBe(0);
    for (const record of idle) {
      expect((await store.get(record.memberId))!.chainUpdatedAt).toBeGreaterThan(Date.now() - dayMs);
    }
    expect(await x.sweep({ idleDays: 20 })).toMatchObject({ checked: 4, refreshed: 0 });
    expect(b24.stats.refreshRequests).toBe(3);
  });
});
