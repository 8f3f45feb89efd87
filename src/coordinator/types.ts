// What the refresh coordinator depends on and what it reports: a store, a refresh function, a clock
// and a logger in; typed events and cache notices out. Nothing here knows the SDK or HTTP.

import type { Clock } from '../clock.js';
import type { BackoffPolicy } from './backoff.js';
import type { Logger } from '../logger.js';
import type { TokenResponse } from '../protocol/oauth-answers.js';
import type { ChainRef, PortalRecord, TokenStore } from '../store/token-store.js';
import type { CoordinatorEventMap, CoordinatorEventName, DropReason, RefreshReason } from './events.js';

/** Sends one refresh of `record`'s chain to its OAuth host. Throws the library's OAuth errors. */
export type RefreshFunction = (record: PortalRecord) => Promise<TokenResponse>;

/**
 * Waits until the store reports a write of `key`'s chain or `ms` milliseconds passed, whichever comes
 * first, resolving `true` for a write; rejects with the signal's reason when `signal` aborts. The
 * pool builds it on the store's change feed; without one (or without this option) the coordinator
 * sleeps on its clock.
 */
export type ChangeWait = (key: ChainRef, ms: number, signal?: AbortSignal) => Promise<boolean | void>;

/** Where the coordinator reports what happened; the pool wires these to its events and cache. */
export interface CoordinatorHooks {
  /** A typed event (refreshed, adopted, revoked, refresh-failed). */
  emit<E extends CoordinatorEventName>(event: E, payload: CoordinatorEventMap[E]): void;
  /** A chain's cached client must go: the chain is gone, revoked, or its REST root moved. */
  drop(memberId: string, chain: PortalRecord['chain'], reason: DropReason): void;
}

/** Options of {@link RefreshCoordinator}. */
export interface CoordinatorOptions {
  /** Where chains are read and written. */
  readonly store: TokenStore;
  /** Refreshes a chain at its OAuth host. */
  readonly refresh: RefreshFunction;
  /** Owns `now` and every wait. */
  readonly clock: Clock;
  /** Receives member ids and counts, never tokens. */
  readonly logger: Logger;
  /** Random source in [0, 1) for jitter. */
  readonly random: () => number;
  /** Seconds before expiry at which a pair counts as expiring. */
  readonly refreshAheadSec: number;
  /** Extra seconds of per-pair jitter on top of `refreshAheadSec`. */
  readonly refreshJitterSec: number;
  /** Lease of the store's lock while refreshing, ms. */
  readonly lockTtlMs: number;
  /** How long to wait for another holder of the lock before giving up, ms. */
  readonly lockWaitMs: number;
  /** Pauses after transient failures and refused credentials. */
  readonly backoff: BackoffPolicy;
  /** At most this many refresh requests to OAuth hosts at once in this process. */
  readonly maxConcurrentRefreshes: number;
  /** How long a suspended (`PAYMENT_REQUIRED`) chain waits before it is tried again, ms. */
  readonly suspendRetryMs: number;
  /** Reports events and cache notices. */
  readonly hooks: CoordinatorHooks;
  /**
   * How long a caller waits for the OAuth host's answer once the refresh request was sent, ms. A
   * caller waiting longer gets `OAuthUnavailableError`, but the request is not abandoned: it keeps
   * its lease and persists the pair when the answer comes (the refresh function's own timeout is
   * the hard cap). @defaultValue no limit (callers wait for the request)
   */
  readonly answerWaitMs?: number | undefined;
  /**
   * How a worker waiting for another's refresh learns of the new pair: woken by the store's change
   * feed, polling at the latest after the pause. @defaultValue the clock's `sleep` (polling only)
   */
  readonly waitForChange?: ChangeWait | undefined;
}

/** Why and for whom a refresh is asked. */
export interface RefreshRequest {
  /** Why. */
  readonly reason: RefreshReason;
  /** An access token a portal refused; a pair holding it is never good enough. */
  readonly rejectedToken?: string | undefined;
}

/** A cached client's view of its chain: what it holds now, and how to hand it a newer record. */
export interface ChainView {
  /** The newest record this holder knows. */
  readonly record: PortalRecord;
  /** This holder's refresh-ahead window for `record`, seconds. */
  readonly windowSec: number;
  /** Takes a newer persisted record. */
  adopt(record: PortalRecord): void;
}

/** The coordinator's counters. */
export interface CoordinatorCounters {
  /** Refresh requests sent to an OAuth host. */
  refreshes: number;
  /** Pairs adopted from the store instead of refreshing. */
  adoptions: number;
  /** Refresh attempts that failed without changing anything. */
  refreshFailures: number;
  /** Chains this process marked revoked. */
  revocations: number;
  /** Times this process waited for another holder of a chain's lock. */
  lockWaits: number;
}
