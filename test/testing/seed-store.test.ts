// seedStore: a TokenStore seeded from a stand-in chain, the portal's or a user's, live or expired.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { PORTAL_CHAIN, userChain } from '../../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/index.js';

let b24: FakeBitrix24;
let store: MemoryTokenStore;

beforeEach(async () => {
  b24 = await FakeBitrix24.start();
  store = new MemoryTokenStore();
});

afterEach(async () => {
  await b24.close();
});

describe('seedStore', () => {
  it("writes the portal's chain, issued for the installer, as a verified install would", async () => {
    const portal = b24.addPortal({ userId: 3, scope: 'crm,task', status: 'P' });
    const { record, chain } = await seedStore(store, b24, portal.memberId);
    expect(chain).toMatchObject({ memberId: portal.memberId, userId: 3 });
    expect(b24.tokenStatus(chain.accessToken)).toBe('live');
    expect(record).toMatchObject({
      memberId: portal.memberId,
      chain: PORTAL_CHAIN,
      domain: portal.domain,
      clientEndpoint: portal.clientEndpoint,
      serverEndpoint: b24.serverEndpoint,
      accessToken: chain.accessToken,
      refreshToken: chain.refreshToken,
      expires: chain.expires,
      scope: 'crm,task',
      status: 'P',
      userId: 3,
      applicationToken: portal.applicationToken,
      state: 'active',
      revokedReason: null,
      revokedAt: null,
      version: 1,
    });
    expect(await store.get(portal.memberId)).toEqual(record);
  });

  it("writes a user's chain under userChain(id) without touching the portal's chain", async () => {
    const portal = b24.addPortal({ users: [7] });
    const seeded = await seedStore(store, b24, portal.memberId);
    const seven = await seedStore(store, b24, portal.memberId, { userId: 7 });
    expect(seven.record).toMatchObject({ chain: userChain(7), userId: 7, accessToken: seven.chain.accessToken });
    expect(seven.chain.userId).toBe(7);
    expect(await store.get({ memberId: portal.memberId, chain: userChain(7) })).toEqual(seven.record);
    expect(await store.get(portal.memberId)).toEqual(seeded.record);
  });

  it('stores an expired chain: expiry in the past by the record and by the stand-in, refresh token still live', async () => {
    const portal = b24.addPortal({ users: [7] });
    const before = Math.floor(Date.now() / 1000);
    const { record, chain } = await seedStore(store, b24, portal.memberId, { userId: 7, expired: true });
    expect(record.expires).toBeLessThan(before);
    expect(b24.tokenStatus(chain.accessToken)).toBe('expired');
    expect(b24.tokenStatus(chain.refreshToken)).toBe('live');

    const res = await fetch(`${portal.clientEndpoint}profile`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: chain.accessToken }),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'expired_token' });
  });

  it('stores a given chain and record overrides', async () => {
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    const { record } = await seedStore(store, b24, portal.memberId, { chain, record: { chainUpdatedAt: 1000, applicationToken: null } });
    expect(record).toMatchObject({ accessToken: chain.accessToken, chainUpdatedAt: 1000, applicationToken: null });
  });

  it('refuses an unknown portal and a chain of another portal or user with a TypeError', async () => {
    const portal = b24.addPortal({ users: [7] });
    const other = b24.addPortal();
    await expect(seedStore(store, b24, 'nope')).rejects.toThrow(TypeError);
    await expect(seedStore(store, b24, portal.memberId, { chain: b24.issueChain(other.memberId) })).rejects.toThrow(/another portal/);
    await expect(seedStore(store, b24, portal.memberId, { userId: 7, chain: b24.issueChain(portal.memberId) })).rejects.toThrow(/another user/);
    await expect(seedStore(store, b24, portal.memberId, { userId: 0 })).rejects.toThrow(/options\.userId/);
    expect(await store.get(portal.memberId)).toBeUndefined();
  });
});
