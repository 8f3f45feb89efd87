// Public result types of the stand-in Bitrix24: chains, portals, event bodies, REST method hooks.

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

/** The nested `data` of a REST event, as a PHP bracket form decodes it: string leaves only. */
export type FakeEventData = { readonly [key: string]: string | FakeEventData };

/**
 * A REST event body (`ONCRMDEALADD`, `ONTASKUPDATE`, …) as Bitrix24 posts it to a bound handler,
 * decoded: every leaf is a string. A type alias so it can be passed as a `Record<string, unknown>`.
 */
export type FakeRestEventPayload = {
  /** The event name in upper case, such as `ONCRMDEALADD`. */
  readonly event: string;
  /** The id of the binding (`event.bind`) that delivered it. */
  readonly event_handler_id: string;
  /** The event's `data`, nested as sent (`FIELDS[ID]`); numbers arrive as strings. */
  readonly data: FakeEventData;
  /** When the event left the queue, unix seconds. */
  readonly ts: string;
  /**
   * The `auth` block: a chain of the user who fired the event, with the portal's identity and
   * `application_token`.
   */
  readonly auth: Readonly<Record<string, string>>;
};

/** A REST event body in every form a handler may receive it, plus the chain its `auth` carries. */
export interface FakeRestEvent {
  /** The decoded body (nested object, string leaves). */
  readonly payload: FakeRestEventPayload;
  /** The `application/x-www-form-urlencoded` body with PHP bracket keys, as Bitrix24 sends it. */
  readonly form: string;
  /** The same body as JSON. */
  readonly json: string;
  /** The chain minted for the triggering user (it belongs to that user, not to the portal). */
  readonly chain: FakeChain;
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
    }
  | {
      /**
       * Rotate the chain as a successful refresh would (the refresh token is spent, a new pair is
       * minted), then destroy the connection: the answer is lost, and the chain with it.
       */
      readonly mode: 'rotate-and-drop';
    };

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
  /** The user who installed the app (the portal's chain acts as them). */
  readonly adminUserId: number;
  /** The portal's known users, ascending (administrators included). */
  readonly users: readonly number[];
  /** The portal's administrators, ascending. */
  readonly admins: readonly number[];
  /** Whether the app is installed (false after {@link FakeBitrix24.uninstallEvent}). */
  readonly installed: boolean;
  /** The installed app version. */
  readonly appVersion: number;
}

