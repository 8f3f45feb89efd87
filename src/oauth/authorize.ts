// The authorization-code flow: how an app re-obtains a portal's chain it lost (or takes a chosen user's).
// A signed, expiring, single-use `state` out; the code exchanged and verified at a trusted OAuth host back.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import {
  ErrorCode,
  InvalidEventError,
  InvalidStateError,
  OAuthInvalidResponseError,
  OAuthRejectedError,
  OAuthUnavailableError,
  PortalTokensError,
  StoreError,
  VerificationFailedError,
} from '../errors.js';
import type { PortalAuth } from '../events/types.js';
import type { LifecyclePool } from '../http/handler.js';
import { portalRecordFromAuth } from '../http/record.js';
import { normalizeTrustedHosts, serverEndpointOf, trustedBaseForServerDomain } from '../http/trusted-hosts.js';
import { jsonResponse, queryValue, type PlainHandler, type PlainResponse, type QueryInput } from '../http/types.js';
import { describeError, type Logger } from '../logger.js';
import type { PortalRecord } from '../store/token-store.js';

/**
 * Remembers which `state` nonces were already spent, so a `state` works once. Plug in a shared one
 * (Redis `SET NX PX`, a database table) when callbacks may reach more than one process.
 */
export interface UsedStateStore {
  /**
   * Marks `nonce` as spent until `expiresAt` (unix ms; after that the state is refused as expired
   * anyway, so the entry may be forgotten). Must be atomic: of two concurrent calls with the same
   * nonce, exactly one returns `true`.
   * @returns `true` if the nonce was not spent before (the caller may proceed), `false` if it was.
   */
  markUsed(nonce: string, expiresAt: number): boolean | Promise<boolean>;
}

/** Options of {@link MemoryUsedStateStore}. */
export interface MemoryUsedStateStoreOptions {
  /**
   * Most nonces remembered. Keep it above the number of authorizations started per state lifetime:
   * when full, the oldest nonce is forgotten and its state could be used a second time before it
   * expires.
   * @defaultValue 100000
   */
  readonly max?: number | undefined;
  /** The clock, unix ms; must be the flow's clock. @defaultValue `Date.now` */
  readonly now?: (() => number) | undefined;
}

/**
 * The default {@link UsedStateStore}: an LRU in this process's memory, each entry kept until its
 * state expires. Fine for one process; several processes need a shared store.
 */
export class MemoryUsedStateStore implements UsedStateStore {
  readonly #cache: LRUCache<string, true>;
  readonly #now: () => number;

  constructor(options: MemoryUsedStateStoreOptions = {}) {
    const max = options.max ?? 100_000;
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('options.max must be a positive integer');
    this.#now = options.now ?? Date.now;
    const now = this.#now;
    // lru-cache measures TTLs with its own clock; handing it ours keeps tests that move time honest.
    this.#cache = new LRUCache<string, true>({ max, ttlAutopurge: false, ttlResolution: 0, perf: { now } });
  }

  /** {@inheritDoc UsedStateStore.markUsed} */
  markUsed(nonce: string, expiresAt: number): boolean {
    if (this.#cache.has(nonce)) return false;
    this.#cache.set(nonce, true, { ttl: Math.max(1, expiresAt - this.#now()) });
    return true;
  }
}

/** Options of {@link createAuthorizationFlow}. */
export interface AuthorizationFlowOptions {
  /** The pool whose store, OAuth client, clock and logger the flow uses. */
  readonly pool: LifecyclePool;
  /**
   * The key that signs `state` (HMAC-SHA256): at least 32 bytes (a string counts its UTF-8 bytes).
   * Keep it secret and the same on every process that may receive the callback.
   */
  readonly stateSecret: string | Uint8Array;
  /**
   * How long a `state` (and so an authorization started with it) stays valid, in milliseconds.
   * @defaultValue 600000 (10 minutes)
   */
  readonly stateTtlMs?: number | undefined;
  /**
   * The OAuth hosts a callback's `server_domain` may name; the code is exchanged only there.
   * @defaultValue `['https://oauth.bitrix.info', 'https://oauth.bitrix24.tech']`
   */
  readonly trustedOAuthHosts?: readonly string[] | undefined;
  /** Where spent states are remembered. @defaultValue a new {@link MemoryUsedStateStore} */
  readonly usedStates?: UsedStateStore | undefined;
  /** Where to log. @defaultValue the pool's logger */
  readonly logger?: Logger | undefined;
  /**
   * Called by {@link AuthorizationFlow.callbackHandler} after a successful authorization, before it
   * answers. A throw is logged and does not change the answer.
   */
  readonly onAuthorized?: ((result: AuthorizationResult) => void | Promise<void>) | undefined;
}

/** Options of {@link AuthorizationFlow.authorizeUrl}. */
export interface AuthorizeUrlOptions {
  /**
   * Where {@link AuthorizationFlow.callbackHandler} redirects the browser after success. It travels
   * inside the signed `state`, so only your code chooses it.
   */
  readonly returnTo?: string | undefined;
  /** Any short string your app wants back from the callback (signed, not encrypted: no secrets). */
  readonly data?: string | undefined;
}

/** What a successful callback produced. */
export interface AuthorizationResult {
  /** The portal authorized. */
  readonly memberId: string;
  /** The portal's record as stored now. */
  readonly record: PortalRecord;
  /** {@link AuthorizeUrlOptions.returnTo} from the state, if any. */
  readonly returnTo: string | undefined;
  /** {@link AuthorizeUrlOptions.data} from the state, if any. */
  readonly data: string | undefined;
}

/** The flow {@link createAuthorizationFlow} returns. */
export interface AuthorizationFlow {
  /**
   * Builds the portal's consent URL, `<portal>/oauth/authorize/?client_id=…&state=…`, with a fresh
   * signed `state`. Bitrix24 takes the redirect URI and the scopes from the app's settings.
   * @param portal - a domain such as `acme.bitrix24.com` (optionally `:port`; https is assumed), or
   *   the portal's base URL such as `http://127.0.0.1:8080/portals/acme` (used as is: on-premise
   *   portals on plain http, or the stand-in Bitrix24).
   * @throws TypeError when `portal` is neither, or an option is not a string.
   */
  authorizeUrl(portal: string, options?: AuthorizeUrlOptions): string;
  /**
   * Completes an authorization from the redirect's query (`code, state, domain, member_id, scope,
   * server_domain`): checks the state, exchanges the code at the trusted OAuth host that
   * `server_domain` names, verifies the chain with that host's `app.info` (this app's `client_id`,
   * the redirect's `member_id` and domain), stores it, and tells the pool (`authorized`).
   * @throws {@link InvalidStateError} for a malformed, forged, expired or replayed state (checked
   *   first; nothing else happens).
   * @throws {@link InvalidEventError} when `code`, `member_id` or `server_domain` is missing.
   * @throws {@link VerificationFailedError} for an untrusted `server_domain` or a chain that is not
   *   this app's or this portal's.
   * @throws {@link OAuthRejectedError} when the host refuses the code (`invalid_grant`: spent or
   *   older than 30 s) or the redirect carries an `error`.
   * @throws {@link OAuthUnavailableError} / {@link OAuthInvalidResponseError} when the host fails.
   * @throws {@link StoreError} when the store fails.
   */
  handleCallback(query: QueryInput): Promise<AuthorizationResult>;
  /**
   * The callback as a {@link PlainHandler}, to mount like the lifecycle handler (`toNodeHandler`,
   * `toFetchHandler`) at the app's redirect URI. GET only. Success: 302 to the state's `returnTo`,
   * or 200 `{ ok: true, memberId }`. Failure: 400 `{ error: 'INVALID_STATE', reason }`, 400
   * `{ error, field }`, 400 `{ error: 'OAUTH_REJECTED', oauthError }`, 403, 502, 503 or 500; no
   * token in any answer.
   */
  readonly callbackHandler: PlainHandler;
}

/** The payload signed into a `state`. */
interface StatePayload {
  /** Nonce. */
  readonly n: string;
  /** Expiry, unix ms. */
  readonly e: number;
  /** returnTo. */
  readonly r?: string;
  /** data. */
  readonly d?: string;
}

const DEFAULT_STATE_TTL_MS = 10 * 60 * 1000;
const MAX_STATE_LENGTH = 4096;
const MAX_OPTION_LENGTH = 1024;
const HOST_PATTERN = /^(?=.{1,253}(?::\d{1,5})?$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/i;

/**
 * Creates the authorization-code flow for one app: consent URLs with a signed, expiring,
 * single-use `state`, and the callback that turns the code into a stored, verified chain.
 *
 * Use it when a portal's chain was lost (an install event that never arrived, a revoked chain) or
 * when the app needs a particular user's chain; the user must be able to approve the app on that
 * portal.
 *
 * @example
 * ```ts
 * const flow = createAuthorizationFlow({ pool, stateSecret: process.env.STATE_SECRET! });
 * app.get('/connect', (req, res) => res.redirect(flow.authorizeUrl(String(req.query.domain), { returnTo: '/done' })));
 * app.get('/bitrix24/callback', toNodeHandler(flow.callbackHandler));
 * ```
 */
export function createAuthorizationFlow(options: AuthorizationFlowOptions): AuthorizationFlow {
  const { pool } = options;
  if (pool === null || typeof pool !== 'object' || pool.store === undefined || pool.oauth === undefined) {
    throw new TypeError('options.pool must be a PortalClientPool (store, oauth, logger, now, notify)');
  }
  const secret =
    typeof options.stateSecret === 'string' ? Buffer.from(options.stateSecret, 'utf8') : options.stateSecret instanceof Uint8Array ? Buffer.from(options.stateSecret) : undefined;
  if (secret === undefined || secret.byteLength < 32) {
    throw new TypeError('options.stateSecret must be a string or bytes of at least 32 bytes');
  }
  const stateTtlMs = options.stateTtlMs ?? DEFAULT_STATE_TTL_MS;
  if (!Number.isSafeInteger(stateTtlMs) || stateTtlMs <= 0) throw new TypeError('options.stateTtlMs must be a positive integer');
  const trusted = normalizeTrustedHosts(options.trustedOAuthHosts, 'options.trustedOAuthHosts');
  const now = (): number => pool.now();
  const usedStates = options.usedStates ?? new MemoryUsedStateStore({ now });
  const logger = options.logger ?? pool.logger;

  const sign = (encoded: string): Buffer => createHmac('sha256', secret).update(encoded, 'utf8').digest();

  const issueState = (returnTo: string | undefined, data: string | undefined): string => {
    const payload: StatePayload = {
      n: randomBytes(16).toString('base64url'),
      e: now() + stateTtlMs,
      ...(returnTo === undefined ? {} : { r: returnTo }),
      ...(data === undefined ? {} : { d: data }),
    };
    const encoded = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
    return `${encoded}.${sign(encoded).toString('base64url')}`;
  };

  /** Checks a state in the order malformed, signature, expired, replayed; spends it on success. */
  const consumeState = async (state: string | undefined): Promise<StatePayload> => {
    if (state === undefined || state === '' || state.length > MAX_STATE_LENGTH) throw new InvalidStateError('malformed');
    const parts = state.split('.');
    const [encoded, signature] = parts;
    if (parts.length !== 2 || encoded === undefined || signature === undefined || !/^[A-Za-z0-9_-]+$/.test(encoded + signature)) {
      throw new InvalidStateError('malformed');
    }
    const given = Buffer.from(signature, 'base64url');
    const expected = sign(encoded);
    if (given.byteLength !== expected.byteLength || !timingSafeEqual(given, expected)) throw new InvalidStateError('signature');
    const payload = readPayload(encoded);
    if (payload === undefined) throw new InvalidStateError('malformed');
    if (now() >= payload.e) throw new InvalidStateError('expired');
    if (!(await usedStates.markUsed(payload.n, payload.e))) throw new InvalidStateError('replayed');
    return payload;
  };

  const handleCallback = async (query: QueryInput): Promise<AuthorizationResult> => {
    const payload = await consumeState(queryValue(query, 'state'));
    const oauthError = queryValue(query, 'error');
    if (oauthError !== undefined && oauthError !== '') {
      throw new OAuthRejectedError(/^[A-Za-z0-9_.:-]{1,64}$/.test(oauthError) ? oauthError : 'unknown_error', 400);
    }
    const code = required(query, 'code');
    const memberId = required(query, 'member_id');
    const serverDomain = required(query, 'server_domain');
    const domain = queryValue(query, 'domain');

    const base = trustedBaseForServerDomain(serverDomain, trusted);
    if (base === undefined) {
      logger.warn({ memberId, reason: 'untrusted_server_domain' }, 'Authorization callback refused');
      throw new VerificationFailedError('The callback names an OAuth host that is not trusted', { memberId });
    }
    const token = await pool.oauth.exchangeCode(base, code);
    if (token.refreshToken === undefined) {
      throw new OAuthInvalidResponseError('Code exchange answer has no refresh_token', { memberId });
    }
    if (token.memberId !== undefined && token.memberId !== memberId) {
      logger.warn({ memberId, reason: 'member_id_mismatch' }, 'Authorization callback refused');
      throw new VerificationFailedError('The code was issued for another portal', { memberId });
    }
    const info = await pool.oauth.appInfo(base, token.accessToken);
    const refusal =
      info.clientId !== pool.oauth.clientId
        ? 'client_id_mismatch'
        : info.memberId !== memberId
          ? 'member_id_mismatch'
          : domain !== undefined && info.domain !== undefined && info.domain.toLowerCase() !== domain.toLowerCase()
            ? 'domain_mismatch'
            : undefined;
    if (refusal !== undefined) {
      logger.warn({ memberId, reason: refusal }, 'Authorization callback refused');
      throw new VerificationFailedError('The authorized chain is not this app’s chain for this portal', { memberId });
    }

    let existing: PortalRecord | undefined;
    let record: PortalRecord;
    try {
      existing = await pool.store.get(memberId);
      const portalDomain = info.domain ?? domain ?? existing?.domain;
      if (portalDomain === undefined) throw new InvalidEventError('domain', 'missing', 'Authorization callback lacks domain');
      const auth: PortalAuth = {
        accessToken: token.accessToken,
        refreshToken: token.refreshToken,
        expires: token.expires,
        expiresIn: token.expiresIn,
        scope: token.scope ?? info.scope ?? queryValue(query, 'scope') ?? existing?.scope ?? '',
        domain: portalDomain,
        clientEndpoint: info.clientEndpoint ?? token.clientEndpoint ?? existing?.clientEndpoint ?? `https://${portalDomain}/rest/`,
        serverEndpoint: serverEndpointOf(base),
        status: info.status ?? token.status ?? existing?.status ?? 'L',
        memberId,
        userId: token.userId,
        // A code exchange carries no application_token: the stored one (if any) is kept.
        applicationToken: null,
      };
      record = await pool.store.upsert(portalRecordFromAuth(auth, existing, now()));
    } catch (error) {
      if (error instanceof PortalTokensError) throw error;
      throw new StoreError('The token store failed while storing an authorized chain', { cause: error, memberId });
    }
    try {
      pool.notify({ type: 'authorized', memberId });
    } catch (error) {
      logger.error({ memberId, change: 'authorized', err: describeError(error) }, 'Pool notification failed');
    }
    logger.info({ memberId, reauthorized: existing !== undefined, version: record.version }, 'Portal authorized');
    return { memberId, record, returnTo: payload.r, data: payload.d };
  };

  const answerFailure = (error: unknown): PlainResponse => {
    if (error instanceof InvalidStateError) {
      logger.warn({ reason: error.reason }, 'Authorization callback with an invalid state');
      return jsonResponse(400, { error: error.code, reason: error.reason });
    }
    if (error instanceof InvalidEventError) return jsonResponse(400, { error: error.code, field: error.field });
    if (error instanceof OAuthRejectedError) {
      logger.warn({ memberId: error.memberId, oauthError: error.oauthError }, 'OAuth host refused the authorization code');
      return jsonResponse(400, { error: error.code, oauthError: error.oauthError });
    }
    if (error instanceof VerificationFailedError) return jsonResponse(403, { error: error.code });
    logger.error({ err: describeError(error) }, 'Authorization callback failed');
    if (error instanceof OAuthUnavailableError) return jsonResponse(503, { error: error.code }, { 'retry-after': '5' });
    if (error instanceof OAuthInvalidResponseError) return jsonResponse(502, { error: error.code });
    if (error instanceof StoreError) return jsonResponse(500, { error: error.code });
    return jsonResponse(500, { error: 'INTERNAL_ERROR' });
  };

  const callbackHandler: PlainHandler = async (request) => {
    if (typeof request.method !== 'string' || request.method.toUpperCase() !== 'GET') {
      return jsonResponse(405, { error: 'METHOD_NOT_ALLOWED' }, { allow: 'GET' });
    }
    let result: AuthorizationResult;
    try {
      result = await handleCallback(request.query ?? '');
    } catch (error) {
      return answerFailure(error);
    }
    const hook = options.onAuthorized;
    if (hook !== undefined) {
      try {
        await hook(result);
      } catch (error) {
        logger.error({ memberId: result.memberId, hook: 'onAuthorized', err: describeError(error) }, 'Authorization hook failed');
      }
    }
    if (result.returnTo !== undefined) {
      return { status: 302, headers: { location: result.returnTo, 'cache-control': 'no-store' }, body: undefined };
    }
    return jsonResponse(200, { ok: true, memberId: result.memberId });
  };

  return {
    authorizeUrl(portal, urlOptions = {}) {
      const base = portalBase(portal);
      for (const name of ['returnTo', 'data'] as const) {
        const value = urlOptions[name];
        if (value !== undefined && (typeof value !== 'string' || value.length > MAX_OPTION_LENGTH)) {
          throw new TypeError(`options.${name} must be a string of at most ${MAX_OPTION_LENGTH} characters`);
        }
      }
      const url = new URL(`${base}/oauth/authorize/`);
      url.searchParams.set('client_id', pool.oauth.clientId);
      url.searchParams.set('state', issueState(urlOptions.returnTo, urlOptions.data));
      return url.toString();
    },
    handleCallback,
    callbackHandler: Object.assign(callbackHandler, { maxBodyBytes: 4096 }),
  };
}

/** The portal's base URL (no trailing slash) from a domain or a URL. */
function portalBase(portal: string): string {
  if (typeof portal !== 'string' || portal === '') throw new TypeError('portal must be a domain or an http(s) URL');
  if (/^https?:\/\//i.test(portal)) {
    let url: URL;
    try {
      url = new URL(portal);
    } catch {
      throw new TypeError('portal is not a valid URL');
    }
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
      throw new TypeError('portal URL must not carry credentials, a query or a fragment');
    }
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  }
  if (!HOST_PATTERN.test(portal)) throw new TypeError('portal must be a domain such as acme.bitrix24.com, or an http(s) URL');
  return `https://${portal.toLowerCase()}`;
}

function readPayload(encoded: string): StatePayload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v['n'] !== 'string' || v['n'] === '' || typeof v['e'] !== 'number' || !Number.isFinite(v['e'])) return undefined;
  if ((v['r'] !== undefined && typeof v['r'] !== 'string') || (v['d'] !== undefined && typeof v['d'] !== 'string')) return undefined;
  return {
    n: v['n'],
    e: v['e'],
    ...(typeof v['r'] === 'string' ? { r: v['r'] } : {}),
    ...(typeof v['d'] === 'string' ? { d: v['d'] } : {}),
  };
}

function required(query: QueryInput, name: string): string {
  const value = queryValue(query, name);
  if (value === undefined || value === '') {
    throw new InvalidEventError(name, 'missing', `Authorization callback lacks ${name}`, { code: ErrorCode.InvalidEvent });
  }
  return value;
}
