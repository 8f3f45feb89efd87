// parseInstallEvent on real-shaped ONAPPINSTALL, ONAPPUPDATE and ONAPPUNINSTALL payloads, in every input
// form, and the field rules: expiry, endpoints, member_id, statuses, flags, unknown events.

import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { parseInstallEvent } from '../../src/events/parse.js';
import { fixture, formPairs, inputForms, invalid, toFormText, toNestedObject, withPair } from './helpers.js';

const install = formPairs('install.txt');
const update = formPairs('update.txt');
const uninstall = formPairs('uninstall.txt');
const NOW_MS = 1_762_090_000_123;
const now = () => NOW_MS;

const expectedInstall = {
  type: 'install',
  event: 'ONAPPINSTALL',
  handlerId: 1,
  ts: 1762089975,
  languageId: 'en',
  version: '1',
  active: true,
  installed: true,
  auth: {
    accessToken: '076a0769006e8b2d0064d5a200000001000007e0b4b2a0b2e6c3b5d7f83e1e7e6a973e',
    refreshToken: 'f5e98f69006e8b2d0064d5a200000001000007a4f0b6ce8e5c1b0b1c8e2d9a3f0c1f42',
    expires: 1762093575,
    expiresIn: 3600,
    scope: 'crm,placement,user_brief',
    domain: 'acme.bitrix24.com',
    clientEndpoint: 'https://acme.bitrix24.com/rest/',
    serverEndpoint: 'https://oauth.bitrix.info/rest/',
    status: 'L',
    memberId: '010b6886ebc205e43ae65000ee00addb',
    userId: 1,
    applicationToken: 'e24831714bb347622e3ef25af61525cf',
  },
};

describe('parseInstallEvent: the three events in every input form', () => {
  it.each(inputForms(install))('reads ONAPPINSTALL from %s', (_name, input, contentType) => {
    expect(parseInstallEvent(input as never, { contentType, now })).toStrictEqual(expectedInstall);
  });

  it.each(inputForms(update))('reads ONAPPUPDATE from %s', (_name, input, contentType) => {
    const event = parseInstallEvent(input as never, { contentType, now });
    expect(event).toStrictEqual({
      type: 'update',
      event: 'ONAPPUPDATE',
      handlerId: 3,
      ts: 1762176375,
      languageId: 'de',
      version: '2',
      previousVersion: '1',
      auth: {
        ...expectedInstall.auth,
        accessToken: '1c2d3e69006e8b2d0064d5a2000000010000071d6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f',
        refreshToken: '9a8b7c69006e8b2d0064d5a200000001000007f0e1d2c3b4a5968778695a4b3c2d1e0f',
        expires: 1762179975,
        scope: 'crm,placement,user_brief,task',
        status: 'P',
        userId: 7,
      },
    });
  });

  it.each(inputForms(uninstall))('reads ONAPPUNINSTALL from %s', (_name, input, contentType) => {
    expect(parseInstallEvent(input as never, { contentType, now })).toStrictEqual({
      type: 'uninstall',
      event: 'ONAPPUNINSTALL',
      handlerId: 2,
      ts: 1762262775,
      languageId: 'en',
      clean: true,
      auth: {
        domain: 'acme.bitrix24.com',
        clientEndpoint: 'https://acme.bitrix24.com/rest/',
        serverEndpoint: 'https://oauth.bitrix.info/rest/',
        memberId: '010b6886ebc205e43ae65000ee00addb',
        applicationToken: 'e24831714bb347622e3ef25af61525cf',
      },
    });
  });

  it('reads the JSON fixtures as the form fixtures', () => {
    for (const name of ['install', 'update', 'uninstall']) {
      expect(parseInstallEvent(fixture(`${name}.json`), { now })).toStrictEqual(
        parseInstallEvent(fixture(`${name}.txt`), { now }),
      );
    }
  });

  it('returns a frozen result', () => {
    const event = parseInstallEvent(fixture('install.txt'));
    expect(Object.isFrozen(event)).toBe(true);
    expect(Object.isFrozen(event.type === 'install' && event.auth)).toBe(true);
  });

  it('accepts JSON numbers and booleans where Bitrix24 sends strings', () => {
    const body = toNestedObject(install) as { auth: Record<string, unknown>; data: Record<string, unknown> };
    body.auth.expires = 1762093575;
    body.auth.user_id = 1;
    body.data.ACTIVE = true;
    body.data.VERSION = 1;
    expect(parseInstallEvent(JSON.stringify(body), { now })).toStrictEqual(expectedInstall);
  });

  it('matches the event name case-insensitively and reports it in upper case', () => {
    const event = parseInstallEvent(toFormText(withPair(install, 'event', 'onAppInstall')), { now });
    expect(event.event).toBe('ONAPPINSTALL');
  });

  it('ignores tokens an uninstall payload carries', () => {
    const body = [...uninstall, ['auth[access_token]', 'leaked-access'], ['auth[refresh_token]', 'leaked-refresh']] as [
      string,
      string,
    ][];
    const event = parseInstallEvent(toFormText(body), { now });
    expect(JSON.stringify(event)).not.toMatch(/leaked/);
    expect(Object.keys(event.auth).sort()).toEqual([
      'applicationToken',
      'clientEndpoint',
      'domain',
      'memberId',
      'serverEndpoint',
    ]);
  });
});

describe('parseInstallEvent: expiry', () => {
  const auth = (body: [string, string][]) => {
    const event = parseInstallEvent(toFormText(body), { now });
    if (event.type === 'uninstall') throw new Error('unexpected uninstall');
    return event.auth;
  };

  it('computes expires from expires_in when expires is missing', () => {
    const result = auth(withPair(withPair(install, 'auth[expires]', undefined), 'auth[expires_in]', '1800'));
    expect(result.expires).toBe(Math.floor(NOW_MS / 1000) + 1800);
    expect(result.expiresIn).toBe(1800);
  });

  it('computes expires when it is empty', () => {
    expect(auth(withPair(install, 'auth[expires]', '')).expires).toBe(Math.floor(NOW_MS / 1000) + 3600);
  });

  it('assumes one hour when neither expires nor expires_in is sent', () => {
    const result = auth(withPair(withPair(install, 'auth[expires]', undefined), 'auth[expires_in]', undefined));
    expect(result).toMatchObject({ expires: Math.floor(NOW_MS / 1000) + 3600, expiresIn: 3600 });
  });

  it('keeps an absolute expires as sent, even one in the past', () => {
    expect(auth(withPair(install, 'auth[expires]', '1600000000')).expires).toBe(1600000000);
  });

  it.each(['0', '-5', '1762093575.5', 'NaN', 'soon', '1e9', '1762093575000', ' 1762093575', '0x10'])(
    'rejects expires %j',
    (value) => {
      const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'auth[expires]', value)), { now }));
      expect(error).toMatchObject({ code: ErrorCode.InvalidEvent, field: 'auth[expires]', reason: 'format' });
    },
  );

  it.each(['0', '-1', '3600.5', 'hour'])('rejects expires_in %j', (value) => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'auth[expires_in]', value)), { now }));
    expect(error).toMatchObject({ field: 'auth[expires_in]', reason: 'format' });
  });

  it('rejects a JSON expires that is fractional or zero', () => {
    for (const value of [1762093575.5, 0, -1]) {
      const body = toNestedObject(install) as { auth: Record<string, unknown> };
      body.auth.expires = value;
      expect(invalid(() => parseInstallEvent(body, { now })).field).toBe('auth[expires]');
    }
  });

  it('refuses a clock that returns no usable time', () => {
    const body = toFormText(withPair(install, 'auth[expires]', undefined));
    expect(() => parseInstallEvent(body, { now: () => Number.NaN })).toThrow(TypeError);
  });
});

describe('parseInstallEvent: endpoints and domain', () => {
  const bad = [
    'javascript:alert(1)',
    'ftp://acme.bitrix24.com/rest/',
    '/rest/',
    'acme.bitrix24.com/rest/',
    'https://user:pass@acme.bitrix24.com/rest/',
    'https://acme.bitrix24.com/rest/?x=1',
    'https://acme.bitrix24.com/rest/#top',
    'https:\\\\acme.bitrix24.com\\rest\\',
    'https://acme.bitrix24.com/re st/',
    'https://acme.bitrix24.com/rest/\n',
    'data:text/html,hi',
    'https://',
    'https:///rest/',
  ];
  for (const field of ['auth[client_endpoint]', 'auth[server_endpoint]']) {
    it.each(bad)(`rejects ${field} %j`, (value) => {
      const json = toNestedObject(install) as { auth: Record<string, unknown> };
      json.auth[field.slice(5, -1)] = value;
      const error = invalid(() => parseInstallEvent(json, { now }));
      expect(error).toMatchObject({ field, reason: 'format' });
    });
  }

  it('accepts on-premise endpoints with http, a port and another REST path, and adds the trailing slash', () => {
    let body = withPair(install, 'auth[client_endpoint]', 'http://bitrix.local:8080/custom/rest');
    body = withPair(body, 'auth[domain]', 'Bitrix.Local:8080');
    const event = parseInstallEvent(toFormText(body), { now });
    expect(event.auth).toMatchObject({ clientEndpoint: 'http://bitrix.local:8080/custom/rest/', domain: 'bitrix.local:8080' });
  });

  it.each(['acme.bitrix24.com/rest', 'https://acme.bitrix24.com', 'acme.bitrix24.com:99999', 'ac me.com', '-acme.com', 'acme..com', ''])(
    'rejects domain %j',
    (value) => {
      const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'auth[domain]', value)), { now }));
      expect(error.field).toBe('auth[domain]');
      expect(error.reason).toBe(value === '' ? 'missing' : 'format');
    },
  );

  it.each(['127.0.0.1:8080', '[::1]:8080', 'portal_1.corp.internal'])('accepts domain %j', (value) => {
    expect(parseInstallEvent(toFormText(withPair(install, 'auth[domain]', value)), { now }).auth.domain).toBe(value);
  });
});

describe('parseInstallEvent: required fields', () => {
  const required = [
    'auth[access_token]',
    'auth[refresh_token]',
    'auth[domain]',
    'auth[client_endpoint]',
    'auth[server_endpoint]',
    'auth[member_id]',
    'auth[scope]',
    'auth[status]',
    'event',
  ];
  it.each(required)('rejects an install without %s', (key) => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, key, undefined)), { now }));
    expect(error).toMatchObject({ code: ErrorCode.InvalidEvent, field: key, reason: 'missing' });
  });

  it.each(['auth[domain]', 'auth[client_endpoint]', 'auth[server_endpoint]'])('accepts an uninstall without %s, a field it never uses', (key) => {
    const event = parseInstallEvent(toFormText(withPair(uninstall, key, undefined)), { now });
    expect(event.type).toBe('uninstall');
  });

  it.each(['auth[member_id]', 'auth[application_token]'])(
    'rejects an uninstall without %s',
    (key) => {
      const error = invalid(() => parseInstallEvent(toFormText(withPair(uninstall, key, undefined)), { now }));
      expect(error).toMatchObject({ field: key, reason: 'missing' });
    },
  );

  it('accepts an empty scope, and a missing user_id and application_token as null', () => {
    let body = withPair(install, 'auth[scope]', '');
    body = withPair(body, 'auth[user_id]', undefined);
    body = withPair(body, 'auth[application_token]', undefined);
    expect(parseInstallEvent(toFormText(body), { now }).auth).toMatchObject({
      scope: '',
      userId: null,
      applicationToken: null,
    });
  });

  it.each(['a b', 'x'.repeat(129), 'ünïcode', '../etc', 'id;drop'])('rejects member_id %j', (value) => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'auth[member_id]', value)), { now }));
    expect(error).toMatchObject({ field: 'auth[member_id]', reason: 'format' });
  });

  it.each(['l', 'LL', '1', ''])('rejects status %j', (value) => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'auth[status]', value)), { now }));
    expect(error.field).toBe('auth[status]');
  });

  it('keeps an unknown status letter', () => {
    expect(parseInstallEvent(toFormText(withPair(install, 'auth[status]', 'X')), { now }).auth).toMatchObject({
      status: 'X',
    });
  });

  it.each(['with space', 'new\nline', ''])('rejects access_token %j', (value) => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'auth[access_token]', value)), { now }));
    expect(error.field).toBe('auth[access_token]');
  });
});

describe('parseInstallEvent: data flags and optional numbers', () => {
  it('reads N as false and defaults missing ACTIVE and INSTALLED to true', () => {
    const event = parseInstallEvent(toFormText(withPair(install, 'data[INSTALLED]', 'N')), { now });
    expect(event).toMatchObject({ installed: false, active: true });
    let bare = withPair(install, 'data[ACTIVE]', undefined);
    bare = withPair(bare, 'data[INSTALLED]', undefined);
    bare = withPair(bare, 'data[VERSION]', undefined);
    bare = withPair(bare, 'data[LANGUAGE_ID]', undefined);
    expect(parseInstallEvent(toFormText(bare), { now })).toMatchObject({
      active: true,
      installed: true,
      version: null,
      languageId: null,
    });
  });

  it('reads CLEAN 0 as false and a missing CLEAN as false', () => {
    expect(parseInstallEvent(toFormText(withPair(uninstall, 'data[CLEAN]', '0')), { now })).toMatchObject({ clean: false });
    expect(parseInstallEvent(toFormText(withPair(uninstall, 'data[CLEAN]', undefined)), { now })).toMatchObject({
      clean: false,
    });
  });

  it('never loses an event over an informational data field of an unexpected shape', () => {
    const odd = withPair(withPair(withPair(install, 'data[VERSION]', '1.0.0'), 'data[ACTIVE]', 'maybe'), 'data[LANGUAGE_ID]', 'a b');
    expect(parseInstallEvent(toFormText(odd), { now })).toMatchObject({ version: '1.0.0', active: true, languageId: null });
    expect(parseInstallEvent(toFormText(withPair(install, 'data[VERSION]', 'v2')), { now })).toMatchObject({ version: 'v2' });
    expect(parseInstallEvent(toFormText(withPair(install, 'data[VERSION]', 'x'.repeat(65))), { now })).toMatchObject({ version: null });
  });

  it.each([
    ['event_handler_id', '-1'],
    ['ts', 'yesterday'],
    ['auth[user_id]', '1.5'],
  ])('rejects %s = %j', (key, value) => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, key, value)), { now }));
    expect(error).toMatchObject({ field: key, reason: 'format' });
  });

  it('gives null for missing event_handler_id and ts', () => {
    let body = withPair(install, 'event_handler_id', undefined);
    body = withPair(body, 'ts', undefined);
    expect(parseInstallEvent(toFormText(body), { now })).toMatchObject({ handlerId: null, ts: null });
  });
});

describe('parseInstallEvent: unknown and malformed events', () => {
  it('rejects an event other than the three lifecycle events with UNKNOWN_EVENT', () => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'event', 'ONCRMDEALADD')), { now }));
    expect(error).toMatchObject({ code: ErrorCode.UnknownEvent, field: 'event', reason: 'unknown' });
    expect(error.message).not.toContain('ONCRMDEALADD');
  });

  it.each(['toString', '__proto__', 'constructor', 'hasOwnProperty'])('treats event %j as unknown', (name) => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'event', name)), { now }));
    expect(error.code).toBe(ErrorCode.UnknownEvent);
  });

  it.each([
    ['not JSON', '{"event": "ONAPPINSTALL",', undefined, 'syntax'],
    ['a JSON array', '[1, 2]', 'application/json', 'type'],
    ['a JSON string', '"ONAPPINSTALL"', 'application/json', 'type'],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), undefined, 'syntax'],
    ['multipart', 'event=ONAPPINSTALL', 'multipart/form-data; boundary=x', 'content_type'],
    ['text/plain', 'event=ONAPPINSTALL', 'text/plain', 'content_type'],
  ])('rejects %s as the body', (_name, input, contentType, reason) => {
    const error = invalid(() => parseInstallEvent(input, { contentType }));
    expect(error).toMatchObject({ field: 'body', reason });
  });

  it.each([null, undefined, 42, true, ['event'], () => 'x'])('rejects %j as input', (input) => {
    expect(invalid(() => parseInstallEvent(input as never))).toMatchObject({ field: 'body', reason: 'type' });
  });

  it('names the portal in the error when its member_id is valid', () => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, 'auth[expires]', 'soon')), { now }));
    expect(error.memberId).toBe('010b6886ebc205e43ae65000ee00addb');
    const anonymous = invalid(() => parseInstallEvent(toFormText(withPair(install, 'auth[member_id]', 'a b')), { now }));
    expect(anonymous.memberId).toBeUndefined();
  });

  it('lets the content type override sniffing', () => {
    const json = fixture('install.json');
    expect(invalid(() => parseInstallEvent(json, { contentType: 'application/x-www-form-urlencoded' })).field).toBe(
      'event',
    );
    expect(parseInstallEvent(json, { contentType: 'application/vnd.api+json', now }).type).toBe('install');
  });

  it('rejects an empty body as missing its event', () => {
    expect(invalid(() => parseInstallEvent(''))).toMatchObject({ field: 'event', reason: 'missing' });
  });

  it('refuses invalid options with a TypeError', () => {
    expect(() => parseInstallEvent('', { maxBytes: 0 })).toThrow(TypeError);
    expect(() => parseInstallEvent('', { maxKeys: 1.5 })).toThrow(TypeError);
  });
});
