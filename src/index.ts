/**
 * b24-portal-tokens: multi-tenant Bitrix24 token management.
 *
 * Table of contents: errors; the TokenStore contract and its built-in stores; lifecycle events;
 * the client pool; the lifecycle handler and its HTTP adapters; the authorization-code flow.
 * @packageDocumentation
 */

// Errors
export * from './errors.js';

// The TokenStore contract
export type * from './store/token-store.js';

// Lifecycle events
export type * from './events/types.js';
export { parseInstallEvent, parseAppPageRequest } from './events/parse.js';
export type { AppPageRequestInput, EventBody, ParseEventOptions } from './events/parse.js';

// The client pool
export { PortalClientPool, SDK_REFRESH_TOKEN_PLACEHOLDER } from './pool/pool.js';
export type {
  PortalClientPoolOptions,
  PoolLifecycleChange,
  SweepOptions,
  SweepResult,
} from './pool/pool.js';
export type * from './pool/events.js';

// The OAuth host client
export { OAuthClient, oauthBaseFromServerEndpoint } from './oauth/oauth-client.js';
export type { AppInfo, FetchLike, OAuthClientOptions, TokenResponse } from './oauth/oauth-client.js';

// Logging
export { silentLogger } from './logger.js';
export type { Logger, LogMethod } from './logger.js';
