// REST events of bound handlers (event.bind) as the stand-in renders them: the body Bitrix24 posts,
// decoded back with the stand-in's PHP bracket-form reader, and the triggering user's chain it carries.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodePhpForm } from '../../src/testing/fake-bitrix24/php-form.js';
import { FakeBitrix24 } from '../../src/testing/index.js';

let b24: FakeBitrix24;
let clock: number;

beforeEach(async () => {
  clock = Date.UTC(2025, 0, 15, 12, 0, 0);
  b24 = await FakeBitrix24.start({ now: () => clock });
});

afterEach(async () => {
  await b24.close();
});

const AUTH_FIELDS = [
  'access_token',
  'expires',
  'expires_in',
  'scope',
  'domain',
  'server_endpoint',
  'status',
  'client_endpoint',
  'member_id',
  'user_id',
  'refresh_token',
  'application_token',
];

describe('FakeBitrix24.restEvent', () => {
  it('renders ONCRMDEALADD as Bitrix24 posts it: PHP bracket form, nested data, string leaves, a full auth block', () => {
    const portal = b24.addPortal({ users: [7], scope: 'crm' });
    const { form, json, payload, chain } = b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: 759 } }, { userId: 7 });

    expect(form).toContain('event=ONCRMDEALADD');
    expect(form).toContain(`${encodeURIComponent('data[FIELDS][ID]')}=759`);
    expect(form).toContain(`${encodeURIComponent('auth[application_token]')}=${portal.applicationToken}`);
    const decoded = decodePhpForm(new URLSearchParams(form));
    expect(JSON.parse(JSON.stringify(decoded))).toEqual(payload);
    expect(JSON.parse(json)).toEqual(payload);

    expect(Object.keys(payload)).toEqual(['event', 'event_handler_id', 'data', 'ts', 'auth']);
    expect(payload).toMatchObject({ event: 'ONCRMDEALADD', event_handler_id: '10', data: { FIELDS: { ID: '759' } }, ts: String(clock / 1000) });
    expect(Object.keys(payload.auth)).toEqual(AUTH_FIELDS);
    expect(payload.auth).toEqual({
      access_token: chain.accessToken,
      expires: String(clock / 1000 + 3600),
      expires_in: '3600',
      scope: 'crm',
      domain: portal.domain,
      server_endpoint: b24.serverEndpoint,
      status: 'L',
      client_endpoint: portal.clientEndpoint,
      member_id: portal.memberId,
      user_id: '7',
      refresh_token: chain.refreshToken,
      application_token: portal.applicationToken,
    });
  });

  it("carries a fresh chain of the user who fired it, leaving the portal's chains alone", async () => {
    const portal = b24.addPortal({ users: [7] });
    const installer = b24.issueChain(portal.memberId);
    const event = b24.restEvent(portal.memberId, 'ONTASKUPDATE', { FIELDS_AFTER: { ID: 5 } }, { userId: 7 });
    expect(event.chain).toMatchObject({ memberId: portal.memberId, userId: 7 });
    expect(b24.tokenStatus(event.chain.accessToken)).toBe('live');
    expect(b24.tokenStatus(installer.accessToken)).toBe('live');
    expect(b24.tokenStatus(installer.refreshToken)).toBe('live');

    const res = await fetch(`${event.payload.auth['client_endpoint']}user.admin`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ auth: event.payload.auth['access_token']! }),
    });
    expect(await res.json()).toMatchObject({ result: false });

    const byInstaller = b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: 1 } });
    expect(byInstaller.payload.auth['user_id']).toBe('1');
  });

  it('sends data as PHP does: numbers and booleans as strings, lists as indexed keys, null left out', () => {
    const portal = b24.addPortal();
    const { payload, form } = b24.restEvent(portal.memberId, 'onCrmDealUpdate', {
      FIELDS: { ID: 42, CLOSED: true, OPENED: false, TAGS: ['a', 'b'], NOTE: null, EMPTY: '' },
    });
    expect(payload.event).toBe('ONCRMDEALUPDATE');
    expect(payload.data).toEqual({ FIELDS: { ID: '42', CLOSED: '1', OPENED: '0', TAGS: { 0: 'a', 1: 'b' }, EMPTY: '' } });
    expect(JSON.parse(JSON.stringify(decodePhpForm(new URLSearchParams(form))))).toEqual(payload);
  });

  it('takes the handler id and ts, and leaves out auth fields on request (the documented examples lack expires and user_id)', () => {
    const portal = b24.addPortal();
    const { payload } = b24.restEvent(portal.memberId, 'ONCRMDEALDELETE', { FIELDS: { ID: 3 } }, {
      handlerId: 201,
      ts: 1736405807,
      omitAuthFields: ['expires', 'user_id'],
    });
    expect(payload.event_handler_id).toBe('201');
    expect(payload.ts).toBe('1736405807');
    expect(Object.keys(payload.auth)).toEqual(AUTH_FIELDS.filter((f) => f !== 'expires' && f !== 'user_id'));

    const offline = b24.restEvent(portal.memberId, 'ONCRMDEALADD', {}, { omitAuthFields: ['access_token', 'refresh_token', 'expires', 'expires_in'] });
    expect(offline.payload.auth).not.toHaveProperty('access_token');
    expect(offline.payload.auth['application_token']).toBe(portal.applicationToken);
    expect(offline.payload.data).toEqual({});
  });

  it('follows a rotated application_token', () => {
    const portal = b24.addPortal();
    b24.updateEvent(portal.memberId, { applicationToken: 'rotated0000000000000000000000000' });
    expect(b24.restEvent(portal.memberId, 'ONCRMDEALADD', {}).payload.auth['application_token']).toBe('rotated0000000000000000000000000');
  });

  it('rejects unknown portals and bad arguments with a TypeError naming the argument', () => {
    const portal = b24.addPortal();
    expect(() => b24.restEvent('nope', 'ONCRMDEALADD', {})).toThrow(/memberId/);
    expect(() => b24.restEvent(portal.memberId, 'ON CRM', {})).toThrow(/event/);
    expect(() => b24.restEvent(portal.memberId, 'ONCRMDEALADD', [] as unknown as Record<string, unknown>)).toThrow(/data/);
    expect(() => b24.restEvent(portal.memberId, 'ONCRMDEALADD', { f: () => 1 })).toThrow(/data\.f/);
    expect(() => b24.restEvent(portal.memberId, 'ONCRMDEALADD', {}, { userId: 0 })).toThrow(/options\.userId/);
    expect(() => b24.restEvent(portal.memberId, 'ONCRMDEALADD', {}, { ts: -1 })).toThrow(/options\.ts/);
  });
});
