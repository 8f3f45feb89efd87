// Fixture loading and the input-form conversions shared by the parser tests.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { InvalidEventError } from '../../src/errors.js';

const fixtures = fileURLToPath(new URL('../fixtures/events/', import.meta.url));

/** A fixture file's text, trailing newline and all (as a file sent with curl would be). */
export function fixture(name: string): string {
  return readFileSync(fixtures + name, 'utf8');
}

/** The pairs of a form fixture, in order. */
export function formPairs(name: string): [string, string][] {
  return [...new URLSearchParams(fixture(name).trim())];
}

/** A flat-key object, as a non-extended urlencoded body parser gives. */
export function toFlatObject(pairs: readonly [string, string][]): Record<string, string> {
  return Object.fromEntries(pairs);
}

/**
 * A nested object, as an extended (qs) body parser or a JSON body gives. Every key becomes an own
 * property (as JSON.parse makes them), `__proto__` included, so the helper itself cannot pollute.
 */
export function toNestedObject(pairs: readonly [string, string][]): Record<string, unknown> {
  const own = (target: object, key: string, value: unknown) =>
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  const out: Record<string, unknown> = {};
  for (const [key, value] of pairs) {
    const match = /^([^[]+)\[([^\]]+)\]$/.exec(key);
    if (match) {
      const existing = Object.hasOwn(out, match[1]!) ? out[match[1]!] : undefined;
      const group = typeof existing === 'object' && existing !== null ? existing : {};
      own(out, match[1]!, group);
      own(group, match[2]!, value);
    } else {
      own(out, key, value);
    }
  }
  return out;
}

/** Form text from pairs (brackets percent-encoded, as PHP's http_build_query does). */
export function toFormText(pairs: readonly [string, string][]): string {
  return new URLSearchParams(pairs).toString();
}

/** Every input form a caller may hand the parser, built from one event's pairs. */
export function inputForms(pairs: readonly [string, string][]): [string, unknown, string | undefined][] {
  const form = toFormText(pairs);
  const json = JSON.stringify(toNestedObject(pairs));
  return [
    ['form text', form, undefined],
    ['form text with content type', form, 'application/x-www-form-urlencoded; charset=utf-8'],
    ['form bytes', Buffer.from(form), undefined],
    ['form Uint8Array', new TextEncoder().encode(form), 'application/x-www-form-urlencoded'],
    ['URLSearchParams', new URLSearchParams(pairs), undefined],
    ['JSON text', json, undefined],
    ['JSON text with content type', `\n  ${json}`, 'application/json'],
    ['JSON bytes', Buffer.from(json), undefined],
    ['nested object', toNestedObject(pairs), undefined],
    ['flat-key object', toFlatObject(pairs), undefined],
  ];
}

/** Replaces (or with `undefined`, removes) one pair, keeping order. */
export function withPair(
  pairs: readonly [string, string][],
  key: string,
  value: string | undefined,
): [string, string][] {
  const out: [string, string][] = [];
  let seen = false;
  for (const [k, v] of pairs) {
    if (k === key) {
      seen = true;
      if (value !== undefined) out.push([k, value]);
    } else {
      out.push([k, v]);
    }
  }
  if (!seen && value !== undefined) out.push([key, value]);
  return out;
}

/** Runs `fn`, expecting an InvalidEventError, and returns it. */
export function invalid(fn: () => unknown): InvalidEventError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidEventError);
    return error as InvalidEventError;
  }
  throw new Error('expected an InvalidEventError, but the call returned');
}

/** Every token value in a fixture: none may ever appear in an error. */
export const TOKEN_KEYS = [
  'auth[access_token]',
  'auth[refresh_token]',
  'auth[application_token]',
  'AUTH_ID',
  'REFRESH_ID',
  'APPLICATION_TOKEN',
];
