// Per-user chains beside the portal's, and workers' caches kept coherent, against the stand-in.
import type { B24OAuth } from '@bitrix24/b24jssdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findPortalTokensError, PortalNotInstalledError, UserChainMissingError, VerificationFailedError } from '../../src/errors.js';
import { parseAppPageRequest } from '../../src/events/parse.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { userChain, type TokenStore } from '../../src/store/token-store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { basicStore, recordingLogger, seedPortal } from './helpers.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});
beforeEach(() => {
  b24.resetStats();
});

function newPool(store: TokenStore): PortalClientPool {
  return new PortalClientPool({
    ...b24.trust,
    store,
    clientId: b24.clientId,
    clientSecret: b24.clientSecret,
    logger: recordingLogger(),
    trustedOAuthHosts: [b24.serverEndpoint],
  });
}

async function installed(store: TokenStore): Promise<string> {
  const portal = b24.addPortal();
  await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));
  return portal.memberId;
}

async function profileUser(client: B24OAuth): Promise<number> {
  const result = await client.actions.v2.call.make<{ ID: string | number }>({ method: 'profile' });
  return Number(result.getData()?.result.ID);
}

function page(memberId: string, userId: number) {
  const request = b24.appPageRequest(memberId, { userId });
  return parseAppPageRequest({ query: request.query, body: request.body });
}

describe('per-user chains', () => {
  it("keeps each user's chain beside the portal's, each acting as its own user, the portal's bytes untouched", async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const before = JSON.stringify(await store.get(memberId));
    const pool = newPool(store);
    await pool.rememberUser(page(memberId, 7));
    await pool.rememberUser(page(memberId, 9));
    expect(JSON.stringify(await store.get(memberId))).toBe(before);
    expect((await store.listChains(memberId)).map((r) => r.chain)).toEqual(['user:7', 'user:9']);

    const seven = await pool.clientFor(memberId, { userId: 7 });
    const nine = await pool.clientFor(memberId, { userId: 9 });
    expect(seven).not.toBe(nine);
    expect(await profileUser(seven)).toBe(7);
    expect(await profileUser(nine)).toBe(9);

    // A refresh of one chain never touches the others.
    b24.expireAccessTokens(memberId);
    b24.resetStats();
    const nineBefore = JSON.stringify(await store.get({ memberId, chain: userChain(9) }));
    expect(await profileUser(seven)).toBe(7);
    expect(b24.stats.refreshRequests).toBe(1);
    expect(JSON.stringify(await store.get(memberId))).toBe(before);
    expect(JSON.stringify(await store.get({ memberId, chain: userChain(9) }))).toBe(nineBefore);
    await pool.close();
  });

  it('refuses a forged app page and stores nothing', async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const pool = newPool(store);
    const request = b24.appPageRequest(memberId, { userId: 7 });
    const forged = parseAppPageRequest({ query: request.query, body: request.body.replace(/REFRESH_ID=[^&]+/, 'REFRESH_ID=forged0forged') });
    await expect(pool.rememberUser(forged)).rejects.toBeInstanceOf(VerificationFailedError);
    expect(await store.listChains(memberId)).toEqual([]);
  });

  it('gives a typed error for a user without a chain, and for a chain that died, leaving the rest alone', async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const pool = newPool(store);
    await expect(pool.clientFor(memberId, { userId: 5 })).rejects.toBeInstanceOf(UserChainMissingError);

    const stored = await pool.rememberUser(page(memberId, 7));
    // The user's chain dies at the OAuth host (here: its stored refresh token no longer exists there).
    await store.update({ memberId, chain: stored.chain }, stored.version, { refreshToken: 'dead-refresh-token', expires: 1 });
    const client = await pool.clientFor(memberId, { userId: 7 });
    const failure = await client.actions.v2.call.make({ method: 'profile' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(findPortalTokensError(failure)).toBeInstanceOf(UserChainMissingError);
    await expect(pool.clientFor(memberId, { userId: 7 })).rejects.toBeInstanceOf(UserChainMissingError);
    expect(await store.get({ memberId, chain: userChain(7) })).toMatchObject({ state: 'revoked', accessToken: '', refreshToken: '' });
    expect(await profileUser(await pool.clientFor(memberId))).toBeGreaterThan(0);
    await pool.close();
  });

  it('an uninstall removes every chain of the portal', async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const pool = newPool(store);
    await pool.rememberUser(page(memberId, 7));
    expect(await store.deletePortal(memberId)).toBe(2);
    expect(await store.listChains(memberId)).toEqual([]);
    await expect(pool.clientFor(memberId, { userId: 7 })).rejects.toBeInstanceOf(UserChainMissingError);
    await expect(pool.clientFor(memberId)).rejects.toBeInstanceOf(PortalNotInstalledError);
  });
});

describe('coherence between workers sharing a store', () => {
  it("follows another worker's refresh through the change feed: no refused call, no refresh", async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const a = newPool(store);
    const b = newPool(store);
    await b.ready();
    const clientB = await b.clientFor(memberId);
    expect(await profileUser(clientB)).toBeGreaterThan(0);
    b24.expireAccessTokens(memberId);
    expect(await profileUser(await a.clientFor(memberId))).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const refused = b24.stats.rest.invalidToken + b24.stats.rest.expiredToken;
    for (let i = 0; i < 10; i++) expect(await profileUser(clientB)).toBeGreaterThan(0);
    expect(b24.stats.rest.invalidToken + b24.stats.rest.expiredToken).toBe(refused);
    expect(b.stats()).toMatchObject({ refreshes: 0, adoptions: 1, resentRequests: 0 });
    await Promise.all([a.close(), b.close()]);
  });

  it("drops a portal another worker uninstalled: the next clientFor throws, with no REST call", async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const a = newPool(store);
    const b = newPool(store);
    await b.ready();
    await b.clientFor(memberId);
    await store.deletePortal(memberId);
    a.notify({ type: 'uninstalled', memberId });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const calls = b24.stats.rest.ok + b24.stats.rest.otherErrors + b24.stats.rest.invalidToken;
    await expect(b.clientFor(memberId)).rejects.toBeInstanceOf(PortalNotInstalledError);
    expect(b24.stats.rest.ok + b24.stats.rest.otherErrors + b24.stats.rest.invalidToken).toBe(calls);
    await Promise.all([a.close(), b.close()]);
  });

  it('without a change feed, a refused token for an uninstalled app re-reads the store and throws typed', async () => {
    const inner = new MemoryTokenStore();
    const store = basicStore(inner, { list: true });
    const memberId = await installed(store);
    const b = newPool(store);
    const client = await b.clientFor(memberId);
    b24.uninstallEvent(memberId);
    await store.deletePortal(memberId);
    const failure = await client.actions.v2.call.make({ method: 'profile' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(findPortalTokensError(failure)).toBeInstanceOf(PortalNotInstalledError);
    await expect(b.clientFor(memberId)).rejects.toBeInstanceOf(PortalNotInstalledError);
  });

  it("without a change feed, adopts another worker's pair after one refused call", async () => {
    const store = basicStore(new MemoryTokenStore(), { list: true });
    const memberId = await installed(store);
    const a = newPool(store);
    const b = newPool(store);
    const clientB = await b.clientFor(memberId);
    b24.expireAccessTokens(memberId);
    expect(await profileUser(await a.clientFor(memberId))).toBeGreaterThan(0);
    expect(await profileUser(clientB)).toBeGreaterThan(0);
    expect(b24.stats.refreshRequests).toBe(1);
    expect(b.stats()).toMatchObject({ refreshes: 0, adoptions: 1 });
  });
});

describe('reseed', () => {
  it('recovers a chain the OAuth host rotated while its answer was lost (lost_rotation)', async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const pool = new PortalClientPool({
      ...b24.trust,
      store,
      clientId: b24.clientId,
      clientSecret: b24.clientSecret,
      logger: recordingLogger(),
      trustedOAuthHosts: [b24.serverEndpoint],
      backoff: { transientMinMs: 0 },
    });
    const client = await pool.clientFor(memberId);
    b24.expireAccessTokens(memberId);
    b24.failOAuth({ mode: 'rotate-and-drop' }, 1);
    // The first refresh is rotated at the host but its answer never arrives; the retry of the same
    // refresh token is refused: the chain is lost with no one at fault, and says so.
    await client.actions.v2.call.make({ method: 'profile' }).catch(() => undefined);
    await client.actions.v2.call.make({ method: 'profile' }).catch(() => undefined);
    expect(await store.get(memberId)).toMatchObject({ state: 'revoked', revokedReason: 'lost_rotation' });

    const record = await pool.reseed(page(memberId, 1));
    expect(record).toMatchObject({ state: 'active', chain: 'portal' });
    expect(await profileUser(await pool.clientFor(memberId))).toBe(1);
    await pool.close();
  });

  it("brings back a portal whose chain died, from an administrator's app page", async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const pool = newPool(store);
    b24.revoke(memberId); // the stored chain dies with no one at fault
    const record = await pool.reseed(page(memberId, 1));
    expect(record).toMatchObject({ chain: 'portal', state: 'active', userId: 1 });
    expect(await profileUser(await pool.clientFor(memberId))).toBe(1);
    await pool.close();
  });

  it("never replaces a live chain, and never takes a non-administrator's: the page is kept as its user's chain", async () => {
    const store = new MemoryTokenStore();
    const memberId = await installed(store);
    const before = JSON.stringify(await store.get(memberId));
    const pool = newPool(store);
    await expect(pool.reseed(page(memberId, 1))).rejects.toThrow(/still works/);
    expect(JSON.stringify(await store.get(memberId))).toBe(before);
    b24.revoke(memberId);
    const dead = JSON.stringify(await store.get(memberId));
    await expect(pool.reseed(page(memberId, 7))).rejects.toThrow(/not a portal administrator/);
    expect(JSON.stringify(await store.get(memberId))).toBe(dead);
    expect(await store.get({ memberId, chain: userChain(7) })).toMatchObject({ userId: 7 });
    await pool.close();
  });
});
