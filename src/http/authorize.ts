// The authorization-code flow: how an app re-obtains a portal's chain it lost (or takes a chosen user's).
// A signed, expiring, single-use `state` out; the code exchanged and verified at a trusted OAuth host back.

import { assertContext, type PortalTokensContext } from '../context.js';
import {
  ErrorCode,
  InvalidEventError,
  InvalidStateError,
  OAuthInvalidResponseError,
  OAuthRejectedError,
  PortalTokensError,
  StoreError,
  VerificationFailedError,
} from '../errors.js';
import { describeError, type Logger } from '../logger.js';
import { observedLogger } from '../logger.js';
import { queryValue, type PlainHandler, type QueryInput } from '../plain.js';
import { sanitizeOAuthError } from '../protocol/oauth-errors.js';
import { normalizeTrustedHosts, trustedBaseForServerDomain } from '../protocol/oauth-hosts.js';
import { portalRestEndpoint } from '../protocol/portal.js';
import { userChain, type ChainId, type PortalRecord } from '../store/token-store.js';
import { createCallbackHandler, type AuthorizationResult } from './callback.js';

export type { AuthorizationResult } from './callback.js';
import { storeAuthorized } from '../chains/authorize.js';
import { createStateSigner, DEFAULT_STATE_TTL_MS, MemoryUsedStateStore, type UsedStateStore } from './state.js';
import { verifyChain, type Refusal } from '../oauth/verify.js';

export { MemoryUsedStateStore, type MemoryUsedStateStoreOptions, type UsedStateStore } from './state.js';

/** Options of {@link createAuthorizationFlow}. */
export interface AuthorizationFlowOptions {
  /**
   * Your `PortalClientPool` (or any `PortalTokensContext`): the flow uses its store, OAuth
   * client, clock and logger, and tells it about each authorization.
   */
  readonly pool: PortalTokensContext;
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
   * Called by `AuthorizationFlow.callbackHandler` after a successful authorization, before it
   * answers. A throw is logged and does not change the answer.
   */
  readonly onAuthorized?: ((result: AuthorizationResult) => void | Promise<void>) | undefined;
}

/**
 * Options of {@link AuthorizationFlow.authorizeUrl}.
 * @inline
 */
export interface AuthorizeUrlOptions {
  /**
   * Where `AuthorizationFlow.callbackHandler` redirects the browser after success. It travels
   * inside the signed `state`, so only your code chooses it.
   */
  readonly returnTo?: string | undefined;
  /** Any short string your app wants back from the callback (signed, not encrypted: no secrets). */
  readonly data?: string | undefined;
}

/**
 * The flow {@link createAuthorizationFlow} returns.
 * @inline
 */
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
   * The callback as a `PlainHandler`, to mount like the lifecycle handler (`toNodeHandler`,
   * `toFetchHandler`) at the app's redirect URI. GET only. Success: 302 to the state's `returnTo`,
   * or 200 `{ ok: true, memberId }`. Failure: 400 `{ error: 'INVALID_STATE', reason }`, 400
   * `{ error, field }`, 400 `{ error: 'OAUTH_REJECTED', oauthError }`, 403, 502, 503 or 500; no
   * token in any answer.
   */
  readonly callbackHandler: PlainHandler;
}

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
  assertContext(pool, 'options.pool');
  const secret =
    typeof options.stateSecret === 'string' ? Buffer.from(options.stateSecret, 'utf8') : options.stateSecret instanceof Uint8Array ? Buffer.from(options.stateSecret) : undefined;
  if (secret === undefined || secret.byteLength < 32) {
    throw new TypeError('options.stateSecret must be a string or bytes of at least 32 bytes');
  }
  const stateTtlMs = options.stateTtlMs ?? DEFAULT_STATE_TTL_MS;
  if (!Number.isSafeInteger(stateTtlMs) || stateTtlMs <= 0) throw new TypeError('options.stateTtlMs must be a positive integer');
  const trusted = normalizeTrustedHosts(options.trustedOAuthHosts, 'options.trustedOAuthHosts');
  const now = (): number => pool.clock.now();
  const usedStates: UsedStateStore = options.usedStates ?? new MemoryUsedStateStore({ now });
  const logger = observedLogger(options.logger ?? pool.logger);
  const states = createStateSigner(secret, stateTtlMs, now, usedStates);

  const refuse = (memberId: string, reason: Refusal, message: string): never => {
    logger.warn({ memberId, reason }, 'Authorization callback refused');
    throw new VerificationFailedError(message, { memberId });
  };

  const handleCallback = async (query: QueryInput): Promise<AuthorizationResult> => {
    const payload = await states.consume(queryValue(query, 'state'));
    const oauthError = queryValue(query, 'error');
    if (oauthError !== undefined && oauthError !== '') {
      throw new OAuthRejectedError(sanitizeOAuthError(oauthError), 400);
    }
    const code = required(query, 'code');
    const memberId = required(query, 'member_id');
    const serverDomain = required(query, 'server_domain');
    const domain = queryValue(query, 'domain');

    const base = trustedBaseForServerDomain(serverDomain, trusted);
    if (base === undefined) return refuse(memberId, 'untrusted_server_domain', 'The callback names an OAuth host that is not trusted');
    const token = await pool.oauth.exchangeCode(base, code);
    if (token.refreshToken === undefined) {
      throw new OAuthInvalidResponseError('Code exchange answer has no refresh_token', { memberId });
    }
    if (token.memberId !== undefined && token.memberId !== memberId) {
      return refuse(memberId, 'member_id_mismatch', 'The code was issued for another portal');
    }
    const { info, refusal } = await verifyChain(pool.oauth, base, token.accessToken, { memberId, domain });
    if (refusal !== undefined) return refuse(memberId, refusal, 'The authorized chain is not this app’s chain for this portal');

    const trustedRoot = info.clientEndpoint ?? token.clientEndpoint;
    if (payload.p !== undefined && !issuedFor(payload.p, info.domain, trustedRoot)) {
      // A state issued for portal A completes an authorization of portal B: nothing is stored.
      logger.warn({ memberId, reason: 'state_portal_mismatch' }, 'Authorization callback refused');
      throw new InvalidStateError('portal', { memberId });
    }
    // Only a portal administrator's chain may become the portal's; anyone else's is kept as theirs.
    const restRoot = trustedRoot ?? portalRestEndpoint(info.domain ?? domain ?? '');
    const admin = await pool.oauth.userAdmin(restRoot, token.accessToken).catch(() => false);
    const chain: ChainId = admin || token.userId === null ? 'portal' : userChain(token.userId);
    if (!admin && chain === 'portal') return refuse(memberId, 'not_admin_live_chain', 'Only a portal administrator can authorize the portal');

    let stored: { existing: PortalRecord | undefined; record: PortalRecord };
    try {
      stored = await storeAuthorized(pool, {
        memberId,
        chain,
        tokens: token,
        oauthBase: base,
        info,
        claimed: { domain, scope: queryValue(query, 'scope') },
        now: now(),
      });
    } catch (error) {
      if (error instanceof PortalTokensError) throw error;
      throw new StoreError('The token store failed while storing an authorized chain', { cause: error, memberId });
    }
    const { existing, record } = stored;
    try {
      pool.notify({ type: 'authorized', memberId });
    } catch (error) {
      logger.error({ memberId, change: 'authorized', err: describeError(error) }, 'Pool notification failed');
    }
    logger.info({ memberId, chain, reauthorized: existing !== undefined, version: record.version }, 'Portal authorized');
    return { memberId, chain, record, returnTo: payload.r, data: payload.d };
  };

  const callbackHandler = createCallbackHandler(handleCallback, options.onAuthorized, logger);

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
      url.searchParams.set('state', states.issue(urlOptions.returnTo, urlOptions.data, base));
      return url.toString();
    },
    handleCallback,
    callbackHandler,
  };
}

const MAX_OPTION_LENGTH = 1024;

/**
 * Whether the portal the OAuth host names (its domain, or its trusted REST root) is the one the
 * state was issued for (`base`: `https://<domain>` or a base URL such as the stand-in's).
 */
function issuedFor(base: string, domain: string | undefined, restRoot: string | undefined): boolean {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return false;
  }
  if (domain !== undefined && url.host.toLowerCase() === domain.toLowerCase()) return true;
  return restRoot !== undefined && restRoot.toLowerCase().startsWith(`${base.toLowerCase()}/`);
}
const HOST_PATTERN = /^(?=.{1,253}(?::\d{1,5})?$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/i;

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

function required(query: QueryInput, name: string): string {
  const value = queryValue(query, name);
  if (value === undefined || value === '') {
    throw new InvalidEventError(name, 'missing', `Authorization callback lacks ${name}`, { code: ErrorCode.InvalidEvent });
  }
  return value;
}
