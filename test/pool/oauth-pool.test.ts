// PortalClientPool against an OAuth host whose token answers leave out refresh_token and expires:
// the old refresh token is carried forward and expires computed, never stored empty.
// (Moved unchanged from test/oauth/oauth-client.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { seedPortal } from './helpers.js';

describe('PortalClientPool with an incomplete token answer', () => {
  let b24: FakeBitrix24;
  beforeAll(async () => {
    b24 = await FakeBitrix24.start();
  });
  afterAll(async () => {
    await b24.close();
  });

  it('carries a missing refresh_token forward and computes a missing expires, never storing them empty', async () => {
    const store = new MemoryTokenStore();
    const portal = b24.addPortal();
    const seeded = await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));
    // An OAuth host that leaves out refresh_token and expires.
    const stripping = async (input: string, init: RequestInit): Promise<Response> => {
      const response = await fetch(input, init);
      const body = (await response.json()) as Record<string, unknown>;
      delete body['refresh_token'];
      delete body['expires'];
      return new Response(JSON.stringify(body), { status: response.status, headers: { 'content-type': 'application/json' } });
    };
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, fetch: stripping });
    b24.expireAccessTokens(portal.memberId);
    const before = Math.floor(Date.now() / 1000);

    const result = await (await pool.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' });

    expect(result.isSuccess).toBe(true);
    const stored = await store.get(portal.memberId);
    expect(stored!.accessToken).not.toBe(seeded.accessToken);
    expect(stored!.refreshToken).toBe(seeded.refreshToken);
    expect(stored!.expires).toBeGreaterThanOrEqual(before + 3600);
  });
});
