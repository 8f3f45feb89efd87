// The parser against hostile input: prototype pollution, oversize bodies, too many keys, deep nesting,
// duplicate keys, and token values that must never reach an error.

import { afterEach, describe, expect, it } from 'vitest';
import { parseAppPageRequest, parseInstallEvent } from '../../src/events/parse.js';
import { formPairs, invalid, toFlatObject, toFormText, toNestedObject, withPair } from './helpers.js';

const install = formPairs('install.txt');
const now = () => 1_762_090_000_000;

function assertNoPollution(): void {
  const probe: Record<string, unknown> = {};
  expect(probe.x).toBeUndefined();
  expect(probe.polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('x');
  expect(Object.prototype).not.toHaveProperty('polluted');
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('x');
}

afterEach(() => {
  // A failing pollution test must not poison the ones after it.
  delete (Object.prototype as Record<string, unknown>).x;
  delete (Object.prototype as Record<string, unknown>).polluted;
});

describe('prototype pollution', () => {
  const hostileKeys = [
    'auth[__proto__][x]',
    '__proto__[x]',
    'constructor[prototype][x]',
    'auth[constructor][prototype][x]',
    '__proto__',
    'data[__proto__]',
    'auth[hasOwnProperty]',
    'auth[toString]',
    'auth[valueOf][x]',
  ];

  it.each(hostileKeys)('stays inert with form key %s', (key) => {
    const body = toFormText([...install, [key, '1']]);
    const event = parseInstallEvent(body, { now });
    assertNoPollution();
    expect(event.type).toBe('install');
    expect(Object.getPrototypeOf(event)).toBe(Object.prototype);
    expect(Object.keys(event.auth)).not.toContain('hasOwnProperty');
    expect((event.auth as unknown as Record<string, unknown>).x).toBeUndefined();
  });

  it.each(hostileKeys)('stays inert with flat-object key %s', (key) => {
    const event = parseInstallEvent({ ...toFlatObject(install), [key]: '1' }, { now });
    assertNoPollution();
    expect(event.type).toBe('install');
  });

  it('stays inert with __proto__ and constructor keys in JSON', () => {
    const json = JSON.stringify(toNestedObject(install)).replace(
      /^\{/,
      '{"__proto__":{"x":1,"polluted":true},"constructor":{"prototype":{"x":1}},',
    );
    const withInner = json.replace('"auth":{', '"auth":{"__proto__":{"x":1},');
    const event = parseInstallEvent(withInner, { now });
    assertNoPollution();
    expect(event.auth.memberId).toBe('010b6886ebc205e43ae65000ee00addb');
  });

  it('ignores auth[hasOwnProperty] and still reads own fields correctly', () => {
    const event = parseInstallEvent(toFormText([['auth[hasOwnProperty]', 'x'], ...install]), { now });
    expect(event.auth.memberId).toBe('010b6886ebc205e43ae65000ee00addb');
  });

  it('does not read a field an object only inherits', () => {
    const nested = toNestedObject(withPair(install, 'auth[member_id]', undefined)) as { auth: object };
    nested.auth = Object.assign(Object.create({ member_id: 'inherited' }) as object, nested.auth);
    expect(invalid(() => parseInstallEvent(nested, { now }))).toMatchObject({ field: 'auth[member_id]', reason: 'missing' });
  });

  it('returns PLACEMENT_OPTIONS without __proto__, constructor or prototype keys, on a null prototype', () => {
    const page = parseAppPageRequest(
      {
        query: 'DOMAIN=acme.bitrix24.com',
        body: toFormText([
          ...formPairs('app-page.body.txt').filter(([k]) => k !== 'PLACEMENT_OPTIONS'),
          ['PLACEMENT_OPTIONS', '{"__proto__":{"x":1},"constructor":{"prototype":{"x":1}},"ID":"5","list":[{"__proto__":{"x":2}}]}'],
        ]),
      },
      { now },
    );
    assertNoPollution();
    const options = page.placementOptions as Record<string, unknown>;
    expect(Object.getPrototypeOf(options)).toBeNull();
    expect(Object.keys(options)).toEqual(['ID', 'list']);
    expect(Object.getOwnPropertyNames((options.list as object[])[0])).toEqual([]);
    // Merging the result into an ordinary object cannot reach a prototype either.
    const merged = Object.assign({}, options);
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
  });
});

describe('size and shape limits', () => {
  it('rejects a body over maxBytes before decoding it, as text and as bytes', () => {
    const body = toFormText(install) + '&pad=' + 'a'.repeat(70 * 1024);
    expect(invalid(() => parseInstallEvent(body))).toMatchObject({ field: 'body', reason: 'too_large' });
    expect(invalid(() => parseInstallEvent(Buffer.from(body)))).toMatchObject({ reason: 'too_large' });
  });

  it('counts bytes, not characters', () => {
    const body = toFormText(install) + '&pad=' + encodeURIComponent('é'.repeat(200));
    expect(parseInstallEvent(body, { now, maxBytes: 4096 }).type).toBe('install');
    const raw = toFormText(install) + '&pad=' + 'é'.repeat(1700);
    expect(raw.length).toBeLessThan(4096);
    expect(invalid(() => parseInstallEvent(raw, { maxBytes: 4096 })).reason).toBe('too_large');
  });

  it('applies maxBytes to already-parsed objects and URLSearchParams too', () => {
    const big = { ...toFlatObject(install), pad: 'a'.repeat(70 * 1024) };
    expect(invalid(() => parseInstallEvent(big))).toMatchObject({ reason: 'too_large' });
    expect(invalid(() => parseInstallEvent(new URLSearchParams(big)))).toMatchObject({ reason: 'too_large' });
  });

  it('rejects more keys than maxKeys in every form', () => {
    const extra = Array.from({ length: 300 }, (_, i) => [`k${i}`, '1'] as [string, string]);
    const pairs = [...install, ...extra];
    for (const input of [toFormText(pairs), new URLSearchParams(pairs), toFlatObject(pairs)]) {
      expect(invalid(() => parseInstallEvent(input))).toMatchObject({ field: 'body', reason: 'too_many_keys' });
    }
    const json = { ...toNestedObject(install), extra: Array.from({ length: 300 }, () => 1) };
    expect(invalid(() => parseInstallEvent(JSON.stringify(json)))).toMatchObject({ reason: 'too_many_keys' });
  });

  it('accepts a real payload within a tight maxKeys', () => {
    expect(parseInstallEvent(toFormText(install), { now, maxKeys: install.length }).type).toBe('install');
    expect(invalid(() => parseInstallEvent(toFormText(install), { maxKeys: install.length - 1 })).reason).toBe(
      'too_many_keys',
    );
  });

  it('rejects deep nesting in form keys, JSON and objects', () => {
    const deepKey = 'a' + '[b]'.repeat(40);
    expect(invalid(() => parseInstallEvent(toFormText([...install, [deepKey, '1']])))).toMatchObject({
      reason: 'too_deep',
    });
    const deepJson = '{"event":"ONAPPINSTALL","x":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
    expect(invalid(() => parseInstallEvent(deepJson))).toMatchObject({ reason: 'too_deep' });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(invalid(() => parseInstallEvent({ ...toNestedObject(install), cyclic }))).toMatchObject({
      reason: 'too_deep',
    });
  });
});

describe('duplicate keys', () => {
  it('rejects a field the parser reads when it is sent twice, even with the same value', () => {
    const [, token] = install.find(([k]) => k === 'auth[access_token]')!;
    const error = invalid(() => parseInstallEvent(toFormText([...install, ['auth[access_token]', token]]), { now }));
    expect(error).toMatchObject({ field: 'auth[access_token]', reason: 'duplicate' });
  });

  it('rejects a field given both as a value and as a group', () => {
    const error = invalid(() => parseInstallEvent(toFormText([...install, ['auth', 'flat']]), { now }));
    expect(error).toMatchObject({ field: 'auth', reason: 'type' });
  });

  it('rejects a flat key that repeats a nested one in the same object', () => {
    const body = { ...toNestedObject(install), 'auth[member_id]': 'someone-else' };
    expect(invalid(() => parseInstallEvent(body, { now }))).toMatchObject({ field: 'auth[member_id]', reason: 'duplicate' });
  });

  it('merges flat and nested keys that do not overlap', () => {
    const nested = toNestedObject(withPair(install, 'auth[member_id]', undefined));
    const body = { 'auth[member_id]': '010b6886ebc205e43ae65000ee00addb', ...nested };
    expect(parseInstallEvent(body, { now }).auth.memberId).toBe('010b6886ebc205e43ae65000ee00addb');
  });

  it('rejects an array where a body parser collected a repeated key', () => {
    const body = { ...toFlatObject(install), 'auth[member_id]': ['a', 'b'] };
    expect(invalid(() => parseInstallEvent(body, { now }))).toMatchObject({ field: 'auth[member_id]', reason: 'type' });
  });

  it('ignores repeated keys it never reads', () => {
    expect(parseInstallEvent(toFormText([...install, ['extra', '1'], ['extra', '2']]), { now }).type).toBe('install');
  });

  it('keeps the last value of a repeated JSON property, as JSON.parse does', () => {
    const json = JSON.stringify(toNestedObject(install)).replace('"auth":{', '"auth":{"status":"F",');
    expect(parseInstallEvent(json, { now }).auth).toMatchObject({ status: 'L' });
  });
});

describe('secrets never reach errors', () => {
  const secret = 'SECRET0123456789abcdefSECRET';

  it.each([
    ['auth[access_token]', `${secret} with space`],
    ['auth[refresh_token]', `${secret}\n`],
    ['auth[application_token]', `${secret}\u0000`],
    ['auth[expires]', secret],
    ['auth[client_endpoint]', `https://user:${secret}@acme.bitrix24.com/rest/`],
    ['auth[server_endpoint]', `javascript:${secret}`],
    ['auth[member_id]', `${secret}!`],
    ['auth[domain]', `${secret}/`],
    ['event', secret],
  ])('keeps %s out of the error', (key, value) => {
    const error = invalid(() => parseInstallEvent(toFormText(withPair(install, key, value)), { now }));
    expect(error.field).toBe(key);
    expect(error.message).not.toContain(secret);
    expect(error.stack ?? '').not.toContain(secret);
    expect(JSON.stringify(error)).not.toContain(secret);
    expect(error.cause).toBeUndefined();
  });

  it('keeps tokens out of a JSON syntax error', () => {
    const broken = `{"auth":{"access_token":"${secret}" "x"}}`;
    const error = invalid(() => parseInstallEvent(broken));
    expect(error.reason).toBe('syntax');
    expect(`${error.message} ${String(error.cause)}`).not.toContain(secret);
  });
});
