// The expiry wave's lost chains (README "Performance", row 5), reproduced on loopback: a refresh
// answer the stand-in sends after the caller's timeout (oauthTimeoutMs). The stand-in has spent the
// refresh token by then, so a client that abandons the request and refreshes again loses the chain.
// The pool keeps waiting for the answer (callers get OAuthUnavailableError meanwhile), stores the
// late pair, and the chain goes on with exactly one refresh.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPortalTokensError, OAuthUnavailableError } from '../../src/errors.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { recordingLogger } from './helpers.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

describe('a refresh answer arriving after the caller timed out', () => {
  it('is stored, not lost: the chain keeps working and exactly one refresh was made', async () => {
    const store = new MemoryTokenStore();
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: recordingLogger(), oauthTimeoutMs: 200 });
    try {
      const portal = b24.addPortal();
      await seedStore(store, b24, portal.memberId);
      const call = async () => (await pool.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' });
      expect((await call()).isSuccess).toBe(true);
      b24.expireAccessTokens(portal.memberId);
      b24.resetStats();
      b24.setOAuthDelay(700); // the answer comes 700 ms after the request; callers wait 200 ms
      const early = await call().then(
        (result) => ({ ok: result.isSuccess, error: undefined as unknown }),
        (error: unknown) => ({ ok: false, error }),
      );
      expect(early.ok).toBe(false);
      expect(findPortalTokensError(early.error)).toBeInstanceOf(OAuthUnavailableError);
      // Until the stand-in has answered (and spent the refresh token); the next calls come right after.
      for (let i = 0; i < 500 && b24.stats.refreshSuccess === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(b24.stats.refreshSuccess).toBe(1);
      b24.setOAuthDelay(0);
      const later = await Promise.all([call(), call(), call()]);
      expect(later.map((r) => r.isSuccess)).toEqual([true, true, true]);
      expect(b24.stats.refreshRequests).toBe(1);
      expect(b24.stats.refreshReuse).toBe(0);
      expect(await store.get(portal.memberId)).toMatchObject({ state: 'active', revokedReason: null });
      expect(pool.stats()).toMatchObject({ refreshes: 1, revocations: 0 });
    } finally {
      b24.setOAuthDelay(0);
      await pool.close();
    }
  });

  it('close() waits for the refreshes already sent and sends no other: no refresh reaches the host after it', async () => {
    const store = new MemoryTokenStore();
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: recordingLogger(), maxConcurrentRefreshes: 2 });
    const members = Array.from({ length: 6 }, () => b24.addPortal().memberId);
    for (const m of members) await seedStore(store, b24, m);
    const clients = await Promise.all(members.map((m) => pool.clientFor(m)));
    b24.expireAccessTokens();
    b24.resetStats();
    b24.setOAuthDelay(200);
    try {
      const calls = clients.map((c) => c.actions.v2.call.make({ method: 'profile' }).then((r) => r.isSuccess, () => false));
      for (let i = 0; i < 300 && b24.stats.refreshRequests < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      await pool.close();
      const sentBeforeClose = b24.stats.refreshRequests;
      expect(sentBeforeClose).toBe(2); // the two sent; four were waiting for a turn
      await Promise.all(calls);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(b24.stats.refreshRequests).toBe(sentBeforeClose);
      expect(b24.stats.refreshSuccess).toBe(2);
      // The two answers were stored: their chains go on from the stored pairs.
      const moved = await Promise.all(members.map(async (m) => (await store.get(m))?.version));
      expect(moved.filter((v) => v === 2)).toHaveLength(2);
    } finally {
      b24.setOAuthDelay(0);
    }
  });
});
