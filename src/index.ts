/**
 * b24-portal-tokens: multi-tenant Bitrix24 token management.
 *
 * The root entry holds what an app uses, grouped by what it does: set up the pool, pick a store,
 * handle Bitrix24's events, call Bitrix24, and tell errors apart. What a store author needs (the
 * record, chain and change-feed types) is in `b24-portal-tokens/store`; test tools (the stand-in
 * Bitrix24, the conformance suite, `ManualClock`) are in `b24-portal-tokens/testing`; the database
 * stores are in `b24-portal-tokens/stores/*`; OpenTelemetry and the diagnostics channel are in
 * `b24-portal-tokens/otel`.
 *
 * `npm run check:exports` compares this list with `api/root-exports.txt`: a name added here needs a
 * line in the snapshot and a mention under `## [Unreleased]` in CHANGELOG.md.
 * @packageDocumentation
 */

// ── Set up: the pool, its options, and the clock and logger it takes ──────────────────────────────
export { PortalClientPool } from './pool/pool.js';
export type { PortalClientPoolOptions } from './pool/pool.js';
export type { PoolEventMap } from './pool-events.js';
export { BITRIX24_PLAN_LIMITS, SDK_LIMITER_OFF } from './budget/budget.js';
export type { RequestBudgetLimits } from './budget/budget.js';
export { systemClock } from './clock.js';
export type { Clock } from './clock.js';
export { silentLogger } from './logger.js';
export type { Logger } from './logger.js';
export type { RestRootRules } from './guard/rest-roots.js';

// ── Store: where the tokens live (PostgreSQL, Redis, SQLite: `b24-portal-tokens/stores/*`) ─────────
export type { TokenStore } from './store/token-store.js';
export { MemoryTokenStore } from './store/memory/store.js';
export { FileTokenStore } from './store/file/store.js';
export { EncryptedTokenStore } from './store/encrypted/store.js';

// ── Handle events: install/uninstall, app pages, REST events, the authorization-code flow ──────────
export { createLifecycleHandler } from './http/handler.js';
export type { LifecycleHandlerOptions } from './http/handler.js';
export { FileInstallSpool } from './spool/file-spool.js';
export { ProofGate } from './guard/proof-gate.js';
export { createEventHandler } from './http/events.js';
export type { EventHandlerOptions, RestEventContext } from './http/events.js';
export { toNodeHandler } from './http/node.js';
export { toFetchHandler } from './http/fetch.js';
export { toFastifyPlugin } from './http/fastify.js';
export type { PlainRequest, PlainResponse } from './plain.js';
export { parseInstallEvent } from './events/parse.js';
export { parseAppPageRequest } from './events/app-page.js';
export { parseRestEvent } from './events/rest.js';
export type { LifecycleEvent, AppPageRequest, RestEvent } from './events/types.js';
export { createAuthorizationFlow, MemoryUsedStateStore } from './http/authorize.js';
export type { AuthorizationFlowOptions, UsedStateStore } from './http/authorize.js';

// ── Call Bitrix24: `pool.clientFor(memberId)` answers the SDK's B24OAuth; these shape its requests ──
export { withRequestDeadline } from './budget/budget.js';
export { withBudgetShare } from './budget/priority.js';

// ── Errors: every error is a PortalTokensError with a stable `code` (ErrorCode) ─────────────────────
export { ErrorCode, findPortalTokensError, PortalTokensError } from './errors.js';
export {
  DecryptionError,
  InvalidArgumentError,
  InvalidEventError,
  InvalidOptionsError,
  InvalidStateError,
  LockTimeoutError,
  OAuthCredentialsError,
  OAuthInvalidResponseError,
  OAuthRejectedError,
  OAuthUnavailableError,
  PoolClosedError,
  PortalNotInstalledError,
  PortalRevokedError,
  PortalSuspendedError,
  ProofsThrottledError,
  RateLimitedError,
  ResponseTooLargeError,
  SpoolFullError,
  StoreError,
  UntrustedHostError,
  UserChainMissingError,
  VerificationFailedError,
} from './errors.js';
export { LifecycleAnswerError } from './http/answers.js';

// ── Pending merges: other branches append their new root exports below this line; the integrator
// ── folds each into the group above it belongs to (and into api/root-exports.txt and the CHANGELOG).
