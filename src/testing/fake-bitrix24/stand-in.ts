// The public face of the stand-in Bitrix24: one class whose methods delegate to the ledger, the
// payload builders and the HTTP server in the sibling modules.

import type { Server } from 'node:http';
import type { B24OAuthParams } from '@bitrix24/b24jssdk';
import { appPageRequest, authorize } from './app-page.js';
import { Ledger } from './ledger.js';
import { announceSecret } from './minted.js';
import {
  checkStartOptions,
  type AppPageRequestOptions,
  type AuthorizeOptions,
  type ExpireOptions,
  type FakeBitrix24Options,
  type FakePortalOptions,
  type FakeUserOptions,
  type InstallEventOptions,
  type IssueChainOptions,
  type RestEventOptions,
  type UninstallEventOptions,
  type UpdateEventOptions,
} from './options.js';
import { installEvent, restEvent, uninstallEvent, updateEvent } from './payloads.js';
import { closeServer, listenOnLoopback, serve } from './router.js';
import type { OperatingExhaustion } from './operating-limit.js';
import { Runtime } from './runtime.js';
import { emptyStats, type FakeBitrix24Stats } from './stats.js';
import {
  DEFAULT_FAKE_CLIENT_ID,
  DEFAULT_FAKE_CLIENT_SECRET,
  type FakeAppPageRequest,
  type FakeAuthorization,
  type FakeChain,
  type FakeLifecycleEvent,
  type FakePortal,
  type FakeRestEvent,
  type FakeRestMethod,
  type FakeTokenStatus,
  type FakeUninstallEvent,
  type OAuthFailure,
} from './types.js';
import { assertUserId } from './util.js';
import type { RestRootRules } from '../../guard/rest-roots.js';

/** What {@link FakeBitrix24.trust} holds: the pool options that trust one stand-in. */
export interface StandInTrust {
  /** The stand-in's OAuth host. */
  readonly trustedOAuthHosts: readonly string[];
  /** Its REST roots: plain http on loopback, every portal under the stand-in's own origin. */
  readonly restRoots: RestRootRules;
}

/**
 * The pool options that trust the stand-in at `url` (its {@link FakeBitrix24.url}): for a worker
 * process that knows the stand-in only by its address. In the process that started it, use
 * {@link FakeBitrix24.trust}.
 */
export function standInTrust(url: string): StandInTrust {
  const origin = new URL(url).origin;
  return Object.freeze({
    trustedOAuthHosts: Object.freeze([origin]),
    restRoots: Object.freeze({ allowHttp: true, allowPrivateAddresses: true, allowHost: (root: URL) => root.origin === origin }),
  });
}

/**
 * A stand-in Bitrix24 on `127.0.0.1`: the OAuth server (`/oauth/token/`, `/rest/app.info`) and any
 * number of portals (`/portals/<domain>/rest/…`) on one ephemeral port.
 *
 * It enforces what the real service does: access tokens expire (by an injectable clock, or on
 * demand); a refresh token is single-use and its refresh kills the access token issued with it;
 * client credentials are checked; uninstalled and revoked portals refuse every chain; codes live
 * 30 seconds; a renamed portal's old address answers 302. A portal has users, some of them
 * administrators; every chain acts as its own user (`profile`, `user.admin`). Every decision is
 * counted in {@link FakeBitrix24.stats}.
 *
 * @example
 * ```ts
 * const b24 = await FakeBitrix24.start();
 * const portal = b24.addPortal();
 * const { payload } = b24.installEvent(portal.memberId);
 * // ... feed `payload` (or `form`) to the handler under test, then:
 * expect(b24.stats.refreshReuse).toBe(0);
 * await b24.close();
 * ```
 */
export class FakeBitrix24 {
  /** `http://127.0.0.1:<port>`: the OAuth host and the home of every portal. */
  readonly url: string;
  /** The OAuth host; the same as {@link FakeBitrix24.url}. */
  readonly oauthUrl: string;
  /** `${url}/rest/`: what goes into `server_endpoint`. */
  readonly serverEndpoint: string;
  /** The app's `client_id`. */
  readonly clientId: string;
  /** The app's `client_secret`. */
  readonly clientSecret: string;
  /**
   * The pool options that trust this stand-in, to spread into `PortalClientPool`'s options:
   * `trustedOAuthHosts` (its OAuth host) and `restRoots` (its REST roots: plain http on 127.0.0.1,
   * every portal under its own address). Without them a pool sends no token to the stand-in.
   * @example
   * ```ts
   * const pool = new PortalClientPool({ store, clientId: b24.clientId, clientSecret: b24.clientSecret, ...b24.trust });
   * ```
   */
  readonly trust: StandInTrust;
  /** Live counters; {@link FakeBitrix24.resetStats} zeroes them in place. */
  readonly stats: FakeBitrix24Stats = emptyStats();

  readonly #server: Server;
  readonly #ledger: Ledger;
  readonly #runtime = new Runtime();

  private constructor(server: Server, port: number, options: FakeBitrix24Options) {
    this.#server = server;
    this.url = `http://127.0.0.1:${port}`;
    this.oauthUrl = this.url;
    this.serverEndpoint = `${this.url}/rest/`;
    this.trust = standInTrust(this.url);
    this.clientId = options.clientId ?? DEFAULT_FAKE_CLIENT_ID;
    this.clientSecret = options.clientSecret ?? DEFAULT_FAKE_CLIENT_SECRET;
    announceSecret('client_secret', this.clientSecret);
    this.#ledger = new Ledger({
      url: this.url,
      serverEndpoint: this.serverEndpoint,
      clientId: this.clientId,
      clientSecret: this.clientSecret,
      now: options.now ?? Date.now,
      accessTtlSec: options.accessTokenTtlSec ?? 3600,
      codeTtlSec: options.codeTtlSec ?? 30,
      redirectUri: options.redirectUri,
    });
    serve(server, { ledger: this.#ledger, stats: this.stats, runtime: this.#runtime });
  }

  /** Starts a stand-in on an ephemeral loopback port. Close it with {@link FakeBitrix24.close}. */
  static async start(options: FakeBitrix24Options = {}): Promise<FakeBitrix24> {
    checkStartOptions(options);
    const { server, port } = await listenOnLoopback();
    return new FakeBitrix24(server, port, options);
  }

  // ---------------------------------------------------------------------------------------------
  // Portals, users and chains

  /**
   * Adds a portal with the app installed. Its installer (`options.userId`, default 1) is its
   * administrator unless `options.admins` says otherwise.
   */
  addPortal(options: FakePortalOptions = {}): FakePortal {
    return this.#ledger.addPortal(options);
  }

  /** The portal with this `member_id`, if any. */
  portal(memberId: string): FakePortal | undefined {
    return this.#ledger.view(memberId);
  }

  /**
   * Adds a user to a portal or changes one: grant or take administrator rights, set the names.
   * Chains already issued to the user act with the new rights from the next call on.
   */
  setUser(memberId: string, userId: number, options: FakeUserOptions = {}): void {
    this.#ledger.setUser(memberId, userId, options);
  }

  /** Mints an independent chain of a portal for a user (as an install, update or app page would). */
  issueChain(memberId: string, options: IssueChainOptions = {}): FakeChain {
    const state = this.#ledger.state(memberId);
    const userId = options.userId ?? state.adminUserId;
    assertUserId(userId, 'options.userId');
    return this.#ledger.mint(state, userId);
  }

  /**
   * The parameters of `new B24OAuth(params, secret)` for a chain of a portal, so a test can build
   * the SDK's client directly against the stand-in.
   */
  oauthParams(memberId: string, chain: FakeChain): B24OAuthParams {
    const state = this.#ledger.state(memberId);
    return {
      applicationToken: state.applicationToken,
      userId: chain.userId,
      memberId,
      accessToken: chain.accessToken,
      refreshToken: chain.refreshToken,
      expires: chain.expires,
      expiresIn: chain.expiresIn,
      scope: state.scope,
      domain: state.domain,
      clientEndpoint: this.#ledger.clientEndpoint(state),
      serverEndpoint: this.serverEndpoint,
      status: state.status as B24OAuthParams['status'],
    };
  }

  /** How the stand-in judges an access or refresh token right now. */
  tokenStatus(token: string): FakeTokenStatus {
    return this.#ledger.tokenStatus(token);
  }

  // ---------------------------------------------------------------------------------------------
  // Bodies that reach the app

  /** An ONAPPINSTALL for the portal with a freshly minted chain; reinstalls an uninstalled portal. */
  installEvent(memberId: string, options: InstallEventOptions = {}): FakeLifecycleEvent {
    return installEvent(this.#ledger, memberId, options);
  }

  /** An ONAPPUPDATE with a freshly minted chain; `options.applicationToken` rotates the portal's. */
  updateEvent(memberId: string, options: UpdateEventOptions = {}): FakeLifecycleEvent {
    return updateEvent(this.#ledger, memberId, options);
  }

  /**
   * An ONAPPUNINSTALL (identity and `application_token`, no tokens). The app is uninstalled at
   * once: REST answers 401 `ERROR_OAUTH` for the portal's tokens, refresh answers `NOT_INSTALLED`,
   * and after a reinstall the old chains stay dead (`invalid_grant`).
   */
  uninstallEvent(memberId: string, options: UninstallEventOptions = {}): FakeUninstallEvent {
    return uninstallEvent(this.#ledger, memberId, options);
  }

  /**
   * The body Bitrix24 posts to a handler bound with `event.bind` (such as `ONCRMDEALADD`): `event`
   * (upper case), `event_handler_id`, `data` nested as given with string leaves, `ts`, and an `auth`
   * block with a fresh chain of the user who fired the event (`options.userId`) plus the portal's
   * identity and `application_token`. The portal's own chain is untouched.
   *
   * @example
   * ```ts
   * const { form } = b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: 42 } }, { userId: 7 });
   * await fetch(`${app}/bitrix24/events`, { method: 'POST', body: form,
   *   headers: { 'content-type': 'application/x-www-form-urlencoded' } });
   * ```
   */
  restEvent(memberId: string, event: string, data: Readonly<Record<string, unknown>> = {}, options: RestEventOptions = {}): FakeRestEvent {
    return restEvent(this.#ledger, memberId, event, data, options);
  }

  /** The app-page (iframe) request of a user opening the app: a new chain for that user. */
  appPageRequest(memberId: string, options: AppPageRequestOptions = {}): FakeAppPageRequest {
    return appPageRequest(this.#ledger, memberId, options);
  }

  /**
   * Simulates a user consenting at `/oauth/authorize/`: a single-use code bound to `client_id`,
   * valid for `codeTtlSec`, whose exchange gives a chain of that user.
   */
  authorize(memberId: string, options: AuthorizeOptions = {}): FakeAuthorization {
    const state = this.#ledger.state(memberId);
    const userId = options.userId ?? state.adminUserId;
    assertUserId(userId, 'options.userId');
    return authorize(this.#ledger, state, userId, options.state);
  }

  // ---------------------------------------------------------------------------------------------
  // Server-side interventions

  /**
   * Makes current access tokens (of one portal, or all; of one user with `options.userId`) answer
   * 401 `expired_token` from now on.
   */
  expireAccessTokens(memberId?: string, options: ExpireOptions = {}): void {
    if (memberId !== undefined) this.#ledger.state(memberId);
    if (options.userId !== undefined) assertUserId(options.userId, 'options.userId');
    this.#ledger.expire(memberId, options.userId);
  }

  /** Makes one access token answer 401 `expired_token` from now on; unknown tokens are ignored. */
  expireAccessToken(accessToken: string): void {
    const record = this.#ledger.access(accessToken);
    if (record !== undefined) record.forcedExpired = true;
  }

  /**
   * Kills every existing chain of a portal: REST answers 401 `invalid_token`, refresh answers
   * `{ error }`. Chains minted later (a reinstall) work.
   */
  revoke(memberId: string, error = 'invalid_grant'): void {
    this.#ledger.state(memberId);
    this.#ledger.killChains(memberId, error);
  }

  /** Renames a portal: its old REST root answers 302 to the new one. */
  rename(memberId: string, newDomain: string): void {
    this.#ledger.rename(memberId, newDomain);
  }

  /**
   * Injects transient failures of `/oauth/token/` for the next `times` requests (or until called
   * with `null`): an HTTP status, a request that never completes, or a connection reset.
   */
  failOAuth(failure: OAuthFailure | null, times = Number.POSITIVE_INFINITY): void {
    this.#runtime.setFailure(failure, times);
  }

  /** Delays every `/oauth/token/` answer by real milliseconds (0 to stop), so refreshes overlap. */
  setOAuthDelay(ms: number): void {
    if (!(ms >= 0)) throw new TypeError('ms must be a non-negative number');
    this.#runtime.oauthDelayMs = ms;
  }

  /**
   * Delays every portal REST answer by real milliseconds (0 to stop). The token is judged when the
   * request arrives, as on the real service, so a slow request can outlive its token.
   */
  setRestDelay(ms: number): void {
    if (!(ms >= 0)) throw new TypeError('ms must be a non-negative number');
    this.#runtime.restDelayMs = ms;
  }

  /**
   * Enforces Bitrix24's documented request limit on every portal's REST (a leaky bucket counted per
   * portal: each request adds 1, the counter drains `drainPerSec` a second, a request that would take
   * it past `burst` is answered 503 `QUERY_LIMIT_EXCEEDED` and adds nothing); `null` turns it off.
   * Counted in `stats.rest.queryLimitExceeded`. Uses the real clock.
   * @defaultValue off; when called without options `{ drainPerSec: 2, burst: 50 }` (Enterprise: 5 and 250)
   */
  limitRequests(options: { drainPerSec?: number; burst?: number } | null = {}): void {
    this.#runtime.setLimit(options);
  }

  /**
   * Sets a portal's bucket counter as if another app had just made `level` requests (default: full),
   * so the next requests of any app meet a full bucket. Needs {@link FakeBitrix24.limitRequests}.
   */
  fillBucket(memberId: string, level?: number): void {
    this.#runtime.fillBucket(memberId, level);
  }

  /** Makes every answer of `method` report `seconds` of `time.operating` (0 or `null` to stop). */
  setOperatingTime(method: string, seconds: number | null): void {
    this.#runtime.setOperatingTime(method, seconds);
  }

  /**
   * Spends `method`'s operating time on a portal, as if apps had used its 480 s: every request of it
   * is answered 429 `OPERATION_TIME_LIMIT` for `seconds` (default 600, real clock; 0 frees it), the
   * body's `time.operating_reset_at` saying when it is free (`resetAtInAnswer: false` leaves it out).
   * Counted in `stats.rest.operationTimeLimit`.
   */
  exhaustOperatingTime(memberId: string, method: string, options?: OperatingExhaustion): void {
    this.#ledger.state(memberId);
    this.#runtime.operatingBlocks.exhaust(memberId, method, options);
  }

  /** A portal's bucket counter now (0 when limits are off). */
  bucketLevel(memberId: string): number {
    return this.#runtime.limit === null ? 0 : this.#runtime.bucket(memberId).level;
  }

  /** Adds (or replaces) a portal REST method, in v2 and v3 alike. Built-in methods can be shadowed. */
  onMethod(method: string, handler: FakeRestMethod): void {
    this.#runtime.methods.set(method.toLowerCase(), handler);
  }

  /** Zeroes every counter in place (references to {@link FakeBitrix24.stats} stay live). */
  resetStats(): void {
    Object.assign(this.stats, emptyStats());
  }

  /** Closes the server and every open connection, hanging requests included. */
  async close(): Promise<void> {
    if (this.#runtime.closed) return;
    this.#runtime.close();
    await closeServer(this.#server);
  }
}
