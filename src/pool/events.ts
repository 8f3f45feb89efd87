// The pool's typed events and counters.

/** Why a client left the pool's cache. */
export type EvictionReason = 'capacity' | 'manual' | 'revoked' | 'lifecycle' | 'endpoint-changed' | 'closed';

/** Payloads of the events a {@link PortalClientPool} emits, by event name. */
export interface PoolEventMap {
  /** This process refreshed the chain at the OAuth host and persisted the new pair. */
  refreshed: { readonly memberId: string; readonly version: number; readonly expires: number; readonly reason: RefreshReason };
  /** This process took a pair another worker (or an install) had already stored, without a network call. */
  adopted: { readonly memberId: string; readonly version: number };
  /** The OAuth server refused the chain for good; the portal is marked revoked in the store. */
  revoked: { readonly memberId: string; readonly reason: string };
  /** A cached client was dropped. */
  evicted: { readonly memberId: string; readonly reason: EvictionReason };
  /** A verified install was stored (emitted via {@link PortalClientPool.notify}). */
  installed: { readonly memberId: string };
  /** A verified update was stored. */
  updated: { readonly memberId: string };
  /** An authenticated uninstall removed the portal. */
  uninstalled: { readonly memberId: string };
  /** A chain obtained through the authorization-code flow was stored. */
  authorized: { readonly memberId: string };
  /** A refresh failed without changing anything (OAuth host unavailable, store failure, lock timeout). */
  'refresh-failed': { readonly memberId: string; readonly code: string };
}

/** Names of the pool's events. */
export type PoolEventName = keyof PoolEventMap;

/** Why the pool refreshed a chain. */
export type RefreshReason = 'expiring' | 'rejected' | 'keep-alive';

/** A snapshot of the pool's counters, from {@link PortalClientPool.stats}. All counts since construction. */
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
}
