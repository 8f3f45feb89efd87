// The library's error hierarchy: one abstract base with a stable `code`, one subclass per failure kind.
// No message ever contains a token value; the underlying error, when there is one, is in `cause`.
//
// The classes live in ./errors/, one module per layer; this file hands every one of them on:
//
//   base.ts     ErrorCode, PortalTokensError and its options, findPortalTokensError
//   events.ts   InvalidEventError, VerificationFailedError
//   oauth.ts    OAuthRejectedError, OAuthUnavailableError, OAuthInvalidResponseError,
//               OAuthCredentialsError, InvalidStateError
//   portal.ts   PortalNotInstalledError, PortalRevokedError, PortalSuspendedError,
//               UserChainMissingError, LockTimeoutError, PoolClosedError
//   store.ts    StoreError, DecryptionError, SpoolFullError
//   budget.ts   RateLimitedError
//   options.ts  InvalidOptionsError (and the checks of options when they are given)
//   limits.ts   ProofsThrottledError, ResponseTooLargeError
//   input.ts    InvalidArgumentError (escape.ts: caller-supplied text inside messages)
//   trust.ts    UntrustedHostError

export { ErrorCode, PortalTokensError, findPortalTokensError } from './errors/base.js';
export type { PortalTokensErrorOptions } from './errors/base.js';
export { InvalidEventError, VerificationFailedError } from './errors/events.js';
export type { InvalidEventCode } from './errors/events.js';
export {
  OAuthRejectedError,
  OAuthUnavailableError,
  OAuthInvalidResponseError,
  OAuthCredentialsError,
  InvalidStateError,
} from './errors/oauth.js';
export {
  PortalNotInstalledError,
  PortalRevokedError,
  PortalSuspendedError,
  UserChainMissingError,
  LockTimeoutError,
  PoolClosedError,
} from './errors/portal.js';
export { StoreError, DecryptionError, SpoolFullError } from './errors/store.js';
export type { DecryptionFailureReason } from './errors/store.js';
export { RateLimitedError } from './errors/budget.js';
export { InvalidOptionsError } from './errors/options.js';
export { ProofsThrottledError, ResponseTooLargeError } from './errors/limits.js';
export { InvalidArgumentError } from './errors/input.js';
export { UntrustedHostError } from './errors/trust.js';

// What is terminal is a Bitrix24 fact; it lives with the other OAuth facts. Re-exported here for
// callers inside the library that still import it from this module (not from the root entry).
export { TERMINAL_OAUTH_ERRORS } from './protocol/oauth-errors.js';
