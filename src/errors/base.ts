// The base of the error hierarchy: the stable codes, the options every error takes, the abstract
// class with its `code`, and the search for one of them behind an SDK error.

import { observe } from '../observe.js';

/**
 * Every stable error code this library throws, as constants.
 *
 * Compare `error.code` with these rather than with `instanceof` when errors may cross a module
 * boundary (ESM and CJS copies of the library are different classes).
 */
export const ErrorCode = {
  /** The lifecycle event or app-page request could not be parsed or failed validation. */
  InvalidEvent: 'INVALID_EVENT',
  /** The `event` field names an event this library does not handle. */
  UnknownEvent: 'UNKNOWN_EVENT',
  /** No record exists for the portal in the store. */
  PortalNotInstalled: 'PORTAL_NOT_INSTALLED',
  /** The portal's chain was revoked (the app was uninstalled, unpaid, or the chain was lost). */
  PortalRevoked: 'PORTAL_REVOKED',
  /** The OAuth server refused a token request for good (`invalid_grant`, `wrong_client`, ...). */
  OAuthRejected: 'OAUTH_REJECTED',
  /** The OAuth server could not be reached, timed out, or answered 5xx; retrying later may work. */
  OAuthUnavailable: 'OAUTH_UNAVAILABLE',
  /** The OAuth server answered something that is not a valid token response. */
  OAuthInvalidResponse: 'OAUTH_INVALID_RESPONSE',
  /** A lifecycle event or authorization result could not be proven genuine. */
  VerificationFailed: 'VERIFICATION_FAILED',
  /** The token store failed (I/O, connection, corrupt record). */
  StoreFailure: 'STORE_FAILURE',
  /** The per-portal lock could not be obtained in time. */
  LockTimeout: 'LOCK_TIMEOUT',
  /** An authorization-code `state` is malformed, forged, expired or already used. */
  InvalidState: 'INVALID_STATE',
  /** The pool was closed. */
  PoolClosed: 'POOL_CLOSED',
  /** No live chain is kept for the user a client was asked for. */
  UserChainMissing: 'USER_CHAIN_MISSING',
  /** The OAuth host refused the app's own credentials (`invalid_client`, `wrong_client`). */
  OAuthCredentials: 'OAUTH_CREDENTIALS',
  /** The portal's chain is paused because its plan is unpaid (`PAYMENT_REQUIRED`); it may come back. */
  PortalSuspended: 'PORTAL_SUSPENDED',
  /** A handler was called with a method it does not serve (405). */
  MethodNotAllowed: 'METHOD_NOT_ALLOWED',
  /** A request body exceeded the handler's limit (413). */
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  /** A request body was neither form-urlencoded nor JSON (415). */
  UnsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
  /** An unexpected failure inside a handler (500). */
  Internal: 'INTERNAL_ERROR',
  /** A stored token could not be decrypted: unknown key id, wrong key, or a truncated or altered value. */
  DecryptionFailed: 'DECRYPTION_FAILED',
  /** The install spool is full (its entry or byte bound); the event could not be kept. */
  SpoolFull: 'SPOOL_FULL',
  /** A REST request would have had to wait for the portal's request budget past the caller's limit. */
  RateLimited: 'RATE_LIMITED',
  /** An option is not what it must be, or a function given as an option threw or returned something invalid. */
  InvalidOptions: 'INVALID_OPTIONS',
  /** A public handler's proof (a token request, `app.info`) was refused: a ceiling on proofs was reached. */
  ProofsThrottled: 'PROOFS_THROTTLED',
  /** An answer from a portal or an OAuth host was larger than the configured cap. */
  ResponseTooLarge: 'RESPONSE_TOO_LARGE',
  /** An argument was refused before anything was read or written (bad input from the caller). */
  InvalidArgument: 'INVALID_ARGUMENT',
  /** A request carrying a secret was about to go to a host the configuration does not trust; it was not sent. */
  UntrustedHost: 'UNTRUSTED_HOST',
} as const;

/** The union of every value in {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Options accepted by every error of this library.
 * @inline
 */
export interface PortalTokensErrorOptions {
  /** The underlying error, kept for debugging; never rendered into `message`. */
  cause?: unknown;
  /** The portal concerned, when known. A `member_id` is an identifier, not a secret. */
  memberId?: string | undefined;
}

/**
 * The base class of every error this library throws on purpose.
 *
 * Messages never contain token values, client secrets or application tokens.
 */
export abstract class PortalTokensError extends Error {
  /** A stable, machine-readable code from {@link ErrorCode}. */
  abstract readonly code: ErrorCode;
  /** The portal concerned, when known. */
  readonly memberId: string | undefined;

  constructor(message: string, options: PortalTokensErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.memberId = options.memberId;
    observe(() => ({ kind: 'error', error: this }));
  }
}

/**
 * Finds this library's error behind an error thrown by the SDK.
 *
 * A refresh failure inside a `B24OAuth` call reaches the caller wrapped in the SDK's `AjaxError`
 * (`originalError`) or as a `cause`; this walks both chains and returns the first
 * {@link PortalTokensError}, or `undefined`.
 */
export function findPortalTokensError(error: unknown): PortalTokensError | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== null && typeof current === 'object' && !seen.has(current)) {
    if (current instanceof PortalTokensError) return current;
    seen.add(current);
    const candidate = current as { originalError?: unknown; cause?: unknown };
    current = candidate.originalError ?? candidate.cause;
  }
  return undefined;
}
