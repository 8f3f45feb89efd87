// parseInstallEvent: a raw lifecycle event (ONAPPINSTALL, ONAPPUPDATE, ONAPPUNINSTALL) in, a typed and
// validated event out. Pure: no I/O, the clock injectable, every failure one InvalidEventError naming the field.

import { ErrorCode } from '../errors.js';
import { toFieldTree, type FieldMap } from './field-tree.js';
import { FieldReader } from './fields.js';
import {
  DEFAULT_EXPIRES_IN,
  EXPIRES_RULE,
  ID_RULE,
  LIFETIME_RULE,
  nowSeconds,
  resolveOptions,
  TS_RULE,
  type EventBody,
  type ParseEventOptions,
  type ResolvedOptions,
} from './options.js';
import type { InstallEvent, LifecycleEvent, PortalAuth, UninstallAuth, UninstallEvent, UpdateEvent } from './types.js';

export type { EventBody, ParseEventOptions } from './options.js';
export { parseAppPageRequest, type AppPageRequestInput } from './app-page.js';

const LIFECYCLE = 'Lifecycle event';
/** `data[VERSION]` is informational: kept as sent (`"3"`, `"1.0.0"`) up to this length, else dropped. */
const VERSION_TEXT_LENGTH = 64;

const EVENT_TYPES = {
  ONAPPINSTALL: 'install',
  ONAPPUPDATE: 'update',
  ONAPPUNINSTALL: 'uninstall',
} as const;

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

/**
 * Reads `auth[...]` of ONAPPUNINSTALL: only `member_id` and `application_token` are needed (the
 * rest is informational and may be missing); any tokens in it are ignored, never returned.
 */
function readUninstallAuth(reader: FieldReader): UninstallAuth {
  return {
    domain: reader.optionalDomain(['auth', 'domain']),
    clientEndpoint: reader.optionalEndpoint(['auth', 'client_endpoint']),
    serverEndpoint: reader.optionalEndpoint(['auth', 'server_endpoint']),
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
    languageId: reader.informational(['data', 'LANGUAGE_ID'], 32),
  };
  switch (type) {
    case 'install': {
      const event: InstallEvent = {
        type,
        event: 'ONAPPINSTALL',
        ...base,
        version: reader.informational(['data', 'VERSION'], VERSION_TEXT_LENGTH),
        // Absent flags read as a finished, active install: losing a fresh chain over a missing
        // informational flag would cost the portal (events are delivered at most once).
        active: reader.informationalFlag(['data', 'ACTIVE']) ?? true,
        installed: reader.informationalFlag(['data', 'INSTALLED']) ?? true,
        auth: Object.freeze(readPortalAuth(reader, options)),
      };
      return Object.freeze(event);
    }
    case 'update': {
      const event: UpdateEvent = {
        type,
        event: 'ONAPPUPDATE',
        ...base,
        version: reader.informational(['data', 'VERSION'], VERSION_TEXT_LENGTH),
        previousVersion: reader.informational(['data', 'PREVIOUS_VERSION'], VERSION_TEXT_LENGTH),
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
        clean: reader.informationalFlag(['data', 'CLEAN']) ?? false,
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
 * Accepts every `EventBody` form. Values arrive as strings and come out typed: numbers as
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
 * - `auth[user_id]`, `event_handler_id`, `ts`: optional non-negative integers, `null` when absent.
 *   `data[VERSION]`, `data[PREVIOUS_VERSION]`: informational, their text as sent (`"3"`, `"1.0.0"`),
 *   `null` when absent or of an unexpected shape (never an error). `data[LANGUAGE_ID]`: optional short text.
 * - Uninstall needs only `auth[member_id]` and `auth[application_token]`; its `domain` and
 *   endpoints are `null` when absent.
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
