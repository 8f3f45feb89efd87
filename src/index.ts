/**
 * b24-portal-tokens: multi-tenant Bitrix24 token management.
 *
 * Table of contents: errors; the TokenStore contract and its built-in stores; lifecycle events;
 * REST events; the client pool; the lifecycle and REST event handlers and their HTTP adapters; the authorization-code flow.
 * @packageDocumentation
 */

// Errors
export {
  ErrorCode,
  findPortalTokensError,
  InvalidEventError,
  InvalidStateError,
  LockTimeoutError,
  OAuthInvalidResponseError,
  OAuthRejectedError,
  OAuthUnavailableError,
  PoolClosedError,
  PortalNotInstalledError,
  PortalRevokedError,
  PortalTokensError,
  StoreError,
  OAuthCredentialsError,
  PortalSuspendedError,
  UserChainMissingError,
  VerificationFailedError,
  DecryptionError,
  SpoolFullError,
  RateLimitedError,
} from './errors.js';
export type { InvalidEventCode, PortalTokensErrorOptions, DecryptionFailureReason } from './errors.js';

// The TokenStore contract
export type * from './store/token-store.js';
export { PORTAL_CHAIN, userChain } from './store/token-store.js';

// Token stores
export { MemoryTokenStore } from './store/memory/store.js';
export type { MemoryTokenStoreOptions } from './store/memory/store.js';
export { FileTokenStore } from './store/file/store.js';
export type { FileTokenStoreOptions } from './store/file/store.js';

// Encryption at rest (wraps any store) and the install spool (keeps verified installs through a store outage)
export { EncryptedTokenStore } from './store/encrypted/store.js';
export type { EncryptedTokenStoreOptions } from './store/encrypted/store.js';
export type { TokenEncryptionKey, TokenEncryptionOptions } from './store/encrypted/token-cipher.js';
export type { RekeyFailure, RekeyOptions, RekeyResult } from './store/encrypted/rekey.js';
export { FileInstallSpool } from './spool/file-spool.js';
export type { FileInstallSpoolOptions, SpoolApplyOutcome, SpoolDrainResult, SpoolEncryptionOptions } from './spool/file-spool.js';
export type { SpooledEntry, SpoolEntry, SpoolEntryKind } from './spool/entry.js';

// Lifecycle events
export type * from './events/types.js';
export { parseInstallEvent } from './events/parse.js';
export { parseAppPageRequest } from './events/app-page.js';
export type { AppPageRequestInput } from './events/app-page.js';
export type { EventBody, ParseEventOptions } from './events/options.js';

// REST events (ONCRMDEALADD, ...: handlers bound with event.bind)
export { parseRestEvent, LIFECYCLE_EVENT_NAMES } from './events/rest.js';

// The client pool
export { BITRIX24_PLAN_LIMITS, SDK_LIMITER_OFF, withRequestDeadline } from './budget/budget.js';
export type { RequestBudgetLimits, RequestDeadline } from './budget/budget.js';
export { PortalClientPool } from './pool/pool.js';
export type { BackoffPolicy } from './coordinator/backoff.js';
export type { ClientForOptions, PortalClientPoolOptions, PoolLifecycleChange, SweepOptions, SweepResult } from './pool/pool.js';
export type * from './pool-events.js';

// What the lifecycle handler and the authorization flow need (a PortalClientPool is one)
export type { ChainStatus, EventHandlerContext, LifecycleChange, OAuthHostClient, PortalTokensContext } from './context.js';

// The lifecycle handler and its HTTP adapters
export { createLifecycleHandler } from './http/handler.js';
export type { LifecycleHandler, LifecycleHandlerOptions } from './http/handler.js';
export { LifecycleAnswerError } from './http/answers.js';
export type { LifecycleAnswerCode, LifecycleAnswerErrorOptions } from './http/answers.js';
export { createEventHandler } from './http/events.js';
export type { EventHandler, EventHandlerOptions, RestEventContext, RestEventErrorInfo, RestEventListener } from './http/events.js';
export { toNodeHandler } from './http/node.js';
export type { NodeHandlerOptions, NodeRequestHandler } from './http/node.js';
export { toFetchHandler } from './http/fetch.js';
export type { FetchHandlerOptions, FetchRequestHandler } from './http/fetch.js';
export { DEFAULT_MAX_BODY_BYTES } from './body.js';
export type { HeaderBag, JsonValue, PlainHandler, PlainRequest, PlainResponse, QueryInput } from './plain.js';
export { DEFAULT_TRUSTED_OAUTH_HOSTS } from './protocol/oauth-hosts.js';
export { portalRecordFromAuth } from './chains/record.js';

// The authorization-code flow
export { createAuthorizationFlow, MemoryUsedStateStore } from './oauth/authorize.js';
export type {
  AuthorizationFlow,
  AuthorizationFlowOptions,
  AuthorizationResult,
  AuthorizeUrlOptions,
  MemoryUsedStateStoreOptions,
  UsedStateStore,
} from './oauth/authorize.js';

// What the OAuth host answers (AppInfo, TokenResponse) and the fetch the pool takes
export type { AppInfo, FetchLike, TokenResponse } from './oauth/oauth-client.js';

// Time (the pool, the handler and the stores wait on a Clock; ManualClock drives them in tests)
export { ManualClock, systemClock } from './clock.js';
export type { Clock } from './clock.js';

// Logging
export { silentLogger } from './logger.js';
export { OBSERVE_CHANNEL } from './observe.js';
export type {
  ErrorObservation,
  EventObservation,
  LogObservation,
  Observation,
  ObservedPool,
  PoolObservation,
  ResponseObservation,
} from './observe.js';
export type { Logger, LogMethod } from './logger.js';

// hygiene: options checked when given
export { InvalidOptionsError } from './errors/options.js';
export { userIdOf } from './store/token-store.js';

// core (issue 20): the chain core's public shapes: what onUninstalled hears, what pool.visit answers
export type { UninstallOutcome } from './chains/kit.js';
export type { VisitOutcome } from './chains/page.js';
// outbound (issue 22 cases 1, 4, 5): the ceilings on public handlers' proofs, and the answer-size cap
export { ProofGate, resolveProofLimits } from './guard/proof-gate.js';
export type { ProofGateStats, ProofLimits, ResolvedProofLimits } from './guard/proof-gate.js';
export { ProofsThrottledError, ResponseTooLargeError } from './errors.js';
// inbound (issue 22 cases 2, 3, 6): the bad-argument error, the event handler's counts, low-priority REST requests
export { InvalidArgumentError } from './errors.js';
export type { EventHandlerStats } from './http/events.js';
export { withBudgetShare } from './budget/priority.js';
// doors: where a token may be sent (send-time trust checks; issue 20 case 3, issue 22 case 5)
export { UntrustedHostError } from './errors.js';
export { isPortalDomain, isPrivateHost } from './protocol/rest-roots.js';
export type { RestRootPortal, RestRootRules } from './protocol/rest-roots.js';
export type { SweepUnreadable } from './pool/sweep.js';
