// The lifecycle handler over real HTTP against the stand-in Bitrix24: verified installs, forged installs
// and uninstalls, store failures, hooks, and no token in any answer or log line of the whole file.

import { createServer } from 'node:http';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PortalNotInstalledError } from '../../src/errors.js';
import { parseInstallEvent } from '../../src/events/parse.js';
import { createLifecycleHandler, type LifecycleHandlerOptions } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { PortalRecordInput, TokenStore } from '../../src/store/token-store.js';
import type { FakePortal } from '../../src/testing/fake-bitrix24.js';
import { contextOf, forgedUninstall, listen, post, startRig, toForm, withAuth, type Rig } from './helpers.js';

let rig: Rig;
let server: { url: string; close: () => Promise<void> };
/** Every answer text and log line of this file, checked for secrets at the end. */
const transcript: string[] = [];
const allSecrets = new Set<string>();

async function mount(options: Partial<LifecycleHandlerOptions> = {}, pool: LifecycleHandlerOptions['pool'] = rig.context) {
  await server?.close();
  const handler = createLifecycleHandler({ pool, trustedOAuthHosts: [rig.b24.oauthUrl], ...options });
  server = await listen(createServer(toNodeHandler(handler)));
}

async function send(body: string, contentType?: string | null) {
  const answer = await post(`${server.url}/bitrix24/events`, body, contentType);
  transcript.push(answer.text);
  return answer;
}

/** Installs a fresh portal through the handler; returns it and its stored record. */
async function installed(): Promise<FakePortal> {
  const portal = rig.b24.addPortal();
  const event = rig.b24.installEvent(portal.memberId);
  rig.secrets.add(event.chain.accessToken, event.chain.refreshToken, portal.applicationToken);
  const answer = await send(event.form);
  expect(answer.status).toBe(200);
  return portal;
}

async function profileName(memberId: string): Promise<unknown> {
  const client = await rig.pool.clientFor(memberId);
  const result = await client.actions.v2.call.make({ method: 'profile' });
  return (result.getData() as { result: { NAME: string } }).result.NAME;
}

beforeEach(async () => {
  rig = await startRig();
  await mount();
});

afterEach(async () => {
  for (const secret of rig.secrets.values) allSecrets.add(secret);
  // Records written during the test hold the newest tokens: collect those too.
  const page = await rig.store.list?.({ limit: 1000 });
  for (const record of page?.records ?? []) {
    for (const value of [record.accessToken, record.refreshToken, record.applicationToken]) {
      if (value !== null) allSecrets.add(value);
    }
  }
  transcript.push(...rig.logger.lines);
  await server.close();
  await rig.pool.close();
  await rig.b24.close();
});

afterAll(() => {
  expect(allSecrets.size).toBeGreaterThan(20);
  const leaks = transcript.filter((line) => [...allSecrets].some((secret) => line.includes(secret)));
  expect(leaks).toEqual([]);
  for (const line of transcript) expect(line).not.toMatch(/\n\s+at /);
});

describe('install and update', () => {
  it('stores a verified install and the pool serves the portal from it', async () => {
    const portal = rig.b24.addPortal({ userName: 'Olga' });
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken, portal.applicationToken);

    const answer = await send(event.form);

    expect(answer).toMatchObject({ status: 200, json: { ok: true } });
    const record = await rig.store.get(portal.memberId);
    expect(record).toMatchObject({
      memberId: portal.memberId,
      domain: portal.domain,
      clientEndpoint: portal.clientEndpoint,
      serverEndpoint: `${rig.b24.oauthUrl}/rest/`,
      applicationToken: portal.applicationToken,
      state: 'active',
      version: 1,
      userId: 1,
    });
    // The event's chain was proven by refreshing it: the fresh pair is stored, the event's is spent.
    expectProven(record!, event.chain);
    expect(rig.b24.stats.refreshRequests).toBe(1);
    expect(await profileName(portal.memberId)).toBe('Olga');
  });

  it('accepts the same event as a JSON body and as a body without a content type', async () => {
    const a = rig.b24.addPortal();
    const b = rig.b24.addPortal();
    const eventA = rig.b24.installEvent(a.memberId);
    const eventB = rig.b24.installEvent(b.memberId);
    rig.secrets.add(eventA.chain.accessToken, eventA.chain.refreshToken, eventB.chain.accessToken, eventB.chain.refreshToken);

    expect((await send(eventA.json, 'application/json; charset=utf-8')).status).toBe(200);
    expect((await send(eventB.json, null)).status).toBe(200);
    expectProven((await rig.store.get(a.memberId))!, eventA.chain);
    expectProven((await rig.store.get(b.memberId))!, eventB.chain);
  });

  it('accepts a JSON event sent as bytes with a UTF-8 byte-order mark and no content type, as the parser does', async () => {
    // Regression: the handler sniffed bodies on its own, saw the mark before `{`, read a form and answered 400.
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken, portal.applicationToken);
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(event.json, 'utf8')]);
    expect(parseInstallEvent(bytes).auth.memberId).toBe(portal.memberId);

    const answer = await post(`${server.url}/bitrix24/events`, bytes, null);
    transcript.push(answer.text);

    expect(answer.status).toBe(200);
    expectProven((await rig.store.get(portal.memberId))!, event.chain);
  });

  it('a verified reinstall replaces the chain, keeps installedAt and drops the cached client', async () => {
    const portal = await installed();
    const before = (await rig.store.get(portal.memberId))!;
    expect(await profileName(portal.memberId)).toBe('Admin');
    const events: string[] = [];
    rig.pool.on('installed', ({ memberId }) => events.push(memberId));

    const again = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(again.chain.accessToken, again.chain.refreshToken);
    expect((await send(again.form)).status).toBe(200);

    const after = (await rig.store.get(portal.memberId))!;
    expectProven(after, again.chain);
    expect(after.version).toBe(before.version + 1);
    expect(after.installedAt).toBe(before.installedAt);
    expect(events).toEqual([portal.memberId]);
    rig.b24.resetStats();
    expect(await profileName(portal.memberId)).toBe('Admin');
    expect(rig.b24.stats.refreshRequests).toBe(0);
  });

  it('a verified ONAPPUPDATE stores the new chain and may rotate the application_token', async () => {
    const portal = await installed();
    const oldToken = portal.applicationToken;
    const update = rig.b24.updateEvent(portal.memberId, { applicationToken: 'rotated0application0token0000001' });
    rig.secrets.add(update.chain.accessToken, update.chain.refreshToken, 'rotated0application0token0000001', oldToken);

    expect((await send(update.form)).status).toBe(200);

    const record = (await rig.store.get(portal.memberId))!;
    expect(record.applicationToken).toBe('rotated0application0token0000001');
    expectProven(record, update.chain);
    // The old application token no longer authenticates an uninstall.
    const uninstall = rig.b24.uninstallEvent(portal.memberId);
    const stale = toForm(withAuth(uninstall.payload, { application_token: oldToken }));
    expect((await send(stale)).status).toBe(403);
    expect((await send(uninstall.form)).status).toBe(200);
  });

  it('stores the portal REST root the OAuth host confirms, not the one in the payload', async () => {
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);
    const body = toForm(withAuth(event.payload, { client_endpoint: 'https://collector.example/rest/' }));

    expect((await send(body)).status).toBe(200);
    expect((await rig.store.get(portal.memberId))?.clientEndpoint).toBe(portal.clientEndpoint);
  });
});

/** The stored pair is the one the handler minted by refreshing the event's chain (its proof). */
function expectProven(record: { accessToken: string; refreshToken: string }, eventChain: { accessToken: string; refreshToken: string }): void {
  expect(record.refreshToken).not.toBe(eventChain.refreshToken);
  expect(record.accessToken).not.toBe(eventChain.accessToken);
  expect(rig.b24.tokenStatus(eventChain.refreshToken)).toBe('spent');
  expect(rig.b24.tokenStatus(record.refreshToken)).toBe('live');
  rig.secrets.add(record.accessToken, record.refreshToken);
}

describe('forged installs', () => {
  /** A stored portal plus the store's JSON of it, to compare byte for byte afterwards. */
  async function storedPortal() {
    const portal = await installed();
    return { portal, snapshot: JSON.stringify(await rig.store.get(portal.memberId)) };
  }

  async function expectUnchanged(portal: FakePortal, snapshot: string) {
    expect(JSON.stringify(await rig.store.get(portal.memberId))).toBe(snapshot);
    rig.b24.resetStats();
    expect(await profileName(portal.memberId)).toBe('Admin');
    // The call reached the stand-in's real portal endpoint, not the forger's.
    expect(rig.b24.stats.rest.ok).toBe(1);
  }

  it('refuses other tokens with endpoints pointing elsewhere (403) and leaves the record byte for byte', async () => {
    const { portal, snapshot } = await storedPortal();
    const forged = rig.b24.installEvent(portal.memberId);
    const body = toForm(
      withAuth(forged.payload, {
        access_token: 'forgedaccesstoken000000000000000000000000000000000000',
        refresh_token: 'forgedrefreshtoken00000000000000000000000000000000000',
        client_endpoint: 'https://attacker.example/rest/',
        server_endpoint: 'https://attacker.example/rest/',
        domain: 'attacker.example',
        application_token: 'forgedapplicationtoken0000000000',
      }),
    );
    rig.secrets.add('forgedaccesstoken000000000000000000000000000000000000', 'forgedrefreshtoken00000000000000000000000000000000000');
    const appInfoBefore = rig.b24.stats.appInfoCalls;

    const answer = await send(body);

    expect(answer).toMatchObject({ status: 403, json: { error: 'VERIFICATION_FAILED' } });
    // An untrusted server_endpoint is refused before any token leaves for verification.
    expect(rig.b24.stats.appInfoCalls).toBe(appInfoBefore);
    await expectUnchanged(portal, snapshot);
  });

  it('refuses made-up tokens that name the trusted OAuth host (the refresh proof fails)', async () => {
    const { portal, snapshot } = await storedPortal();
    const forged = rig.b24.installEvent(portal.memberId);
    const body = toForm(
      withAuth(forged.payload, {
        access_token: 'madeupaccesstoken0000000000000000000000000000000000000',
        refresh_token: 'madeuprefreshtoken000000000000000000000000000000000000',
        client_endpoint: 'https://attacker.example/rest/',
      }),
    );
    expect((await send(body)).status).toBe(403);
    await expectUnchanged(portal, snapshot);
  });

  it("refuses another portal's genuine tokens presented under this portal's member_id", async () => {
    const { portal, snapshot } = await storedPortal();
    const other = rig.b24.addPortal();
    const otherEvent = rig.b24.installEvent(other.memberId);
    rig.secrets.add(otherEvent.chain.accessToken, otherEvent.chain.refreshToken);
    const body = toForm(withAuth(otherEvent.payload, { member_id: portal.memberId, domain: portal.domain }));

    expect((await send(body)).status).toBe(403);
    await expectUnchanged(portal, snapshot);
    expect(rig.logger.lines.some((line) => line.includes('member_id_mismatch'))).toBe(true);
  });

  it("ignores a payload's domain and endpoints: an administrator's proven chain is stored with the OAuth host's", async () => {
    const { portal } = await storedPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);
    const body = toForm(withAuth(event.payload, { domain: 'elsewhere.bitrix24.test', client_endpoint: 'https://elsewhere.bitrix24.test/rest/' }));
    expect((await send(body)).status).toBe(200);
    expect(await rig.store.get(portal.memberId)).toMatchObject({ domain: portal.domain, clientEndpoint: portal.clientEndpoint });
  });

  it("stores nothing and says why when this app's own credentials are refused (500, logged as an error)", async () => {
    const otherApp = new PortalClientPool({ ...rig.b24.trust, store: rig.store, clientId: 'local.other.app', clientSecret: 'x'.repeat(32), logger: rig.logger });
    await mount({}, contextOf(otherApp));
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);

    expect(await send(event.form)).toMatchObject({ status: 500, json: { error: 'OAUTH_CREDENTIALS' } });
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
    expect(rig.logger.lines.some((line) => line.includes('check clientId and clientSecret'))).toBe(true);
    await otherApp.close();
  });

  it('refuses an install for a new portal whose server_endpoint is not trusted, and stores nothing', async () => {
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);
    const look = `http://127.0.0.1.attacker.example:${new URL(rig.b24.oauthUrl).port}/rest/`;
    expect((await send(toForm(withAuth(event.payload, { server_endpoint: look })))).status).toBe(403);
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });
});

describe('uninstall', () => {
  it('deletes the record on a matching application_token and the pool stops serving the portal', async () => {
    const portal = await installed();
    await profileName(portal.memberId);
    const events: string[] = [];
    const hooked: string[] = [];
    rig.pool.on('uninstalled', ({ memberId }) => events.push(memberId));
    await mount({ onUninstalled: (event, record) => void hooked.push(`${event.auth.memberId}:${record.memberId}`) });

    const answer = await send(rig.b24.uninstallEvent(portal.memberId).form);

    expect(answer).toMatchObject({ status: 200, json: { ok: true } });
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
    expect(events).toEqual([portal.memberId]);
    expect(hooked).toEqual([`${portal.memberId}:${portal.memberId}`]);
    await expect(rig.pool.clientFor(portal.memberId)).rejects.toBeInstanceOf(PortalNotInstalledError);
  });

  it('refuses a forged uninstall (wrong application_token) with 403 and the portal keeps working', async () => {
    const portal = await installed();
    const snapshot = JSON.stringify(await rig.store.get(portal.memberId));

    const answer = await send(forgedUninstall(portal, rig.b24.serverEndpoint, 'f'.repeat(32)));

    expect(answer).toMatchObject({ status: 403, json: { error: 'VERIFICATION_FAILED' } });
    expect(JSON.stringify(await rig.store.get(portal.memberId))).toBe(snapshot);
    // A token of another length is compared in constant time too (hashes of equal length).
    expect((await send(forgedUninstall(portal, rig.b24.serverEndpoint, 'abc'))).status).toBe(403);
    expect(JSON.stringify(await rig.store.get(portal.memberId))).toBe(snapshot);
    expect(await profileName(portal.memberId)).toBe('Admin');
  });

  it('answers 200 for a portal it has no record of, and again for a repeated uninstall', async () => {
    const portal = await installed();
    const uninstall = rig.b24.uninstallEvent(portal.memberId);
    expect((await send(uninstall.form)).status).toBe(200);
    expect((await send(uninstall.form)).status).toBe(200);
    const stranger = rig.b24.addPortal();
    expect(await send(rig.b24.uninstallEvent(stranger.memberId).form)).toMatchObject({ status: 200, json: { ok: true } });
  });

  it('refuses to uninstall a portal stored without an application_token', async () => {
    const portal = await installed();
    const record = (await rig.store.get(portal.memberId))!;
    const { version: _version, ...input } = record;
    await rig.store.upsert({ ...input, applicationToken: null });
    expect((await send(rig.b24.uninstallEvent(portal.memberId).form)).status).toBe(403);
    expect(await rig.store.get(portal.memberId)).toBeDefined();
  });
});

describe('verify: false', () => {
  it('warns once, stores a new portal without asking the OAuth host, and guards known ones by application_token', async () => {
    const linesBefore = rig.logger.lines.length;
    await mount({ verify: false });
    const warnings = rig.logger.lines.slice(linesBefore).filter((line) => line.includes('"verify":false'));
    expect(warnings).toHaveLength(1);

    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken, portal.applicationToken);
    expect((await send(event.form)).status).toBe(200);
    expect(rig.b24.stats.appInfoCalls).toBe(0);
    const snapshot = JSON.stringify(await rig.store.get(portal.memberId));

    const forged = toForm(
      withAuth(rig.b24.installEvent(portal.memberId).payload, {
        access_token: 'unverifiedforgery000000000000000000000000',
        application_token: 'e'.repeat(32),
      }),
    );
    expect((await send(forged)).status).toBe(403);
    expect(JSON.stringify(await rig.store.get(portal.memberId))).toBe(snapshot);

    const untrusted = toForm(withAuth(rig.b24.installEvent(portal.memberId).payload, { server_endpoint: 'https://attacker.example/rest/' }));
    expect((await send(untrusted)).status).toBe(403);
    expect(JSON.stringify(await rig.store.get(portal.memberId))).toBe(snapshot);

    const genuine = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(genuine.chain.accessToken, genuine.chain.refreshToken);
    expect((await send(genuine.form)).status).toBe(200);
    expect((await rig.store.get(portal.memberId))?.accessToken).toBe(genuine.chain.accessToken);
    expect(rig.b24.stats.appInfoCalls).toBe(0);
    // The rotation rule: an unverified update cannot change the application_token.
    const original = portal.applicationToken;
    const rotate = rig.b24.updateEvent(portal.memberId, { applicationToken: 'n'.repeat(32) });
    rig.secrets.add(rotate.chain.accessToken, rotate.chain.refreshToken);
    expect((await send(rotate.form)).status).toBe(403);
    expect((await rig.store.get(portal.memberId))?.applicationToken).toBe(original);
  });
});

describe('failures', () => {
  /** A store that fails on chosen methods, delegating the rest to a memory store. */
  function failingStore(fail: { get?: boolean; upsert?: boolean; delete?: boolean }): TokenStore & { inner: MemoryTokenStore } {
    const inner = new MemoryTokenStore();
    return {
      inner,
      capabilities: inner.capabilities,
      get: (memberId) => (fail.get ? Promise.reject(new Error('disk on fire: secret-looking detail')) : inner.get(memberId)),
      upsert: (record: PortalRecordInput) =>
        fail.upsert ? Promise.reject(new Error('write failed: secret-looking detail')) : inner.upsert(record),
      update: (memberId, version, patch) => inner.update(memberId, version, patch),
      delete: (memberId) => (fail.delete ? Promise.reject(new Error('delete failed')) : inner.delete(memberId)),
      deletePortal: (memberId) => (fail.delete ? Promise.reject(new Error('delete failed')) : inner.deletePortal(memberId)),
      list: (options) => inner.list(options),
    };
  }

  it('answers 500 when the store throws during install, with no record written and the pool not told', async () => {
    const store = failingStore({ upsert: true });
    const pool = new PortalClientPool({ ...rig.b24.trust, store, clientId: rig.b24.clientId, clientSecret: rig.b24.clientSecret, logger: rig.logger });
    const told: string[] = [];
    pool.on('installed', ({ memberId }) => told.push(memberId));
    await mount({}, contextOf(pool));
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);

    const answer = await send(event.form);

    expect(answer).toMatchObject({ status: 500, json: { error: 'INTERNAL_ERROR' } });
    expect(answer.text).not.toMatch(/store/i);
    expect(await store.inner.get(portal.memberId)).toBeUndefined();
    expect(told).toEqual([]);
    expect(rig.logger.lines.some((line) => line.includes('secret-looking detail'))).toBe(false);
    await pool.close();
  });

  it('answers 500 when the store cannot be read for an uninstall', async () => {
    const store = failingStore({ get: true });
    const pool = new PortalClientPool({ ...rig.b24.trust, store, clientId: rig.b24.clientId, clientSecret: rig.b24.clientSecret, logger: rig.logger });
    await mount({}, contextOf(pool));
    const portal = rig.b24.addPortal();
    expect(await send(rig.b24.uninstallEvent(portal.memberId).form)).toMatchObject({ status: 500, json: { error: 'INTERNAL_ERROR' } });
    await pool.close();
  });

  it('answers 503 and stores nothing when the trusted OAuth host cannot be reached', async () => {
    const dead = await listen(createServer());
    await dead.close();
    await mount({ trustedOAuthHosts: [rig.b24.oauthUrl, dead.url] });
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);

    const answer = await send(toForm(withAuth(event.payload, { server_endpoint: `${dead.url}/rest/` })));

    expect(answer).toMatchObject({ status: 503, json: { error: 'OAUTH_UNAVAILABLE' } });
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });

  it('answers 502 and stores nothing when the trusted OAuth host answers garbage', async () => {
    const garbage = await listen(createServer((_req, res) => res.end('<html>proxy error</html>')));
    await mount({ trustedOAuthHosts: [garbage.url] });
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);

    const answer = await send(toForm(withAuth(event.payload, { server_endpoint: `${garbage.url}/rest/` })));

    expect(answer).toMatchObject({ status: 502, json: { error: 'OAUTH_INVALID_RESPONSE' } });
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
    await garbage.close();
  });
});

describe('answers to bad requests', () => {
  it('405 for anything but POST, with an allow header', async () => {
    const answer = await fetch(`${server.url}/bitrix24/events`);
    expect(answer.status).toBe(405);
    expect(answer.headers.get('allow')).toBe('POST');
    transcript.push(await answer.text());
  });

  it("400 with only the parser's code and field for a malformed event", async () => {
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);
    const answer = await send(toForm(withAuth(event.payload, { expires: 'soon' })));
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({ error: 'INVALID_EVENT', field: 'auth[expires]' });
    const unknown = await send('event=ONSOMETHINGELSE&auth[member_id]=x');
    expect(unknown).toMatchObject({ status: 400, json: { error: 'UNKNOWN_EVENT', field: 'event' } });
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });

  it('415 for a body that is neither a form nor JSON', async () => {
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);
    expect((await send(event.form, 'text/plain')).status).toBe(415);
    expect((await send(event.json, 'multipart/form-data; boundary=x')).status).toBe(415);
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });

  it('413 above the body limit', async () => {
    await mount({ maxBodyBytes: 1024 });
    const answer = await send(`event=ONAPPINSTALL&pad=${'x'.repeat(2000)}`);
    expect(answer).toMatchObject({ status: 413, json: { error: 'PAYLOAD_TOO_LARGE' } });
  });
});

describe('hooks', () => {
  it('onInstalled gets the event and the stored record; a throwing hook does not change the answer', async () => {
    const seen: string[] = [];
    await mount({
      onInstalled: (event, record) => {
        seen.push(`${event.type}:${record.memberId}:${record.version}`);
        throw new Error(`hook failed with ${record.accessToken}`);
      },
    });
    const portal = await installed();
    expect(seen).toEqual([`install:${portal.memberId}:1`]);
    expect(rig.logger.lines.some((line) => line.includes('"hook":"onInstalled"'))).toBe(true);
  });

  it('does not hold the answer longer than hookTimeoutMs for a slow hook', async () => {
    let finished = false;
    await mount({
      hookTimeoutMs: 50,
      onInstalled: () => new Promise<void>((resolve) => setTimeout(() => ((finished = true), resolve()), 2000).unref()),
    });
    const started = performance.now();
    await installed();
    expect(performance.now() - started).toBeLessThan(1500);
    expect(finished).toBe(false);
  });
});
