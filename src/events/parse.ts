// parseInstallEvent and parseAppPageRequest: raw Bitrix24 requests in, typed and validated events out.
// Pure functions: no I/O, the clock injectable, every failure one InvalidEventError naming the field.

import { ErrorCode } from '../errors.js';
import { toFieldTree, toPlainData, jsonToNode, type FieldMap, type TreeLimits } from './field-tree.js';
import { FieldReader, MAX_EXPIRES_SECONDS } from './fields.js';
import type {
  AppPageRequest,
  InstallEvent,
  LifecycleEvent,
  PortalAuth,
  UninstallAuth,
  UninstallEvent,
  UpdateEvent,
} from './types.js';

/**
 * A request body in any form this library accepts:
 * - form-urlencoded or JSON **text**, or the same as **bytes** (`Uint8Array`, `Buffer`, `ArrayBuffer`),
 *   decoded as UTF-8;
 * - a `URLSearchParams`;
 * - an **object** from a body parser: nested (`{ event, data: {...}, auth: {...} }`, as Express's
 *   extended parser or a JSON parser gives) or flat (`{ 'auth[access_token]': ... }`, as a
 *   non-extended urlencoded parser gives), or a mix of both.
 */
export type EventBody = string | Uint8Array | ArrayBuffer | URLSearchParams | Readonly<Record<string, unknown>>;

/** Options of {@link parseInstallEvent} and {@link parseAppPageRequest}. */
export interface ParseEventOptions {
  /**
   * The request's `Content-Type`, used for text and bytes only: `application/x-www-form-urlencoded`
   * means form, `application/json` (or any `+json` type) means JSON, anything else is rejected with
   * reason `content_type`. When absent or empty, the body is sniffed: JSON if its first
   * non-whitespace character is `{`, form otherwise.
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

/** The parts of an app-page (iframe) request that {@link parseAppPageRequest} reads. */
export interface AppPageRequestInput {
  /**
   * The query string: a `URLSearchParams`, an object (`req.query`), or a string (with or without the
   * leading `?`, or a whole request target such as `/app?DOMAIN=...`).
   */
  query?: string | URLSearchParams | Readonly<Record<string, unknown>> | undefined;
  /** The POST body, in any {@link EventBody} form. */
  body?: EventBody | undefined;
}

/** Default of {@link ParseEventOptions.maxBytes}. */
const DEFAULT_MAX_BYTES = 64 * 1024;
/** Default of {@link ParseEventOptions.maxKeys}. */
const DEFAULT_MAX_KEYS = 256;
/** Deepest nesting accepted (`auth[access_token]` is 2); real payloads use 2, placement options a few more. */
const MAX_DEPTH = 16;
/** Access-token lifetime assumed when the input gives none: Bitrix24's one hour. */
const DEFAULT_EXPIRES_IN = 3600;
/** Used for the app page when the portal is too old to send `SERVER_ENDPOINT`. Not trusted until verified. */
const DEFAULT_SERVER_ENDPOINT = 'https://oauth.bitrix.info/rest/';

const LIFECYCLE = 'Lifecycle event';
const APP_PAGE = 'App page request';

const EVENT_TYPES = {
  ONAPPINSTALL: 'install',
  ONAPPUPDATE: 'update',
  ONAPPUNINSTALL: 'uninstall',
} as const;

interface ResolvedOptions {
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

function resolveOptions(options: ParseEventOptions | undefined): ResolvedOptions {
  const { contentType, now = Date.now } = options ?? {};
  if (contentType !== undefined && typeof contentType !== 'string') {
    throw new TypeError('options.contentType must be a string');
  }
  if (typeof now !== 'function') throw new TypeError('options.now must be a function');
  return {
    limits: {
      maxBytes: positiveInteger(options?.maxBytes, 'maxBytes', DEFAULT_MAX_BYTES),
      maxKeys: positiveInteger(options?.maxKeys, 'maxKeys', DEFAULT_MAX_KEYS),
      maxDepth: MAX_DEPTH,
    },
    contentType,
    now,
  };
}

/** Current unix seconds from the injected clock; a broken clock is the caller's bug, not bad input. */
function nowSeconds(options: ResolvedOptions): number {
  const ms = options.now();
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new TypeError('options.now must return a positive number of unix milliseconds');
  }
  return Math.floor(ms / 1000);
}

const EXPIRES_RULE = { min: 1, max: MAX_EXPIRES_SECONDS, expected: 'a positive integer (unix seconds)' };
const LIFETIME_RULE = { min: 1, max: 1_000_000_000, expected: 'a positive integer (seconds)' };
const ID_RULE = { min: 0, max: Number.MAX_SAFE_INTEGER, expected: 'a non-negative integer' };
const TS_RULE = { min: 0, max: MAX_EXPIRES_SECONDS, expected: 'a non-negative integer (unix seconds)' };
const VERSION_RULE = { min: 0, max: 1_000_000_000, expected: 'a non-negative integer' };

/** Reads `auth[...]` of ONAPPINSTALL and ONAPPUPDATE. */
function readPortalAuth(reader: FieldReader, options: ResolvedOptions): PortalAuth {
  const accessToken = reader.token(['auth', 'access_token']);
  const refreshToken = reader.token(['auth', 'refresh_token']);
  const expiresIn = reader.integer(['auth', 'expires_in'], LIFETIME_RULE) ?? DEFAULT_EXPIRES_IN;
  const expires = reader.integer(['auth', 'expires'], EXPIRES_RULE) ?? nowSeconds(options) + expiresIn;
  const scope = reader.text(['auth', 'scope']);
  if (scope === undefined && reader.node(['auth', 'scope']) === undefined) {
    throw reader.fail(['auth', 'scope'], 'missing', 'is required');
  }
  return {
    accessToken,
    refreshToken,
    expires,
    expiresIn,
    scope: scope ?? '',
    domain: reader.domain(['auth', 'domain']),
    clientEndpoint: reader.endpoint(['auth', 'client_endpoint']),
    serverEndpoint: reader.endpoint(['auth', 'server_endpoint']),
    status: reader.status(['auth', 'status']),
    memberId: reader.memberId(['auth', 'member_id']),
    userId: reader.integer(['auth', 'user_id'], ID_RULE) ?? null,
    applicationToken: reader.optionalToken(['auth', 'application_token']),
  };
}

/** Reads `auth[...]` of ONAPPUNINSTALL; any tokens in it are ignored, never returned. */
function readUninstallAuth(reader: FieldReader): UninstallAuth {
  return {
    domain: reader.domain(['auth', 'domain']),
    clientEndpoint: reader.endpoint(['auth', 'client_endpoint']),
    serverEndpoint: reader.endpoint(['auth', 'server_endpoint']),
    memberId: reader.memberId(['auth', 'member_id']),
    applicationToken: reader.token(['auth', 'application_token']),
  };
}

function parseLifecycle(tree: FieldMap, options: ResolvedOptions): LifecycleEvent {
  const reader = new FieldReader(LIFECYCLE, [tree]);
  reader.adoptMemberId(['auth', 'member_id']);
  const name = reader.requiredText(['event']).toUpperCase();
  const type = Object.hasOwn(EVENT_TYPES, name) ? EVENT_TYPES[name as keyof typeof EVENT_TYPES] : undefined;
  if (type === undefined) {
    throw reader.fail(['event'], 'unknown', 'names an event other than ONAPPINSTALL, ONAPPUPDATE or ONAPPUNINSTALL', ErrorCode.UnknownEvent);
  }
  const base = {
    handlerId: reader.integer(['event_handler_id'], ID_RULE) ?? null,
    ts: reader.integer(['ts'], TS_RULE) ?? null,
    languageId: reader.label(['data', 'LANGUAGE_ID'], 32),
  };
  switch (type) {
    case 'install': {
      const event: InstallEvent = {
        type,
        event: 'ONAPPINSTALL',
        ...base,
        version: reader.integer(['data', 'VERSION'], VERSION_RULE) ?? null,
        // Absent flags read as a finished, active install: losing a fresh chain over a missing
        // informational flag would cost the portal (events are delivered at most once).
        active: reader.flag(['data', 'ACTIVE']) ?? true,
        installed: reader.flag(['data', 'INSTALLED']) ?? true,
        auth: Object.freeze(readPortalAuth(reader, options)),
      };
      return Object.freeze(event);
    }
    case 'update': {
      const event: UpdateEvent = {
        type,
        event: 'ONAPPUPDATE',
        ...base,
        version: reader.integer(['data', 'VERSION'], VERSION_RULE) ?? null,
        previousVersion: reader.integer(['data', 'PREVIOUS_VERSION'], VERSION_RULE) ?? null,
        auth: Object.freeze(readPortalAuth(reader, options)),
      };
      return Object.freeze(event);
    }
    case 'uninstall': {
      const event: UninstallEvent = {
        type,
        event: 'ONAPPUNINSTALL',
        ...base,
        // Absent CLEAN keeps the app's data: deleting is the choice that cannot be undone.
        clean: reader.flag(['data', 'CLEAN']) ?? false,
        auth: Object.freeze(readUninstallAuth(reader)),
      };
      return Object.freeze(event);
    }
  }
}

/**
 * Parses and validates a Bitrix24 lifecycle event: ONAPPINSTALL, ONAPPUPDATE or ONAPPUNINSTALL
 * (also the "installation callback" of an app that uses the API only, which is ONAPPINSTALL).
 *
 * Accepts every {@link EventBody} form. Values arrive as strings and come out typed: numbers as
 * numbers, `Y`/`N` as booleans, `expires` always as absolute unix seconds.
 *
 * Rules, field by field (names in Bitrix24's spelling):
 * - `event`: required, matched case-insensitively; any other event throws with code `UNKNOWN_EVENT`.
 * - `auth[access_token]`, `auth[refresh_token]` (install, update): required; 1 to 4096 printable
 *   ASCII characters without spaces. The same rule applies to `auth[application_token]`, which is
 *   optional for install and update and required for uninstall.
 * - `auth[member_id]`: required everywhere; 1 to 128 characters of `A-Z a-z 0-9 _ . -`.
 * - `auth[domain]`: required everywhere; a host name (letters, digits, `-`, `_`, dots), an IPv4
 *   address or a bracketed IPv6 address, with an optional `:port`; returned lower-cased.
 * - `auth[client_endpoint]`, `auth[server_endpoint]`: required everywhere; absolute `http:` or
 *   `https:` URLs with a host, without credentials, query or fragment; returned normalised with the
 *   path ending in `/`. Validated, not trusted: verify the event before using them.
 * - `auth[expires]`: optional positive integer below 10^11 (unix seconds); when absent or empty it
 *   is `now + expires_in`. `auth[expires_in]`: optional positive integer, default 3600.
 * - `auth[scope]` (install, update): required, as Bitrix24 always sends it; may be empty.
 *   `auth[status]`: required, one upper-case letter (unknown letters are kept).
 * - `auth[user_id]`, `event_handler_id`, `ts`, `data[VERSION]`, `data[PREVIOUS_VERSION]`: optional
 *   non-negative integers, `null` when absent. `data[LANGUAGE_ID]`: optional short text.
 * - `data[ACTIVE]`, `data[INSTALLED]`: `Y`/`N` (also `1`/`0`, `true`/`false`), `true` when absent.
 *   `data[CLEAN]`: the same, `false` when absent.
 * - Uninstall never carries tokens: any `auth[access_token]` or `auth[refresh_token]` in it is ignored.
 * - A field that is absent or empty counts as absent; a field given twice, or both as a value and as
 *   a group, is rejected with reason `duplicate` or `type`. Repeated keys the parser never reads are
 *   ignored. In JSON text, a repeated property keeps its last value (as `JSON.parse` does).
 * - Unknown keys are ignored and never copied: `__proto__`, `constructor` and friends are inert.
 *
 * @param input - The request body, or a body parser's output.
 * @param options - Content type, size limits and clock.
 * @returns A frozen {@link LifecycleEvent}.
 * @throws {@link InvalidEventError} when the input is malformed, too large (`too_large`), has too
 *   many keys (`too_many_keys`), nests too deep (`too_deep`), has an unsupported content type
 *   (`content_type`), or a field is missing or invalid (`missing`, `format`, `type`, `duplicate`,
 *   `syntax`); `code` is `UNKNOWN_EVENT` for an unknown `event`, `INVALID_EVENT` otherwise. Neither
 *   the message nor any property holds a value from the input.
 * @throws `TypeError` when `options` are invalid or `options.now` returns no usable time.
 * @example
 * ```ts
 * const event = parseInstallEvent(req.body, { contentType: req.headers['content-type'] });
 * if (event.type === 'install') await saveChain(event.auth.memberId, event.auth);
 * ```
 */
export function parseInstallEvent(input: EventBody, options?: ParseEventOptions): LifecycleEvent {
  const resolved = resolveOptions(options);
  const tree = toFieldTree(input, {
    limits: resolved.limits,
    subject: LIFECYCLE,
    field: 'body',
    contentType: resolved.contentType,
  });
  return parseLifecycle(tree, resolved);
}

/** Query-string input into a tree: accepts `?a=b`, `a=b`, a request target, URLSearchParams or an object. */
function queryTree(query: AppPageRequestInput['query'], options: ResolvedOptions): FieldMap {
  if (query === undefined) return new Map();
  let input: unknown = query;
  if (typeof query === 'string') {
    const mark = query.indexOf('?');
    const isTarget = query.startsWith('/') || /^[a-z][a-z0-9+.-]*:\/\//i.test(query);
    input = isTarget ? (mark === -1 ? '' : query.slice(mark + 1)) : query.replace(/^\?/, '');
  }
  // Always form, whatever it looks like: a query string is never JSON.
  return toFieldTree(input, {
    limits: options.limits,
    subject: APP_PAGE,
    field: 'query',
    contentType: 'application/x-www-form-urlencoded',
  });
}

/** `PLACEMENT_OPTIONS`: a JSON string (usually), an already-parsed object, or `undefined`. */
function readPlacementOptions(reader: FieldReader, options: ResolvedOptions): unknown {
  const path = ['PLACEMENT_OPTIONS'];
  const node = reader.node(path, 1);
  if (node === undefined || node === null || node === '' || node === 'undefined') return null;
  if (typeof node === 'string') {
    const parsed = jsonToNode(node, { limits: options.limits, subject: APP_PAGE, field: 'PLACEMENT_OPTIONS' });
    return toPlainData(parsed) ?? null;
  }
  const plain = toPlainData(node);
  if (plain === undefined) throw reader.fail(path, 'duplicate', 'has a key that appears more than once');
  return plain;
}

/**
 * Parses and validates the app-page (iframe) request: what Bitrix24 POSTs to the app's handler URL
 * when a user opens the app. It carries **that user's** chain, not the installer's: store it only
 * when that is what you want.
 *
 * Where fields are read (each is looked up in its documented place, then in the other; present in
 * both with different values is rejected as `duplicate`):
 * - query: `DOMAIN` (required, host with optional `:port`), `PROTOCOL` (`1` https, `0` http; https
 *   when absent), `LANG`, `APP_SID`;
 * - body: `AUTH_ID` and `REFRESH_ID` (required tokens), `AUTH_EXPIRES` (the token's lifetime in
 *   **seconds**; `expires = now + AUTH_EXPIRES`, 3600 when absent), `member_id` (required),
 *   `status` (required letter), `PLACEMENT`, `PLACEMENT_OPTIONS`, and from newer portals
 *   `SERVER_ENDPOINT` (default `https://oauth.bitrix.info/rest/`), `APPLICATION_TOKEN` (else `null`),
 *   `APPLICATION_SCOPE` (else empty scope).
 *
 * `clientEndpoint` is `http(s)://DOMAIN/rest/`; `userId` is `null` (the request does not say).
 * `PLACEMENT_OPTIONS` is decoded from JSON; absent, empty or the literal `undefined` give `null`;
 * text that is not valid JSON is rejected (reason `syntax`) rather than silently dropped. Decoded
 * objects have a null prototype and never keep `__proto__`, `constructor` or `prototype` keys.
 *
 * @param request - The query and the body of the request.
 * @param options - Content type of the body, size limits (applied to query and body each) and clock.
 * @returns A frozen {@link AppPageRequest}.
 * @throws {@link InvalidEventError} as {@link parseInstallEvent} does, naming fields as Bitrix24
 *   spells them (`AUTH_EXPIRES`, `DOMAIN`).
 * @throws `TypeError` when `options` are invalid.
 * @example
 * ```ts
 * app.post('/app', express.urlencoded({ extended: true }), (req, res) => {
 *   const page = parseAppPageRequest({ query: req.query, body: req.body });
 *   res.render('app', { domain: page.auth.domain, placement: page.placement });
 * });
 * ```
 */
export function parseAppPageRequest(request: AppPageRequestInput, options?: ParseEventOptions): AppPageRequest {
  const resolved = resolveOptions(options);
  if (request === null || typeof request !== 'object') {
    throw new TypeError('parseAppPageRequest expects { query, body }');
  }
  const query = queryTree(request.query, resolved);
  const body =
    request.body === undefined
      ? new Map()
      : toFieldTree(request.body, {
          limits: resolved.limits,
          subject: APP_PAGE,
          field: 'body',
          contentType: resolved.contentType,
        });
  const QUERY = 0;
  const BODY = 1;
  const reader = new FieldReader(APP_PAGE, [query, body]);
  reader.adoptMemberId(['member_id'], BODY);

  const accessToken = reader.token(['AUTH_ID'], BODY);
  const refreshToken = reader.token(['REFRESH_ID'], BODY);
  const expiresIn = reader.integer(['AUTH_EXPIRES'], LIFETIME_RULE, BODY) ?? DEFAULT_EXPIRES_IN;
  const domain = reader.domain(['DOMAIN'], QUERY);
  const protocol = reader.scalar(['PROTOCOL'], QUERY);
  if (protocol !== undefined && protocol !== '1' && protocol !== '0' && protocol !== 1 && protocol !== 0) {
    throw reader.fail(['PROTOCOL'], 'format', 'must be 1 (https) or 0 (http)');
  }
  const scheme = protocol === '0' || protocol === 0 ? 'http' : 'https';
  const serverEndpointText = reader.text(['SERVER_ENDPOINT'], BODY);
  const auth: PortalAuth = {
    accessToken,
    refreshToken,
    expires: nowSeconds(resolved) + expiresIn,
    expiresIn,
    scope: reader.text(['APPLICATION_SCOPE'], BODY) ?? '',
    domain,
    // Built from a validated host; checked anyway so one rule covers every endpoint.
    clientEndpoint: reader.endpointFrom(['DOMAIN'], `${scheme}://${domain}/rest/`),
    serverEndpoint:
      serverEndpointText === undefined ? DEFAULT_SERVER_ENDPOINT : reader.endpoint(['SERVER_ENDPOINT'], BODY),
    status: reader.status(['status'], BODY),
    memberId: reader.memberId(['member_id'], BODY),
    userId: null,
    applicationToken: reader.optionalToken(['APPLICATION_TOKEN'], BODY),
  };
  const page: AppPageRequest = {
    type: 'app-page',
    auth: Object.freeze(auth),
    placement: reader.label(['PLACEMENT'], 256, BODY),
    placementOptions: readPlacementOptions(reader, resolved),
    lang: reader.label(['LANG'], 32, QUERY),
    appSid: reader.label(['APP_SID'], 256, QUERY),
  };
  return Object.freeze(page);
}

