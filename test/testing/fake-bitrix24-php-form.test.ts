// PHP bracket forms as the stand-in writes (event bodies) and reads (REST and token parameters) them.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePhpForm, encodePhpForm } from '../../src/testing/fake-bitrix24/php-form.js';

describe('encodePhpForm', () => {
  it('writes nested keys in bracket form, in key order, percent-encoded', () => {
    const form = encodePhpForm({ event: 'ONAPPINSTALL', data: { VERSION: 1 }, auth: { scope: 'crm,user_brief', domain: 'a b' } });
    expect(form).toBe('event=ONAPPINSTALL&data%5BVERSION%5D=1&auth%5Bscope%5D=crm%2Cuser_brief&auth%5Bdomain%5D=a%20b');
  });

  it('writes null as an empty value and skips undefined', () => {
    expect(encodePhpForm({ a: null, b: undefined, c: true })).toBe('a=&c=true');
  });
});

describe('decodePhpForm', () => {
  it('reads nested keys back into a tree, later duplicates winning', () => {
    const tree = decodePhpForm(new URLSearchParams('auth[member_id]=m1&auth[member_id]=m2&data[VERSION]=1&event=X'));
    expect({ ...tree, auth: { ...(tree['auth'] as object) }, data: { ...(tree['data'] as object) } }).toEqual({
      auth: { member_id: 'm2' },
      data: { VERSION: '1' },
      event: 'X',
    });
  });

  it('appends `a[]` entries by position', () => {
    const tree = decodePhpForm(new URLSearchParams('ids[]=4&ids[]=5'));
    expect({ ...(tree['ids'] as object) }).toEqual({ 0: '4', 1: '5' });
  });

  it('drops keys that would reach a prototype and malformed keys', () => {
    const tree = decodePhpForm(new URLSearchParams('__proto__[polluted]=1&auth[__proto__][x]=1&a[constructor]=1&[x]=1&b[c=1&ok=1'));
    expect(Object.keys(tree)).toEqual(['ok']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.getPrototypeOf(tree)).toBeNull();
  });

  it('round-trips any nested object of string leaves', () => {
    const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/).filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k));
    const tree = fc.dictionary(key, fc.oneof(fc.string(), fc.dictionary(key, fc.string(), { minKeys: 1, maxKeys: 4 })), { maxKeys: 6 });
    fc.assert(
      fc.property(tree, (value) => {
        const decoded = decodePhpForm(new URLSearchParams(encodePhpForm(value)));
        expect(JSON.parse(JSON.stringify(decoded))).toEqual(value);
      }),
    );
  });
});
