// Property tests: random and mutated inputs either parse to an event that keeps every invariant or throw
// InvalidEventError, nothing else; and no error ever carries a token value from its input.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '../../src/errors.js';
import { parseAppPageRequest, parseInstallEvent } from '../../src/events/parse.js';
import type { AppPageRequest, LifecycleEvent, PortalAuth } from '../../src/events/types.js';
import { formPairs, toFlatObject, toFormText, toNestedObject } from './helpers.js';

type Pairs = [string, string][];
const NOW_MS = 1_762_090_000_000;
const now = () => NOW_MS;

const fixtures: Record<string, Pairs> = {
  install: formPairs('install.txt'),
  update: formPairs('update.txt'),
  uninstall: formPairs('uninstall.txt'),
};

/** Every way a caller may hand over a body, as functions of the pairs. */
const FORMS: Record<string, (pairs: Pairs) => unknown> = {
  form: (pairs) => toFormText(pairs),
  formBytes: (pairs) => Buffer.from(toFormText(pairs)),
  params: (pairs) => new URLSearchParams(pairs),
  json: (pairs) => JSON.stringify(toNestedObject(pairs)),
  jsonBytes: (pairs) => new TextEncoder().encode(JSON.stringify(toNestedObject(pairs))),
  nested: (pairs) => toNestedObject(pairs),
  flat: (pairs) => toFlatObject(pairs),
};
const formName = fc.constantFrom(...Object.keys(FORMS));

const nastyValue = fc.constantFrom(
  '',
  ' ',
  '0',
  '-1',
  '1.5',
  '1e3',
  'NaN',
  'Infinity',
  '99999999999999999999',
  'javascript:alert(1)',
  'ftp://acme.bitrix24.com/rest/',
  '//acme.bitrix24.com/rest/',
  '/rest/',
  'https://u:p@acme.bitrix24.com/rest/',
  'http://[::1]:0/',
  'https://acme.bitrix24.com:99999/rest/',
  '__proto__',
  'undefined',
  '{"__proto__":{"x":1}}',
  '\u0000',
  'Y',
  'N',
  'ONAPPINSTALL',
  'ONAPPUPDATE',
  'ONAPPUNINSTALL',
  'ONCRMDEALADD',
);
const anyValue = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), nastyValue);
const nastyKey = fc.constantFrom(
  'auth[__proto__][x]',
  '__proto__[x]',
  'constructor[prototype][x]',
  'auth[hasOwnProperty]',
  'auth',
  'data',
  'event',
  'auth[]',
  'auth[expires][x]',
  'auth[member_id]',
  'auth[access_token]',
  'a[b',
  'a]b[',
);
const anyKey = fc.oneof(fc.string({ maxLength: 20 }), nastyKey);

type Mutation =
  | { kind: 'delete'; index: number }
  | { kind: 'replace'; index: number; value: string }
  | { kind: 'duplicate'; index: number }
  | { kind: 'add'; key: string; value: string }
  | { kind: 'rename'; index: number; key: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), index: fc.nat(), value: anyValue }),
  fc.record({ kind: fc.constant('duplicate' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), key: anyKey, value: anyValue }),
  fc.record({ kind: fc.constant('rename' as const), index: fc.nat(), key: anyKey }),
);

function mutate(pairs: Pairs, mutations: readonly Mutation[]): Pairs {
  const out: Pairs = pairs.map(([k, v]) => [k, v]);
  for (const m of mutations) {
    if (m.kind === 'add') {
      out.push([m.key, m.value]);
      continue;
    }
    if (out.length === 0) continue;
    const i = m.index % out.length;
    const [key, value] = out[i]!;
    if (m.kind === 'delete') out.splice(i, 1);
    else if (m.kind === 'replace') out[i] = [key, m.value];
    else if (m.kind === 'duplicate') out.push([key, value]);
    else out[i] = [m.key, value];
  }
  return out;
}

function checkAuth(auth: PortalAuth): void {
  expect(Number.isSafeInteger(auth.expires) && auth.expires > 0).toBe(true);
  expect(Number.isSafeInteger(auth.expiresIn) && auth.expiresIn > 0).toBe(true);
  expect(auth.accessToken.length).toBeGreaterThan(0);
  expect(auth.refreshToken.length).toBeGreaterThan(0);
  expect(auth.status).toMatch(/^[A-Z]$/);
  expect(typeof auth.scope).toBe('string');
}

function checkEndpoint(url: string): void {
  expect(url).toMatch(/^https?:\/\/[^/]+\/(.*\/)?$/);
  const parsed = new URL(url);
  expect(['http:', 'https:']).toContain(parsed.protocol);
  expect(parsed.username + parsed.password).toBe('');
  expect(parsed.hostname).not.toBe('');
}

/** The invariants every successfully parsed event keeps. */
function checkEvent(event: LifecycleEvent): void {
  expect(['install', 'update', 'uninstall']).toContain(event.type);
  expect(event.auth.memberId).toMatch(/^[A-Za-z0-9_.-]{1,128}$/);
  if (event.auth.domain !== null) expect(event.auth.domain.length).toBeGreaterThan(0);
  if (event.auth.clientEndpoint !== null) checkEndpoint(event.auth.clientEndpoint);
  if (event.auth.serverEndpoint !== null) checkEndpoint(event.auth.serverEndpoint);
  if (event.type === 'uninstall') {
    expect(Object.keys(event.auth)).not.toContain('accessToken');
    expect(Object.keys(event.auth)).not.toContain('refreshToken');
    expect(event.auth.applicationToken.length).toBeGreaterThan(0);
  } else {
    checkAuth(event.auth);
  }
  expect(({} as Record<string, unknown>).x).toBeUndefined();
}

function checkPage(page: AppPageRequest): void {
  checkAuth(page.auth);
  expect(page.auth.memberId).toMatch(/^[A-Za-z0-9_.-]{1,128}$/);
  checkEndpoint(page.auth.clientEndpoint);
  checkEndpoint(page.auth.serverEndpoint);
  expect(({} as Record<string, unknown>).x).toBeUndefined();
}

/**
 * The error's own properties as JSON, minus `memberId`: a property test may put a token-shaped
 * value where `member_id` belongs, and a valid `member_id` is an identifier the error may carry.
 */
function withoutMemberId(error: InvalidEventError): string {
  return JSON.stringify({ ...error, memberId: undefined });
}

/** Runs `fn`; anything thrown must be an InvalidEventError. Returns the error, or undefined on success. */
function parseOrInvalid<T>(fn: () => T, check: (value: T) => void): InvalidEventError | undefined {
  let result: T;
  try {
    result = fn();
  } catch (error) {
    if (!(error instanceof InvalidEventError)) throw error;
    expect(['INVALID_EVENT', 'UNKNOWN_EVENT']).toContain(error.code);
    expect(error.field.length).toBeGreaterThan(0);
    expect(error.reason.length).toBeGreaterThan(0);
    return error;
  }
  check(result);
  return undefined;
}

describe('parseInstallEvent properties', () => {
  it('parses or rejects mutated real payloads in every input form, nothing else', () => {
    let parsed = 0;
    let rejected = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(fixtures)),
        fc.array(mutation, { maxLength: 4 }),
        formName,
        (name, mutations, form) => {
          const input = FORMS[form]!(mutate(fixtures[name]!, mutations));
          if (parseOrInvalid(() => parseInstallEvent(input as never, { now }), checkEvent)) rejected += 1;
          else parsed += 1;
        },
      ),
      { numRuns: 1500 },
    );
    // Both outcomes must be common, or the property tests less than it claims.
    expect(parsed).toBeGreaterThan(150);
    expect(rejected).toBeGreaterThan(150);
  });

  it('parses every unmutated payload in every form', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(fixtures)), formName, (name, form) => {
        checkEvent(parseInstallEvent(FORMS[form]!(fixtures[name]!) as never, { now }));
      }),
    );
  });

  it('rejects random text, bytes and form bodies with InvalidEventError only', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.array(fc.tuple(anyKey, anyValue), { maxLength: 30 }).map((pairs) => toFormText(pairs)),
      fc.json().map((json) => ` ${json}`),
    );
    const contentType = fc.option(
      fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', '', 'garbage;;'),
      { nil: undefined },
    );
    fc.assert(
      fc.property(fc.oneof(text, fc.uint8Array({ maxLength: 300 })), contentType, (input, type) => {
        parseOrInvalid(() => parseInstallEvent(input, { contentType: type, now }), checkEvent);
      }),
      { numRuns: 1500 },
    );
  });

  it('rejects arbitrary JavaScript values with InvalidEventError only', () => {
    const value = fc.anything({
      withNullPrototype: true,
      withBoxedValues: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withDate: true,
      withSparseArray: true,
      withBigInt: true,
      withObjectString: true,
    });
    fc.assert(
      fc.property(value, (input) => {
        parseOrInvalid(() => parseInstallEvent(input as never, { now }), checkEvent);
      }),
      { numRuns: 1000 },
    );
  });

  it('never puts a token value from the input into an error', () => {
    const token = fc.stringMatching(/^[0-9a-f]{24,48}$/);
    const breakToken = fc.constantFrom('', ' ', '\n', '\u0000', ' x', '?', 'é');
    const tokenKeys = ['auth[access_token]', 'auth[refresh_token]', 'auth[application_token]'];
    const fields = fc.constantFrom(
      'event',
      'ts',
      'auth[expires]',
      'auth[expires_in]',
      'auth[member_id]',
      'auth[domain]',
      'auth[client_endpoint]',
      'auth[server_endpoint]',
      'auth[status]',
      'data[VERSION]',
      ...tokenKeys,
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(fixtures)),
        fc.tuple(token, token, token),
        fc.array(fc.tuple(fields, fc.nat(2), breakToken, fc.constantFrom('', 'https://', 'https://x/', 'https://u:')), {
          maxLength: 3,
        }),
        fc.array(mutation, { maxLength: 2 }),
        formName,
        (name, tokens, placements, mutations, form) => {
          let pairs: Pairs = fixtures[name]!.map(([k, v]): [string, string] => {
            const t = tokenKeys.indexOf(k);
            return [k, t === -1 ? v : tokens[t]!];
          });
          // Put (possibly broken) tokens where other fields belong, and in a key.
          for (const [field, t, broken, prefix] of placements) {
            pairs = pairs.filter(([k]) => k !== field);
            pairs.push([field, `${prefix}${tokens[t]!}${broken}`]);
          }
          pairs.push([`auth[${tokens[0]}]`, tokens[1]]);
          pairs = mutate(pairs, mutations);
          const error = parseOrInvalid(() => parseInstallEvent(FORMS[form]!(pairs) as never, { now }), checkEvent);
          if (error === undefined) return;
          const rendered = [error.message, error.field, error.reason, error.stack ?? '', withoutMemberId(error), String(error.cause)].join('\n');
          for (const value of tokens) expect(rendered).not.toContain(value);
        },
      ),
      { numRuns: 1500 },
    );
  });
});

describe('parseAppPageRequest properties', () => {
  const query = formPairs('app-page.query.txt');
  const body = formPairs('app-page.body.txt');

  it('parses or rejects mutated iframe requests, nothing else', () => {
    let parsed = 0;
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 3 }), fc.array(mutation, { maxLength: 3 }), formName, (mq, mb, form) => {
        const request = { query: toFormText(mutate(query, mq)), body: FORMS[form]!(mutate(body, mb)) as never };
        if (parseOrInvalid(() => parseAppPageRequest(request, { now }), checkPage)) rejected += 1;
        else parsed += 1;
      }),
      { numRuns: 1000 },
    );
    expect(parsed).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });

  it('never puts a token value from the input into an error', () => {
    const token = fc.stringMatching(/^[0-9a-f]{24,48}$/);
    const keys = ['AUTH_ID', 'REFRESH_ID', 'APPLICATION_TOKEN'];
    const targets = fc.constantFrom('AUTH_EXPIRES', 'member_id', 'status', 'SERVER_ENDPOINT', 'PLACEMENT', 'PLACEMENT_OPTIONS', ...keys);
    fc.assert(
      fc.property(fc.tuple(token, token, token), targets, fc.nat(2), fc.constantFrom(' ', '\n', '{', ''), (tokens, target, t, broken) => {
        let pairs: Pairs = body.map(([k, v]): [string, string] => {
          const i = keys.indexOf(k);
          return [k, i === -1 ? v : tokens[i]!];
        });
        pairs = pairs.filter(([k]) => k !== target);
        pairs.push([target, `${tokens[t]!}${broken}`]);
        const error = parseOrInvalid(() => parseAppPageRequest({ query: toFormText(query), body: toFormText(pairs) }, { now }), checkPage);
        if (error === undefined) return;
        const rendered = [error.message, error.field, error.stack ?? '', withoutMemberId(error), String(error.cause)].join('\n');
        for (const value of tokens) expect(rendered).not.toContain(value);
      }),
      { numRuns: 500 },
    );
  });
});
