// The authorization-code flow against the stand-in Bitrix24 over real HTTP: consent, redirect, code
// exchange at the trusted host, verification, storage; and every way a state or a code can be bad.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidStateError, OAuthRejectedError, VerificationFailedError } from '../../src/errors.js';
import { toNodeHandler } from '../../src/http/node.js';
import { createAuthorizationFlow, MemoryUsedStateStore, type AuthorizationFlow } from '../../src/http/authorize.js';
import { listen, startRig, type Rig } from '../http/helpers.js';

const SECRET = 'a-state-secret-of-at-least-32-bytes-0123456789';

let rig: Rig;
let app: { url: string; close: () => Promise<void> };
let clock: number;
let flow: AuthorizationFlow;
let route: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
/** Every answer text of this file. */
const answers: string[] = [];

beforeEach(async () => {
  app = await listen(createServer((req, res) => route(req, res)));
  clock = Date.now();
  rig = await startRig({ standIn: { redirectUri: `${app.url}/bitrix24/callback` }, now: () => clock });
  flow = createAuthorizationFlow({ pool: rig.context, stateSecret: SECRET, trustedOAuthHosts: [rig.b24.oauthUrl] });
  route = toNodeHandler(flow.callbackHandler);
});

afterEach(async () => {
  const leaked = [...answers, ...rig.logger.lines].filter((text) => rig.secrets.leakedIn(text).length > 0);
  expect(leaked).toEqual([]);
  answers.length = 0;
  await app.close();
  await rig.pool.close();
  await rig.b24.close();
});

/** The user opens the consent URL; the portal answers with the redirect to the app. */
async function consent(url: string): Promise<string> {
  const answer = await fetch(url, { redirect: 'manual' });
  expect(answer.status).toBe(302);
  return answer.headers.get('location')!;
}

/** The browser follows the redirect to the app's callback. */
async function follow(location: string): Promise<{ status: number; location: string | null; json: unknown }> {
  const answer = await fetch(location, { redirect: 'manual' });
  const text = await answer.text();
  answers.push(text);
  return { status: answer.status, location: answer.headers.get('location'), json: text === '' ? undefined : JSON.parse(text) };
}

function stateOf(url: string): string {
  return new URL(url).searchParams.get('state')!;
}

/** Collects the tokens of the stored record as secrets. */
async function noteStored(memberId: string) {
  const record = await rig.store.get(memberId);
  rig.secrets.add(record?.accessToken, record?.refreshToken, record?.applicationToken);
  return record;
}

describe('authorizeUrl', () => {
  it("builds the portal's consent URL with the app's client_id and a signed state", () => {
    const url = new URL(flow.authorizeUrl('Acme.Bitrix24.com'));
    expect(`${url.origin}${url.pathname}`).toBe('https://acme.bitrix24.com/oauth/authorize/');
    expect(url.searchParams.get('client_id')).toBe(rig.b24.clientId);
    expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(new URL(flow.authorizeUrl('box.example.com:8443')).origin).toBe('https://box.example.com:8443');
    expect(flow.authorizeUrl('http://127.0.0.1:9/portals/x/')).toMatch(/^http:\/\/127\.0\.0\.1:9\/portals\/x\/oauth\/authorize\/\?client_id=/);
  });

  it('issues a different state every time', () => {
    expect(stateOf(flow.authorizeUrl('a.bitrix24.com'))).not.toBe(stateOf(flow.authorizeUrl('a.bitrix24.com')));
  });

  it('refuses what is neither a domain nor an http(s) URL, and weak secrets', () => {
    for (const bad of ['', 'acme.bitrix24.com/evil', 'ftp://acme', 'a b.com', 'https://u:p@acme.com', 'https://acme.com/?x=1']) {
      expect(() => flow.authorizeUrl(bad), bad).toThrow(TypeError);
    }
    expect(() => createAuthorizationFlow({ pool: rig.context, stateSecret: 'short' })).toThrow(/stateSecret/);
    expect(() => createAuthorizationFlow({ pool: rig.context, stateSecret: new Uint8Array(31) })).toThrow(/stateSecret/);
  });
});

describe('the callback', () => {
  it('exchanges the code at the trusted host, verifies and stores the chain, and redirects to returnTo', async () => {
    const portal = rig.b24.addPortal({ userName: 'Irina' });
    const authorized: string[] = [];
    rig.pool.on('authorized', ({ memberId }) => authorized.push(memberId));

    const location = await consent(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`, { returnTo: '/done?x=1' }));
    rig.secrets.add(new URL(location).searchParams.get('code'));
    const answer = await follow(location);

    expect(answer.status).toBe(302);
    expect(answer.location).toBe('/done?x=1');
    const record = await noteStored(portal.memberId);
    expect(record).toMatchObject({
      memberId: portal.memberId,
      domain: portal.domain,
      clientEndpoint: portal.clientEndpoint,
      serverEndpoint: `${rig.b24.oauthUrl}/rest/`,
      state: 'active',
      applicationToken: null,
    });
    expect(authorized).toEqual([portal.memberId]);
    expect(rig.b24.stats).toMatchObject({ codeExchanges: 1, codeSuccess: 1, appInfoCalls: 1 });
    const client = await rig.pool.clientFor(portal.memberId);
    const profile = await client.actions.v2.call.make({ method: 'profile' });
    expect((profile.getData() as { result: { NAME: string } }).result.NAME).toBe('Irina');
  });

  it('answers 200 with the member_id when no returnTo was given, and hands data back', async () => {
    const portal = rig.b24.addPortal();
    const url = flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`, { data: 'tenant-42' });
    const { code, redirectUrl } = rig.b24.authorize(portal.memberId, { state: stateOf(url) });
    rig.secrets.add(code);

    const result = await flow.handleCallback(new URL(redirectUrl!).searchParams);
    expect(result).toMatchObject({ memberId: portal.memberId, data: 'tenant-42', returnTo: undefined });
    await noteStored(portal.memberId);

    const again = flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`);
    const second = await follow(await consent(again));
    expect(second).toMatchObject({ status: 200, json: { ok: true, memberId: portal.memberId } });
    await noteStored(portal.memberId);
  });

  it('keeps the stored application_token and installedAt when it re-authorizes a known portal', async () => {
    const portal = rig.b24.addPortal();
    const first = rig.b24.authorize(portal.memberId, { state: stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)) });
    rig.secrets.add(first.code);
    const initial = (await flow.handleCallback(new URL(first.redirectUrl!).search)).record;
    const { version: _v, ...input } = initial;
    await rig.store.upsert({ ...input, applicationToken: portal.applicationToken, installedAt: 1000 });
    rig.secrets.add(portal.applicationToken, initial.accessToken, initial.refreshToken);

    const next = rig.b24.authorize(portal.memberId, { state: stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)) });
    rig.secrets.add(next.code);
    const { record } = await flow.handleCallback(Object.fromEntries(new URL(next.redirectUrl!).searchParams));
    await noteStored(portal.memberId);

    expect(record.applicationToken).toBe(portal.applicationToken);
    expect(record.installedAt).toBe(1000);
    expect(record.accessToken).not.toBe(initial.accessToken);
  });

  it('refuses a replayed state, before the code is exchanged', async () => {
    const portal = rig.b24.addPortal();
    const state = stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`));
    const first = rig.b24.authorize(portal.memberId, { state });
    rig.secrets.add(first.code);
    await flow.handleCallback(new URL(first.redirectUrl!).searchParams);
    await noteStored(portal.memberId);
    const snapshot = JSON.stringify(await rig.store.get(portal.memberId));

    const replay = rig.b24.authorize(portal.memberId, { state });
    rig.secrets.add(replay.code);
    const error = await flow.handleCallback(new URL(replay.redirectUrl!).searchParams).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InvalidStateError);
    expect((error as InvalidStateError).reason).toBe('replayed');
    expect(rig.b24.stats.codeExchanges).toBe(1);
    expect(JSON.stringify(await rig.store.get(portal.memberId))).toBe(snapshot);
    const answer = await follow(replay.redirectUrl!);
    expect(answer).toMatchObject({ status: 400, json: { error: 'INVALID_STATE', reason: 'replayed' } });
  });

  it('refuses an expired state (the clock moved past stateTtlMs)', async () => {
    const short = createAuthorizationFlow({ pool: rig.context, stateSecret: SECRET, stateTtlMs: 60_000, trustedOAuthHosts: [rig.b24.oauthUrl] });
    const portal = rig.b24.addPortal();
    const state = stateOf(short.authorizeUrl('x.bitrix24.com'));
    const { code, redirectUrl } = rig.b24.authorize(portal.memberId, { state });
    rig.secrets.add(code);
    clock += 60_000;

    await expect(short.handleCallback(new URL(redirectUrl!).searchParams)).rejects.toMatchObject({ reason: 'expired' });
    expect(rig.b24.stats.codeExchanges).toBe(0);
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });

  it('refuses forged and malformed states', async () => {
    const portal = rig.b24.addPortal();
    const genuine = stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`));
    const [payload, signature] = genuine.split('.') as [string, string];
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { e: number };
    const extended = Buffer.from(JSON.stringify({ ...decoded, e: decoded.e + 86_400_000 })).toString('base64url');
    const otherKey = createAuthorizationFlow({ pool: rig.context, stateSecret: `${SECRET}-other`, trustedOAuthHosts: [rig.b24.oauthUrl] });
    const cases: [string | undefined, InvalidStateError['reason']][] = [
      [`${extended}.${signature}`, 'signature'],
      [stateOf(otherKey.authorizeUrl('x.bitrix24.com')), 'signature'],
      [`${payload}.${signature.slice(0, -2)}`, 'signature'],
      ['not-a-state', 'malformed'],
      ['a.b.c', 'malformed'],
      [`${payload}.${signature}!`, 'malformed'],
      [undefined, 'malformed'],
      ['x'.repeat(5000), 'malformed'],
    ];
    for (const [state, reason] of cases) {
      const query = new URLSearchParams({ code: 'c0de', member_id: portal.memberId, server_domain: new URL(rig.b24.url).host });
      if (state !== undefined) query.set('state', state);
      const error = await flow.handleCallback(query).catch((e: unknown) => e);
      expect(error, String(state).slice(0, 40)).toBeInstanceOf(InvalidStateError);
      expect((error as InvalidStateError).reason, String(state).slice(0, 40)).toBe(reason);
    }
    expect(rig.b24.stats.codeExchanges).toBe(0);
  });

  it('refuses a spent code (invalid_grant) and changes nothing', async () => {
    const portal = rig.b24.addPortal();
    const first = rig.b24.authorize(portal.memberId, { state: stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)) });
    rig.secrets.add(first.code);
    await flow.handleCallback(new URL(first.redirectUrl!).searchParams);
    await noteStored(portal.memberId);
    const snapshot = JSON.stringify(await rig.store.get(portal.memberId));

    const reuse = new URL(first.redirectUrl!);
    reuse.searchParams.set('state', stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)));
    const error = await flow.handleCallback(reuse.searchParams).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OAuthRejectedError);
    expect((error as OAuthRejectedError).oauthError).toBe('invalid_grant');
    expect(rig.b24.stats.codeErrors['invalid_grant']).toBe(1);
    expect(JSON.stringify(await rig.store.get(portal.memberId))).toBe(snapshot);

    reuse.searchParams.set('state', stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)));
    expect(await follow(reuse.toString())).toMatchObject({ status: 400, json: { error: 'OAUTH_REJECTED', oauthError: 'invalid_grant' } });
  });

  it('refuses an OAuth host that is not trusted, without sending it the code', async () => {
    const portal = rig.b24.addPortal();
    const { code, redirectUrl } = rig.b24.authorize(portal.memberId, { state: stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)) });
    rig.secrets.add(code);
    const url = new URL(redirectUrl!);
    url.searchParams.set('server_domain', 'oauth.attacker.example');

    await expect(flow.handleCallback(url.searchParams)).rejects.toBeInstanceOf(VerificationFailedError);
    expect(rig.b24.stats.codeExchanges).toBe(0);
    url.searchParams.set('state', stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)));
    expect(await follow(url.toString())).toMatchObject({ status: 403, json: { error: 'VERIFICATION_FAILED' } });
  });

  it("refuses a code whose portal is not the redirect's member_id", async () => {
    const portal = rig.b24.addPortal();
    const other = rig.b24.addPortal();
    const { code, redirectUrl } = rig.b24.authorize(other.memberId, { state: stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)) });
    rig.secrets.add(code);
    const url = new URL(redirectUrl!);
    url.searchParams.set('member_id', portal.memberId);

    await expect(flow.handleCallback(url.searchParams)).rejects.toBeInstanceOf(VerificationFailedError);
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
    expect(await rig.store.get(other.memberId)).toBeUndefined();
  });

  it('names a missing parameter, and only serves GET', async () => {
    const query = new URLSearchParams({ state: stateOf(flow.authorizeUrl('x.bitrix24.com')), member_id: 'm', server_domain: 'h' });
    await expect(flow.handleCallback(query)).rejects.toMatchObject({ code: 'INVALID_EVENT', field: 'code' });
    const post = await fetch(`${app.url}/bitrix24/callback`, { method: 'POST' });
    expect(post.status).toBe(405);
    answers.push(await post.text());
  });
});

describe('MemoryUsedStateStore', () => {
  it('accepts a nonce once and forgets it after its expiry', () => {
    let now = 10_000;
    const store = new MemoryUsedStateStore({ now: () => now });
    expect(store.markUsed('n1', 11_000)).toBe(true);
    expect(store.markUsed('n1', 11_000)).toBe(false);
    now = 10_999;
    expect(store.markUsed('n1', 11_000)).toBe(false);
    now = 11_001;
    expect(store.markUsed('n1', 12_000)).toBe(true);
  });
});

describe('the callback: whose portal, whose chain', () => {
  it("refuses a state issued for portal A completing an authorization of portal B, storing nothing", async () => {
    const a = rig.b24.addPortal();
    const b = rig.b24.addPortal();
    const state = stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${a.domain}`));
    const grant = rig.b24.authorize(b.memberId, { state });
    rig.secrets.add(grant.code);
    const error = await flow.handleCallback(new URL(grant.redirectUrl!).search).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidStateError);
    expect((error as InvalidStateError).reason).toBe('portal');
    expect(await rig.store.get(b.memberId)).toBeUndefined();
  });

  it("keeps a non-administrator's authorization as that user's chain, never the portal's", async () => {
    const portal = rig.b24.addPortal({ users: [1, 7], admins: [1] });
    const admin = rig.b24.authorize(portal.memberId, { state: stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)) });
    rig.secrets.add(admin.code);
    const first = await flow.handleCallback(new URL(admin.redirectUrl!).search);
    expect(first.chain).toBe('portal');
    rig.secrets.add(first.record.accessToken, first.record.refreshToken);
    const before = JSON.stringify(await rig.store.get(portal.memberId));

    const user = rig.b24.authorize(portal.memberId, { userId: 7, state: stateOf(flow.authorizeUrl(`${rig.b24.url}/portals/${portal.domain}`)) });
    rig.secrets.add(user.code);
    const result = await flow.handleCallback(new URL(user.redirectUrl!).search);
    rig.secrets.add(result.record.accessToken, result.record.refreshToken);
    expect(result.chain).toBe('user:7');
    expect(JSON.stringify(await rig.store.get(portal.memberId))).toBe(before);
    expect(await rig.store.get({ memberId: portal.memberId, chain: 'user:7' })).toMatchObject({ userId: 7 });
  });
});
