// Errors of the OAuth host and the authorization-code flow: a refused request, an unreachable host,
// an unusable answer, refused client credentials, an invalid `state`.

import { isTerminalOAuthError } from '../protocol/oauth-errors.js';
import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';
import { escapeText } from './escape.js';

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
    super(`OAuth server rejected the request: ${escapeText(oauthError)} (HTTP ${status})`, options);
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
    super(`The OAuth host refused this app's client credentials (${escapeText(oauthError)}); check clientId and clientSecret`, options);
    this.oauthError = oauthError;
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
