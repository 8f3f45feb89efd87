// The options both parsers take, checked once, and the limits and field ranges they share.

import { DEFAULT_MAX_BODY_BYTES } from '../body.js';
import type { TreeLimits } from './field-tree.js';
import { MAX_EXPIRES_SECONDS } from './fields.js';

/**
 * A request body in any form this library accepts:
 * - form-urlencoded or JSON **text**, or the same as **bytes** (`Uint8Array`, `Buffer`, `ArrayBuffer`),
 *   decoded as UTF-8;
 * - a `URLSearchParams`;
 * - an **object** from a body parser: nested (`{ event, data: {...}, auth: {...} }`, as Express's
 *   extended parser or a JSON parser gives) or flat (`{ 'auth[access_token]': ... }`, as a
 *   non-extended urlencoded parser gives), or a mix of both.
 * @inline
 */
export type EventBody = string | Uint8Array | ArrayBuffer | URLSearchParams | Readonly<Record<string, unknown>>;

/**
 * Options of {@link parseInstallEvent} and {@link parseAppPageRequest}.
 * @inline
 */
export interface ParseEventOptions {
  /**
   * The request's `Content-Type`, used for text and bytes only: `application/x-www-form-urlencoded`
   * means form, `application/json` (or any `+json` type) means JSON, anything else is rejected with
   * reason `content_type`. When absent or empty, the body is sniffed: JSON if its first
   * character other than whitespace or a byte-order mark is `{`, form otherwise.
   * @defaultValue `undefined` (sniff)
   */
  contentType?: string | undefined;
  /**
   * Largest accepted body, in bytes (UTF-8). Larger text or bytes are rejected with reason
   * `too_large` before they are decoded; for a `URLSearchParams` or an already-parsed object the
   * total length of its keys and text values is counted instead. For the app page it bounds the
   * query and the body each.
   * @defaultValue `65536` (64 KiB)
   */
  maxBytes?: number | undefined;
  /**
   * Most keys accepted: form pairs, or JSON/object properties and array elements at every level.
   * More are rejected with reason `too_many_keys`. For the app page it bounds the query and the body each.
   * @defaultValue `256`
   */
  maxKeys?: number | undefined;
  /**
   * The clock, in unix **milliseconds**; used only to compute `expires` when the input gives a
   * lifetime instead of an absolute time.
   * @defaultValue `Date.now`
   */
  now?: (() => number) | undefined;
}

/** Default of {@link ParseEventOptions.maxKeys}. */
export const DEFAULT_MAX_KEYS = 256;
/** Deepest nesting accepted (`auth[access_token]` is 2); real payloads use 2, placement options a few more. */
export const MAX_DEPTH = 16;
/** Access-token lifetime assumed when the input gives none: Bitrix24's one hour. */
export const DEFAULT_EXPIRES_IN = 3600;

/** {@link ParseEventOptions} checked, with defaults applied. */
export interface ResolvedOptions {
  readonly limits: TreeLimits;
  readonly contentType: string | undefined;
  readonly now: () => number;
}

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`options.${name} must be a positive integer`);
  }
  return value;
}

/** Checks the options and applies defaults. @throws TypeError naming the bad option. */
export function resolveOptions(options: ParseEventOptions | undefined): ResolvedOptions {
  const { contentType, now = Date.now } = options ?? {};
  if (contentType !== undefined && typeof contentType !== 'string') {
    throw new TypeError('options.contentType must be a string');
  }
  if (typeof now !== 'function') throw new TypeError('options.now must be a function');
  return {
    limits: {
      maxBytes: positiveInteger(options?.maxBytes, 'maxBytes', DEFAULT_MAX_BODY_BYTES),
      maxKeys: positiveInteger(options?.maxKeys, 'maxKeys', DEFAULT_MAX_KEYS),
      maxDepth: MAX_DEPTH,
    },
    contentType,
    now,
  };
}

/** Current unix seconds from the injected clock; a broken clock is the caller's bug, not bad input. */
export function nowSeconds(options: ResolvedOptions): number {
  const ms = options.now();
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new TypeError('options.now must return a positive number of unix milliseconds');
  }
  return Math.floor(ms / 1000);
}

/** Ranges of the integer fields the parsers read. */
export const EXPIRES_RULE = { min: 1, max: MAX_EXPIRES_SECONDS, expected: 'a positive integer (unix seconds)' };
export const LIFETIME_RULE = { min: 1, max: 1_000_000_000, expected: 'a positive integer (seconds)' };
export const ID_RULE = { min: 0, max: Number.MAX_SAFE_INTEGER, expected: 'a non-negative integer' };
export const TS_RULE = { min: 0, max: MAX_EXPIRES_SECONDS, expected: 'a non-negative integer (unix seconds)' };
