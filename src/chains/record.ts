// The one place an OAuth host's token answer becomes a stored record: an install or update, an app
// page's user chain, a reseed, an authorization code, and (as a patch) a refresh. It decides which
// fields a fresh chain replaces and which survive from the record stored before; it checks nothing.

import type { PortalAuth } from '../events/types.js';
import type { TokenResponse } from '../oauth/oauth-client.js';
import { DEFAULT_APP_STATUS } from '../protocol/app-status.js';
import { serverEndpointOf } from '../protocol/oauth-hosts.js';
import type { ChainId, PortalRecord, PortalRecordInput, PortalRecordPatch } from '../store/token-store.js';

/** Whether `value` parses as an http(s) URL. */
export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/**
 * The portal's REST root from a trusted source: the OAuth host's answers (the token answer, then
 * `app.info`), else the stored record; never a payload. A root with credentials is refused.
 */
export function trustedRestRoot(tokens: TokenResponse, fromAppInfo: string | undefined, stored: PortalRecord | undefined): string | undefined {
  const answered = tokens.clientEndpoint ?? fromAppInfo;
  if (answered !== undefined) {
    try {
      const url = new URL(answered);
      if ((url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '') {
        return url.href.endsWith('/') ? url.href : `${url.href}/`;
      }
    } catch {
      // fall through to the stored one
    }
  }
  return stored?.clientEndpoint;
}

/** A token answer proven at a trusted OAuth host, and what the record built from it needs beside it. */
export interface ProvenAnswer {
  /** The portal. */
  readonly memberId: string;
  /** Which of its chains the answer becomes. */
  readonly chain: ChainId;
  /** The OAuth host's answer (a refresh or a code exchange). */
  readonly tokens: TokenResponse;
  /** The trusted OAuth base the answer came from. */
  readonly oauthBase: string;
  /** The portal's REST root, from a trusted source ({@link trustedRestRoot}). */
  readonly clientEndpoint: string;
  /** The portal's domain, from a trusted source. */
  readonly domain: string;
  /**
   * What the answer may lack, from the request that carried the chain (the payload's scope and
   * status, its `application_token`); the answer's own values always win.
   */
  readonly fallback?: {
    readonly refreshToken?: string | undefined;
    readonly scope?: string | undefined;
    readonly status?: string | undefined;
    readonly applicationToken?: string | null | undefined;
  };
  /** The chain's record stored before, whose `installedAt`, `applicationToken`, scope and status survive. */
  readonly existing: PortalRecord | undefined;
  /** Now, unix ms. */
  readonly now: number;
  /** The ordering time of the event that carried the chain (unix seconds), when there was one. */
  readonly eventTs?: number | null | undefined;
}

/**
 * The record to store for a freshly proven chain. The pair, user, scope and status come from the
 * OAuth host's answer (the request's values only where the answer is silent); the portal becomes
 * `active` again, clearing any revocation; `installedAt` and the `application_token` survive from
 * the record stored before.
 */
export function recordFromAnswer(proven: ProvenAnswer): PortalRecordInput {
  const { tokens, existing, now, fallback = {} } = proven;
  const refreshToken = tokens.refreshToken ?? fallback.refreshToken;
  if (refreshToken === undefined) throw new TypeError('a proven answer needs a refresh token');
  return {
    memberId: proven.memberId,
    chain: proven.chain,
    domain: proven.domain,
    clientEndpoint: proven.clientEndpoint,
    serverEndpoint: serverEndpointOf(proven.oauthBase),
    accessToken: tokens.accessToken,
    refreshToken,
    expires: tokens.expires,
    scope: tokens.scope ?? fallback.scope ?? existing?.scope ?? '',
    status: tokens.status ?? fallback.status ?? existing?.status ?? DEFAULT_APP_STATUS,
    userId: tokens.userId,
    applicationToken: fallback.applicationToken ?? existing?.applicationToken ?? null,
    state: 'active',
    revokedReason: null,
    installedAt: existing?.installedAt ?? now,
    updatedAt: now,
    chainUpdatedAt: now,
    revokedAt: null,
    ...(proven.eventTs === undefined ? {} : { eventTs: proven.eventTs }),
  };
}

/**
 * Builds the record to upsert for a portal whose chain has just been verified (an install, an
 * update, an authorization-code exchange).
 *
 * The chain, endpoints, scope, status and user come from `auth`; `installedAt` survives from
 * `existing` (a reinstall is still the same portal), `applicationToken` too when `auth` carries none
 * (the authorization-code flow never does); `updatedAt` and `chainUpdatedAt` become `now`; the
 * portal becomes `active` again, clearing any revocation.
 *
 * Only pass an `auth` whose tokens were verified and whose `serverEndpoint` is a trusted OAuth
 * host: this function checks nothing.
 *
 * @param auth - the verified chain and portal identity.
 * @param existing - the portal's current record, or `undefined` for a first install.
 * @param now - the current time, unix milliseconds.
 * @returns the record input for `TokenStore.upsert`.
 */
export function portalRecordFromAuth(auth: PortalAuth, existing: PortalRecord | undefined, now: number): PortalRecordInput {
  const { chain: _chain, ...record } = recordFromAnswer({
    memberId: auth.memberId,
    chain: 'portal',
    tokens: { ...auth, refreshToken: auth.refreshToken, domain: auth.domain },
    oauthBase: auth.serverEndpoint.replace(/\/rest\/?$/, ''),
    clientEndpoint: auth.clientEndpoint,
    domain: auth.domain,
    fallback: { applicationToken: auth.applicationToken },
    existing,
    now,
  });
  return { ...record, serverEndpoint: auth.serverEndpoint };
}

/**
 * The fields a refresh answer changes; what the answer lacks is carried forward (PROTOCOL.md
 * section 3). A fresh pair makes the chain active again (a suspended or reactivated one).
 */
export function pairPatch(current: PortalRecord, tokens: TokenResponse, nowMs: number): PortalRecordPatch {
  const clientEndpoint =
    tokens.clientEndpoint !== undefined && isHttpUrl(tokens.clientEndpoint) ? tokens.clientEndpoint : current.clientEndpoint;
  return {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken ?? current.refreshToken,
    expires: tokens.expires,
    scope: tokens.scope ?? current.scope,
    status: tokens.status ?? current.status,
    userId: tokens.userId ?? current.userId,
    clientEndpoint,
    domain: clientEndpoint === current.clientEndpoint ? current.domain : new URL(clientEndpoint).host,
    state: 'active',
    revokedAt: null,
    revokedReason: null,
    updatedAt: nowMs,
    chainUpdatedAt: nowMs,
  };
}
