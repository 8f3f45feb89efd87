// The typed shapes parseInstallEvent produces: a discriminated union on `type`.
// Units: `expires` is unix seconds, `expiresIn` seconds; `ts` is unix seconds.

import type { AppStatus } from '../store/token-store.js';

/** The token chain and portal identity carried by ONAPPINSTALL, ONAPPUPDATE and the app page. */
export interface PortalAuth {
  /** The access token. */
  readonly accessToken: string;
  /** The refresh token. */
  readonly refreshToken: string;
  /** Absolute expiry of the access token, unix seconds; computed from `expiresIn` when absent. */
  readonly expires: number;
  /** Lifetime of the access token in seconds (3600 when absent). */
  readonly expiresIn: number;
  /** Comma-separated scopes. */
  readonly scope: string;
  /** The portal's host, possibly with `:port`. */
  readonly domain: string;
  /** The portal's REST root, an http(s) URL ending in `/`. */
  readonly clientEndpoint: string;
  /** The OAuth server's REST root, an http(s) URL. Not trusted until verified. */
  readonly serverEndpoint: string;
  /** App status letter. */
  readonly status: AppStatus;
  /** The portal's `member_id`. */
  readonly memberId: string;
  /** The user the chain belongs to, when sent. */
  readonly userId: number | null;
  /** The per-portal `application_token`, when sent. */
  readonly applicationToken: string | null;
}

/**
 * What ONAPPUNINSTALL carries: identity only, never tokens.
 * @inline
 */
export interface UninstallAuth {
  /** The portal's host, when sent. */
  readonly domain: string | null;
  /** The portal's REST root, when sent (informational: never used). */
  readonly clientEndpoint: string | null;
  /** The OAuth server's REST root, when sent (informational: never used). */
  readonly serverEndpoint: string | null;
  /** The portal's `member_id`. */
  readonly memberId: string;
  /** The `application_token` to compare with the stored one. */
  readonly applicationToken: string;
}

/** Fields every lifecycle event shares. */
interface LifecycleEventBase {
  /** The event handler's id (`event_handler_id`), when sent. */
  readonly handlerId: number | null;
  /** When Bitrix24 queued the event (`ts`), unix seconds, when sent. */
  readonly ts: number | null;
  /** `data[LANGUAGE_ID]`, when sent. */
  readonly languageId: string | null;
}

/**
 * ONAPPINSTALL: the app was installed (or reinstalled) on a portal; carries a fresh chain.
 * @inline
 */
export interface InstallEvent extends LifecycleEventBase {
  /** The discriminant of the union. */
  readonly type: 'install';
  /** The raw event name. */
  readonly event: 'ONAPPINSTALL';
  /** `data[VERSION]`: the installed app version as sent (`"3"`, `"1.0.0"`), when sent. */
  readonly version: string | null;
  /** `data[ACTIVE]` = `Y`. */
  readonly active: boolean;
  /** `data[INSTALLED]` = `Y`: the installation finished (false while an install wizard runs). */
  readonly installed: boolean;
  /** The installer's token chain. */
  readonly auth: PortalAuth;
}

/**
 * ONAPPUPDATE: the app was updated on a portal; carries a fresh chain.
 * @inline
 */
export interface UpdateEvent extends LifecycleEventBase {
  /** The discriminant of the union. */
  readonly type: 'update';
  /** The raw event name. */
  readonly event: 'ONAPPUPDATE';
  /** `data[VERSION]` as sent, when sent. */
  readonly version: string | null;
  /** `data[PREVIOUS_VERSION]` as sent, when sent. */
  readonly previousVersion: string | null;
  /** The token chain. */
  readonly auth: PortalAuth;
}

/**
 * ONAPPUNINSTALL: the app was removed from a portal; API access is already revoked.
 * @inline
 */
export interface UninstallEvent extends LifecycleEventBase {
  /** The discriminant of the union. */
  readonly type: 'uninstall';
  /** The raw event name. */
  readonly event: 'ONAPPUNINSTALL';
  /** `data[CLEAN]` = 1: the admin asked to delete the app's data. */
  readonly clean: boolean;
  /** Identity and `application_token`; no tokens. */
  readonly auth: UninstallAuth;
}

/** The result of {@link parseInstallEvent}. */
export type LifecycleEvent = InstallEvent | UpdateEvent | UninstallEvent;

/**
 * The app-page (iframe) request: a portal user opened the app. It carries **that user's** chain,
 * not the installer's, so storing it is a deliberate choice of the caller.
 */
export interface AppPageRequest {
  /** The discriminant of the union. */
  readonly type: 'app-page';
  /** The current user's chain (`AUTH_ID`, `REFRESH_ID`, `AUTH_EXPIRES` as a lifetime). */
  readonly auth: PortalAuth;
  /** `PLACEMENT`, such as `DEFAULT`. */
  readonly placement: string | null;
  /** `PLACEMENT_OPTIONS` decoded from JSON; `null` when absent or the literal `undefined`. */
  readonly placementOptions: unknown;
  /** `LANG` from the query. */
  readonly lang: string | null;
  /** `APP_SID` from the query. */
  readonly appSid: string | null;
}

/**
 * A value inside a REST event's `data`, exactly as sent: a form body (what Bitrix24 sends) gives
 * only strings and groups; a JSON body may also give numbers, booleans, `null` and lists.
 */
export type RestEventValue = string | number | boolean | null | readonly RestEventValue[] | RestEventData;

/**
 * A REST event's `data`: the nested structure Bitrix24 sent (`data[FIELDS][ID]` is
 * `data.FIELDS.ID`), frozen, with a `null` prototype. Keys `__proto__`, `constructor` and
 * `prototype` are dropped.
 * @inline
 */
export interface RestEventData {
  readonly [key: string]: RestEventValue;
}

/**
 * The `auth` block of a REST event. Only `memberId` and `applicationToken` are required: the rest
 * describe the event's own chain, which belongs to **the user whose action fired the event** (or
 * the binding's `auth_type` user), not to the portal. This library never stores that chain and
 * never uses it for the portal's client.
 * @inline
 */
export interface RestEventAuth {
  /** The portal's `member_id`. */
  readonly memberId: string;
  /** The per-portal `application_token` to compare with the stored one. */
  readonly applicationToken: string;
  /** The portal's host (lower-cased), when sent. A claim, like everything in the payload. */
  readonly domain: string | null;
  /** The portal's REST root as the payload claims it, when sent. Not trusted. */
  readonly clientEndpoint: string | null;
  /** The OAuth server's REST root as the payload claims it, when sent (a live capture lacks it). Not trusted. */
  readonly serverEndpoint: string | null;
  /** The triggering user's access token, when sent. Never stored by this library. */
  readonly accessToken: string | null;
  /** The triggering user's refresh token, when sent. Never stored by this library. */
  readonly refreshToken: string | null;
  /** Absolute expiry of `accessToken`, unix seconds, when sent. */
  readonly expires: number | null;
  /** Lifetime of `accessToken` in seconds, when sent. */
  readonly expiresIn: number | null;
  /** Comma-separated scopes, when sent. */
  readonly scope: string | null;
  /** App status letter, when sent. */
  readonly status: AppStatus | null;
  /** The user the event's chain acts as, when sent. */
  readonly userId: number | null;
}

/** The result of `parseRestEvent`: an event of a handler bound with `event.bind` (ONCRMDEALADD, ...). */
export interface RestEvent {
  /** The discriminant, `'rest'`, to tell it from a {@link LifecycleEvent}. */
  readonly type: 'rest';
  /** The event name in upper case, such as `ONCRMDEALADD`. Names this library does not know are accepted. */
  readonly event: string;
  /** The binding's id (`event_handler_id`), when sent. */
  readonly handlerId: number | null;
  /** When Bitrix24 queued the event (`ts`), unix seconds, when sent. */
  readonly ts: number | null;
  /** The event's `data`, nested as sent; an empty object when the event had none. A claim: re-read the entity before acting on it. */
  readonly data: RestEventData;
  /** Identity, `application_token` and the triggering user's chain. */
  readonly auth: RestEventAuth;
}
