// The payload is a claim; only the OAuth host and the store's own history are evidence. Each case
// here lost a portal, handed it to the wrong person, or sent its token elsewhere before the rules.
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { createLifecycleHandler, type LifecycleHandler, type LifecycleHandlerOptions } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import { FileInstallSpool } from '../../src/spool/file-spool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { ChainKey, PortalRecordInput } from '../../src/store/token-store.js';
import type { FakePortal } from '../../src/testing/fake-bitrix24.js';
import { listen, post, startRig, toForm, withAuth, type Rig } from './helpers.js';

/** A memory store that can be switched off, as a database outage would. */
class SwitchableStore extends MemoryTokenStore {
  down = false;
  #check(): void {
    if (this.down) throw new StoreError('The store is unreachable', { transient: true });
  }
  override async get(key: ChainKey) {
    this.#check();
    return super.get(key);
  }
  override async upsert(record: PortalRecordInput) {
    this.#check();
    return super.upsert(record);
  }
}

let rig: Rig;
let store: SwitchableStore;
let server: { url: string; close: () => Promise<void> };
let handler: LifecycleHandler;
let spoolDir: string;

async function mount(options: Partial<LifecycleHandlerOptions> = {}): Promise<void> {
  await server?.close();
  handler = createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl], ...options });
  server = await listen(createServer(toNodeHandler(handler)));
}

async function send(body: string): Promise<number> {
  return (await post(`${server.url}/bitrix24/events`, body)).status;
}

async function installed(): Promise<FakePortal> {
  const portal = rig.b24.addPortal({ users: [1, 7], admins: [1] });
  expect(await send(rig.b24.installEvent(portal.memberId).form)).toBe(200);
  return portal;
}

async function snapshot(memberId: string): Promise<string> {
  return JSON.stringify(await rig.store.get(memberId));
}

beforeEach(async () => {
  store = new SwitchableStore();
  rig = await startRig({ store });
  spoolDir = await mkdtemp(join(tmpdir(), 'b24pt-spool-'));
  await mount();
});
afterEach(async () => {
  handler.close();
  await server.close();
  await rig.pool.close();
  await rig.b24.close();
  await rm(spoolDir, { recursive: true, force: true });
});

describe('lifecycle events: whose chain it is', () => {
  it("refuses a portal user's own chain posted as ONAPPUPDATE with an application_token of their choosing", async () => {
    const portal = await installed();
    const before = await snapshot(portal.memberId);
    const update = rig.b24.updateEvent(portal.memberId, { userId: 7 });
    const body = toForm(withAuth(update.payload, { application_token: 'chosen0by0the0user000000000000000' }));
    expect(await send(body)).toBe(403);
    expect(await snapshot(portal.memberId)).toBe(before);
    expect(rig.logger.lines.some((line) => line.includes('not_admin_live_chain') && line.includes(portal.memberId))).toBe(true);
  });

  it("accepts an administrator's update, and a non-administrator's only once the stored chain is dead", async () => {
    const portal = await installed();
    expect(await send(rig.b24.updateEvent(portal.memberId, { userId: 1 }).form)).toBe(200);
    expect((await rig.store.get(portal.memberId))?.userId).toBe(1);
    rig.b24.revoke(portal.memberId);
    const update = rig.b24.updateEvent(portal.memberId, { userId: 7 });
    expect(await send(update.form)).toBe(200);
    expect(await rig.store.get(portal.memberId)).toMatchObject({ userId: 7, state: 'active' });
  });

  it("takes user_id from the proven chain, never the payload's", async () => {
    const portal = rig.b24.addPortal({ users: [1, 7], admins: [1] });
    const event = rig.b24.installEvent(portal.memberId);
    expect(await send(toForm(withAuth(event.payload, { user_id: '7' })))).toBe(200);
    expect((await rig.store.get(portal.memberId))?.userId).toBe(1);
  });

  it('stores nothing from a refresh token that does not refresh (a garbage one beside a real access token)', async () => {
    const portal = await installed();
    const before = await snapshot(portal.memberId);
    const update = rig.b24.updateEvent(portal.memberId);
    expect(await send(toForm(withAuth(update.payload, { refresh_token: 'garbage0refresh0token000000000000' })))).toBe(403);
    expect(await snapshot(portal.memberId)).toBe(before);
  });
});

describe('lifecycle events: uninstall only when the app is gone', () => {
  it("refuses an uninstall with the real application_token while the app is still installed, keeping the record and running no hook", async () => {
    const portal = await installed();
    const hooked: string[] = [];
    await mount({ onUninstalled: (event) => void hooked.push(event.auth.memberId) });
    const before = await snapshot(portal.memberId);
    // The body a genuine uninstall would carry, sent while the app is installed (the stand-in's
    // uninstallEvent would uninstall it, so the body is built by hand).
    const body = toForm({
      event: 'ONAPPUNINSTALL',
      event_handler_id: '2',
      ts: String(Math.floor(Date.now() / 1000)),
      data: { CLEAN: '1', LANGUAGE_ID: 'en' },
      auth: { domain: portal.domain, member_id: portal.memberId, application_token: portal.applicationToken },
    });
    expect(await send(body)).toBe(403);
    expect(await rig.store.get(portal.memberId)).toBeDefined();
    expect(JSON.parse(await snapshot(portal.memberId)).state).toBe(JSON.parse(before).state);
    expect(hooked).toEqual([]);
    expect(rig.logger.lines.some((line) => line.includes('app_still_installed'))).toBe(true);
  });

  it('applies a genuine uninstall: the OAuth host no longer refreshes the chain', async () => {
    const portal = await installed();
    expect(await send(rig.b24.uninstallEvent(portal.memberId).form)).toBe(200);
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });
});

describe('lifecycle events: order and lateness', () => {
  it('ignores an older install delivered late after a newer update, and the genuine uninstall still works', async () => {
    const portal = rig.b24.addPortal();
    const install = rig.b24.installEvent(portal.memberId);
    const late = rig.b24.installEvent(portal.memberId); // queued, delivered after the update below
    const lateBody = toForm({ ...late.payload, ts: String(Number(install.payload.ts) - 100) });
    expect(await send(toForm(install.payload))).toBe(200);
    const update = rig.b24.updateEvent(portal.memberId, { applicationToken: 'rotated0application0token0000001' });
    expect(await send(update.form)).toBe(200);
    const after = await snapshot(portal.memberId);

    expect(await send(lateBody)).toBe(200);
    expect(await snapshot(portal.memberId)).toBe(after);
    // A replay of an event already applied carries a spent chain: refused, and nothing changes.
    expect(await send(toForm(install.payload))).toBe(403);
    expect(await snapshot(portal.memberId)).toBe(after);
    expect(await send(rig.b24.uninstallEvent(portal.memberId).form)).toBe(200);
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });

  it('stores an install delivered after its access token expired: its refresh token proves it', async () => {
    const portal = rig.b24.addPortal();
    const install = rig.b24.installEvent(portal.memberId);
    rig.b24.expireAccessTokens(portal.memberId);
    expect(await send(install.form)).toBe(200);
    const record = (await rig.store.get(portal.memberId))!;
    expect(rig.b24.tokenStatus(record.accessToken)).toBe('live');
  });
});

describe('lifecycle events: no install lost to an outage', () => {
  it('spools a proven install while the store is down, answers 200, and applies it once the store is back', async () => {
    const spool = new FileInstallSpool({ directory: spoolDir });
    await mount({ spool });
    const portal = rig.b24.addPortal();
    store.down = true;
    expect(await send(rig.b24.installEvent(portal.memberId).form)).toBe(200);
    expect(await spool.size()).toBe(1);
    store.down = false;
    expect(await handler.replaySpool()).toMatchObject({ applied: 1 });
    const record = (await rig.store.get(portal.memberId))!;
    expect(rig.b24.tokenStatus(record.refreshToken)).toBe('live');
    expect(await spool.size()).toBe(0);
  });

  it('answers 503 without a spool, storing nothing', async () => {
    const portal = rig.b24.addPortal();
    store.down = true;
    expect(await send(rig.b24.installEvent(portal.memberId).form)).toBe(503);
    store.down = false;
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });

  it('never applies a spooled event over a newer one', async () => {
    const spool = new FileInstallSpool({ directory: spoolDir });
    await mount({ spool });
    const portal = rig.b24.addPortal();
    const first = rig.b24.installEvent(portal.memberId);
    store.down = true;
    expect(await send(toForm({ ...first.payload, ts: String(Number(first.payload.ts) - 50) }))).toBe(200);
    store.down = false;
    expect(await send(rig.b24.updateEvent(portal.memberId).form)).toBe(200);
    const newer = await snapshot(portal.memberId);
    await handler.replaySpool();
    expect(await snapshot(portal.memberId)).toBe(newer);
    expect(await spool.size()).toBe(0);
  });
});
