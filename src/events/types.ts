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

/** What ONAPPUNINSTALL carries: identity only, never tokens. */
export interface UninstallAuth {
  /** The portal's host. */
  readonly domain: string;
  /** The portal's REST root. */
  readonly clientEndpoint: string;
  /** The OAuth server's REST root. */
  readonly serverEndpoint: string;
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

/** ONAPPINSTALL: the app was installed (or reinstalled) on a portal; carries a fresh chain. */
export interface InstallEvent extends LifecycleEventBase {
  /** The discriminant of the union. */
  readonly type: 'install';
  /** The raw event name. */
  readonly event: 'ONAPPINSTALL';
  /** `data[VERSION]`: the installed app version, when sent. */
  readonly version: number | null;
  /** `data[ACTIVE]` = `Y`. */
  readonly active: boolean;
  /** `data[INSTALLED]` = `Y`: the installation finished (false while an install wizard runs). */
  readonly installed: boolean;
  /** The installer's token chain. */
  readonly auth: PortalAuth;
}

/** ONAPPUPDATE: the app was updated on a portal; carries a fresh chain. */
export interface UpdateEvent extends LifecycleEventBase {
  /** The discriminant of the union. */
  readonly type: 'update';
  /** The raw event name. */
  readonly event: 'ONAPPUPDATE';
  /** `data[VERSION]`, when sent. */
  readonly version: number | null;
  /** `data[PREVIOUS_VERSION]`, when sent. */
  readonly previousVersion: number | null;
  /** The token chain. */
  readonly auth: PortalAuth;
}

/** ONAPPUNINSTALL: the app was removed from a portal; API access is already revoked. */
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
