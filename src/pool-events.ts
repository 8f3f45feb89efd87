// The pool's typed events and counters: plain types, below the coordinator and the pool that emit them.

import type { ChainId } from './store/token-store.js';
import type { BudgetEvent, PortalBudgetStats } from './budget/budget.js';

export type { BudgetEvent, PortalBudgetStats };

/**
 * Why a client left the pool's cache.
 * @inline
 */
export type EvictionReason = 'capacity' | 'manual' | 'revoked' | 'lifecycle' | 'endpoint-changed' | 'closed' | 'resync';

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
 * Payload of `evicted`.
 * @inline
 */
export interface EvictedEvent extends ChainEvent {
  /** Why the client left the cache. */
  readonly reason: EvictionReason;
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

/** Payloads of the events a `PortalClientPool` emits, by event name. */
export interface PoolEventMap {
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
  /** A cached client was dropped. */
  evicted: EvictedEvent;
  /** A verified install was stored (emitted via `PortalClientPool.notify`). */
  installed: PortalEvent;
  /** A verified update was stored. */
  updated: PortalEvent;
  /** An authenticated uninstall removed the portal. */
  uninstalled: PortalEvent;
  /** A chain obtained through the authorization-code flow was stored. */
  authorized: PortalEvent;
  /** A refresh failed without changing anything (OAuth host unavailable, store failure, lock timeout). */
  'refresh-failed': RefreshFailedEvent;
  /** A refresh request was sent to an OAuth host and has ended (for metrics and traces). */
  'refresh-attempt': RefreshAttemptEvent;
  /** A wait for another holder of a chain's lock has ended (for metrics). */
  'lock-wait': LockWaitEvent;
  /** A REST request waited for its portal's request budget (`ms`: the wait). */
  'budget-wait': BudgetEvent;
  /** A 503 pushed a portal's shared budget back for every worker (`ms`: how far). */
  'budget-push-back': BudgetEvent;
  /** A portal answered 503 `QUERY_LIMIT_EXCEEDED`. */
  'query-limit-exceeded': BudgetEvent;
}

/** Names of the pool's events. */
export type PoolEventName = keyof PoolEventMap;

/**
 * Why the pool refreshed a chain.
 * @inline
 */
export type RefreshReason = 'expiring' | 'rejected' | 'keep-alive' | 'reactivate' | 'confirm';

/**
 * A snapshot of the pool's counters, from `PortalClientPool.stats()`. All counts since construction.
 * @inline
 */
export interface PoolStats {
  /** Clients currently cached. */
  readonly cachedClients: number;
  /** `clientFor` calls answered from the cache. */
  readonly cacheHits: number;
  /** Clients built (cache misses that found an active record). */
  readonly clientsBuilt: number;
  /** Refresh requests this process sent to an OAuth host. */
  readonly refreshes: number;
  /** Pairs adopted from the store instead of refreshing. */
  readonly adoptions: number;
  /** Requests re-sent with the current token after a 401 for a token the chain had moved past. */
  readonly resentRequests: number;
  /** Refresh attempts that failed without changing anything. */
  readonly refreshFailures: number;
  /** Portals this process marked revoked. */
  readonly revocations: number;
  /** Clients dropped from the cache, for any reason. */
  readonly evictions: number;
  /** Times this process had to wait for another holder of a portal's lock. */
  readonly lockWaits: number;
  /** REST requests that waited for their portal's request budget (all portals). */
  readonly budgetWaits: number;
  /** Times a 503 pushed a portal's shared budget back (all portals). */
  readonly budgetPushBacks: number;
  /** 503 `QUERY_LIMIT_EXCEEDED` answers (all portals). */
  readonly queryLimitExceeded: number;
  /** The request budget's counters per portal (`memberId` → counters), for portals that had any. */
  readonly budgets: { readonly [memberId: string]: PortalBudgetStats };
}
