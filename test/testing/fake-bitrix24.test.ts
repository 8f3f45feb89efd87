// The stand-in Bitrix24 over real loopback HTTP: every protocol rule it promises, and the real
// B24OAuth from @bitrix24/b24jssdk working against it (including the refresh hazard it must expose).

import { B24OAuth } from '@bitrix24/b24jssdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeBitrix24, type FakeBitrix24Options, type FakeChain } from '../../src/testing/index.js';

let b24: FakeBitrix24;
let clock: number;

async function start(options: FakeBitrix24Options = {}): Promise<FakeBitrix24> {
  b24 = await FakeBitrix24.start({ now: () => clock, ...options });
  return b24;
}

beforeEach(() => {
  clock = Date.UTC(2025, 0, 15, 12, 0, 0);
});

afterEach(async () => {
  await b24?.close();
});

interface Answer {
  status: number;
  // Answers are arbitrary JSON read field by field; each test asserts the shape it relies on.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  headers: Headers;
}

async function post(url: string, body: Record<string, string>, as: 'form' | 'json' = 'form'): Promise<Answer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': as === 'form' ? 'application/x-www-form-urlencoded' : 'application/json' },
    body: as === 'form' ? new URLSearchParams(body).toString() : JSON.stringify(body),
    redirect: 'manual',
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : safeJson(text), headers: res.headers };
}

async function get(url: string): Promise<Answer> {
  const res = await fetch(url, { redirect: 'manual' });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : safeJson(text), headers: res.headers };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function refresh(refreshToken: string, overrides: Record<string, string> = {}): Promise<Answer> {
  return post(`${b24.oauthUrl}/oauth/token/`, {
    grant_type: 'refresh_token',
    client_id: b24.clientId,
    client_secret: b24.clientSecret,
    refresh_token: refreshToken,
    ...overrides,
  });
}

function exchange(code: string, overrides: Record<string, string> = {}): Promise<Answer> {
  return post(`${b24.oauthUrl}/oauth/token/`, {
    grant_type: 'authorization_code',
    client_id: b24.clientId,
    client_secret: b24.clientSecret,
    code,
    ...overrides,
  });
}

function rest(clientEndpoint: string, method: string, auth: string | undefined, as: 'form' | 'json' = 'json'): Promise<Answer> {
  return post(`${clientEndpoint}${method}`, auth === undefined ? {} : { auth }, as);
}

function sdkFor(memberId: string, chain: FakeChain): B24OAuth {
  return new B24OAuth(b24.oauthParams(memberId, chain), { clientId: b24.clientId, clientSecret: b24.clientSecret });
}

describe('FakeBitrix24: the token endpoint', () => {
  it('rotates a refresh token once, kills the access token issued with it, and answers the documented fields', async () => {
    await start();
    const portal = b24.addPortal({ scope: 'crm,user_brief', status: 'L' });
    const chain = b24.issueChain(portal.memberId);

    const answer = await refresh(chain.refreshToken);

    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      access_token: expect.any(String),
      refresh_token: expect.any(String),
      expires: Math.floor(clock / 1000) + 3600,
      expires_in: 3600,
      scope: 'crm,user_brief',
      domain: new URL(b24.url).host,
      server_endpoint: b24.serverEndpoint,
      status: 'L',
      client_endpoint: portal.clientEndpoint,
      member_id: portal.memberId,
      user_id: 1,
    });
    expect(answer.body.access_token).not.toBe(chain.accessToken);
    expect(answer.body.refresh_token).not.toBe(chain.refreshToken);
    expect(b24.tokenStatus(chain.refreshToken)).toBe('spent');
    expect(b24.tokenStatus(chain.accessToken)).toBe('dead');
    expect((await rest(portal.clientEndpoint, 'profile', chain.accessToken)).body.error).toBe('invalid_token');
    expect((await rest(portal.clientEndpoint, 'profile', answer.body.access_token)).status).toBe(200);
    expect(b24.stats.refreshRequests).toBe(1);
    expect(b24.stats.refreshSuccess).toBe(1);
  });

  it('refuses a spent refresh token with invalid_grant and counts the reuse', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    expect((await refresh(chain.refreshToken)).status).toBe(200);

    const again = await refresh(chain.refreshToken);

    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    expect(b24.stats).toMatchObject({ refreshRequests: 2, refreshSuccess: 1, refreshReuse: 1, refreshErrors: { invalid_grant: 1 } });
  });

  it('refuses an unknown refresh token with invalid_grant without counting reuse', async () => {
    await start();
    const answer = await refresh('0'.repeat(70));
    expect(answer.body.error).toBe('invalid_grant');
    expect(b24.stats.refreshReuse).toBe(0);
  });

  it('refuses wrong client credentials with invalid_client and leaves the refresh token unspent', async () => {
    await start({ clientId: 'local.abc.def', clientSecret: 'right-secret' });
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);

    const wrongSecret = await refresh(chain.refreshToken, { client_secret: 'wrong' });
    const wrongId = await refresh(chain.refreshToken, { client_id: 'local.other.app' });

    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
    expect(wrongId.body.error).toBe('invalid_client');
    expect(JSON.stringify([wrongSecret.body, wrongId.body])).not.toContain(chain.refreshToken);
    expect(b24.tokenStatus(chain.refreshToken)).toBe('live');
    expect((await refresh(chain.refreshToken)).status).toBe(200);
    expect(b24.stats.refreshErrors).toEqual({ invalid_client: 2 });
  });

  it('accepts GET with a query string and POST with a JSON body, as the real server does', async () => {
    await start();
    const portal = b24.addPortal();
    const first = b24.issueChain(portal.memberId);
    const second = b24.issueChain(portal.memberId);
    const query = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: b24.clientId,
      client_secret: b24.clientSecret,
      refresh_token: first.refreshToken,
    });

    const viaGet = await get(`${b24.oauthUrl}/oauth/token/?${query.toString()}`);
    const viaJson = await post(
      `${b24.oauthUrl}/oauth/token/`,
      { grant_type: 'refresh_token', client_id: b24.clientId, client_secret: b24.clientSecret, refresh_token: second.refreshToken },
      'json',
    );

    expect(viaGet.status).toBe(200);
    expect(viaJson.status).toBe(200);
    expect(viaGet.body.member_id).toBe(portal.memberId);
  });

  it('answers invalid_request for a missing grant type or token', async () => {
    await start();
    const noGrant = await post(`${b24.oauthUrl}/oauth/token/`, { client_id: b24.clientId });
    const noToken = await refresh('');
    expect(noGrant.body.error).toBe('invalid_request');
    expect(noToken.body.error).toBe('invalid_request');
    expect(b24.stats.badTokenRequests).toBe(1);
    expect(b24.stats.refreshErrors).toEqual({ invalid_request: 1 });
  });

  it('keeps independent chains of one portal independent', async () => {
    await start();
    const portal = b24.addPortal();
    const a = b24.issueChain(portal.memberId);
    const b = b24.issueChain(portal.memberId, { userId: 7 });
    expect((await refresh(a.refreshToken)).status).toBe(200);
    expect(b24.tokenStatus(b.accessToken)).toBe('live');
    const answer = await refresh(b.refreshToken);
    expect(answer.body.user_id).toBe(7);
  });
});

describe('FakeBitrix24: access-token expiry', () => {
  it('expires access tokens by the injected clock, and refresh still works', async () => {
    await start({ accessTokenTtlSec: 60 });
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    expect((await rest(portal.clientEndpoint, 'profile', chain.accessToken)).status).toBe(200);

    clock += 60_000;

    const expired = await rest(portal.clientEndpoint, 'profile', chain.accessToken);
    expect(expired.status).toBe(401);
    expect(expired.body).toEqual({ error: 'expired_token', error_description: expect.any(String) });
    expect(b24.tokenStatus(chain.accessToken)).toBe('expired');
    const renewed = await refresh(chain.refreshToken);
    expect(renewed.body.expires).toBe(Math.floor(clock / 1000) + 60);
    expect(b24.stats.rest).toMatchObject({ ok: 1, expiredToken: 1 });
  });

  it('expires current access tokens on demand, for one portal only', async () => {
    await start();
    const one = b24.addPortal();
    const two = b24.addPortal();
    const a = b24.issueChain(one.memberId);
    const b = b24.issueChain(two.memberId);

    b24.expireAccessTokens(one.memberId);

    expect((await rest(one.clientEndpoint, 'profile', a.accessToken)).body.error).toBe('expired_token');
    expect((await rest(two.clientEndpoint, 'profile', b.accessToken)).status).toBe(200);
    const fresh = b24.issueChain(one.memberId);
    expect((await rest(one.clientEndpoint, 'profile', fresh.accessToken)).status).toBe(200);
  });
});

describe('FakeBitrix24: revoke and uninstall', () => {
  it('revoke kills every chain of the portal with the chosen error, and a reinstall mints a working chain', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);

    b24.revoke(portal.memberId, 'PAYMENT_REQUIRED');

    expect((await refresh(chain.refreshToken)).body.error).toBe('PAYMENT_REQUIRED');
    expect((await rest(portal.clientEndpoint, 'profile', chain.accessToken)).body.error).toBe('invalid_token');
    expect(b24.stats.refreshErrors).toEqual({ PAYMENT_REQUIRED: 1 });
    const reinstalled = b24.installEvent(portal.memberId).chain;
    expect((await rest(portal.clientEndpoint, 'profile', reinstalled.accessToken)).status).toBe(200);
  });

  it('uninstall stops every chain: REST answers ERROR_OAUTH, refresh NOT_INSTALLED, and old chains stay dead after reinstall', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);

    b24.uninstallEvent(portal.memberId);

    expect(portal.installed).toBe(false);
    const call = await rest(portal.clientEndpoint, 'profile', chain.accessToken);
    expect(call.status).toBe(401);
    expect(call.body.error).toBe('ERROR_OAUTH');
    expect((await refresh(chain.refreshToken)).body.error).toBe('NOT_INSTALLED');
    expect((await get(`${b24.oauthUrl}/rest/app.info?auth=${chain.accessToken}`)).body.error).toBe('invalid_token');

    const fresh = b24.installEvent(portal.memberId).chain;
    expect((await refresh(chain.refreshToken)).body.error).toBe('invalid_grant');
    expect((await rest(portal.clientEndpoint, 'profile', fresh.accessToken)).status).toBe(200);
  });
});

describe('FakeBitrix24: the authorization-code flow', () => {
  it('redirects a consenting user to the redirect URI with code, state, domain, member_id, scope, server_domain', async () => {
    await start({ redirectUri: 'https://app.example.test/oauth/callback?x=1' });
    const portal = b24.addPortal({ scope: 'crm' });

    const answer = await get(`${b24.url}/portals/${portal.domain}/oauth/authorize/?client_id=${b24.clientId}&state=s-123`);

    expect(answer.status).toBe(302);
    const location = new URL(answer.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe('https://app.example.test/oauth/callback');
    expect(Object.fromEntries(location.searchParams)).toEqual({
      x: '1',
      code: expect.any(String),
      state: 's-123',
      domain: portal.domain,
      member_id: portal.memberId,
      scope: 'crm',
      server_domain: new URL(b24.url).host,
    });
    const tokens = await exchange(location.searchParams.get('code') ?? '');
    expect(tokens.status).toBe(200);
    expect(tokens.body.member_id).toBe(portal.memberId);
    expect(b24.stats).toMatchObject({ codeExchanges: 1, codeSuccess: 1 });
  });

  it('makes a code single-use', async () => {
    await start();
    const portal = b24.addPortal();
    const { code, redirectUrl } = b24.authorize(portal.memberId, { userId: 5 });
    expect(redirectUrl).toBeNull();

    const first = await exchange(code);
    const second = await exchange(code);

    expect(first.body.user_id).toBe(5);
    expect(second.body.error).toBe('invalid_grant');
    expect(b24.stats.codeErrors).toEqual({ invalid_grant: 1 });
  });

  it('expires a code after codeTtlSec by the injected clock', async () => {
    await start({ codeTtlSec: 30 });
    const portal = b24.addPortal();
    const live = b24.authorize(portal.memberId).code;
    const late = b24.authorize(portal.memberId).code;

    clock += 29_999;
    expect((await exchange(live)).status).toBe(200);
    clock += 1;
    expect((await exchange(late)).body.error).toBe('invalid_grant');
  });

  it('binds a code to the client credentials', async () => {
    await start();
    const portal = b24.addPortal();
    const { code } = b24.authorize(portal.memberId);
    expect((await exchange(code, { client_secret: 'nope' })).body.error).toBe('invalid_client');
    expect((await exchange(code)).status).toBe(200);
  });

  it('refuses to authorize without a configured redirect URI or with a foreign client_id', async () => {
    await start();
    const portal = b24.addPortal();
    expect((await get(`${b24.url}/portals/${portal.domain}/oauth/authorize/?client_id=${b24.clientId}`)).status).toBe(400);
    await b24.close();
    await start({ redirectUri: 'http://127.0.0.1:1/cb' });
    const other = b24.addPortal();
    const answer = await get(`${b24.url}/portals/${other.domain}/oauth/authorize/?client_id=local.someone.else`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('invalid_client');
  });
});

describe("FakeBitrix24: the OAuth host's app.info", () => {
  it('describes a live token, by GET or POST', async () => {
    await start();
    const portal = b24.addPortal({ scope: 'crm,placement', appVersion: 3 });
    const chain = b24.issueChain(portal.memberId);

    const viaGet = await get(`${b24.oauthUrl}/rest/app.info?auth=${chain.accessToken}`);
    const viaPost = await post(`${b24.oauthUrl}/rest/app.info`, { auth: chain.accessToken });

    expect(viaGet.status).toBe(200);
    expect(viaGet.body.result).toEqual({
      scope: 'crm,placement',
      client_id: b24.clientId,
      expires: chain.expires,
      user_id: 1,
      install: {
        installed: true,
        version: 3,
        status: 'L',
        member_id: portal.memberId,
        domain: portal.domain,
        client_endpoint: portal.clientEndpoint,
        server_endpoint: b24.serverEndpoint,
      },
    });
    expect(viaPost.body).toEqual(viaGet.body);
    expect(b24.stats.appInfoCalls).toBe(2);
  });

  it('answers 401 invalid_token for an unknown or superseded token and expired_token for an expired one', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    const other = b24.issueChain(portal.memberId);
    await refresh(chain.refreshToken);
    b24.expireAccessTokens();

    const unknown = await get(`${b24.oauthUrl}/rest/app.info?auth=forged`);
    const superseded = await get(`${b24.oauthUrl}/rest/app.info?auth=${chain.accessToken}`);
    const expired = await get(`${b24.oauthUrl}/rest/app.info?auth=${other.accessToken}`);

    expect([unknown.status, superseded.status, expired.status]).toEqual([401, 401, 401]);
    expect([unknown.body.error, superseded.body.error, expired.body.error]).toEqual(['invalid_token', 'invalid_token', 'expired_token']);
  });
});

describe('FakeBitrix24: portal REST', () => {
  it('serves profile, app.info, user.current and server.time over v2 with a time block', async () => {
    await start();
    const portal = b24.addPortal({ userName: 'Olga', status: 'P', appVersion: 4 });
    const { accessToken } = b24.issueChain(portal.memberId);

    const profile = await rest(portal.clientEndpoint, 'profile', accessToken);
    const appInfo = await rest(portal.clientEndpoint, 'app.info', accessToken, 'form');
    const user = await get(`${portal.clientEndpoint}user.current?auth=${accessToken}`);
    const time = await rest(portal.clientEndpoint, 'server.time.json', accessToken);

    expect(profile.body.result).toMatchObject({ ID: '1', ADMIN: true, NAME: 'Olga' });
    expect(profile.body.time).toMatchObject({ operating: 0, operating_reset_at: expect.any(Number), start: clock / 1000 });
    expect(appInfo.body.result).toMatchObject({ CODE: b24.clientId, VERSION: 4, STATUS: 'P', INSTALLED: true, PAYMENT_EXPIRED: 'N' });
    expect(user.body.result).toMatchObject({ ID: '1', NAME: 'Olga', ACTIVE: true });
    expect(time.body.result).toBe('2025-01-15T12:00:00+00:00');
    expect(b24.stats.restByMethod).toEqual({ profile: 1, 'app.info': 1, 'user.current': 1, 'server.time': 1 });
    expect(b24.stats.rest.ok).toBe(4);
  });

  it('collapses repeated slashes, as the SDK builds `/rest//profile` and `/rest//api/profile`', async () => {
    await start();
    const portal = b24.addPortal();
    const { accessToken } = b24.issueChain(portal.memberId);
    expect((await rest(`${portal.clientEndpoint}/`, 'profile', accessToken)).status).toBe(200);
    const v3 = await rest(`${portal.clientEndpoint}/api/`, 'profile', accessToken);
    expect(v3.body.result.profile).toMatchObject({ id: 1, admin: true });
  });

  it('reports a non-admin user as such', async () => {
    await start();
    const portal = b24.addPortal();
    const { accessToken } = b24.issueChain(portal.memberId, { userId: 9 });
    expect((await rest(portal.clientEndpoint, 'profile', accessToken)).body.result).toMatchObject({ ID: '9', ADMIN: false });
    expect((await rest(`${portal.clientEndpoint}api/`, 'profile', accessToken)).body.result.profile.admin).toBe(false);
  });

  it('answers 429 OPERATION_TIME_LIMIT for a method whose operating time is spent, in both shapes, until it resets', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    const v3 = `${portal.clientEndpoint}api/`;
    b24.exhaustOperatingTime(portal.memberId, 'Profile', { seconds: 60 });
    const before = Math.floor(Date.now() / 1000);
    const blockedV2 = await rest(portal.clientEndpoint, 'profile', chain.accessToken);
    const blockedV3 = await rest(v3, 'profile', chain.accessToken);
    const other = await rest(portal.clientEndpoint, 'user.current', chain.accessToken);
    expect(blockedV2.status).toBe(429);
    expect(blockedV2.body).toMatchObject({ error: 'OPERATION_TIME_LIMIT' });
    expect(blockedV2.body.time.operating_reset_at).toBeGreaterThanOrEqual(before + 59);
    expect(blockedV3.status).toBe(429);
    expect(blockedV3.body.error.code).toBe('OPERATION_TIME_LIMIT');
    expect(other.status).toBe(200);
    b24.exhaustOperatingTime(portal.memberId, 'profile', { resetAtInAnswer: false });
    expect((await rest(portal.clientEndpoint, 'profile', chain.accessToken)).body.time).toBeUndefined();
    b24.exhaustOperatingTime(portal.memberId, 'profile', { seconds: 0 });
    expect((await rest(portal.clientEndpoint, 'profile', chain.accessToken)).status).toBe(200);
    expect(b24.stats.rest.operationTimeLimit).toBe(3);
    expect(() => b24.exhaustOperatingTime(portal.memberId, 'profile', { seconds: -1 })).toThrow(TypeError);
  });

  it('answers the token errors in the v2 and v3 shapes', async () => {
    await start();
    const portal = b24.addPortal();
    const other = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    const foreign = b24.issueChain(other.memberId);
    const v3 = `${portal.clientEndpoint}api/`;

    const noAuth = await rest(portal.clientEndpoint, 'profile', undefined);
    const wrongPortal = await rest(portal.clientEndpoint, 'profile', foreign.accessToken);
    b24.expireAccessTokens(portal.memberId);
    const expiredV2 = await rest(portal.clientEndpoint, 'profile', chain.accessToken);
    const expiredV3 = await rest(v3, 'profile', chain.accessToken);
    const unknownV3 = await rest(v3, 'profile', 'nope');

    expect(noAuth.status).toBe(401);
    expect(noAuth.body.error).toBe('NO_AUTH_FOUND');
    expect(wrongPortal.body.error).toBe('invalid_token');
    expect(expiredV2.body).toEqual({ error: 'expired_token', error_description: expect.any(String) });
    expect(expiredV3.status).toBe(401);
    expect(expiredV3.body).toEqual({ error: { code: 'expired_token', message: expect.any(String) } });
    expect(unknownV3.body.error.code).toBe('invalid_token');
    expect(b24.stats.rest).toEqual({ ok: 0, expiredToken: 2, invalidToken: 2, otherErrors: 1, redirects: 0, queryLimitExceeded: 0, operationTimeLimit: 0 });
  });

  it('answers unknown methods and portals with errors', async () => {
    await start();
    const portal = b24.addPortal();
    const { accessToken } = b24.issueChain(portal.memberId);
    const method = await rest(portal.clientEndpoint, 'crm.nothing.here', accessToken);
    const portalMissing = await rest(`${b24.url}/portals/absent.bitrix24.test/rest/`, 'profile', accessToken);
    expect(method.status).toBe(404);
    expect(method.body.error).toBe('ERROR_METHOD_NOT_FOUND');
    expect(portalMissing.status).toBe(404);
  });

  it('serves custom methods registered with onMethod, results and errors alike', async () => {
    await start();
    const portal = b24.addPortal();
    const { accessToken } = b24.issueChain(portal.memberId, { userId: 3 });
    b24.onMethod('crm.deal.get', ({ params, userId, version }) => ({ result: { ID: params['id'], userId, version } }));
    b24.onMethod('busy', () => ({ error: 'QUERY_LIMIT_EXCEEDED', status: 503, description: 'Too many requests' }));

    const deal = await post(`${portal.clientEndpoint}crm.deal.get`, { auth: accessToken, id: '42' }, 'json');
    const busy = await rest(portal.clientEndpoint, 'busy', accessToken);

    expect(deal.body.result).toEqual({ ID: '42', userId: 3, version: 'v2' });
    expect(busy.status).toBe(503);
    expect(busy.body.error).toBe('QUERY_LIMIT_EXCEEDED');
  });

  it('runs a v2 batch under one token, keyed by name or by position, with per-row errors', async () => {
    await start();
    const portal = b24.addPortal();
    const { accessToken } = b24.issueChain(portal.memberId);
    const url = `${portal.clientEndpoint}batch`;
    const body = (cmd: unknown, halt: number): string => JSON.stringify({ auth: accessToken, halt, cmd });
    const send = async (cmd: unknown, halt = 0): Promise<Answer['body']> =>
      (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(cmd, halt) })).json();

    const named = await send({ me: 'profile', app: 'app.info?x=1' });
    const listed = await send(['profile', 'no.such.method', 'server.time']);
    const halted = await send(['no.such.method', 'profile'], 1);

    expect(named.result.result.me).toMatchObject({ ID: '1' });
    expect(named.result.result.app).toMatchObject({ CODE: b24.clientId });
    expect(named.result.result_error).toEqual([]);
    expect(named.result.result_time.me).toMatchObject({ operating: 0 });
    expect(listed.result.result).toEqual({ 0: expect.any(Object), 2: expect.any(String) });
    expect(listed.result.result_error).toEqual({ 1: { error: 'ERROR_METHOD_NOT_FOUND', error_description: expect.any(String) } });
    expect(halted.result.result).toEqual([]);
    expect(b24.stats.restByMethod['batch']).toBe(3);
  });

  it('answers 302 to the new root from a renamed portal, without the token in Location', async () => {
    await start();
    const portal = b24.addPortal({ domain: 'old.bitrix24.test' });
    const chain = b24.issueChain(portal.memberId);
    const oldRoot = portal.clientEndpoint;

    b24.rename(portal.memberId, 'new.bitrix24.test');

    expect(portal.domain).toBe('new.bitrix24.test');
    expect(portal.clientEndpoint).toBe(`${b24.url}/portals/new.bitrix24.test/rest/`);
    const moved = await get(`${oldRoot}profile?auth=${chain.accessToken}&x=1`);
    expect(moved.status).toBe(302);
    expect(moved.headers.get('location')).toBe(`${portal.clientEndpoint}profile?x=1`);
    expect((await rest(portal.clientEndpoint, 'profile', chain.accessToken)).status).toBe(200);
    expect((await refresh(chain.refreshToken)).body.client_endpoint).toBe(portal.clientEndpoint);
    expect(b24.stats.rest.redirects).toBe(1);
  });

  it('judges the token on arrival and delays the answer when asked', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    b24.setRestDelay(150);

    const slow = rest(portal.clientEndpoint, 'profile', chain.accessToken);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(b24.stats.rest.ok).toBe(1);
    await refresh(chain.refreshToken);

    expect((await slow).status).toBe(200);
    expect((await rest(portal.clientEndpoint, 'profile', chain.accessToken)).body.error).toBe('invalid_token');
  });
});

describe('FakeBitrix24: injected OAuth failures', () => {
  it('answers an injected status for `times` requests, then recovers with the chain intact', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    b24.failOAuth({ status: 503 }, 2);

    const first = await refresh(chain.refreshToken);
    const second = await refresh(chain.refreshToken);
    const third = await refresh(chain.refreshToken);

    expect([first.status, second.status, third.status]).toEqual([503, 503, 200]);
    expect(first.headers.get('content-type')).toContain('text/html');
    expect(b24.stats).toMatchObject({ refreshRequests: 3, refreshSuccess: 1, oauthFailuresInjected: 2, refreshReuse: 0 });
  });

  it('resets the connection, until cleared with null', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    b24.failOAuth({ mode: 'reset' });

    await expect(refresh(chain.refreshToken)).rejects.toThrow();
    await expect(refresh(chain.refreshToken)).rejects.toThrow();
    b24.failOAuth(null);
    expect((await refresh(chain.refreshToken)).status).toBe(200);
    expect(b24.stats.oauthFailuresInjected).toBe(2);
  });

  it('hangs a request until close() tears the connection down', async () => {
    await start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    b24.failOAuth({ mode: 'hang' }, 1);

    let settled = false;
    const pending = refresh(chain.refreshToken).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(settled).toBe(false);
    expect(b24.stats.refreshRequests).toBe(1);

    await b24.close();
    await expect(pending).rejects.toThrow();
    expect(b24.tokenStatus(chain.refreshToken)).toBe('live');
  });

  it('rejects malformed failure settings with a TypeError', async () => {
    await start();
    expect(() => b24.failOAuth({ status: 200 })).toThrow(TypeError);
    expect(() => b24.failOAuth({ status: 503 }, 0)).toThrow(TypeError);
  });
});

describe('FakeBitrix24: lifecycle bodies', () => {
  it('renders ONAPPINSTALL as Bitrix24 sends it: PHP bracket form, string leaves, a fresh chain', async () => {
    await start();
    const portal = b24.addPortal({ scope: 'crm,placement,user_brief' });

    const event = b24.installEvent(portal.memberId, { languageId: 'de' });

    expect(event.payload).toEqual({
      event: 'ONAPPINSTALL',
      event_handler_id: '1',
      data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'de' },
      ts: String(Math.floor(clock / 1000)),
      auth: {
        access_token: event.chain.accessToken,
        expires: String(event.chain.expires),
        expires_in: '3600',
        scope: 'crm,placement,user_brief',
        domain: portal.domain,
        server_endpoint: b24.serverEndpoint,
        status: 'L',
        client_endpoint: portal.clientEndpoint,
        member_id: portal.memberId,
        user_id: '1',
        refresh_token: event.chain.refreshToken,
        application_token: portal.applicationToken,
      },
    });
    const form = new URLSearchParams(event.form);
    expect([...form.keys()].slice(0, 3)).toEqual(['event', 'event_handler_id', 'data[VERSION]']);
    expect(form.get('auth[access_token]')).toBe(event.chain.accessToken);
    expect(form.get('auth[client_endpoint]')).toBe(portal.clientEndpoint);
    expect(event.form).toContain('auth%5Bmember_id%5D=');
    expect(JSON.parse(event.json)).toEqual(event.payload);
    expect((await rest(portal.clientEndpoint, 'profile', event.chain.accessToken)).status).toBe(200);
  });

  it('leaves out auth fields on request, to mimic older payloads', async () => {
    await start();
    const portal = b24.addPortal();
    const event = b24.installEvent(portal.memberId, { omitAuthFields: ['expires', 'user_id'] });
    expect(event.payload.auth).not.toHaveProperty('expires');
    expect(new URLSearchParams(event.form).has('auth[user_id]')).toBe(false);
  });

  it('renders ONAPPUPDATE with versions and rotates the application token when asked', async () => {
    await start();
    const portal = b24.addPortal({ appVersion: 2 });
    const before = portal.applicationToken;

    const event = b24.updateEvent(portal.memberId, { applicationToken: 'f'.repeat(32) });

    expect(event.payload.event).toBe('ONAPPUPDATE');
    expect(event.payload.data).toEqual({ VERSION: '3', PREVIOUS_VERSION: '2', LANGUAGE_ID: 'en' });
    expect(event.payload.auth['application_token']).toBe('f'.repeat(32));
    expect(portal.applicationToken).not.toBe(before);
    expect(b24.uninstallEvent(portal.memberId).payload.auth['application_token']).toBe('f'.repeat(32));
  });

  it('renders ONAPPUNINSTALL with identity and application token only', async () => {
    await start();
    const portal = b24.addPortal();
    const event = b24.uninstallEvent(portal.memberId, { clean: true });
    expect(event.payload.event).toBe('ONAPPUNINSTALL');
    expect(event.payload.data).toEqual({ CLEAN: '1', LANGUAGE_ID: 'en' });
    expect(Object.keys(event.payload.auth).sort()).toEqual(
      ['application_token', 'client_endpoint', 'domain', 'member_id', 'server_endpoint'].sort(),
    );
    expect(event.form).not.toContain('access_token');
    expect(() => b24.updateEvent(portal.memberId)).toThrow(TypeError);
  });

  it('renders the app-page request: query with DOMAIN/PROTOCOL/LANG/APP_SID, body with a lifetime in seconds', async () => {
    await start({ accessTokenTtlSec: 1800 });
    const portal = b24.addPortal();
    const page = b24.appPageRequest(portal.memberId, { userId: 4, placementOptions: 'undefined' });

    const query = new URLSearchParams(page.query);
    const body = new URLSearchParams(page.body);
    expect(query.get('DOMAIN')).toBe(portal.domain);
    expect(query.get('PROTOCOL')).toBe('0');
    expect(query.get('APP_SID')).toMatch(/^[0-9a-f]{32}$/);
    expect(Object.fromEntries(body)).toEqual({
      AUTH_ID: page.chain.accessToken,
      AUTH_EXPIRES: '1800',
      REFRESH_ID: page.chain.refreshToken,
      member_id: portal.memberId,
      status: 'L',
      PLACEMENT: 'DEFAULT',
      PLACEMENT_OPTIONS: 'undefined',
      SERVER_ENDPOINT: b24.serverEndpoint,
      APPLICATION_TOKEN: portal.applicationToken,
      APPLICATION_SCOPE: portal.scope,
    });
    expect(page.chain.userId).toBe(4);
  });

  it('rejects unknown portals and bad arguments with a TypeError naming the argument', async () => {
    await start();
    b24.addPortal({ memberId: 'm1', domain: 'a.bitrix24.test' });
    expect(() => b24.installEvent('missing')).toThrow(/memberId/);
    expect(() => b24.addPortal({ memberId: 'm1' })).toThrow(/memberId/);
    expect(() => b24.addPortal({ domain: 'a.bitrix24.test' })).toThrow(/domain/);
    expect(() => b24.addPortal({ domain: 'bad/domain' })).toThrow(/domain/);
    expect(() => b24.issueChain('m1', { userId: 0 })).toThrow(/userId/);
    await expect(FakeBitrix24.start({ accessTokenTtlSec: -1 })).rejects.toThrow(/accessTokenTtlSec/);
  });
});

describe('FakeBitrix24: stats', () => {
  it('resets counters in place so a held reference stays live', async () => {
    await start();
    const portal = b24.addPortal();
    const stats = b24.stats;
    await refresh(b24.issueChain(portal.memberId).refreshToken);
    expect(stats.refreshRequests).toBe(1);

    b24.resetStats();

    expect(stats).toMatchObject({ refreshRequests: 0, refreshSuccess: 0, refreshErrors: {}, rest: { ok: 0 } });
    await refresh(b24.issueChain(portal.memberId).refreshToken);
    expect(stats.refreshRequests).toBe(1);
  });
});

describe('FakeBitrix24 with the real B24OAuth (@bitrix24/b24jssdk 2.2)', () => {
  it('serves profile through actions.v2 and actions.v3, and initIsAdmin', async () => {
    b24 = await FakeBitrix24.start();
    const portal = b24.addPortal();
    const sdk = sdkFor(portal.memberId, b24.issueChain(portal.memberId));

    const v2 = await sdk.actions.v2.call.make({ method: 'profile' });
    const v3 = await sdk.actions.v3.call.make({ method: 'profile' });
    await sdk.initIsAdmin();

    expect(v2.isSuccess).toBe(true);
    expect(v2.getData()?.result).toMatchObject({ ID: '1', ADMIN: true });
    expect(v3.isSuccess).toBe(true);
    expect(v3.getData()?.result).toMatchObject({ profile: { id: 1, admin: true } });
    expect(sdk.auth.isAdmin).toBe(true);
    expect(b24.stats.restByMethod['profile']).toBe(3);
  });

  it('serves the SDK batch (as B24HelperManager.loadData uses it)', async () => {
    b24 = await FakeBitrix24.start();
    const portal = b24.addPortal();
    const sdk = sdkFor(portal.memberId, b24.issueChain(portal.memberId));

    const response = await sdk.actions.v2.batch.make({
      calls: { app: { method: 'app.info' }, me: { method: 'profile' } },
      options: { isHaltOnError: true, returnAjaxResult: false },
    });

    expect(response.isSuccess).toBe(true);
    expect(response.getData()).toMatchObject({ app: { CODE: b24.clientId }, me: { ID: '1', ADMIN: true } });
  });

  it('refreshes by itself after a server-side expiry: 401 expired_token, one refresh, success', async () => {
    b24 = await FakeBitrix24.start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    const sdk = sdkFor(portal.memberId, chain);
    b24.expireAccessTokens(portal.memberId);

    const first = await sdk.actions.v2.call.make({ method: 'profile' });
    const second = await sdk.actions.v3.call.make({ method: 'profile' });

    expect(first.isSuccess).toBe(true);
    expect(second.isSuccess).toBe(true);
    expect(b24.stats).toMatchObject({ refreshRequests: 1, refreshSuccess: 1, refreshReuse: 0 });
    expect(b24.stats.rest.expiredToken).toBe(1);
    expect(b24.tokenStatus(chain.refreshToken)).toBe('spent');
    expect(sdk.auth.getAuthData()).toMatchObject({ member_id: portal.memberId });
  });

  it('refreshes through the SDK when the client-side expiry has passed', async () => {
    b24 = await FakeBitrix24.start();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    const sdk = new B24OAuth(
      { ...b24.oauthParams(portal.memberId, chain), expires: Math.floor(Date.now() / 1000) - 10 },
      { clientId: b24.clientId, clientSecret: b24.clientSecret },
    );

    expect((await sdk.actions.v2.call.make({ method: 'server.time' })).isSuccess).toBe(true);
    expect(b24.stats.refreshSuccess).toBe(1);
    expect(b24.stats.rest.expiredToken).toBe(0);
  });

  it('documents the SDK hazard: one shared instance, concurrent v2+v3 calls on an expired token reuse a spent refresh token', async () => {
    b24 = await FakeBitrix24.start();
    const portal = b24.addPortal();
    const sdk = sdkFor(portal.memberId, b24.issueChain(portal.memberId));
    b24.expireAccessTokens(portal.memberId);
    // Hold each refresh briefly so the v2 and v3 clients' refreshes overlap, as they do in production.
    b24.setOAuthDelay(100);

    const calls = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0 ? sdk.actions.v2.call.make({ method: 'profile' }) : sdk.actions.v3.call.make({ method: 'profile' }),
    );
    const results = await Promise.allSettled(calls);

    const failed = results.filter((r) => r.status === 'rejected' || !r.value.isSuccess).length;
    // One expiry, more than one refresh (the v2 and v3 clients each refresh; under load a client may
    // refresh again after its first answer), and the later ones send a spent refresh token.
    expect(b24.stats.refreshRequests).toBeGreaterThanOrEqual(2);
    expect(b24.stats.refreshReuse).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
  });

  it("is not slowed by the SDK's rate limiter within its burst", async () => {
    b24 = await FakeBitrix24.start();
    const portal = b24.addPortal();
    const sdk = sdkFor(portal.memberId, b24.issueChain(portal.memberId));
    const startedAt = Date.now();

    const results = await Promise.all(Array.from({ length: 40 }, () => sdk.actions.v2.call.make({ method: 'profile' })));

    expect(results.every((r) => r.isSuccess)).toBe(true);
    expect(Date.now() - startedAt).toBeLessThan(3000);
  });
});
