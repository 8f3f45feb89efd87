// Event bodies as Bitrix24 posts them: the lifecycle events (ONAPPINSTALL, ONAPPUPDATE,
// ONAPPUNINSTALL) and REST events of bound handlers (ONCRMDEALADD, ...), in PHP bracket form and JSON.

import type { Ledger, PortalState } from './ledger.js';
import type { InstallEventOptions, RestEventOptions, UninstallEventOptions, UpdateEventOptions } from './options.js';
import { encodePhpForm } from './php-form.js';
import type {
  FakeChain,
  FakeEventData,
  FakeEventPayload,
  FakeLifecycleEvent,
  FakeRestEvent,
  FakeRestEventPayload,
  FakeUninstallEvent,
} from './types.js';
import { assertUserId } from './util.js';

function renderEvent(payload: FakeEventPayload): FakeUninstallEvent {
  return { payload, form: encodePhpForm(payload), json: JSON.stringify(payload) };
}

/** The `auth` block of an event that carries a chain: the chain, the portal's identity, its token. */
function eventAuth(ledger: Ledger, state: PortalState, chain: FakeChain, omit: readonly string[]): Record<string, string> {
  const auth: Record<string, string> = {
    access_token: chain.accessToken,
    expires: String(chain.expires),
    expires_in: String(chain.expiresIn),
    scope: state.scope,
    domain: state.domain,
    server_endpoint: ledger.config.serverEndpoint,
    status: state.status,
    client_endpoint: ledger.clientEndpoint(state),
    member_id: state.memberId,
    user_id: String(chain.userId),
    refresh_token: chain.refreshToken,
    application_token: state.applicationToken,
  };
  for (const field of omit) delete auth[field];
  return auth;
}

function actingUser(state: PortalState, userId: number | undefined): number {
  const id = userId ?? state.adminUserId;
  assertUserId(id, 'options.userId');
  return id;
}

/** An ONAPPINSTALL with a fresh chain; reinstalls an uninstalled portal. */
export function installEvent(ledger: Ledger, memberId: string, options: InstallEventOptions): FakeLifecycleEvent {
  const state = ledger.state(memberId);
  const userId = actingUser(state, options.userId);
  state.installed = true;
  if (options.version !== undefined) state.appVersion = options.version;
  const chain = ledger.mint(state, userId);
  const payload: FakeEventPayload = {
    event: 'ONAPPINSTALL',
    event_handler_id: String(options.handlerId ?? 1),
    data: {
      VERSION: String(state.appVersion),
      ACTIVE: options.active === false ? 'N' : 'Y',
      INSTALLED: options.installed === false ? 'N' : 'Y',
      LANGUAGE_ID: options.languageId ?? 'en',
    },
    ts: String(ledger.nowSec()),
    auth: eventAuth(ledger, state, chain, options.omitAuthFields ?? []),
  };
  return { ...renderEvent(payload), chain };
}

/** An ONAPPUPDATE with a fresh chain; `options.applicationToken` rotates the portal's. */
export function updateEvent(ledger: Ledger, memberId: string, options: UpdateEventOptions): FakeLifecycleEvent {
  const state = ledger.state(memberId);
  if (!state.installed) throw new TypeError(`memberId: the app is not installed on this portal`);
  const userId = actingUser(state, options.userId);
  const previousVersion = options.previousVersion ?? state.appVersion;
  state.appVersion = options.version ?? state.appVersion + 1;
  if (options.applicationToken !== undefined) state.applicationToken = options.applicationToken;
  const chain = ledger.mint(state, userId);
  const payload: FakeEventPayload = {
    event: 'ONAPPUPDATE',
    event_handler_id: String(options.handlerId ?? 1),
    data: {
      VERSION: String(state.appVersion),
      PREVIOUS_VERSION: String(previousVersion),
      LANGUAGE_ID: options.languageId ?? 'en',
    },
    ts: String(ledger.nowSec()),
    auth: eventAuth(ledger, state, chain, options.omitAuthFields ?? []),
  };
  return { ...renderEvent(payload), chain };
}

/** An ONAPPUNINSTALL (identity and `application_token`, no tokens); the app is uninstalled at once. */
export function uninstallEvent(ledger: Ledger, memberId: string, options: UninstallEventOptions): FakeUninstallEvent {
  const state = ledger.state(memberId);
  state.installed = false;
  ledger.killChains(memberId, 'invalid_grant');
  const payload: FakeEventPayload = {
    event: 'ONAPPUNINSTALL',
    event_handler_id: String(options.handlerId ?? 2),
    data: { CLEAN: options.clean === true ? '1' : '0', LANGUAGE_ID: options.languageId ?? 'en' },
    ts: String(ledger.nowSec()),
    auth: {
      domain: state.domain,
      client_endpoint: ledger.clientEndpoint(state),
      server_endpoint: ledger.config.serverEndpoint,
      member_id: state.memberId,
      application_token: state.applicationToken,
    },
  };
  return renderEvent(payload);
}

/**
 * `data` as PHP's `http_build_query` would send it and a bracket-form parser read it back: numbers
 * as strings, `true` as `'1'`, `false` as `'0'`, lists as objects keyed `'0'`, `'1'`, ...; `null`
 * and `undefined` left out, as PHP leaves them out.
 */
function toEventData(value: Readonly<Record<string, unknown>>, path: string): FakeEventData {
  const out: Record<string, string | FakeEventData> = {};
  for (const [key, child] of Object.entries(value)) {
    const where = `${path}.${key}`;
    if (child === null || child === undefined) continue;
    if (typeof child === 'string') out[key] = child;
    else if (typeof child === 'number' || typeof child === 'bigint') out[key] = String(child);
    else if (typeof child === 'boolean') out[key] = child ? '1' : '0';
    else if (typeof child === 'object') out[key] = toEventData(child as Record<string, unknown>, where);
    else throw new TypeError(`${where} must be a string, number, boolean, list or object`);
  }
  return out;
}

/**
 * A REST event of a bound handler, with a fresh chain of the user who fired it (not the portal's
 * chain). Nothing about the portal changes.
 */
export function restEvent(
  ledger: Ledger,
  memberId: string,
  event: string,
  data: Readonly<Record<string, unknown>>,
  options: RestEventOptions,
): FakeRestEvent {
  const state = ledger.state(memberId);
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(event)) throw new TypeError('event must be an event name such as ONCRMDEALADD');
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new TypeError('data must be an object');
  if (options.ts !== undefined && !(Number.isInteger(options.ts) && options.ts >= 0)) {
    throw new TypeError('options.ts must be unix seconds');
  }
  const userId = actingUser(state, options.userId);
  const chain = ledger.mint(state, userId);
  const payload: FakeRestEventPayload = {
    event: event.toUpperCase(),
    event_handler_id: String(options.handlerId ?? 10),
    data: toEventData(data, 'data'),
    ts: String(options.ts ?? ledger.nowSec()),
    auth: eventAuth(ledger, state, chain, options.omitAuthFields ?? []),
  };
  return { payload, form: encodePhpForm(payload), json: JSON.stringify(payload), chain };
}
