// parseRestEvent: a raw REST event (ONCRMDEALADD, ONTASKUPDATE, ... of a handler bound with event.bind)
// in, a typed event out. Same input forms, limits and error as parseInstallEvent; `data` kept as sent.

import { ErrorCode } from '../errors.js';
import { Conflict, toFieldTree, type FieldNode } from './field-tree.js';
import { FieldReader } from './fields.js';
import { EXPIRES_RULE, ID_RULE, LIFETIME_RULE, resolveOptions, TS_RULE, type EventBody, type ParseEventOptions } from './options.js';
import type { RestEvent, RestEventAuth, RestEventData, RestEventValue } from './types.js';

const SUBJECT = 'REST event';

/** The lifecycle events, which carry the portal's chain and belong to the lifecycle handler. */
export const LIFECYCLE_EVENT_NAMES: readonly string[] = Object.freeze(['ONAPPINSTALL', 'ONAPPUPDATE', 'ONAPPUNINSTALL']);

/** Event names: letters, digits and `_`, starting with a letter (Bitrix24 names are `ON...`). */
const EVENT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,127}$/;

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Reads an optional field with a reader method that requires it. */
function optional<T>(reader: FieldReader, path: readonly string[], read: (path: readonly string[]) => T): T | null {
  return reader.text(path) === undefined ? null : read(path);
}

function readAuth(reader: FieldReader): RestEventAuth {
  return Object.freeze({
    memberId: reader.memberId(['auth', 'member_id']),
    applicationToken: reader.token(['auth', 'application_token']),
    domain: optional(reader, ['auth', 'domain'], (p) => reader.domain(p)),
    clientEndpoint: optional(reader, ['auth', 'client_endpoint'], (p) => reader.endpoint(p)),
    serverEndpoint: optional(reader, ['auth', 'server_endpoint'], (p) => reader.endpoint(p)),
    accessToken: reader.optionalToken(['auth', 'access_token']),
    refreshToken: reader.optionalToken(['auth', 'refresh_token']),
    expires: reader.integer(['auth', 'expires'], EXPIRES_RULE) ?? null,
    expiresIn: reader.integer(['auth', 'expires_in'], LIFETIME_RULE) ?? null,
    scope: reader.text(['auth', 'scope']) ?? null,
    status: optional(reader, ['auth', 'status'], (p) => reader.status(p)),
    userId: reader.integer(['auth', 'user_id'], ID_RULE) ?? null,
  });
}

/** Turns the `data` subtree into frozen plain data, naming the exact field of any conflict. */
function toData(reader: FieldReader, node: FieldNode, path: string[]): RestEventValue {
  if (node instanceof Conflict) {
    throw node.reason === 'duplicate'
      ? reader.fail(path, 'duplicate', 'appears more than once')
      : reader.fail(path, 'type', 'is given both as a value and as a group of fields');
  }
  if (Array.isArray(node)) {
    return Object.freeze(node.map((element, i) => toData(reader, element, [...path, String(i)])));
  }
  if (node instanceof Map) {
    const object = Object.create(null) as Record<string, RestEventValue>;
    for (const [key, child] of node) {
      if (!UNSAFE_KEYS.has(key)) object[key] = toData(reader, child, [...path, key]);
    }
    return Object.freeze(object);
  }
  return node;
}

function readData(reader: FieldReader): RestEventData {
  const node = reader.node(['data']);
  if (node === undefined || node === null || node === '') return Object.freeze(Object.create(null) as RestEventData);
  if (!(node instanceof Map)) throw reader.fail(['data'], 'type', 'must be a group of fields');
  return toData(reader, node, ['data']) as RestEventData;
}

/**
 * Parses and validates a REST event: what Bitrix24 posts to a handler the app bound with
 * `event.bind` (`ONCRMDEALADD`, `ONTASKUPDATE`, `ONIMBOTMESSAGEADD`, ...).
 *
 * Accepts every `EventBody` form, with the limits and the one error of
 * {@link parseInstallEvent}. Rules, field by field (names in Bitrix24's spelling):
 * - `event`: required; letters, digits and `_`, at most 128, starting with a letter; returned in
 *   upper case. Any name is accepted (you bound it), except the lifecycle events ONAPPINSTALL,
 *   ONAPPUPDATE and ONAPPUNINSTALL: they carry the portal's chain and must go through
 *   `parseInstallEvent` / `createLifecycleHandler`, so they throw with code `UNKNOWN_EVENT` and
 *   reason `lifecycle`.
 * - `auth[member_id]` and `auth[application_token]`: required (the token authenticates the event).
 * - Every other `auth` field is optional and `null` when absent or empty; when present it is
 *   checked as in `parseInstallEvent` (`domain` a host, endpoints absolute http(s) URLs, tokens
 *   printable ASCII, `expires`, `expires_in`, `user_id` integers). A live capture of a REST event
 *   lacks `server_endpoint`, the documentation's examples lack `expires` and `user_id`, and events
 *   of some bindings carry no tokens at all.
 * - `event_handler_id`, `ts`: optional non-negative integers, `null` when absent.
 * - `data`: kept as the nested structure Bitrix24 sent (`data[FIELDS][ID]=5` becomes
 *   `data.FIELDS.ID === '5'`): strings stay strings (a form body carries nothing else), JSON numbers
 *   stay numbers, lists stay lists. Absent data is an empty object; `data` given as a single value
 *   is rejected (`type`); a field inside it given twice is rejected (`duplicate`). The result is
 *   frozen, with `null` prototypes, and without `__proto__`, `constructor` or `prototype` keys.
 *
 * The event's `data` and its `auth` block are claims: anyone who holds the portal's
 * `application_token` (on newer portals every user who opens the app page does) can send them.
 * Re-read the entity through the portal's client before acting on it. The event's tokens belong to
 * the user who fired it: never store them as the portal's chain.
 *
 * @param input - The request body, or a body parser's output.
 * @param options - Content type and size limits (`now` is not used).
 * @returns A frozen {@link RestEvent}.
 * @throws {@link InvalidEventError} naming the field, with the reasons of `parseInstallEvent`
 *   (`code` `UNKNOWN_EVENT` and reason `lifecycle` for a lifecycle event). Neither the message nor
 *   any property holds a value from the input.
 * @throws `TypeError` when `options` are invalid.
 * @example
 * ```ts
 * const event = parseRestEvent(req.body, { contentType: req.headers['content-type'] });
 * if (event.event === 'ONCRMDEALADD') console.log(event.auth.memberId, event.data.FIELDS);
 * ```
 */
export function parseRestEvent(input: EventBody, options?: ParseEventOptions): RestEvent {
  const resolved = resolveOptions(options);
  const tree = toFieldTree(input, { limits: resolved.limits, subject: SUBJECT, field: 'body', contentType: resolved.contentType });
  const reader = new FieldReader(SUBJECT, [tree]);
  reader.adoptMemberId(['auth', 'member_id']);
  const raw = reader.requiredText(['event']);
  if (!EVENT_NAME.test(raw)) throw reader.fail(['event'], 'format', 'must be an event name of letters, digits and `_`');
  const name = raw.toUpperCase();
  if (LIFECYCLE_EVENT_NAMES.includes(name)) {
    throw reader.fail(
      ['event'],
      'lifecycle',
      'names a lifecycle event (ONAPPINSTALL, ONAPPUPDATE, ONAPPUNINSTALL); use parseInstallEvent or createLifecycleHandler for it',
      ErrorCode.UnknownEvent,
    );
  }
  return Object.freeze({
    type: 'rest',
    event: name,
    handlerId: reader.integer(['event_handler_id'], ID_RULE) ?? null,
    ts: reader.integer(['ts'], TS_RULE) ?? null,
    data: readData(reader),
    auth: readAuth(reader),
  });
}
