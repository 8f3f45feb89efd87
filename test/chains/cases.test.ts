// The chain core's rules, one case each (issue 20): every test here failed before its rule was in
// the core. Real handler on loopback HTTP, the stand-in Bitrix24, a real pool and store.
import { copyFile, readdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VerificationFailedError } from '../../src/errors.js';
import type { UninstallEvent } from '../../src/events/types.js';
import type { UninstallOutcome } from '../../src/chains/kit.js';
import type { PortalRecord } from '../../src/store/token-store.js';
import { forgedUninstall, listen, toForm, withAuth } from '../http/helpers.js';
import { startChainRig, type ChainRig } from './rig.js';

let r: ChainRig;
beforeEach(async () => {
  r = await startChainRig();
});
afterEach(async () => {
  await r.close();
});

const TEN_YEARS_SEC = 10 * 365 * 86_400;

describe('case 1: a claimed ts never locks out the genuine installer', () => {
  /** A portal whose install was lost; user 7 (not an administrator) posts an install of their own chain from the future. */
  async function lockedOut(): Promise<{ memberId: string; applicationToken: string }> {
    const portal = r.rig.b24.addPortal({ users: [1, 7], admins: [1] });
    const own = r.rig.b24.installEvent(portal.memberId, { userId: 7 });
    const future = String(Number(own.payload.ts) + TEN_YEARS_SEC);
    const body = toForm({ ...withAuth(own.payload, { application_token: 'chosen0by0the0user000000000000000' }), ts: future });
    expect(await r.send(body)).toBe(200);
    expect(await r.rig.store.get(portal.memberId)).toMatchObject({ userId: 7 });
    return { memberId: portal.memberId, applicationToken: portal.applicationToken };
  }

  it("the administrator's install replaces it, whatever the timestamps say", async () => {
    const { memberId, applicationToken } = await lockedOut();
    const stored = (await r.rig.store.get(memberId))!;
    // The false claim is not what the store orders by.
    expect(stored.eventTs).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 300);
    expect(await r.send(r.rig.b24.installEvent(memberId).form)).toBe(200);
    const record = (await r.rig.store.get(memberId))!;
    expect(record.userId).toBe(1);
    expect(record.applicationToken).toBe(applicationToken);
    expect(r.rig.b24.tokenStatus(record.refreshToken)).toBe('live');
  });

  it("the administrator's update replaces it too", async () => {
    const { memberId } = await lockedOut();
    expect(await r.send(r.rig.b24.updateEvent(memberId, { userId: 1 }).form)).toBe(200);
    expect((await r.rig.store.get(memberId))!.userId).toBe(1);
  });

  it("the administrator's reseed replaces it", async () => {
    const { memberId } = await lockedOut();
    const record = await r.rig.pool.reseed(r.page(memberId, 1));
    expect(record).toMatchObject({ chain: 'portal', userId: 1 });
    expect((await r.rig.store.get(memberId))!.userId).toBe(1);
  });

  it("the administrator's install spooled during an outage replaces a user's install from the future stored after it", async () => {
    const portal = r.rig.b24.addPortal({ users: [1, 7], admins: [1] });
    r.store.down = true;
    expect(await r.send(r.rig.b24.installEvent(portal.memberId).form)).toBe(200);
    r.store.down = false;
    const own = r.rig.b24.installEvent(portal.memberId, { userId: 7 });
    expect(await r.send(toForm({ ...own.payload, ts: String(Number(own.payload.ts) + TEN_YEARS_SEC) }))).toBe(200);
    expect((await r.rig.store.get(portal.memberId))!.userId).toBe(7);
    expect(await r.handler.replaySpool()).toMatchObject({ applied: 1 });
    const record = (await r.rig.store.get(portal.memberId))!;
    expect(record.userId).toBe(1);
    expect(r.rig.b24.tokenStatus(record.refreshToken)).toBe('live');
  });

  it("an older administrator's event still loses to a newer administrator's chain", async () => {
    const portal = r.rig.b24.addPortal({ users: [1, 7], admins: [1] });
    const install = r.rig.b24.installEvent(portal.memberId);
    const late = toForm({ ...r.rig.b24.installEvent(portal.memberId).payload, ts: String(Number(install.payload.ts) - 100) });
    expect(await r.send(install.form)).toBe(200);
    const before = JSON.stringify(await r.rig.store.get(portal.memberId));
    expect(await r.send(late)).toBe(200);
    expect(JSON.stringify(await r.rig.store.get(portal.memberId))).toBe(before);
  });
});

describe('case 2: revoked is not uninstalled', () => {
  /** An installed portal whose stored chain was lost (revoked in the store only), and user 7's live chain. */
  async function revokedPortal(): Promise<{ memberId: string; domain: string; clientEndpoint: string; applicationToken: string }> {
    const portal = r.rig.b24.addPortal({ users: [1, 7], admins: [1] });
    expect(await r.send(r.rig.b24.installEvent(portal.memberId).form)).toBe(200);
    const stored = (await r.rig.store.get(portal.memberId))!;
    const marked = await r.rig.store.update(portal.memberId, stored.version, { state: 'revoked', revokedReason: 'lost_rotation', revokedAt: Date.now() });
    expect(marked.ok).toBe(true);
    return { memberId: portal.memberId, domain: portal.domain, clientEndpoint: stored.clientEndpoint, applicationToken: portal.applicationToken };
  }

  it("refuses an uninstall while a user's chain of the portal still works, deleting nothing", async () => {
    const portal = await revokedPortal();
    await r.rig.pool.rememberUser(r.page(portal.memberId, 7));
    const hooked: boolean[] = [];
    await r.mount({ onUninstalled: (event) => void hooked.push(event.clean) });
    const body = forgedUninstall(portal, r.rig.b24.serverEndpoint, portal.applicationToken);
    expect(await r.send(body)).toBe(403);
    expect(await r.rig.store.get(portal.memberId)).toMatchObject({ state: 'revoked' });
    const user = (await r.rig.store.get({ memberId: portal.memberId, chain: 'user:7' }))!;
    expect(r.rig.b24.tokenStatus(user.refreshToken)).toBe('live');
    expect(hooked).toEqual([]);
  });

  it('with no live chain to ask, removes only dead records and tells the hook the uninstall was not confirmed', async () => {
    const portal = await revokedPortal();
    const hooked: { clean: boolean; outcome: UninstallOutcome | undefined }[] = [];
    await r.mount({
      onUninstalled: (event: UninstallEvent, _record: PortalRecord, outcome?: UninstallOutcome) => void hooked.push({ clean: event.clean, outcome }),
    });
    const body = forgedUninstall(portal, r.rig.b24.serverEndpoint, portal.applicationToken).replace('data%5BCLEAN%5D=0', 'data%5BCLEAN%5D=1');
    expect(await r.send(body)).toBe(200);
    expect(hooked).toEqual([{ clean: false, outcome: { confirmed: false } }]);
  });

  it('a genuine uninstall is confirmed by a live chain and deletes every chain', async () => {
    const portal = r.rig.b24.addPortal({ users: [1, 7], admins: [1] });
    expect(await r.send(r.rig.b24.installEvent(portal.memberId).form)).toBe(200);
    await r.rig.pool.rememberUser(r.page(portal.memberId, 7));
    const outcomes: UninstallOutcome[] = [];
    await r.mount({ onUninstalled: (_event, _record, outcome) => void outcomes.push(outcome) });
    expect(await r.send(r.rig.b24.uninstallEvent(portal.memberId, { clean: true }).form)).toBe(200);
    expect(await r.rig.store.get(portal.memberId)).toBeUndefined();
    expect(await r.rig.store.get({ memberId: portal.memberId, chain: 'user:7' })).toBeUndefined();
    expect(outcomes).toEqual([{ confirmed: true }]);
  });
});

describe("an uninstall's delete is fenced by what it checked", () => {
  it('a verified reinstall that lands while a confirmed uninstall stalls is not deleted', async () => {
    const portal = r.rig.b24.addPortal({ users: [1], admins: [1] });
    expect(await r.send(r.rig.b24.installEvent(portal.memberId).form)).toBe(200);
    const uninstall = r.rig.b24.uninstallEvent(portal.memberId);
    let reinstalled = 0;
    r.store.beforeDelete = async () => {
      // Confirmed dead, the uninstall stalls; the administrator reinstalls meanwhile.
      reinstalled = await r.send(r.rig.b24.installEvent(portal.memberId).form);
    };
    await r.send(uninstall.form);
    expect(reinstalled).toBe(200);
    const record = (await r.rig.store.get(portal.memberId))!;
    expect(record).toMatchObject({ state: 'active', userId: 1 });
    expect(r.rig.b24.tokenStatus(record.refreshToken)).toBe('live');
  });
});

describe('case 9: applying a spooled entry is idempotent', () => {
  /** An administrator's install spooled while the store was down. */
  async function spooledInstall(): Promise<string> {
    const portal = r.rig.b24.addPortal();
    r.store.down = true;
    expect(await r.send(r.rig.b24.installEvent(portal.memberId).form)).toBe(200);
    r.store.down = false;
    expect(await r.spool.size()).toBe(1);
    return portal.memberId;
  }

  /** The pool refreshes the portal's chain: the spooled pair is spent from now on. */
  async function poolRefreshes(memberId: string): Promise<string> {
    const before = (await r.rig.store.get(memberId))!.refreshToken;
    r.rig.b24.expireAccessTokens(memberId);
    expect(await r.rig.pool.confirmChain(memberId)).toBe('alive');
    const after = (await r.rig.store.get(memberId))!.refreshToken;
    expect(after).not.toBe(before);
    expect(r.rig.b24.tokenStatus(before)).toBe('spent');
    return after;
  }

  it("the store saved the write but its answer was lost: the next drain changes nothing", async () => {
    const memberId = await spooledInstall();
    r.store.loseAnswers = 1;
    expect(await r.handler.replaySpool()).toMatchObject({ applied: 0, retried: 1 });
    const live = await poolRefreshes(memberId);
    await r.handler.replaySpool();
    const record = (await r.rig.store.get(memberId))!;
    expect(record.refreshToken).toBe(live);
    expect(r.rig.b24.tokenStatus(record.refreshToken)).toBe('live');
    expect(await r.spool.size()).toBe(0);
  });

  it('a drainer killed after writing and before removing the entry: the entry replays and changes nothing', async () => {
    const memberId = await spooledInstall();
    const [name] = (await readdir(r.spoolDir)).filter((file) => file.endsWith('.json'));
    const kept = join(r.spoolDir, '..', `${name!}.kept`);
    await copyFile(join(r.spoolDir, name!), kept);
    expect(await r.handler.replaySpool()).toMatchObject({ applied: 1 });
    const live = await poolRefreshes(memberId);
    // The killed drainer's entry is still there when the next process drains.
    await copyFile(kept, join(r.spoolDir, name!));
    expect(await r.spool.size()).toBe(1);
    await r.handler.replaySpool();
    const record = (await r.rig.store.get(memberId))!;
    expect(record.refreshToken).toBe(live);
    expect(r.rig.b24.tokenStatus(record.refreshToken)).toBe('live');
    expect(await r.spool.size()).toBe(0);
  });
});

describe('case 10: a later confirmed uninstall wins over an earlier spooled install', () => {
  it('an uninstall that arrives while the install waits in the spool removes the portal, and the replay does not bring it back', async () => {
    const outcomes: UninstallOutcome[] = [];
    await r.mount({ onUninstalled: (_event, _record, outcome) => void outcomes.push(outcome) });
    const portal = r.rig.b24.addPortal();
    r.store.down = true;
    expect(await r.send(r.rig.b24.installEvent(portal.memberId).form)).toBe(200);
    r.store.down = false;
    expect(await r.send(r.rig.b24.uninstallEvent(portal.memberId).form)).toBe(200);
    expect(await r.rig.store.get(portal.memberId)).toBeUndefined();
    await r.handler.replaySpool();
    expect(await r.rig.store.get(portal.memberId)).toBeUndefined();
    expect(await r.spool.size()).toBe(0);
    expect(outcomes).toEqual([{ confirmed: true }]);
  });
});

describe('the app page recovers a portal with no code of yours: pool.visit', () => {
  it("reseeds a dead portal chain from an administrator's visit, and keeps anyone else's as their own", async () => {
    const portal = r.rig.b24.addPortal({ users: [1, 7], admins: [1] });
    expect(await r.send(r.rig.b24.installEvent(portal.memberId).form)).toBe(200);
    // Alive: a visit never replaces the portal's chain.
    const first = await r.rig.pool.visit(r.page(portal.memberId, 1));
    expect(first).toMatchObject({ chain: 'user:1', reseeded: false, why: 'portal_chain_alive' });
    r.rig.b24.revoke(portal.memberId);
    const user = await r.rig.pool.visit(r.page(portal.memberId, 7));
    expect(user).toMatchObject({ chain: 'user:7', reseeded: false, why: 'not_admin' });
    expect(r.rig.b24.tokenStatus((await r.rig.store.get(portal.memberId))!.refreshToken)).toBe('dead');
    const admin = await r.rig.pool.visit(r.page(portal.memberId, 1));
    expect(admin).toMatchObject({ chain: 'portal', reseeded: true });
    const record = (await r.rig.store.get(portal.memberId))!;
    expect(record).toMatchObject({ state: 'active', userId: 1 });
    expect(r.rig.b24.tokenStatus(record.refreshToken)).toBe('live');
  });

  it("stores the portal's chain from an administrator's visit when the install never arrived", async () => {
    const portal = r.rig.b24.addPortal({ users: [1, 7], admins: [1] });
    expect(await r.rig.pool.visit(r.page(portal.memberId, 7))).toMatchObject({ chain: 'user:7', reseeded: false });
    expect(await r.rig.store.get(portal.memberId)).toBeUndefined();
    expect(await r.rig.pool.visit(r.page(portal.memberId, 1))).toMatchObject({ chain: 'portal', reseeded: true });
    const record = (await r.rig.store.get(portal.memberId))!;
    expect(record).toMatchObject({ state: 'active', userId: 1, applicationToken: portal.applicationToken });
  });

  it('refuses a page whose chain the OAuth host does not prove, storing nothing', async () => {
    const portal = r.rig.b24.addPortal();
    const page = r.page(portal.memberId, 1);
    await expect(r.rig.pool.visit({ ...page, auth: { ...page.auth, refreshToken: 'forged0forged0forged0forged' } })).rejects.toBeInstanceOf(VerificationFailedError);
    expect(await r.rig.store.get(portal.memberId)).toBeUndefined();
  });
});

describe("an administrator's check of the stored chain asks only a REST root the OAuth host confirms", () => {
  it("a stored chain re-pointed at another host (the store altered) gets no user.admin there, and the administrator's reseed replaces it", async () => {
    const seen: string[] = [];
    const stranger = await listen(
      createServer((req, res) => {
        seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ result: true, time: {} }));
      }),
    );
    try {
      const portal = r.rig.b24.addPortal({ users: [1, 7], admins: [1] });
      expect(await r.send(r.rig.b24.installEvent(portal.memberId, { userId: 7 }).form)).toBe(200);
      const stored = (await r.rig.store.get(portal.memberId))!;
      expect(stored.userId).toBe(7);
      // Someone who can write to the database points the chain's REST root at their host.
      const altered = await r.rig.store.update(portal.memberId, stored.version, { clientEndpoint: `${stranger.url}/rest/` });
      expect(altered.ok).toBe(true);
      const record = await r.rig.pool.reseed(r.page(portal.memberId, 1));
      expect(record).toMatchObject({ chain: 'portal', userId: 1 });
      expect(seen).toEqual([]);
    } finally {
      await stranger.close();
    }
  });
});
