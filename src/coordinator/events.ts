// The refresh coordinator's events: what it reports about a chain (refreshed, adopted, revoked,
// suspended, credentials refused, a failed or ended refresh, a lock wait) and why it drops a cached
// client. Its own types: the pool emits these with its own events (src/pool-events.ts), and names
// them for users; the coordinator knows nothing of the pool's.

import type { ChainId } from '../store/token-store.js';

/**
 * The payload of every pool event: the portal concerned.
 * @inline
 */
export interface PortalEvent {
  /** The portal's `member_id`. */
  readonly memberId: string;
}

/**
 * The payload of an event about one chain of a portal.
 * @inline
 */
export interface ChainEvent extends PortalEvent {
  /** The chain concerned: `'portal'` or `'user:<id>'`. */
  readonly chain: ChainId;
}

/**
 * Payload of `refreshed`.
 * @inline
 */
export interface RefreshedEvent extends ChainEvent {
  /** The stored record's version after the write. */
  readonly version: number;
  /** When the new access token expires, unix seconds. */
  readonly expires: number;
  /** Why the chain was refreshed. */
  readonly reason: RefreshReason;
}

/**
 * Payload of `adopted`.
 * @inline
 */
export interface AdoptedEvent extends ChainEvent {
  /** The version of the record adopted. */
  readonly version: number;
}

/**
 * Payload of `revoked`.
 * @inline
 */
export interface RevokedEvent extends ChainEvent {
  /** The OAuth `error` string that revoked the chain, such as `invalid_grant`. */
  readonly reason: string;
}

/**
 * Payload of `suspended`.
 * @inline
 */
export interface SuspendedEvent extends ChainEvent {
  /** The OAuth `error` string, `PAYMENT_REQUIRED`. */
  readonly reason: string;
  /** When the chain is tried again, unix ms. */
  readonly retryAt: number;
}

/**
 * Payload of `credentials-rejected`.
 * @inline
 */
export interface CredentialsRejectedEvent extends ChainEvent {
  /** The OAuth `error` string, `invalid_client` or `wrong_client`. */
  readonly oauthError: string;
  /** Until when this pool sends no refresh, unix ms. */
  readonly pausedUntil: number;
}

/**
 * Payload of `refresh-failed`.
 * @inline
 */
export interface RefreshFailedEvent extends ChainEvent {
  /** The error's stable code (see `ErrorCode`), or `UNKNOWN`. */
  readonly code: string;
}

/**
 * How one request to an OAuth host for a new pair ended.
 * @inline
 */
export type RefreshOutcome = 'refreshed' | 'revoked' | 'suspended' | 'credentials-rejected' | 'unavailable' | 'failed';

/**
 * Payload of `refresh-attempt`: one refresh request sent to an OAuth host, and its persisting.
 * @inline
 */
export interface RefreshAttemptEvent extends ChainEvent {
  /** Why the chain was refreshed. */
  readonly reason: RefreshReason;
  /** How it ended. */
  readonly outcome: RefreshOutcome;
  /** When the request was sent, unix ms by the pool's clock. */
  readonly startedAt: number;
  /** From sending the request to the new pair stored (or the failure), ms. */
  readonly durationMs: number;
}

/**
 * Payload of `lock-wait`: this process waited for another holder of a chain's lock.
 * @inline
 */
export interface LockWaitEvent extends ChainEvent {
  /** How the wait ended: the lock taken, the other holder's pair adopted, or `LockTimeoutError`. */
  readonly outcome: 'acquired' | 'adopted' | 'timeout';
  /** How long it waited, ms. */
  readonly waitedMs: number;
}

/**
 * Why the pool refreshed a chain.
 * @inline
 */
export type RefreshReason = 'expiring' | 'rejected' | 'keep-alive' | 'reactivate' | 'confirm';

/**
 * Payloads of the events the refresh coordinator emits, by event name (the pool emits them as its own).
 * @inline
 */
export interface CoordinatorEventMap {
  /** This process refreshed the chain at the OAuth host and persisted the new pair. */
  refreshed: RefreshedEvent;
  /** This process took a pair another worker (or an install) had already stored, without a network call. */
  adopted: AdoptedEvent;
  /** The OAuth server refused the chain for good; the portal is marked revoked in the store. */
  revoked: RevokedEvent;
  /** The OAuth host answered `PAYMENT_REQUIRED`: the chain is suspended until it is tried again. */
  suspended: SuspendedEvent;
  /**
   * The OAuth host refused the app's own credentials: no record changed; this pool pauses its
   * refreshes. Emitted once per pause, not once per portal.
   */
  'credentials-rejected': CredentialsRejectedEvent;
  /** A refresh failed without changing anything (OAuth host unavailable, store failure, lock timeout). */
  'refresh-failed': RefreshFailedEvent;
  /** A refresh request was sent to an OAuth host and has ended (for metrics and traces). */
  'refresh-attempt': RefreshAttemptEvent;
  /** A wait for another holder of a chain's lock has ended (for metrics). */
  'lock-wait': LockWaitEvent;
}

/**
 * Names of the coordinator's events.
 * @inline
 */
export type CoordinatorEventName = keyof CoordinatorEventMap;

/**
 * Why the coordinator drops a chain's cached client: revoked, gone (uninstalled or deleted), or moved.
 * @inline
 */
export type DropReason = 'revoked' | 'lifecycle' | 'endpoint-changed';
