// What Bitrix24's OAuth hosts answer, once validated (docs/protocol.md, "The OAuth server"): the token endpoint's
// answer and `app.info`'s. Types only; the OAuth client (src/oauth/oauth-client.ts) reads and checks
// the answers, and the context (src/context.ts) names them without depending on that client.

/**
 * A validated answer of the token endpoint. `expires` is unix seconds.
 * @inline
 */
export interface TokenResponse {
  /** The new access token. */
  readonly accessToken: string;
  /** The new refresh token; `undefined` when the answer carried none (the caller keeps the old one). */
  readonly refreshToken: string | undefined;
  /** When the access token expires, unix seconds; computed from `expiresIn` when the answer lacks it. */
  readonly expires: number;
  /** The access token's lifetime, seconds (3600 when the answer lacks it). */
  readonly expiresIn: number;
  /** Comma-separated scopes, when named. */
  readonly scope: string | undefined;
  /** The app status letter, when named. */
  readonly status: string | undefined;
  /** The portal's `member_id`, when named. */
  readonly memberId: string | undefined;
  /** The portal's REST root, when named. */
  readonly clientEndpoint: string | undefined;
  /** The OAuth server's REST root, when named. */
  readonly serverEndpoint: string | undefined;
  /** The user the chain acts as, or `null`. */
  readonly userId: number | null;
  /** The `domain` field as sent (the token endpoint names the OAuth host there, not the portal). */
  readonly domain: string | undefined;
}

/**
 * What the OAuth host's `app.info` says about the app a token belongs to.
 * @inline
 */
export interface AppInfo {
  /** The `client_id` of the app the token was issued to. */
  readonly clientId: string;
  /** The portal the app is installed on. */
  readonly memberId: string;
  /** The portal's domain, when the answer names it. */
  readonly domain: string | undefined;
  /** The portal's REST root, when the answer names it. */
  readonly clientEndpoint: string | undefined;
  /** The token's scopes, when named. */
  readonly scope: string | undefined;
  /** The app status letter, when named. */
  readonly status: string | undefined;
  /** Whether the installation is finished, when named. */
  readonly installed: boolean | undefined;
}
