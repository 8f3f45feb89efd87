// Users of a stand-in portal: who administers it, and every chain acting as its own user, so a test
// can tell whose rights a call ran with (profile, user.admin, app pages, code exchanges).

import { B24OAuth } from '@bitrix24/b24jssdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeBitrix24 } from '../../src/testing/index.js';

let b24: FakeBitrix24;

beforeEach(async () => {
  b24 = await FakeBitrix24.start({ redirectUri: 'https://app.test/callback' });
});

afterEach(async () => {
  await b24.close();
});

// REST answers are arbitrary JSON; each test reads the fields it relies on.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function call(endpoint: string, method: string, auth: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${endpoint}${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth }),
  });
  return { status: res.status, body: await res.json() };
}

/** What the portal says about the user a token acts as: v2 profile, v3 profile and user.admin. */
async function whoAmI(endpoint: string, auth: string): Promise<{ id: string; admin: boolean; v3Id: number; v3Admin: boolean; userAdmin: boolean }> {
  const v2 = await call(endpoint, 'profile', auth);
  const v3 = await call(`${endpoint}api/`, 'profile', auth);
  const userAdmin = await call(endpoint, 'user.admin', auth);
  expect([v2.status, v3.status, userAdmin.status]).toEqual([200, 200, 200]);
  return {
    id: v2.body.result.ID,
    admin: v2.body.result.ADMIN,
    v3Id: v3.body.result.profile.id,
    v3Admin: v3.body.result.profile.admin,
    userAdmin: userAdmin.body.result,
  };
}

describe('FakeBitrix24: users and administrators of a portal', () => {
  it('makes the installer (user 1 by default) the only administrator', async () => {
    const portal = b24.addPortal();
    expect(portal.adminUserId).toBe(1);
    expect(portal.users).toEqual([1]);
    expect(portal.admins).toEqual([1]);
    const installer = b24.issueChain(portal.memberId);
    expect(await whoAmI(portal.clientEndpoint, installer.accessToken)).toEqual({ id: '1', admin: true, v3Id: 1, v3Admin: true, userAdmin: true });
  });

  it('takes users and administrators per portal, and answers each chain as its own user', async () => {
    const portal = b24.addPortal({ userId: 3, users: [5, 7], admins: [3, 5] });
    const other = b24.addPortal();
    expect(portal.users).toEqual([3, 5, 7]);
    expect(portal.admins).toEqual([3, 5]);
    expect(other.admins).toEqual([1]);

    const portalChain = b24.issueChain(portal.memberId);
    const five = b24.issueChain(portal.memberId, { userId: 5 });
    const seven = b24.issueChain(portal.memberId, { userId: 7 });
    expect(portalChain.userId).toBe(3);
    expect(await whoAmI(portal.clientEndpoint, portalChain.accessToken)).toMatchObject({ id: '3', admin: true, userAdmin: true });
    expect(await whoAmI(portal.clientEndpoint, five.accessToken)).toEqual({ id: '5', admin: true, v3Id: 5, v3Admin: true, userAdmin: true });
    expect(await whoAmI(portal.clientEndpoint, seven.accessToken)).toEqual({ id: '7', admin: false, v3Id: 7, v3Admin: false, userAdmin: false });
    expect(b24.stats.restByMethod['user.admin']).toBe(3);
  });

  it('lets `admins` leave the installer out, as for an installer who lost the rights later', async () => {
    const portal = b24.addPortal({ admins: [2] });
    expect(portal.admins).toEqual([2]);
    expect(portal.users).toEqual([1, 2]);
    const installer = b24.issueChain(portal.memberId);
    expect(await whoAmI(portal.clientEndpoint, installer.accessToken)).toMatchObject({ id: '1', admin: false, userAdmin: false });
  });

  it('adds a user on first sight as an ordinary user, and setUser changes rights for chains already issued', async () => {
    const portal = b24.addPortal();
    const nine = b24.issueChain(portal.memberId, { userId: 9 });
    expect(portal.users).toEqual([1, 9]);
    expect(await whoAmI(portal.clientEndpoint, nine.accessToken)).toMatchObject({ id: '9', userAdmin: false });

    b24.setUser(portal.memberId, 9, { admin: true, name: 'Nina' });
    expect(portal.admins).toEqual([1, 9]);
    expect(await whoAmI(portal.clientEndpoint, nine.accessToken)).toMatchObject({ id: '9', admin: true, userAdmin: true });
    expect((await call(portal.clientEndpoint, 'user.current', nine.accessToken)).body.result).toMatchObject({ ID: '9', NAME: 'Nina' });

    b24.setUser(portal.memberId, 1, { admin: false });
    expect(portal.admins).toEqual([9]);
  });

  it('keeps a refresh acting as the same user', async () => {
    const portal = b24.addPortal({ users: [4] });
    const four = b24.issueChain(portal.memberId, { userId: 4 });
    const res = await fetch(`${b24.oauthUrl}/oauth/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: b24.clientId, client_secret: b24.clientSecret, refresh_token: four.refreshToken }),
    });
    const answer = (await res.json()) as { access_token: string; user_id: number };
    expect(answer.user_id).toBe(4);
    expect(await whoAmI(portal.clientEndpoint, answer.access_token)).toMatchObject({ id: '4', userAdmin: false });
  });

  it('expires the access tokens of one user only when asked', () => {
    const portal = b24.addPortal({ users: [4] });
    const installer = b24.issueChain(portal.memberId);
    const four = b24.issueChain(portal.memberId, { userId: 4 });
    b24.expireAccessTokens(portal.memberId, { userId: 4 });
    expect(b24.tokenStatus(four.accessToken)).toBe('expired');
    expect(b24.tokenStatus(installer.accessToken)).toBe('live');

    const again = b24.issueChain(portal.memberId, { userId: 4 });
    b24.expireAccessToken(again.accessToken);
    expect(b24.tokenStatus(again.accessToken)).toBe('expired');
    expect(b24.tokenStatus(installer.accessToken)).toBe('live');
    b24.expireAccessToken('no-such-token');
  });

  it('rejects bad user ids with a TypeError naming the argument', () => {
    expect(() => b24.addPortal({ users: [0] })).toThrow(/options\.users/);
    expect(() => b24.addPortal({ admins: [1.5] })).toThrow(/options\.admins/);
    const portal = b24.addPortal();
    expect(() => b24.setUser(portal.memberId, -1)).toThrow(/userId/);
    expect(() => b24.setUser('nope', 2)).toThrow(/memberId/);
    expect(() => b24.expireAccessTokens(portal.memberId, { userId: 0 })).toThrow(/options\.userId/);
  });
});

describe('FakeBitrix24: whose chain reaches the app', () => {
  it('builds the app page of a named user, carrying a fresh chain of that user', async () => {
    const portal = b24.addPortal({ users: [7] });
    const page = b24.appPageRequest(portal.memberId, { userId: 7 });
    const body = new URLSearchParams(page.body);
    expect(page.chain.userId).toBe(7);
    expect(body.get('AUTH_ID')).toBe(page.chain.accessToken);
    expect(body.get('REFRESH_ID')).toBe(page.chain.refreshToken);
    expect(body.get('member_id')).toBe(portal.memberId);
    expect(await whoAmI(portal.clientEndpoint, body.get('AUTH_ID')!)).toMatchObject({ id: '7', admin: false, userAdmin: false });

    const adminPage = b24.appPageRequest(portal.memberId);
    expect(await whoAmI(portal.clientEndpoint, new URLSearchParams(adminPage.body).get('AUTH_ID')!)).toMatchObject({ id: '1', userAdmin: true });
    // Each visit mints its own chain; an earlier one stays live.
    expect(b24.tokenStatus(page.chain.accessToken)).toBe('live');
  });

  it('exchanges the code of a named user for a chain of that user', async () => {
    const portal = b24.addPortal({ users: [6] });
    const { code } = b24.authorize(portal.memberId, { userId: 6, state: 's' });
    const res = await fetch(`${b24.oauthUrl}/oauth/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: b24.clientId, client_secret: b24.clientSecret, code }),
    });
    const answer = (await res.json()) as { access_token: string; user_id: number };
    expect(answer.user_id).toBe(6);
    expect(await whoAmI(portal.clientEndpoint, answer.access_token)).toMatchObject({ id: '6', userAdmin: false });
  });

  it("answers the SDK's initIsAdmin as the chain's user", async () => {
    const portal = b24.addPortal({ users: [8] });
    const client = (userId?: number): B24OAuth =>
      new B24OAuth(b24.oauthParams(portal.memberId, b24.issueChain(portal.memberId, userId === undefined ? {} : { userId })), {
        clientId: b24.clientId,
        clientSecret: b24.clientSecret,
      });
    const admin = client();
    const eight = client(8);
    await admin.initIsAdmin();
    await eight.initIsAdmin();
    expect(admin.auth.isAdmin).toBe(true);
    expect(eight.auth.isAdmin).toBe(false);
  });
});
