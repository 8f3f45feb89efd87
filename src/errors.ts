// The library's error hierarchy: one abstract base with a stable `code`, one subclass per failure kind.
// No message ever contains a token value; the underlying error, when there is one, is in `cause`.

import { observe } from './observe.js';
import { isTerminalOAuthError } from './protocol/oauth-errors.js';

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
} as const;

/** The union of every value in {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options accepted by every error of this library. */
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

/** Why an event failed to parse: {@link ErrorCode.InvalidEvent} or {@link ErrorCode.UnknownEvent}. */
export type InvalidEventCode = typeof ErrorCode.InvalidEvent | typeof ErrorCode.UnknownEvent;

/**
 * A lifecycle event or app-page request was malformed, too large, or named an unknown event.
 *
 * `field` names the offending field in Bitrix24's own spelling (`auth[expires]`, `event`, `body`);
 * `reason` says what was wrong with it. The field's value is never included.
 */
export class InvalidEventError extends PortalTokensError {
  readonly code: InvalidEventCode;
  /** The offending field, such as `auth[member_id]`, or `body` for the input as a whole. */
  readonly field: string;
  /**
   * A short machine-readable reason: `missing`, `type`, `format`, `too_large`, `too_many_keys`,
   * `too_deep`, `duplicate`, `content_type`, `unknown`, `syntax`, `lifecycle` (a lifecycle event given to
   * `parseRestEvent`).
   */
  readonly reason: string;

  constructor(
    field: string,
    reason: string,
    message: string,
    options: PortalTokensErrorOptions & { code?: InvalidEventCode } = {},
  ) {
    super(message, options);
    this.code = options.code ?? ErrorCode.InvalidEvent;
    this.field = field;
    this.reason = reason;
  }
}

/** `clientFor` was asked for a portal that has no record in the store. */
export class PortalNotInstalledError extends PortalTokensError {
  readonly code = ErrorCode.PortalNotInstalled;
  constructor(memberId: string, options: PortalTokensErrorOptions = {}) {
    super(`Portal ${memberId} is not installed`, { ...options, memberId });
  }
}

/** The portal's token chain is revoked; only a reinstall (or the authorization-code flow) revives it. */
export class PortalRevokedError extends PortalTokensError {
  readonly code = ErrorCode.PortalRevoked;
  /** The OAuth error string that revoked it (`invalid_grant`, ...), when known. */
  readonly reason: string | undefined;
  constructor(memberId: string, reason?: string, options: PortalTokensErrorOptions = {}) {
    super(`Portal ${memberId} is revoked${reason ? ` (${reason})` : ''}; it must be reinstalled`, {
      ...options,
      memberId,
    });
    this.reason = reason;
  }
}

// What is terminal is a Bitrix24 fact; it lives with the other OAuth facts. Re-exported here for
// callers inside the library that still import it from this module (not from the root entry).
export { TERMINAL_OAUTH_ERRORS } from './protocol/oauth-errors.js';

/**
 * The OAuth server answered with an `error`: retrying the same request will not help.
 *
 * `terminal` is true for `invalid_grant`, `NOT_INSTALLED`, `PAYMENT_REQUIRED`, `invalid_client`
 * and `wrong_client`: the chain cannot be refreshed. Other strings (`invalid_request`, `invalid_scope`, ...)
 * say the request was wrong, not that the portal is lost.
 */
export class OAuthRejectedError extends PortalTokensError {
  readonly code = ErrorCode.OAuthRejected;
  /** The `error` string from the OAuth server, such as `invalid_grant`. */
  readonly oauthError: string;
  /** The HTTP status of the answer. */
  readonly status: number;
  /** Whether the error means the chain cannot be refreshed (`invalid_grant`, `wrong_client`, ...). */
  readonly terminal: boolean;
  constructor(oauthError: string, status: number, options: PortalTokensErrorOptions = {}) {
    super(`OAuth server rejected the request: ${oauthError} (HTTP ${status})`, options);
    this.oauthError = oauthError;
    this.status = status;
    this.terminal = isTerminalOAuthError(oauthError);
  }
}

/** The OAuth server was unreachable, timed out or answered 5xx. Nothing was changed; retry later. */
export class OAuthUnavailableError extends PortalTokensError {
  readonly code = ErrorCode.OAuthUnavailable;
  /** The HTTP status, or 0 for a network failure or timeout. */
  readonly status: number;
  constructor(message: string, status: number, options: PortalTokensErrorOptions = {}) {
    super(message, options);
    this.status = status;
  }
}

/** The OAuth server answered 2xx with a body that is not a usable token response. */
export class OAuthInvalidResponseError extends PortalTokensError {
  readonly code = ErrorCode.OAuthInvalidResponse;
  constructor(message: string, options: PortalTokensErrorOptions = {}) {
    super(message, options);
  }
}

/** An event or authorization result could not be proven genuine; nothing was stored. */
export class VerificationFailedError extends PortalTokensError {
  readonly code = ErrorCode.VerificationFailed;
  constructor(message: string, options: PortalTokensErrorOptions = {}) {
    super(message, options);
  }
}

/**
 * The token store failed. The original error is in `cause`.
 *
 * `transient` is `true` when the failure is about reaching the store (a connection refused or
 * lost, a timeout, a database restarting) and the same call may succeed later; `false` for a
 * corrupt record, a wrong schema or a misconfiguration, which need a person.
 */
export class StoreError extends PortalTokensError {
  readonly code = ErrorCode.StoreFailure;
  /** Whether retrying later may succeed (the store was unreachable rather than wrong). */
  readonly transient: boolean;
  constructor(message: string, options: PortalTokensErrorOptions & { transient?: boolean | undefined } = {}) {
    super(message, options);
    this.transient = options.transient ?? false;
  }
}

/** The per-portal lock was held by another worker for longer than the caller was willing to wait. */
export class LockTimeoutError extends PortalTokensError {
  readonly code = ErrorCode.LockTimeout;
  constructor(memberId: string, waitedMs: number, options: PortalTokensErrorOptions = {}) {
    super(`Timed out after ${waitedMs} ms waiting for the refresh lock of portal ${memberId}`, {
      ...options,
      memberId,
    });
  }
}

/** An authorization-code `state` was malformed, forged, expired or replayed. */
export class InvalidStateError extends PortalTokensError {
  readonly code = ErrorCode.InvalidState;
  /**
   * `malformed`, `signature`, `expired`, `replayed`, or `portal` (issued for another portal than
   * the one that was authorized).
   */
  readonly reason: 'malformed' | 'signature' | 'expired' | 'replayed' | 'portal';
  constructor(reason: InvalidStateError['reason'], options: PortalTokensErrorOptions = {}) {
    super(`Authorization state is invalid (${reason})`, options);
    this.reason = reason;
  }
}

/** The pool was closed; no more clients are handed out. */
export class PoolClosedError extends PortalTokensError {
  readonly code = ErrorCode.PoolClosed;
  constructor() {
    super('The PortalClientPool is closed');
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

/**
 * `clientFor(memberId, { userId })` found no live chain for that user: the user never opened the
 * app (or the code flow) since the chain was kept, or the chain died. Send the user through the
 * app page (`pool.rememberUser`) or the authorization-code flow again.
 */
export class UserChainMissingError extends PortalTokensError {
  readonly code = ErrorCode.UserChainMissing;
  /** The user whose chain is missing. */
  readonly userId: number;
  constructor(memberId: string, userId: number, options: PortalTokensErrorOptions = {}) {
    super(`Portal ${memberId} holds no live chain for user ${userId}; the user must open the app again`, {
      ...options,
      memberId,
    });
    this.userId = userId;
  }
}

/**
 * The OAuth host refused the app's own `client_id` / `client_secret` (`invalid_client`,
 * `wrong_client`). It says nothing about the portal: no record was changed. Check the worker's
 * configuration; the pool pauses its refreshes for a while so a misconfigured worker cannot
 * hammer the OAuth host.
 */
export class OAuthCredentialsError extends PortalTokensError {
  readonly code = ErrorCode.OAuthCredentials;
  /** The OAuth `error` string, `invalid_client` or `wrong_client`. */
  readonly oauthError: string;
  constructor(oauthError: string, options: PortalTokensErrorOptions = {}) {
    super(`The OAuth host refused this app's client credentials (${oauthError}); check clientId and clientSecret`, options);
    this.oauthError = oauthError;
  }
}

/**
 * The portal's chain is suspended: the OAuth host answered `PAYMENT_REQUIRED`. Unlike a revocation
 * it may clear once the portal's administrator pays; the pool tries the stored chain again after
 * `retryAt` (or at once with `pool.reactivate`).
 */
export class PortalSuspendedError extends PortalTokensError {
  readonly code = ErrorCode.PortalSuspended;
  /** When the pool will try the chain again, unix ms. */
  readonly retryAt: number;
  constructor(memberId: string, retryAt: number, options: PortalTokensErrorOptions = {}) {
    super(`Portal ${memberId} is suspended (PAYMENT_REQUIRED); the chain is tried again after ${new Date(retryAt).toISOString()}`, {
      ...options,
      memberId,
    });
    this.retryAt = retryAt;
  }
}

/** Why a stored token could not be decrypted; see {@link DecryptionError.reason}. */
export type DecryptionFailureReason = 'unknown-key' | 'authentication' | 'malformed' | 'plaintext-refused';

/**
 * A stored token could not be decrypted (an `EncryptedTokenStore` or an encrypted install spool).
 * No token is ever returned in its place, and the pool never treats it as a revocation: the record
 * is left as it is. The message names the portal, chain, field and key id, never the value or a key.
 *
 * `reason`: `unknown-key` (no key with the stored key id was configured), `authentication` (a
 * wrong key, or a value that was altered, truncated or moved from another record), `malformed`
 * (not a well-formed encrypted value), `plaintext-refused` (a plaintext token while
 * `allowPlaintext` is `false`).
 */
export class DecryptionError extends PortalTokensError {
  readonly code = ErrorCode.DecryptionFailed;
  /** The key id stored beside the value, when one could be read. */
  readonly keyId: string | undefined;
  /** The record's chain (`'portal'` or `'user:<id>'`). */
  readonly chain: string;
  /** The field that failed: `accessToken`, `refreshToken` or `applicationToken`. */
  readonly field: string;
  /** Why it failed. */
  readonly reason: DecryptionFailureReason;
  constructor(
    details: { memberId: string; chain: string; field: string; keyId: string | undefined; reason: DecryptionFailureReason },
    options: Omit<PortalTokensErrorOptions, 'memberId'> = {},
  ) {
    const key = details.keyId === undefined ? '' : ` (key id ${details.keyId})`;
    super(
      `Cannot decrypt the ${details.field} of portal ${details.memberId}, chain ${details.chain}${key}: ${DECRYPTION_TEXT[details.reason]}`,
      { ...options, memberId: details.memberId },
    );
    this.keyId = details.keyId;
    this.chain = details.chain;
    this.field = details.field;
    this.reason = details.reason;
  }
}

const DECRYPTION_TEXT: Record<DecryptionFailureReason, string> = {
  'unknown-key': 'no key with this id is configured',
  authentication: 'the key is wrong or the value was altered, truncated or moved from another record',
  malformed: 'the stored value is not a well-formed encrypted value',
  'plaintext-refused': 'the value is stored in plaintext and allowPlaintext is false',
};

/**
 * The install spool refused an entry because it holds `maxEntries` entries or `maxBytes` bytes
 * already. The lifecycle handler answers 503: the event was not kept.
 */
export class SpoolFullError extends PortalTokensError {
  readonly code = ErrorCode.SpoolFull;
  /** Which bound was reached: `entries` or `bytes`. */
  readonly limit: 'entries' | 'bytes';
  constructor(limit: 'entries' | 'bytes', options: PortalTokensErrorOptions = {}) {
    super(`The install spool is full (its ${limit === 'entries' ? 'maxEntries' : 'maxBytes'} bound is reached)`, options);
    this.limit = limit;
  }
}

/**
 * A REST request was not sent: the portal's shared request budget (Bitrix24's leaky bucket or a
 * method's operating time) would have made it wait longer than allowed (the pool's
 * `maxBudgetWaitMs`, or the time left before the request's `AbortSignal` fired). Nothing was taken
 * from the budget; retrying after `waitMs` is likely to go through.
 */
export class RateLimitedError extends PortalTokensError {
  readonly code = ErrorCode.RateLimited;
  /** How long the request would have had to wait, ms. */
  readonly waitMs: number;
  /** What held it: the request budget (`'rate'`), a method's operating time, or an abort. */
  readonly reason: 'rate' | 'operating' | 'aborted';
  constructor(memberId: string, waitMs: number, reason: 'rate' | 'operating' | 'aborted', options: PortalTokensErrorOptions = {}) {
    super(
      reason === 'aborted'
        ? `A REST request of portal ${memberId} was aborted while it waited for the request budget`
        : `A REST request of portal ${memberId} would wait ${Math.ceil(waitMs)} ms for the ${reason === 'rate' ? 'request budget' : 'operating-time budget'}, past its limit`,
      { ...options, memberId },
    );
    this.waitMs = waitMs;
    this.reason = reason;
  }
}
