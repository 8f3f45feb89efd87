// A stand-in Bitrix24 for tests: the OAuth server and every portal's REST API on one loopback port.
// It enforces what the real service does to tokens (expiry, single-use refresh, uninstall) and counts it.

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { B24OAuthParams } from '@bitrix24/b24jssdk';
import { decodePhpForm, encodePhpForm } from './fake-bitrix24/php-form.js';

/** Options of {@link FakeBitrix24.start}. */
export interface FakeBitrix24Options {
  /**
   * The app's `client_id`; token requests with any other are refused with `invalid_client`.
   * @defaultValue `'local.0000000000test.00000000'`
   */
  clientId?: string;
  /**
   * The app's `client_secret`; token requests with any other are refused with `invalid_client`.
   * @defaultValue {@link DEFAULT_FAKE_CLIENT_SECRET}
   */
  clientSecret?: string;
  /**
   * Lifetime of every access token minted, in seconds.
   * @defaultValue `3600`
   */
  accessTokenTtlSec?: number;
  /**
   * Lifetime of an authorization code, in seconds (Bitrix24's is 30).
   * @defaultValue `30`
   */
  codeTtlSec?: number;
  /**
   * The app's redirect URI for the authorization-code flow. Without it, `GET /oauth/authorize/`
   * answers 400 and {@link FakeAuthorization.redirectUrl} is `null`.
   */
  redirectUri?: string;
  /**
   * The clock, in unix milliseconds. Every expiry is judged against it, so a test can jump time
   * instead of sleeping.
   * @defaultValue `Date.now`
   */
  now?: () => number;
}

/** Options of {@link FakeBitrix24.addPortal}. */
export interface FakePortalOptions {
  /**
   * The portal's `member_id`.
   * @defaultValue 32 random hex digits
   */
  memberId?: string;
  /**
   * The portal's host name; it only names the portal inside the stand-in's URLs.
   * @defaultValue `portal<N>.bitrix24.test`
   */
  domain?: string;
  /**
   * The app's status letter on this portal.
   * @defaultValue `'L'`
   */
  status?: string;
  /**
   * The app's scopes, comma-separated.
   * @defaultValue `'crm,user_brief'`
   */
  scope?: string;
  /**
   * The portal administrator who installed the app; install events and authorizations act as them.
   * @defaultValue `1`
   */
  userId?: number;
  /**
   * The administrator's first name, as `profile` reports it.
   * @defaultValue `'Admin'`
   */
  userName?: string;
  /**
   * The installed app version (`data[VERSION]`, `app.info` `VERSION`).
   * @defaultValue `1`
   */
  appVersion?: number;
  /**
   * The per-portal `application_token`.
   * @defaultValue 32 random hex digits
   */
  applicationToken?: string;
}

/** An independent token chain minted by the stand-in. */
export interface FakeChain {
  /** The access token. */
  readonly accessToken: string;
  /** The refresh token issued with it. */
  readonly refreshToken: string;
  /** Absolute expiry of the access token, unix seconds (by the stand-in's clock). */
  readonly expires: number;
  /** Lifetime of the access token, seconds. */
  readonly expiresIn: number;
  /** The portal the chain belongs to. */
  readonly memberId: string;
  /** The user the chain acts as. */
  readonly userId: number;
}

/** Options of {@link FakeBitrix24.issueChain}. */
export interface IssueChainOptions {
  /**
   * The user the chain acts as; unknown ids become ordinary (non-admin) users of the portal.
   * @defaultValue the portal's administrator
   */
  userId?: number;
}

/**
 * A lifecycle event body as Bitrix24 sends it, decoded: every leaf is a string. A type alias (not an
 * interface) so it can be passed wherever a `Record<string, unknown>` is expected.
 */
export type FakeEventPayload = {
  /** `ONAPPINSTALL`, `ONAPPUPDATE` or `ONAPPUNINSTALL`. */
  readonly event: string;
  /** The event handler's id. */
  readonly event_handler_id: string;
  /** The event's `data` block. */
  readonly data: Readonly<Record<string, string>>;
  /** When the event was queued, unix seconds. */
  readonly ts: string;
  /** The `auth` block: a full chain for install/update, identity only for uninstall. */
  readonly auth: Readonly<Record<string, string>>;
};

/** An ONAPPUNINSTALL body in every form a handler may receive it. */
export interface FakeUninstallEvent {
  /** The decoded body (nested object, string leaves). */
  readonly payload: FakeEventPayload;
  /** The `application/x-www-form-urlencoded` body with PHP bracket keys, as Bitrix24 sends it. */
  readonly form: string;
  /** The same body as JSON. */
  readonly json: string;
}

/** An ONAPPINSTALL or ONAPPUPDATE body, plus the fresh chain it carries. */
export interface FakeLifecycleEvent extends FakeUninstallEvent {
  /** The chain minted for this event. */
  readonly chain: FakeChain;
}

/** Options of {@link FakeBitrix24.installEvent}. */
export interface InstallEventOptions {
  /**
   * The installing user.
   * @defaultValue the portal's administrator
   */
  userId?: number;
  /**
   * `data[VERSION]`; also becomes the portal's installed version.
   * @defaultValue the portal's current version
   */
  version?: number;
  /**
   * `data[LANGUAGE_ID]`.
   * @defaultValue `'en'`
   */
  languageId?: string;
  /**
   * `event_handler_id`.
   * @defaultValue `1`
   */
  handlerId?: number;
  /**
   * `data[ACTIVE]` = `Y`.
   * @defaultValue `true`
   */
  active?: boolean;
  /**
   * `data[INSTALLED]` = `Y` (false while an install wizard runs).
   * @defaultValue `true`
   */
  installed?: boolean;
  /**
   * Names of `auth` fields to leave out (such as `expires` or `user_id`), to mimic the older
   * payloads that lack them.
   * @defaultValue `[]`
   */
  omitAuthFields?: readonly string[];
}

/** Options of {@link FakeBitrix24.updateEvent}. */
export interface UpdateEventOptions {
  /**
   * The user whose chain the event carries.
   * @defaultValue the portal's administrator
   */
  userId?: number;
  /**
   * `data[VERSION]`; also becomes the portal's installed version.
   * @defaultValue the portal's current version plus one
   */
  version?: number;
  /**
   * `data[PREVIOUS_VERSION]`.
   * @defaultValue the portal's current version
   */
  previousVersion?: number;
  /**
   * `data[LANGUAGE_ID]`.
   * @defaultValue `'en'`
   */
  languageId?: string;
  /**
   * `event_handler_id`.
   * @defaultValue `1`
   */
  handlerId?: number;
  /**
   * A new `application_token` for the portal: the event carries it and later events use it.
   * @defaultValue the current one (no rotation)
   */
  applicationToken?: string;
  /**
   * Names of `auth` fields to leave out.
   * @defaultValue `[]`
   */
  omitAuthFields?: readonly string[];
}

/** Options of {@link FakeBitrix24.uninstallEvent}. */
export interface UninstallEventOptions {
  /**
   * `data[CLEAN]` = 1: the administrator asked to delete the app's data.
   * @defaultValue `false`
   */
  clean?: boolean;
  /**
   * `data[LANGUAGE_ID]`.
   * @defaultValue `'en'`
   */
  languageId?: string;
  /**
   * `event_handler_id`.
   * @defaultValue `2`
   */
  handlerId?: number;
}

/** Options of {@link FakeBitrix24.appPageRequest}. */
export interface AppPageRequestOptions {
  /**
   * The user who opened the app (each render mints a chain for them).
   * @defaultValue the portal's administrator
   */
  userId?: number;
  /**
   * `PLACEMENT`.
   * @defaultValue `'DEFAULT'`
   */
  placement?: string;
  /**
   * `PLACEMENT_OPTIONS`, sent as a JSON string; pass the string `'undefined'` to mimic the portals
   * that send that literal.
   * @defaultValue `{}`
   */
  placementOptions?: unknown;
  /**
   * `LANG` in the query.
   * @defaultValue `'en'`
   */
  lang?: string;
  /**
   * Whether to add the newer fields `SERVER_ENDPOINT`, `APPLICATION_TOKEN`, `APPLICATION_SCOPE`.
   * @defaultValue `true`
   */
  newerFields?: boolean;
}

/** The app-page (iframe) request a portal sends when a user opens the app. */
export interface FakeAppPageRequest {
  /** The query string, without `?`: `DOMAIN`, `PROTOCOL`, `LANG`, `APP_SID`. */
  readonly query: string;
  /** The form body: `AUTH_ID`, `AUTH_EXPIRES` (seconds of lifetime), `REFRESH_ID`, `member_id`, …. */
  readonly body: string;
  /** The chain minted for the user. */
  readonly chain: FakeChain;
}

/**
 * A transient failure of `/oauth/token/`: an HTTP status (with an HTML body, like a proxy's error
 * page), a request that never gets an answer, or a connection reset.
 */
export type OAuthFailure =
  | {
      /** The HTTP status to answer (400-599). */
      readonly status: number;
    }
  | {
      /** Never answer; {@link FakeBitrix24.close} tears the connection down. */
      readonly mode: 'hang';
    }
  | {
      /** Destroy the connection without an answer. */
      readonly mode: 'reset';
    };

/** Options of {@link FakeBitrix24.authorize}. */
export interface AuthorizeOptions {
  /**
   * The consenting user.
   * @defaultValue the portal's administrator
   */
  userId?: number;
  /** The `state` to echo in the redirect. */
  state?: string;
}

/** The outcome of a user consenting at `/oauth/authorize/`. */
export interface FakeAuthorization {
  /** The single-use authorization code, valid for `codeTtlSec`. */
  readonly code: string;
  /**
   * Where Bitrix24 sends the browser: the redirect URI with `code, state, domain, member_id, scope,
   * server_domain`; `null` when no `redirectUri` was configured.
   */
  readonly redirectUrl: string | null;
}

/** How the stand-in judges a token right now. */
export type FakeTokenStatus = 'live' | 'expired' | 'dead' | 'spent' | 'unknown';

/** Counters of {@link FakeBitrix24.stats}, updated before each response is written. */
export interface FakeBitrix24Stats {
  /** `grant_type=refresh_token` requests that arrived, injected failures included. */
  refreshRequests: number;
  /** Refresh requests answered with a new pair. */
  refreshSuccess: number;
  /** Refresh requests that presented an already spent refresh token (the chain branched). */
  refreshReuse: number;
  /** Refused refresh requests by `error` code (`invalid_grant`, `invalid_client`, `NOT_INSTALLED`, …). */
  refreshErrors: Record<string, number>;
  /** `grant_type=authorization_code` requests that arrived, injected failures included. */
  codeExchanges: number;
  /** Code exchanges answered with a new pair. */
  codeSuccess: number;
  /** Refused code exchanges by `error` code. */
  codeErrors: Record<string, number>;
  /** Token requests with a missing or unknown `grant_type`. */
  badTokenRequests: number;
  /** Token requests answered with an injected failure (see {@link FakeBitrix24.failOAuth}). */
  oauthFailuresInjected: number;
  /** Calls of the OAuth host's `app.info`. */
  appInfoCalls: number;
  /** Portal REST answers by kind. */
  rest: {
    /** Successful answers. */
    ok: number;
    /** 401 `expired_token`. */
    expiredToken: number;
    /** 401 `invalid_token`. */
    invalidToken: number;
    /** Every other error (`NO_AUTH_FOUND`, `ERROR_OAUTH`, unknown method, unknown portal, …). */
    otherErrors: number;
    /** 302 answers of a renamed portal's old address. */
    redirects: number;
  };
  /** Portal REST requests by method name (lower case, v2 and v3 together), whatever the answer. */
  restByMethod: Record<string, number>;
}

/** What a custom REST method (see {@link FakeBitrix24.onMethod}) receives. */
export interface FakeRestContext {
  /** The portal called. */
  readonly portal: FakePortal;
  /** The user the access token acts as. */
  readonly userId: number;
  /** The request's parameters (query, JSON or form body merged), without `auth`. */
  readonly params: Readonly<Record<string, unknown>>;
  /** Which REST generation was called. */
  readonly version: 'v2' | 'v3';
}

/** What a custom REST method answers: a result, or an error with its HTTP status. */
export type FakeRestOutcome =
  | {
      /** The method's `result`, sent as `{ result, time }`. */
      readonly result: unknown;
    }
  | {
      /** The error code, sent as `error` (v2) or `error.code` (v3). */
      readonly error: string;
      /**
       * The HTTP status.
       * @defaultValue `400`
       */
      readonly status?: number;
      /**
       * The description, sent as `error_description` (v2) or `error.message` (v3).
       * @defaultValue the error code
       */
      readonly description?: string;
    };

/** A custom REST method of the stand-in. */
export type FakeRestMethod = (context: FakeRestContext) => FakeRestOutcome;

/** The default `client_secret` of {@link FakeBitrix24} (a test value, not a secret). */
export const DEFAULT_FAKE_CLIENT_SECRET = 'FakeBitrix24TestSecret0000000000000000000000000000';

/** The default `client_id` of {@link FakeBitrix24}. */
export const DEFAULT_FAKE_CLIENT_ID = 'local.0000000000test.00000000';

const MAX_BODY_BYTES = 1024 * 1024;

interface PortalState {
  memberId: string;
  domain: string;
  status: string;
  scope: string;
  adminUserId: number;
  applicationToken: string;
  installed: boolean;
  appVersion: number;
  users: Map<number, { name: string; lastName: string }>;
}

interface AccessRecord {
  readonly memberId: string;
  readonly userId: number;
  readonly expiresMs: number;
  dead: boolean;
  forcedExpired: boolean;
}

interface RefreshRecord {
  readonly memberId: string;
  readonly userId: number;
  readonly accessToken: string;
  spent: boolean;
  /** Set by revoke/uninstall: the error a refresh of this token answers. */
  revokedWith: string | null;
}

interface CodeRecord {
  readonly memberId: string;
  readonly userId: number;
  readonly clientId: string;
  readonly expiresMs: number;
  used: boolean;
}

type Params = Record<string, unknown>;

/**
 * A portal known to the stand-in. Its properties are live: after {@link FakeBitrix24.rename} the
 * `domain` and `clientEndpoint` read the new values.
 */
export interface FakePortal {
  /** The portal's `member_id`. */
  readonly memberId: string;
  /** The portal's current host name. */
  readonly domain: string;
  /** The portal's REST root: `${url}/portals/<domain>/rest/`. */
  readonly clientEndpoint: string;
  /** The app's current `application_token` on this portal. */
  readonly applicationToken: string;
  /** The app's status letter. */
  readonly status: string;
  /** The app's scopes, comma-separated. */
  readonly scope: string;
  /** The administrator who installed the app. */
  readonly adminUserId: number;
  /** Whether the app is installed (false after {@link FakeBitrix24.uninstallEvent}). */
  readonly installed: boolean;
  /** The installed app version. */
  readonly appVersion: number;
}

/** A read-only live view of a portal's state. */
function portalView(state: PortalState, baseUrl: string): FakePortal {
  return Object.freeze({
    get memberId() {
      return state.memberId;
    },
    get domain() {
      return state.domain;
    },
    get clientEndpoint() {
      return `${baseUrl}/portals/${state.domain}/rest/`;
    },
    get applicationToken() {
      return state.applicationToken;
    },
    get status() {
      return state.status;
    },
    get scope() {
      return state.scope;
    },
    get adminUserId() {
      return state.adminUserId;
    },
    get installed() {
      return state.installed;
    },
    get appVersion() {
      return state.appVersion;
    },
  });
}

/**
 * A stand-in Bitrix24 on `127.0.0.1`: the OAuth server (`/oauth/token/`, `/rest/app.info`) and any
 * number of portals (`/portals/<domain>/rest/…`) on one ephemeral port.
 *
 * It enforces what the real service does: access tokens expire (by an injectable clock, or on
 * demand); a refresh token is single-use and its refresh kills the access token issued with it;
 * client credentials are checked; uninstalled and revoked portals refuse every chain; codes live
 * 30 seconds; a renamed portal's old address answers 302. Every decision is counted in
 * {@link FakeBitrix24.stats}.
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
  /** Live counters; {@link FakeBitrix24.resetStats} zeroes them in place. */
  readonly stats: FakeBitrix24Stats = emptyStats();

  readonly #server: Server;
  readonly #now: () => number;
  readonly #accessTtlSec: number;
  readonly #codeTtlSec: number;
  readonly #redirectUri: string | undefined;
  readonly #portals = new Map<string, { state: PortalState; view: FakePortal }>();
  readonly #byDomain = new Map<string, string>();
  readonly #oldDomains = new Map<string, string>();
  readonly #access = new Map<string, AccessRecord>();
  readonly #refresh = new Map<string, RefreshRecord>();
  readonly #codes = new Map<string, CodeRecord>();
  readonly #methods = new Map<string, FakeRestMethod>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #failure: OAuthFailure | null = null;
  #failuresLeft = 0;
  #oauthDelayMs = 0;
  #restDelayMs = 0;
  #portalCounter = 0;
  #closed = false;

  private constructor(server: Server, port: number, options: FakeBitrix24Options) {
    this.#server = server;
    this.url = `http://127.0.0.1:${port}`;
    this.oauthUrl = this.url;
    this.serverEndpoint = `${this.url}/rest/`;
    this.clientId = options.clientId ?? DEFAULT_FAKE_CLIENT_ID;
    this.clientSecret = options.clientSecret ?? DEFAULT_FAKE_CLIENT_SECRET;
    this.#now = options.now ?? Date.now;
    this.#accessTtlSec = options.accessTokenTtlSec ?? 3600;
    this.#codeTtlSec = options.codeTtlSec ?? 30;
    this.#redirectUri = options.redirectUri;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error: 'INTERNAL_SERVER_ERROR', error_description: 'Stand-in failure' });
        else res.destroy();
      });
    });
  }

  /** Starts a stand-in on an ephemeral loopback port. Close it with {@link FakeBitrix24.close}. */
  static async start(options: FakeBitrix24Options = {}): Promise<FakeBitrix24> {
    for (const [name, value] of [
      ['accessTokenTtlSec', options.accessTokenTtlSec],
      ['codeTtlSec', options.codeTtlSec],
    ] as const) {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw new TypeError(`options.${name} must be a positive number of seconds`);
      }
    }
    if (options.redirectUri !== undefined) parseHttpUrl(options.redirectUri, 'options.redirectUri');
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FakeBitrix24(server, (server.address() as AddressInfo).port, options);
  }

  // ---------------------------------------------------------------------------------------------
  // Portals and chains

  /** Adds a portal with the app installed. */
  addPortal(options: FakePortalOptions = {}): FakePortal {
    this.#portalCounter += 1;
    const memberId = options.memberId ?? randomHex(16);
    const domain = normaliseDomain(options.domain ?? `portal${this.#portalCounter}.bitrix24.test`, 'options.domain');
    if (this.#portals.has(memberId)) throw new TypeError(`options.memberId: a portal with this member_id already exists`);
    if (this.#byDomain.has(domain)) throw new TypeError(`options.domain: a portal with this domain already exists`);
    const adminUserId = options.userId ?? 1;
    assertUserId(adminUserId, 'options.userId');
    const state: PortalState = {
      memberId,
      domain,
      status: options.status ?? 'L',
      scope: options.scope ?? 'crm,user_brief',
      adminUserId,
      applicationToken: options.applicationToken ?? randomHex(16),
      installed: true,
      appVersion: options.appVersion ?? 1,
      users: new Map([[adminUserId, { name: options.userName ?? 'Admin', lastName: `User${adminUserId}` }]]),
    };
    const view = portalView(state, this.url);
    this.#portals.set(memberId, { state, view });
    this.#byDomain.set(domain, memberId);
    this.#oldDomains.delete(domain);
    return view;
  }

  /** The portal with this `member_id`, if any. */
  portal(memberId: string): FakePortal | undefined {
    return this.#portals.get(memberId)?.view;
  }

  /** Mints an independent chain for a portal (as an install, update or app page would). */
  issueChain(memberId: string, options: IssueChainOptions = {}): FakeChain {
    const state = this.#state(memberId);
    const userId = options.userId ?? state.adminUserId;
    assertUserId(userId, 'options.userId');
    return this.#mint(state, userId);
  }

  /**
   * The parameters of `new B24OAuth(params, secret)` for a chain of a portal, so a test can build
   * the SDK's client directly against the stand-in.
   */
  oauthParams(memberId: string, chain: FakeChain): B24OAuthParams {
    const state = this.#state(memberId);
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
      clientEndpoint: this.#clientEndpoint(state),
      serverEndpoint: this.serverEndpoint,
      status: state.status as B24OAuthParams['status'],
    };
  }

  /** How the stand-in judges an access or refresh token right now. */
  tokenStatus(token: string): FakeTokenStatus {
    const access = this.#access.get(token);
    if (access !== undefined) {
      const verdict = this.#judgeAccess(access);
      return verdict === 'ok' ? 'live' : verdict === 'expired' ? 'expired' : 'dead';
    }
    const refresh = this.#refresh.get(token);
    if (refresh === undefined) return 'unknown';
    if (refresh.spent) return 'spent';
    const portal = this.#portals.get(refresh.memberId)?.state;
    return refresh.revokedWith !== null || portal?.installed !== true ? 'dead' : 'live';
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle bodies

  /** An ONAPPINSTALL for the portal with a freshly minted chain; reinstalls an uninstalled portal. */
  installEvent(memberId: string, options: InstallEventOptions = {}): FakeLifecycleEvent {
    const state = this.#state(memberId);
    const userId = options.userId ?? state.adminUserId;
    assertUserId(userId, 'options.userId');
    state.installed = true;
    if (options.version !== undefined) state.appVersion = options.version;
    const chain = this.#mint(state, userId);
    const payload: FakeEventPayload = {
      event: 'ONAPPINSTALL',
      event_handler_id: String(options.handlerId ?? 1),
      data: {
        VERSION: String(state.appVersion),
        ACTIVE: options.active === false ? 'N' : 'Y',
        INSTALLED: options.installed === false ? 'N' : 'Y',
        LANGUAGE_ID: options.languageId ?? 'en',
      },
      ts: String(this.#nowSec()),
      auth: this.#eventAuth(state, chain, options.omitAuthFields ?? []),
    };
    return { ...renderEvent(payload), chain };
  }

  /** An ONAPPUPDATE with a freshly minted chain; `options.applicationToken` rotates the portal's. */
  updateEvent(memberId: string, options: UpdateEventOptions = {}): FakeLifecycleEvent {
    const state = this.#state(memberId);
    if (!state.installed) throw new TypeError(`memberId: the app is not installed on this portal`);
    const userId = options.userId ?? state.adminUserId;
    assertUserId(userId, 'options.userId');
    const previousVersion = options.previousVersion ?? state.appVersion;
    state.appVersion = options.version ?? state.appVersion + 1;
    if (options.applicationToken !== undefined) state.applicationToken = options.applicationToken;
    const chain = this.#mint(state, userId);
    const payload: FakeEventPayload = {
      event: 'ONAPPUPDATE',
      event_handler_id: String(options.handlerId ?? 1),
      data: {
        VERSION: String(state.appVersion),
        PREVIOUS_VERSION: String(previousVersion),
        LANGUAGE_ID: options.languageId ?? 'en',
      },
      ts: String(this.#nowSec()),
      auth: this.#eventAuth(state, chain, options.omitAuthFields ?? []),
    };
    return { ...renderEvent(payload), chain };
  }

  /**
   * An ONAPPUNINSTALL (identity and `application_token`, no tokens). The app is uninstalled at
   * once: REST answers 401 `ERROR_OAUTH` for the portal's tokens, refresh answers `NOT_INSTALLED`,
   * and after a reinstall the old chains stay dead (`invalid_grant`).
   */
  uninstallEvent(memberId: string, options: UninstallEventOptions = {}): FakeUninstallEvent {
    const state = this.#state(memberId);
    state.installed = false;
    this.#killChains(memberId, 'invalid_grant');
    const payload: FakeEventPayload = {
      event: 'ONAPPUNINSTALL',
      event_handler_id: String(options.handlerId ?? 2),
      data: { CLEAN: options.clean === true ? '1' : '0', LANGUAGE_ID: options.languageId ?? 'en' },
      ts: String(this.#nowSec()),
      auth: {
        domain: state.domain,
        client_endpoint: this.#clientEndpoint(state),
        server_endpoint: this.serverEndpoint,
        member_id: state.memberId,
        application_token: state.applicationToken,
      },
    };
    return renderEvent(payload);
  }

  /** The app-page (iframe) request of a user opening the app: a new chain for that user. */
  appPageRequest(memberId: string, options: AppPageRequestOptions = {}): FakeAppPageRequest {
    const state = this.#state(memberId);
    const userId = options.userId ?? state.adminUserId;
    assertUserId(userId, 'options.userId');
    const chain = this.#mint(state, userId);
    const query = new URLSearchParams({
      DOMAIN: state.domain,
      PROTOCOL: '0',
      LANG: options.lang ?? 'en',
      APP_SID: randomHex(16),
    });
    const placementOptions =
      options.placementOptions === 'undefined' ? 'undefined' : JSON.stringify(options.placementOptions ?? {});
    const body = new URLSearchParams({
      AUTH_ID: chain.accessToken,
      AUTH_EXPIRES: String(chain.expiresIn),
      REFRESH_ID: chain.refreshToken,
      member_id: state.memberId,
      status: state.status,
      PLACEMENT: options.placement ?? 'DEFAULT',
      PLACEMENT_OPTIONS: placementOptions,
    });
    if (options.newerFields !== false) {
      body.set('SERVER_ENDPOINT', this.serverEndpoint);
      body.set('APPLICATION_TOKEN', state.applicationToken);
      body.set('APPLICATION_SCOPE', state.scope);
    }
    return { query: query.toString(), body: body.toString(), chain };
  }

  // ---------------------------------------------------------------------------------------------
  // Server-side interventions

  /** Makes current access tokens (of one portal, or all) answer 401 `expired_token` from now on. */
  expireAccessTokens(memberId?: string): void {
    if (memberId !== undefined) this.#state(memberId);
    for (const record of this.#access.values()) {
      if (memberId === undefined || record.memberId === memberId) record.forcedExpired = true;
    }
  }

  /**
   * Kills every existing chain of a portal: REST answers 401 `invalid_token`, refresh answers
   * `{ error }`. Chains minted later (a reinstall) work.
   */
  revoke(memberId: string, error = 'invalid_grant'): void {
    this.#state(memberId);
    this.#killChains(memberId, error);
  }

  /** Renames a portal: its old REST root answers 302 to the new one. */
  rename(memberId: string, newDomain: string): void {
    const state = this.#state(memberId);
    const domain = normaliseDomain(newDomain, 'newDomain');
    if (this.#byDomain.has(domain)) throw new TypeError(`newDomain: a portal with this domain already exists`);
    this.#byDomain.delete(state.domain);
    this.#oldDomains.set(state.domain, memberId);
    this.#oldDomains.delete(domain);
    state.domain = domain;
    this.#byDomain.set(domain, memberId);
  }

  /**
   * Injects transient failures of `/oauth/token/` for the next `times` requests (or until called
   * with `null`): an HTTP status, a request that never completes, or a connection reset.
   */
  failOAuth(failure: OAuthFailure | null, times = Number.POSITIVE_INFINITY): void {
    if (failure !== null && 'status' in failure && !(Number.isInteger(failure.status) && failure.status >= 400 && failure.status <= 599)) {
      throw new TypeError('failure.status must be an HTTP error status (400-599)');
    }
    if (!(times > 0)) throw new TypeError('times must be a positive number');
    this.#failure = failure;
    this.#failuresLeft = failure === null ? 0 : times;
  }

  /** Delays every `/oauth/token/` answer by real milliseconds (0 to stop), so refreshes overlap. */
  setOAuthDelay(ms: number): void {
    if (!(ms >= 0)) throw new TypeError('ms must be a non-negative number');
    this.#oauthDelayMs = ms;
  }

  /**
   * Delays every portal REST answer by real milliseconds (0 to stop). The token is judged when the
   * request arrives, as on the real service, so a slow request can outlive its token.
   */
  setRestDelay(ms: number): void {
    if (!(ms >= 0)) throw new TypeError('ms must be a non-negative number');
    this.#restDelayMs = ms;
  }

  /** Adds (or replaces) a portal REST method, in v2 and v3 alike. Built-in methods can be shadowed. */
  onMethod(method: string, handler: FakeRestMethod): void {
    this.#methods.set(method.toLowerCase(), handler);
  }

  /**
   * Simulates a user consenting at `/oauth/authorize/`: a single-use code bound to `client_id`,
   * valid for `codeTtlSec`.
   */
  authorize(memberId: string, options: AuthorizeOptions = {}): FakeAuthorization {
    const state = this.#state(memberId);
    const userId = options.userId ?? state.adminUserId;
    assertUserId(userId, 'options.userId');
    return this.#authorize(state, userId, options.state);
  }

  /** Zeroes every counter in place (references to {@link FakeBitrix24.stats} stay live). */
  resetStats(): void {
    Object.assign(this.stats, emptyStats());
  }

  /** Closes the server and every open connection, hanging requests included. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: state

  #state(memberId: string): PortalState {
    const entry = this.#portals.get(memberId);
    if (entry === undefined) throw new TypeError(`memberId: no portal with this member_id in the stand-in`);
    return entry.state;
  }

  #nowSec(): number {
    return Math.floor(this.#now() / 1000);
  }

  #clientEndpoint(state: PortalState): string {
    return `${this.url}/portals/${state.domain}/rest/`;
  }

  #mint(state: PortalState, userId: number): FakeChain {
    if (!state.users.has(userId)) state.users.set(userId, { name: `User${userId}`, lastName: `Member${userId}` });
    const accessToken = randomHex(35);
    const refreshToken = randomHex(35);
    const expires = this.#nowSec() + this.#accessTtlSec;
    this.#access.set(accessToken, { memberId: state.memberId, userId, expiresMs: expires * 1000, dead: false, forcedExpired: false });
    this.#refresh.set(refreshToken, { memberId: state.memberId, userId, accessToken, spent: false, revokedWith: null });
    return { accessToken, refreshToken, expires, expiresIn: this.#accessTtlSec, memberId: state.memberId, userId };
  }

  #killChains(memberId: string, error: string): void {
    for (const record of this.#access.values()) if (record.memberId === memberId) record.dead = true;
    for (const record of this.#refresh.values()) if (record.memberId === memberId && record.revokedWith === null) record.revokedWith = error;
  }

  #judgeAccess(record: AccessRecord): 'ok' | 'expired' | 'dead' | 'not_installed' {
    if (this.#portals.get(record.memberId)?.state.installed !== true) return 'not_installed';
    if (record.dead) return 'dead';
    if (record.forcedExpired || this.#now() >= record.expiresMs) return 'expired';
    return 'ok';
  }

  #eventAuth(state: PortalState, chain: FakeChain, omit: readonly string[]): Record<string, string> {
    const auth: Record<string, string> = {
      access_token: chain.accessToken,
      expires: String(chain.expires),
      expires_in: String(chain.expiresIn),
      scope: state.scope,
      domain: state.domain,
      server_endpoint: this.serverEndpoint,
      status: state.status,
      client_endpoint: this.#clientEndpoint(state),
      member_id: state.memberId,
      user_id: String(chain.userId),
      refresh_token: chain.refreshToken,
      application_token: state.applicationToken,
    };
    for (const field of omit) delete auth[field];
    return auth;
  }

  #tokenResponse(state: PortalState, chain: FakeChain): Record<string, unknown> {
    return {
      access_token: chain.accessToken,
      expires: chain.expires,
      expires_in: chain.expiresIn,
      scope: state.scope,
      domain: new URL(this.url).host,
      server_endpoint: this.serverEndpoint,
      status: state.status,
      client_endpoint: this.#clientEndpoint(state),
      member_id: state.memberId,
      user_id: chain.userId,
      refresh_token: chain.refreshToken,
    };
  }

  #authorize(state: PortalState, userId: number, stateParam: string | undefined): FakeAuthorization {
    const code = randomHex(35);
    this.#codes.set(code, {
      memberId: state.memberId,
      userId,
      clientId: this.clientId,
      expiresMs: this.#now() + this.#codeTtlSec * 1000,
      used: false,
    });
    if (!state.users.has(userId)) state.users.set(userId, { name: `User${userId}`, lastName: `Member${userId}` });
    if (this.#redirectUri === undefined) return { code, redirectUrl: null };
    const target = new URL(this.#redirectUri);
    target.searchParams.set('code', code);
    if (stateParam !== undefined) target.searchParams.set('state', stateParam);
    target.searchParams.set('domain', state.domain);
    target.searchParams.set('member_id', state.memberId);
    target.searchParams.set('scope', state.scope);
    target.searchParams.set('server_domain', new URL(this.url).host);
    return { code, redirectUrl: target.toString() };
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: HTTP

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestUrl = new URL(req.url ?? '/', this.url);
    // The SDK joins `${clientEndpoint}/${method}`, giving `/rest//profile`; the real server copes.
    const path = requestUrl.pathname.replace(/\/{2,}/g, '/');
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') {
      sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', error_description: 'Use GET or POST' });
      return;
    }
    const raw = await readBody(req);
    if (raw === null) {
      sendJson(res, 413, { error: 'REQUEST_TOO_LARGE', error_description: 'Request body too large' });
      return;
    }
    const params = mergeParams(requestUrl.searchParams, raw, req.headers['content-type']);
    if (params === null) {
      sendJson(res, 400, { error: 'invalid_request', error_description: 'Malformed request body' });
      return;
    }

    if (path === '/oauth/token/' || path === '/oauth/token') {
      await this.#handleToken(req, res, params);
      return;
    }
    if (/^\/rest\/app\.info(\.json)?\/?$/.test(path)) {
      this.#handleOAuthAppInfo(res, params);
      return;
    }
    const portalRoute = /^\/portals\/([^/]+)\/(.*)$/.exec(path);
    if (portalRoute !== null) {
      await this.#handlePortal(res, decodeURIComponent(portalRoute[1] ?? '').toLowerCase(), portalRoute[2] ?? '', requestUrl, params, method);
      return;
    }
    sendJson(res, 404, { error: 'NOT_FOUND', error_description: 'No such route in the stand-in' });
  }

  async #handleToken(req: IncomingMessage, res: ServerResponse, params: Params): Promise<void> {
    const grant = str(params['grant_type']);
    const errors =
      grant === 'refresh_token' ? this.stats.refreshErrors : grant === 'authorization_code' ? this.stats.codeErrors : null;
    if (grant === 'refresh_token') this.stats.refreshRequests += 1;
    else if (grant === 'authorization_code') this.stats.codeExchanges += 1;

    if (this.#failure !== null && this.#failuresLeft > 0) {
      const failure = this.#failure;
      this.#failuresLeft -= 1;
      if (this.#failuresLeft <= 0) this.#failure = null;
      this.stats.oauthFailuresInjected += 1;
      if ('status' in failure) {
        const body = `<html><body><h1>${failure.status} Service Unavailable</h1></body></html>`;
        res.writeHead(failure.status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else if (failure.mode === 'reset') {
        req.socket.destroy();
      }
      // 'hang': never answer; close() tears the connection down.
      return;
    }
    if (this.#oauthDelayMs > 0) {
      await this.#sleep(this.#oauthDelayMs);
      if (this.#closed) return;
    }

    const refuse = (status: number, error: string, description: string): void => {
      if (errors !== null) errors[error] = (errors[error] ?? 0) + 1;
      else this.stats.badTokenRequests += 1;
      sendJson(res, status, { error, error_description: description });
    };

    if (errors === null) {
      refuse(400, 'invalid_request', 'grant_type must be refresh_token or authorization_code');
      return;
    }
    if (str(params['client_id']) !== this.clientId || str(params['client_secret']) !== this.clientSecret) {
      refuse(401, 'invalid_client', 'Invalid client credentials');
      return;
    }

    if (grant === 'refresh_token') {
      const token = str(params['refresh_token']);
      if (token === undefined || token === '') {
        refuse(400, 'invalid_request', 'refresh_token is required');
        return;
      }
      const record = this.#refresh.get(token);
      if (record === undefined) {
        refuse(400, 'invalid_grant', 'Invalid refresh token');
        return;
      }
      if (record.spent) {
        this.stats.refreshReuse += 1;
        refuse(400, 'invalid_grant', 'The refresh token has already been used');
        return;
      }
      const state = this.#portals.get(record.memberId)?.state;
      if (state?.installed !== true) {
        refuse(401, 'NOT_INSTALLED', 'Application is not installed on the portal');
        return;
      }
      if (record.revokedWith !== null) {
        refuse(400, record.revokedWith, 'The token chain was revoked');
        return;
      }
      record.spent = true;
      const previous = this.#access.get(record.accessToken);
      if (previous !== undefined) previous.dead = true;
      const chain = this.#mint(state, record.userId);
      this.stats.refreshSuccess += 1;
      sendJson(res, 200, this.#tokenResponse(state, chain));
      return;
    }

    const code = str(params['code']);
    if (code === undefined || code === '') {
      refuse(400, 'invalid_request', 'code is required');
      return;
    }
    const record = this.#codes.get(code);
    if (record === undefined || record.used || record.clientId !== this.clientId) {
      refuse(400, 'invalid_grant', 'Invalid authorization code');
      return;
    }
    record.used = true;
    if (this.#now() >= record.expiresMs) {
      refuse(400, 'invalid_grant', 'The authorization code has expired');
      return;
    }
    const state = this.#portals.get(record.memberId)?.state;
    if (state?.installed !== true) {
      refuse(401, 'NOT_INSTALLED', 'Application is not installed on the portal');
      return;
    }
    const chain = this.#mint(state, record.userId);
    this.stats.codeSuccess += 1;
    sendJson(res, 200, this.#tokenResponse(state, chain));
  }

  #handleOAuthAppInfo(res: ServerResponse, params: Params): void {
    this.stats.appInfoCalls += 1;
    const token = str(params['auth']);
    const record = token === undefined ? undefined : this.#access.get(token);
    if (token === undefined || token === '') {
      sendJson(res, 401, { error: 'NO_AUTH_FOUND', error_description: 'Wrong authorization data' });
      return;
    }
    const verdict = record === undefined ? 'dead' : this.#judgeAccess(record);
    if (verdict === 'expired') {
      sendJson(res, 401, { error: 'expired_token', error_description: 'The access token provided has expired.' });
      return;
    }
    const state = record === undefined ? undefined : this.#portals.get(record.memberId)?.state;
    if (verdict !== 'ok' || state === undefined || record === undefined) {
      sendJson(res, 401, { error: 'invalid_token', error_description: 'The access token provided is invalid.' });
      return;
    }
    sendJson(res, 200, {
      result: {
        scope: state.scope,
        client_id: this.clientId,
        expires: Math.floor(record.expiresMs / 1000),
        user_id: record.userId,
        install: {
          installed: true,
          version: state.appVersion,
          status: state.status,
          member_id: state.memberId,
          domain: state.domain,
          client_endpoint: this.#clientEndpoint(state),
          server_endpoint: this.serverEndpoint,
        },
      },
    });
  }

  async #handlePortal(
    res: ServerResponse,
    domain: string,
    tail: string,
    requestUrl: URL,
    params: Params,
    httpMethod: string,
  ): Promise<void> {
    const memberId = this.#byDomain.get(domain);
    const movedTo = memberId === undefined ? this.#oldDomains.get(domain) : undefined;
    if (movedTo !== undefined) {
      const state = this.#state(movedTo);
      const query = new URLSearchParams(requestUrl.searchParams);
      query.delete('auth');
      const search = query.toString();
      const location = `${this.url}/portals/${state.domain}/${tail}${search === '' ? '' : `?${search}`}`;
      if (tail.startsWith('rest/')) this.stats.rest.redirects += 1;
      res.writeHead(302, { location, 'content-length': 0 });
      res.end();
      return;
    }
    const state = memberId === undefined ? undefined : this.#portals.get(memberId)?.state;

    if (/^oauth\/authorize\/?$/.test(tail)) {
      this.#handleAuthorize(res, state, params, httpMethod);
      return;
    }
    const restRoute = /^rest\/(api\/)?(.+?)(\.json)?\/?$/.exec(tail);
    if (restRoute === null) {
      sendJson(res, 404, { error: 'NOT_FOUND', error_description: 'No such route on the portal' });
      return;
    }
    const version = restRoute[1] === undefined ? 'v2' : 'v3';
    const methodName = (restRoute[2] ?? '').toLowerCase();
    this.stats.restByMethod[methodName] = (this.stats.restByMethod[methodName] ?? 0) + 1;
    const answer = (status: number, body: unknown): Promise<void> => this.#answerRest(res, status, body);
    const fail = (status: number, code: string, description: string): Promise<void> => {
      if (code === 'expired_token') this.stats.rest.expiredToken += 1;
      else if (code === 'invalid_token') this.stats.rest.invalidToken += 1;
      else this.stats.rest.otherErrors += 1;
      return answer(
        status,
        version === 'v3' ? { error: { code, message: description } } : { error: code, error_description: description },
      );
    };

    if (state === undefined) {
      await fail(404, 'PORTAL_NOT_FOUND', 'Portal not found');
      return;
    }
    const token = str(params['auth']);
    if (token === undefined || token === '') {
      await fail(401, 'NO_AUTH_FOUND', 'Wrong authorization data');
      return;
    }
    const record = this.#access.get(token);
    if (record === undefined || record.memberId !== state.memberId) {
      await fail(401, 'invalid_token', 'The access token provided is invalid.');
      return;
    }
    switch (this.#judgeAccess(record)) {
      case 'not_installed':
        await fail(401, 'ERROR_OAUTH', 'Application not installed');
        return;
      case 'dead':
        await fail(401, 'invalid_token', 'The access token provided is invalid.');
        return;
      case 'expired':
        await fail(401, 'expired_token', 'The access token provided has expired.');
        return;
      case 'ok':
        break;
    }

    const callParams: Params = Object.assign(Object.create(null) as Params, params);
    delete callParams['auth'];
    const outcome = this.#callMethod(state, record.userId, methodName, version, callParams);
    if ('error' in outcome) {
      await fail(outcome.status ?? 400, outcome.error, outcome.description ?? outcome.error);
      return;
    }
    this.stats.rest.ok += 1;
    await answer(200, { result: outcome.result, time: this.#timeBlock() });
  }

  async #answerRest(res: ServerResponse, status: number, body: unknown): Promise<void> {
    if (this.#restDelayMs > 0) {
      await this.#sleep(this.#restDelayMs);
      if (this.#closed) return;
    }
    sendJson(res, status, body);
  }

  #callMethod(state: PortalState, userId: number, method: string, version: 'v2' | 'v3', params: Params): FakeRestOutcome {
    const custom = this.#methods.get(method);
    if (custom !== undefined) {
      const view = this.#portals.get(state.memberId)?.view ?? portalView(state, this.url);
      return custom({ portal: view, userId, params, version });
    }
    const user = state.users.get(userId) ?? { name: `User${userId}`, lastName: `Member${userId}` };
    const isAdmin = userId === state.adminUserId;
    if (version === 'v3') {
      if (method === 'profile') {
        return {
          result: {
            profile: {
              id: userId,
              admin: isAdmin,
              name: user.name,
              lastName: user.lastName,
              personalGender: '',
              personalPhoto: '',
              timeZone: '',
              timeZoneOffset: 0,
            },
          },
        };
      }
      return { error: 'BITRIX_REST_V3_EXCEPTION_METHODNOTFOUNDEXCEPTION', status: 404, description: `Method '${method}' not found` };
    }
    switch (method) {
      case 'batch':
        return this.#batch(state, userId, params);
      case 'profile':
        return {
          result: {
            ID: String(userId),
            ADMIN: isAdmin,
            NAME: user.name,
            LAST_NAME: user.lastName,
            PERSONAL_GENDER: '',
            PERSONAL_PHOTO: '',
            TIME_ZONE: '',
            TIME_ZONE_OFFSET: 0,
          },
        };
      case 'user.current':
        return {
          result: {
            ID: String(userId),
            XML_ID: '',
            ACTIVE: true,
            NAME: user.name,
            LAST_NAME: user.lastName,
            SECOND_NAME: '',
            EMAIL: `user${userId}@${state.domain}`,
            PERSONAL_GENDER: '',
            TIME_ZONE: '',
            UF_DEPARTMENT: [1],
            IS_ONLINE: 'Y',
            USER_TYPE: 'employee',
          },
        };
      case 'server.time':
        return { result: new Date(this.#now()).toISOString().replace(/\.\d{3}Z$/, '+00:00') };
      case 'app.info':
        return {
          result: {
            ID: 1,
            CODE: this.clientId,
            VERSION: state.appVersion,
            STATUS: state.status,
            INSTALLED: true,
            PAYMENT_EXPIRED: 'N',
            DAYS: null,
            LANGUAGE_ID: 'en',
            LICENSE: 'en_project',
            LICENSE_TYPE: 'project',
            LICENSE_FAMILY: 'project',
          },
        };
      default:
        return { error: 'ERROR_METHOD_NOT_FOUND', status: 404, description: 'Method not found!' };
    }
  }

  /** REST v2 `batch`: `cmd` rows `method?query` (an object or a list), run in order under one token. */
  #batch(state: PortalState, userId: number, params: Params): FakeRestOutcome {
    const cmd = params['cmd'];
    if (cmd === null || typeof cmd !== 'object') {
      return { error: 'ERROR_BATCH_METHOD_NOT_ALLOWED', status: 400, description: 'cmd is required' };
    }
    const rows = Object.entries(cmd as Record<string, unknown>);
    const asList = Array.isArray(cmd);
    const halt = str(params['halt']) === '1' || params['halt'] === true;
    const result: Record<string, unknown> = {};
    const errors: Record<string, unknown> = {};
    const times: Record<string, unknown> = {};
    for (const [key, row] of rows) {
      if (typeof row !== 'string') continue;
      const mark = row.indexOf('?');
      const name = (mark === -1 ? row : row.slice(0, mark)).toLowerCase();
      const query = decodePhpForm(new URLSearchParams(mark === -1 ? '' : row.slice(mark + 1)));
      const outcome: FakeRestOutcome =
        name === 'batch'
          ? { error: 'ERROR_BATCH_METHOD_NOT_ALLOWED', description: 'Nested batch is not allowed' }
          : this.#callMethod(state, userId, name, 'v2', query);
      if ('error' in outcome) {
        errors[key] = { error: outcome.error, error_description: outcome.description ?? outcome.error };
        if (halt) break;
      } else {
        result[key] = outcome.result;
        times[key] = this.#timeBlock();
      }
    }
    // PHP encodes a list as a JSON array only while its keys run 0..n-1; a gap makes it an object.
    const shape = (record: Record<string, unknown>): unknown => {
      const keys = Object.keys(record);
      return asList && keys.every((key, i) => key === String(i)) ? Object.values(record) : record;
    };
    return {
      result: {
        result: shape(result),
        result_error: Object.keys(errors).length === 0 ? [] : shape(errors),
        result_total: [],
        result_next: [],
        result_time: shape(times),
      },
    };
  }

  #handleAuthorize(res: ServerResponse, state: PortalState | undefined, params: Params, httpMethod: string): void {
    if (httpMethod !== 'GET') {
      sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', error_description: 'Use GET' });
      return;
    }
    if (state === undefined) {
      sendJson(res, 404, { error: 'PORTAL_NOT_FOUND', error_description: 'Portal not found' });
      return;
    }
    if (str(params['client_id']) !== this.clientId) {
      sendJson(res, 400, { error: 'invalid_client', error_description: 'Unknown client_id' });
      return;
    }
    if (!state.installed) {
      sendJson(res, 400, { error: 'NOT_INSTALLED', error_description: 'Application is not installed on the portal' });
      return;
    }
    if (this.#redirectUri === undefined) {
      sendJson(res, 400, { error: 'invalid_request', error_description: 'The stand-in has no redirectUri configured' });
      return;
    }
    const { redirectUrl } = this.#authorize(state, state.adminUserId, str(params['state']));
    res.writeHead(302, { location: redirectUrl ?? '', 'content-length': 0 });
    res.end();
  }

  /** The `time` block of a successful REST answer; the SDK's limiter reads `operating` from it. */
  #timeBlock(): Record<string, unknown> {
    const nowMs = this.#now();
    const start = nowMs / 1000;
    const finish = (nowMs + 1) / 1000;
    return {
      start,
      finish,
      duration: 0.001,
      processing: 0,
      date_start: new Date(start * 1000).toISOString(),
      date_finish: new Date(finish * 1000).toISOString(),
      operating_reset_at: Math.floor(start) + 600,
      operating: 0,
    };
  }
}

function emptyStats(): FakeBitrix24Stats {
  return {
    refreshRequests: 0,
    refreshSuccess: 0,
    refreshReuse: 0,
    refreshErrors: {},
    codeExchanges: 0,
    codeSuccess: 0,
    codeErrors: {},
    badTokenRequests: 0,
    oauthFailuresInjected: 0,
    appInfoCalls: 0,
    rest: { ok: 0, expiredToken: 0, invalidToken: 0, otherErrors: 0, redirects: 0 },
    restByMethod: {},
  };
}

function renderEvent(payload: FakeEventPayload): FakeUninstallEvent {
  return { payload, form: encodePhpForm(payload), json: JSON.stringify(payload) };
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function assertUserId(value: number, name: string): void {
  if (!(Number.isInteger(value) && value > 0)) throw new TypeError(`${name} must be a positive integer`);
}

function normaliseDomain(value: string, name: string): string {
  const domain = value.trim().toLowerCase();
  if (!/^[a-z0-9.-]+(:\d{1,5})?$/.test(domain)) throw new TypeError(`${name} must be a host name, optionally with :port`);
  return domain;
}

function parseHttpUrl(value: string, name: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${name} must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${name} must be an absolute http(s) URL`);
  return url;
}

/** Reads the body as UTF-8; `null` when it exceeds the size limit. */
async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Query parameters overlaid with the body's (JSON or form, as the real server accepts both);
 * `null` for a body that claims JSON but is not a JSON object.
 */
function mergeParams(query: URLSearchParams, body: string, contentType: string | undefined): Params | null {
  const merged: Params = Object.assign(Object.create(null) as Params, decodePhpForm(query));
  if (body.trim() === '') return merged;
  if ((contentType ?? '').toLowerCase().includes('json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return null;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    for (const [key, value] of Object.entries(parsed)) merged[key] = value;
    return merged;
  }
  return Object.assign(merged, decodePhpForm(new URLSearchParams(body)));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
