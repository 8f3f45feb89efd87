// parseAppPageRequest: the iframe POST (query + body) from current and older portals, in every input form.

import { describe, expect, it } from 'vitest';
import { parseAppPageRequest } from '../../src/events/parse.js';
import { fixture, formPairs, inputForms, invalid, toFlatObject, toFormText, withPair } from './helpers.js';

const query = formPairs('app-page.query.txt');
const body = formPairs('app-page.body.txt');
const NOW_MS = 1_762_090_000_999;
const now = () => NOW_MS;
const nowSeconds = Math.floor(NOW_MS / 1000);

const expected = {
  type: 'app-page',
  auth: {
    accessToken: '076a0769006e8b2d0064d5a200000001000007e0b4b2a0b2e6c3b5d7f83e1e7e6a973e',
    refreshToken: 'f5e98f69006e8b2d0064d5a200000001000007a4f0b6ce8e5c1b0b1c8e2d9a3f0c1f42',
    expires: nowSeconds + 3600,
    expiresIn: 3600,
    scope: 'crm,placement,user_brief',
    domain: 'acme.bitrix24.com',
    clientEndpoint: 'https://acme.bitrix24.com/rest/',
    serverEndpoint: 'https://oauth.bitrix.info/rest/',
    status: 'L',
    memberId: '010b6886ebc205e43ae65000ee00addb',
    userId: null,
    applicationToken: 'e24831714bb347622e3ef25af61525cf',
  },
  placement: 'CRM_DEAL_DETAIL_TAB',
  placementOptions: { ID: '42' },
  lang: 'en',
  appSid: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
};

describe('parseAppPageRequest', () => {
  const queryForms: [string, unknown][] = [
    ['query text', fixture('app-page.query.txt')],
    ['query text with ?', `?${toFormText(query)}`],
    ['request target', `/app/index.php?${toFormText(query)}`],
    ['absolute URL', `https://app.example.com/app?${toFormText(query)}`],
    ['URLSearchParams', new URLSearchParams(query)],
    ['object', toFlatObject(query)],
  ];

  it.each(queryForms)('reads the query from %s', (_name, q) => {
    const page = parseAppPageRequest({ query: q as never, body: fixture('app-page.body.txt') }, { now });
    expect({ ...page, placementOptions: { ...(page.placementOptions as object) } }).toStrictEqual(expected);
  });

  it.each(inputForms(body))('reads the body from %s', (_name, input, contentType) => {
    const page = parseAppPageRequest({ query: toFormText(query), body: input as never }, { contentType, now });
    expect(page.auth).toStrictEqual(expected.auth);
    expect(page.placementOptions).toEqual({ ID: '42' });
  });

  it('reads an older portal without SERVER_ENDPOINT, APPLICATION_TOKEN and scope, with PLACEMENT_OPTIONS "undefined"', () => {
    const page = parseAppPageRequest({ query: fixture('app-page.query.txt'), body: fixture('app-page-legacy.body.txt') }, { now });
    expect(page.auth).toMatchObject({
      serverEndpoint: 'https://oauth.bitrix.info/rest/',
      applicationToken: null,
      scope: '',
      status: 'F',
    });
    expect(page.placement).toBe('DEFAULT');
    expect(page.placementOptions).toBeNull();
  });

  it('treats AUTH_EXPIRES as a lifetime in seconds, not a timestamp', () => {
    const page = parseAppPageRequest(
      { query: toFormText(query), body: toFormText(withPair(body, 'AUTH_EXPIRES', '1800')) },
      { now },
    );
    expect(page.auth).toMatchObject({ expires: nowSeconds + 1800, expiresIn: 1800 });
    const missing = parseAppPageRequest({ query: toFormText(query), body: toFormText(withPair(body, 'AUTH_EXPIRES', undefined)) }, { now });
    expect(missing.auth).toMatchObject({ expires: nowSeconds + 3600, expiresIn: 3600 });
  });

  it('builds an http client endpoint for PROTOCOL=0 and keeps the port of DOMAIN', () => {
    let q = withPair(query, 'PROTOCOL', '0');
    q = withPair(q, 'DOMAIN', 'bitrix.local:8080');
    const page = parseAppPageRequest({ query: toFormText(q), body: toFormText(body) }, { now });
    expect(page.auth).toMatchObject({ domain: 'bitrix.local:8080', clientEndpoint: 'http://bitrix.local:8080/rest/' });
    const https = parseAppPageRequest({ query: toFormText(withPair(query, 'PROTOCOL', undefined)), body: toFormText(body) }, { now });
    expect(https.auth.clientEndpoint).toBe('https://acme.bitrix24.com/rest/');
  });

  it('decodes PLACEMENT_OPTIONS that a JSON body already holds as an object', () => {
    const page = parseAppPageRequest(
      { query: toFormText(query), body: { ...toFlatObject(body), PLACEMENT_OPTIONS: { ID: 42, tags: ['a', 'b'] } } },
      { now },
    );
    expect(page.placementOptions).toEqual({ ID: 42, tags: ['a', 'b'] });
  });

  it('rejects PLACEMENT_OPTIONS that is not JSON', () => {
    const error = invalid(() =>
      parseAppPageRequest({ query: toFormText(query), body: toFormText(withPair(body, 'PLACEMENT_OPTIONS', '{ID:42')) }, { now }),
    );
    expect(error).toMatchObject({ field: 'PLACEMENT_OPTIONS', reason: 'syntax' });
  });

  it('finds a field outside its documented place, but rejects it when both places disagree', () => {
    const movedQuery = withPair(query, 'member_id', '010b6886ebc205e43ae65000ee00addb');
    const movedBody = withPair(body, 'member_id', undefined);
    expect(
      parseAppPageRequest({ query: toFormText(movedQuery), body: toFormText(movedBody) }, { now }).auth.memberId,
    ).toBe('010b6886ebc205e43ae65000ee00addb');
    // The same value in both places is harmless.
    expect(parseAppPageRequest({ query: toFormText(movedQuery), body: toFormText(body) }, { now }).auth.memberId).toBe(
      '010b6886ebc205e43ae65000ee00addb',
    );
    const error = invalid(() =>
      parseAppPageRequest({ query: toFormText(withPair(query, 'member_id', 'other')), body: toFormText(body) }, { now }),
    );
    expect(error).toMatchObject({ field: 'member_id', reason: 'duplicate' });
  });

  it.each([
    ['DOMAIN', 'query', undefined, 'missing'],
    ['DOMAIN', 'query', 'evil.com/path', 'format'],
    ['DOMAIN', 'query', 'evil.com@good.com', 'format'],
    ['PROTOCOL', 'query', '2', 'format'],
    ['AUTH_ID', 'body', undefined, 'missing'],
    ['REFRESH_ID', 'body', undefined, 'missing'],
    ['member_id', 'body', undefined, 'missing'],
    ['status', 'body', undefined, 'missing'],
    ['AUTH_EXPIRES', 'body', '1762093575.0', 'format'],
    ['AUTH_EXPIRES', 'body', '0', 'format'],
    ['SERVER_ENDPOINT', 'body', 'javascript:alert(1)', 'format'],
    ['SERVER_ENDPOINT', 'body', 'ftp://oauth.bitrix.info/rest/', 'format'],
    ['PLACEMENT', 'body', 'has space', 'format'],
  ])('rejects %s (%s) = %j', (key, where, value, reason) => {
    const q = where === 'query' ? withPair(query, key, value) : query;
    const b = where === 'body' ? withPair(body, key, value) : body;
    const error = invalid(() => parseAppPageRequest({ query: toFormText(q), body: toFormText(b) }, { now }));
    expect(error).toMatchObject({ field: key, reason });
  });

  it('bounds the query like the body', () => {
    const error = invalid(() =>
      parseAppPageRequest({ query: `${toFormText(query)}&pad=${'a'.repeat(70_000)}`, body: toFormText(body) }),
    );
    expect(error).toMatchObject({ field: 'query', reason: 'too_large' });
  });

  it('returns a frozen result', () => {
    const page = parseAppPageRequest({ query: toFormText(query), body: toFormText(body) }, { now });
    expect(Object.isFrozen(page) && Object.isFrozen(page.auth)).toBe(true);
  });
});
