// The pool's typed events and counters: plain types. The coordinator's events (refreshes, adoptions,
// revocations, lock waits) are its own (src/coordinator/events.ts); the pool emits them with its own
// (evictions, lifecycle changes, the request budget's), and this file names them all for users.

import type { BudgetEvent, PortalBudgetStats } from './budget/budget.js';
import type { ChainEvent, CoordinatorEventMap, DropReason, PortalEvent } from './coordinator/events.js';

export type { BudgetEvent, PortalBudgetStats };
export type {
  AdoptedEvent,
  ChainEvent,
  CredentialsRejectedEvent,
  DropReason,
  LockWaitEvent,
  PortalEvent,
  RefreshAttemptEvent,
  RefreshedEvent,
  RefreshFailedEvent,
  RefreshOutcome,
  RefreshReason,
  RevokedEvent,
  SuspendedEvent,
} from './coordinator/events.js';

/**
 * Why a client left the pool's cache: the coordinator dropped it (revoked, gone, moved), or the pool did.
 * @inline
 */
export type EvictionReason = DropReason | 'capacity' | 'manual' | 'closed' | 'resync';

/**
 * Payload of `evicted`.
 * @inline
 */
export interface EvictedEvent extends ChainEvent {
  /** Why the client left the cache. */
  readonly reason: EvictionReason;
}

/** Payloads of the events a `PortalClientPool` emits, by event name: the coordinator's and the pool's own. */
export interface PoolEventMap extends CoordinatorEventMap {
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
