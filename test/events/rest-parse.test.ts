// parseRestEvent: a real-shaped ONCRMDEALADD in every input form, `data` nested as sent, the optional
// auth fields, unknown and lifecycle event names, and the one typed error that never carries a value.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, InvalidEventError } from '../../src/errors.js';
import { parseRestEvent } from '../../src/events/rest.js';
import { parseRestEvent as fromRoot } from '../../src/index.js';
import { invalid } from './helpers.js';
import { DEAL_ADD, DEAL_ADD_SECRETS, dealAddWithAuth, flatObject, phpForm, restInputForms } from './rest-helpers.js';

const expected = {
  type: 'rest',
  event: 'ONCRMDEALADD',
  handlerId: 683,
  ts: 1741092489,
  data: { FIELDS: { ID: '6799', TITLE: 'Deal #6799', CONTACT_IDS: { '0': '12', '1': '14' } } },
  auth: {
    memberId: 'a223c6b3710f85df22e9377d6c4f7553',
    applicationToken: '51856fefc120afa4b628cc82d3935cce',
    domain: 'some-domain.bitrix24.com',
    clientEndpoint: 'https://some-domain.bitrix24.com/rest/',
    serverEndpoint: 'https://oauth.bitrix.info/rest/',
    accessToken: 's6p6eclrvim6da22ft9ch94ekreb52lv',
    refreshToken: '4s386p3q0tr8dy89xvmt96234v3dljg8',
    expires: null,
    expiresIn: 3600,
    scope: 'crm',
    status: 'L',
    userId: null,
  },
};

/** Plain copies, so prototypes (null for data) do not matter to the comparison. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe('parseRestEvent: every input form', () => {
  it.each(restInputForms(DEAL_ADD))('reads ONCRMDEALADD from %s', (_name, input, contentType) => {
    expect(plain(parseRestEvent(input as never, { contentType }))).toStrictEqual(expected);
  });

  it('is exported from the package root', () => {
    expect(fromRoot).toBe(parseRestEvent);
  });

  it('returns frozen data with null prototypes, strings left as strings', () => {
    const event = parseRestEvent(phpForm(DEAL_ADD));
    expect(Object.isFrozen(event)).toBe(true);
    expect(Object.isFrozen(event.auth)).toBe(true);
    expect(Object.isFrozen(event.data)).toBe(true);
    expect(Object.isFrozen(event.data['FIELDS'])).toBe(true);
    expect(Object.getPrototypeOf(event.data)).toBeNull();
    expect(typeof (event.data['FIELDS'] as Record<string, unknown>)['ID']).toBe('string');
  });

  it('keeps JSON numbers, booleans, nulls and lists as sent', () => {
    const body = { ...DEAL_ADD, data: { FIELDS: { ID: 6799, DONE: true, NOTE: null, TAGS: ['a', { X: '1' }] } } };
    const event = parseRestEvent(JSON.stringify(body));
    expect(plain(event.data)).toStrictEqual({ FIELDS: { ID: 6799, DONE: true, NOTE: null, TAGS: ['a', { X: '1' }] } });
    expect(Object.isFrozen((event.data['FIELDS'] as Record<string, unknown>)['TAGS'])).toBe(true);
  });

  it('reads an event without data as empty data', () => {
    const { data: _data, ...rest } = DEAL_ADD;
    expect(plain(parseRestEvent(phpForm(rest)).data)).toStrictEqual({});
  });

  it('accepts unknown event names, in any case, and reports them in upper case', () => {
    expect(parseRestEvent(phpForm({ ...DEAL_ADD, event: 'onSomethingNobodyKnows_2' })).event).toBe('ONSOMETHINGNOBODYKNOWS_2');
  });

  it('needs only member_id and application_token in auth (a live capture lacks server_endpoint)', () => {
    const minimal = { event: 'ONTASKUPDATE', data: { FIELDS_AFTER: { ID: '5' } }, auth: { member_id: 'm1', application_token: 'app-token-1' } };
    const event = parseRestEvent(phpForm(minimal));
    expect(plain(event)).toStrictEqual({
      type: 'rest',
      event: 'ONTASKUPDATE',
      handlerId: null,
      ts: null,
      data: { FIELDS_AFTER: { ID: '5' } },
      auth: {
        memberId: 'm1',
        applicationToken: 'app-token-1',
        domain: null,
        clientEndpoint: null,
        serverEndpoint: null,
        accessToken: null,
        refreshToken: null,
        expires: null,
        expiresIn: null,
        scope: null,
        status: null,
        userId: null,
      },
    });
    expect(parseRestEvent(phpForm(dealAddWithAuth({ server_endpoint: undefined }))).auth.serverEndpoint).toBeNull();
  });

  it('reads expires and user_id when sent', () => {
    const event = parseRestEvent(phpForm(dealAddWithAuth({ expires: '1741096089', user_id: '7' })));
    expect([event.auth.expires, event.auth.userId]).toEqual([1741096089, 7]);
  });
});

describe('parseRestEvent: refusals', () => {
  it.each([
    ['ONAPPINSTALL'],
    ['onAppUpdate'],
    ['ONAPPUNINSTALL'],
  ])('refuses the lifecycle event %s and points to the lifecycle handler', (name) => {
    const error = invalid(() => parseRestEvent(phpForm({ ...DEAL_ADD, event: name })));
    expect([error.code, error.field, error.reason]).toEqual([ErrorCode.UnknownEvent, 'event', 'lifecycle']);
    expect(error.message).toMatch(/createLifecycleHandler/);
  });

  it.each([
    ['no member_id', dealAddWithAuth({ member_id: undefined }), 'auth[member_id]', 'missing'],
    ['no application_token', dealAddWithAuth({ application_token: undefined }), 'auth[application_token]', 'missing'],
    ['a member_id with a slash', dealAddWithAuth({ member_id: '../x' }), 'auth[member_id]', 'format'],
    ['a token with a space', dealAddWithAuth({ application_token: 'a b' }), 'auth[application_token]', 'format'],
    ['a bad domain', dealAddWithAuth({ domain: 'evil.com/x' }), 'auth[domain]', 'format'],
    ['a bad server endpoint', dealAddWithAuth({ server_endpoint: 'javascript:alert(1)' }), 'auth[server_endpoint]', 'format'],
    ['a bad status', dealAddWithAuth({ status: 'paid' }), 'auth[status]', 'format'],
    ['a bad user_id', dealAddWithAuth({ user_id: '-1' }), 'auth[user_id]', 'format'],
    ['no event', { ...DEAL_ADD, event: '' }, 'event', 'missing'],
    ['an event name with spaces', { ...DEAL_ADD, event: 'ON CRM' }, 'event', 'format'],
    ['a bad ts', { ...DEAL_ADD, ts: 'yesterday' }, 'ts', 'format'],
    ['data as a single value', { ...DEAL_ADD, data: 'x' }, 'data', 'type'],
  ])('refuses %s, naming the field', (_name, body, field, reason) => {
    const error = invalid(() => parseRestEvent(phpForm(body)));
    expect([error.field, error.reason, error.code]).toEqual([field, reason, ErrorCode.InvalidEvent]);
  });

  it('names a duplicated field inside data exactly', () => {
    const error = invalid(() => parseRestEvent(`${phpForm(DEAL_ADD)}&data%5BFIELDS%5D%5BID%5D=1`));
    expect([error.field, error.reason]).toEqual(['data[FIELDS][ID]', 'duplicate']);
  });

  it('refuses auth given twice, and a body over the limit', () => {
    expect(invalid(() => parseRestEvent(`${phpForm(DEAL_ADD)}&auth%5Bmember_id%5D=other`)).reason).toBe('duplicate');
    expect(invalid(() => parseRestEvent(phpForm(DEAL_ADD), { maxBytes: 100 })).reason).toBe('too_large');
    expect(invalid(() => parseRestEvent('text', { contentType: 'text/plain' })).reason).toBe('content_type');
    expect(invalid(() => parseRestEvent('{"event":')).reason).toBe('syntax');
  });

  it('never puts a value of the input into an error', () => {
    const bodies = [
      dealAddWithAuth({ member_id: undefined }),
      dealAddWithAuth({ domain: DEAL_ADD.auth.access_token + '/' }),
      { ...DEAL_ADD, event: 'ONAPPINSTALL' },
      { ...DEAL_ADD, data: DEAL_ADD.auth.refresh_token },
    ];
    for (const body of bodies) {
      const error = invalid(() => parseRestEvent(phpForm(body)));
      const seen = JSON.stringify({ ...error, message: error.message });
      expect(DEAL_ADD_SECRETS.filter((secret) => seen.includes(secret))).toEqual([]);
    }
  });

  it('keeps prototype keys inert', () => {
    const body = `${phpForm(DEAL_ADD)}&data%5B__proto__%5D%5Bpolluted%5D=1&data%5BFIELDS%5D%5Bconstructor%5D%5Bprototype%5D=1`;
    const event = parseRestEvent(body);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.keys(event.data)).toEqual(['FIELDS']);
    expect(Object.keys(event.data['FIELDS'] as object)).toEqual(['ID', 'TITLE', 'CONTACT_IDS']);
  });
});

describe('parseRestEvent: properties', () => {
  // Bitrix24's data: nested groups with string leaves (keys as PHP would write them).
  const key = fc.stringMatching(/^[A-Z][A-Z0-9_]{0,11}$/);
  const data: fc.Arbitrary<Record<string, unknown>> = fc.letrec<{ tree: Record<string, unknown> }>((tie) => ({
    tree: fc.dictionary(key, fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 20 }), tie('tree')), { maxKeys: 4 }),
  })).tree;
  const nonEmpty = (tree: Record<string, unknown>): boolean => Object.values(tree).every((v) => typeof v === 'string' || (Object.keys(v as object).length > 0 && nonEmpty(v as Record<string, unknown>)));

  it('gives back the data that was sent, from form and JSON alike', () => {
    fc.assert(
      fc.property(data.filter(nonEmpty), (tree) => {
        const body = { ...DEAL_ADD, data: tree };
        const fromForm = parseRestEvent(phpForm(body));
        const fromFlat = parseRestEvent(flatObject(body));
        const fromJson = parseRestEvent(JSON.stringify(body));
        expect(plain(fromForm.data)).toStrictEqual(plain(tree));
        expect(plain(fromFlat.data)).toStrictEqual(plain(tree));
        expect(plain(fromJson.data)).toStrictEqual(plain(tree));
      }),
      { seed: 20261128, numRuns: 200 },
    );
  });

  it('throws nothing but InvalidEventError for arbitrary objects', () => {
    fc.assert(
      fc.property(fc.object({ maxDepth: 3 }), (value) => {
        try {
          parseRestEvent(value);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidEventError);
        }
      }),
      { seed: 20261129, numRuns: 300 },
    );
  });
});
