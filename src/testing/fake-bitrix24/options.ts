// Public option types of the stand-in Bitrix24: what each FakeBitrix24 method accepts; and the
// check of the options of FakeBitrix24.start.

import { parseHttpUrl } from './util.js';

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
  /**
   * The portal's users besides the installer (ids). Users not listed here still join the portal,
   * as ordinary users, the first time a chain is issued for them.
   * @defaultValue `[]`
   */
  users?: readonly number[];
  /**
   * The portal's administrators: `profile` answers `ADMIN: true` and `user.admin` answers `true`
   * for their chains, `false` for everyone else's. Listed ids join the portal's users. When given,
   * it is the whole list: leave the installer out to mimic an installer who lost the rights later.
   * @defaultValue `[userId]` (the installer)
   */
  admins?: readonly number[];
}

/** Options of {@link FakeBitrix24.setUser}. */
export interface FakeUserOptions {
  /**
   * Whether the user administers the portal.
   * @defaultValue unchanged (`false` for a new user)
   */
  admin?: boolean;
  /**
   * First name, as `profile` and `user.current` report it.
   * @defaultValue unchanged (`User<id>` for a new user)
   */
  name?: string;
  /**
   * Last name, as `profile` and `user.current` report it.
   * @defaultValue unchanged (`Member<id>` for a new user)
   */
  lastName?: string;
}

/** Options of {@link FakeBitrix24.expireAccessTokens}. */
export interface ExpireOptions {
  /**
   * Expire only the access tokens of this user's chains.
   * @defaultValue every user's
   */
  userId?: number;
}

/** Options of {@link FakeBitrix24.restEvent}. */
export interface RestEventOptions {
  /**
   * The user whose action fired the event (or the `auth_type` user of the binding): the event's
   * `auth` block carries a freshly minted chain of this user, never the portal's stored one.
   * @defaultValue the portal's installer
   */
  userId?: number;
  /**
   * `event_handler_id`.
   * @defaultValue `10`
   */
  handlerId?: number;
  /**
   * `ts`, unix seconds: when the event left Bitrix24's queue.
   * @defaultValue now, by the stand-in's clock
   */
  ts?: number;
  /**
   * Names of `auth` fields to leave out. The documentation's examples lack `expires` and
   * `user_id`; an event bound for an offline handler carries no tokens at all (leave out
   * `access_token`, `refresh_token`, `expires`, `expires_in`).
   * @defaultValue `[]`
   */
  omitAuthFields?: readonly string[];
}

/** Options of {@link FakeBitrix24.issueChain}. */
export interface IssueChainOptions {
  /**
   * The user the chain acts as; unknown ids become ordinary (non-admin) users of the portal.
   * @defaultValue the portal's installer (`adminUserId`)
   */
  userId?: number;
}

/** Options of {@link FakeBitrix24.installEvent}. */
export interface InstallEventOptions {
  /**
   * The installing user.
   * @defaultValue the portal's installer (`adminUserId`)
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
   * @defaultValue the portal's installer (`adminUserId`)
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
   * @defaultValue the portal's installer (`adminUserId`)
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

/** Options of {@link FakeBitrix24.authorize}. */
export interface AuthorizeOptions {
  /**
   * The consenting user.
   * @defaultValue the portal's installer (`adminUserId`)
   */
  userId?: number;
  /** The `state` to echo in the redirect. */
  state?: string;
}


/** Checks the options of {@link FakeBitrix24.start}; a mistake is a TypeError naming the option. */
export function checkStartOptions(options: FakeBitrix24Options): void {
  for (const [name, value] of [
    ['accessTokenTtlSec', options.accessTokenTtlSec],
    ['codeTtlSec', options.codeTtlSec],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new TypeError(`options.${name} must be a positive number of seconds`);
    }
  }
  if (options.redirectUri !== undefined) parseHttpUrl(options.redirectUri, 'options.redirectUri');
}
