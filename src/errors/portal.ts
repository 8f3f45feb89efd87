// Errors of the pool about one portal's chains: not installed, revoked, suspended, a user's chain
// missing, a lock not obtained in time; and the closed pool.

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';
import { escapeText } from './escape.js';

/** An instant for a message: ISO 8601 when it is one, else as given. */
const instant = (ms: number): string => (Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms));

/** `clientFor` was asked for a portal that has no record in the store. */
export class PortalNotInstalledError extends PortalTokensError {
  readonly code = ErrorCode.PortalNotInstalled;
  constructor(memberId: string, options: PortalTokensErrorOptions = {}) {
    super(`Portal ${escapeText(memberId)} is not installed`, { ...options, memberId });
  }
}

/** The portal's token chain is revoked; only a reinstall (or the authorization-code flow) revives it. */
export class PortalRevokedError extends PortalTokensError {
  readonly code = ErrorCode.PortalRevoked;
  /** The OAuth error string that revoked it (`invalid_grant`, ...), when known. */
  readonly reason: string | undefined;
  constructor(memberId: string, reason?: string, options: PortalTokensErrorOptions = {}) {
    super(`Portal ${escapeText(memberId)} is revoked${reason ? ` (${escapeText(reason)})` : ''}; it must be reinstalled`, {
      ...options,
      memberId,
    });
    this.reason = reason;
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
    super(`Portal ${escapeText(memberId)} is suspended (PAYMENT_REQUIRED); the chain is tried again after ${instant(retryAt)}`, {
      ...options,
      memberId,
    });
    this.retryAt = retryAt;
  }
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
    super(`Portal ${escapeText(memberId)} holds no live chain for user ${escapeText(String(userId))}; the user must open the app again`, {
      ...options,
      memberId,
    });
    this.userId = userId;
  }
}

/** The per-portal lock was held by another worker for longer than the caller was willing to wait. */
export class LockTimeoutError extends PortalTokensError {
  readonly code = ErrorCode.LockTimeout;
  constructor(memberId: string, waitedMs: number, options: PortalTokensErrorOptions = {}) {
    super(`Timed out after ${waitedMs} ms waiting for the refresh lock of portal ${escapeText(memberId)}`, {
      ...options,
      memberId,
    });
  }
}

/** The pool was closed; no more clients are handed out. */
export class PoolClosedError extends PortalTokensError {
  readonly code = ErrorCode.PoolClosed;
  constructor() {
    super('The PortalClientPool is closed');
  }
}
