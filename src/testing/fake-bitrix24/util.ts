// Small helpers of the stand-in Bitrix24: random tokens, argument checks, loose string reads.

import { randomBytes } from 'node:crypto';

/** `bytes` random bytes as hex: the stand-in's tokens, codes and ids. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A parameter read as a string (finite numbers too); `undefined` for anything else. */
export function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Throws a TypeError naming `name` unless `value` is a positive integer. */
export function assertUserId(value: number, name: string): void {
  if (!(Number.isInteger(value) && value > 0)) throw new TypeError(`${name} must be a positive integer`);
}

/** A host name (optionally with :port) in lower case; a TypeError naming `name` otherwise. */
export function normaliseDomain(value: string, name: string): string {
  const domain = value.trim().toLowerCase();
  if (!/^[a-z0-9.-]+(:\d{1,5})?$/.test(domain)) throw new TypeError(`${name} must be a host name, optionally with :port`);
  return domain;
}

/** An absolute http(s) URL; a TypeError naming `name` otherwise. */
export function parseHttpUrl(value: string, name: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${name} must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${name} must be an absolute http(s) URL`);
  return url;
}

/** A parameter bag decoded from a query, a form or a JSON body. */
export type Params = Record<string, unknown>;
