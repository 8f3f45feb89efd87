// PortalClientPool: ready B24OAuth clients per chain, cached in an LRU, wired to one refresh
// coordinator (src/coordinator) through the SDK layer (src/sdk). The pool holds the cache, the
// wiring and the sweep; the decisions live below it.

import { EventEmitter } from 'node:events';
import type { B24OAuth, RestrictionParams } from '@bitrix24/b24jssdk';
import { LRUCache } from 'lru-cache';
import { systemClock, type Clock } from '../clock.js';
import { chainKeyOf, RefreshCoordinator } from '../coordinator/coordinator.js';
import { PoolClosedError, PortalNotInstalledError, UserChainMissingError } from '../errors.js';
import type { Logger } from '../logger.js';
import { consoleLogger, describeError } from '../logger.js';
import { observe, observedLogger } from '../observe.js';
import { OAuthClient } from '../oauth/oauth-client.js';
import type { EvictionReason, PoolEventMap, PoolEventName, PoolStats } from '../pool-events.js';
import { userChain, type ChainId, type TokenStore } from '../store/token-store.js';
import type { ChainStatus, LifecycleChange, OAuthHostClient, PortalTokensContext } from '../context.js';
import type { AppPageRequest } from '../events/types.js';
import { normalizeTrustedHosts, oauthBaseFromServerEndpoint } from '../protocol/oauth-hosts.js';
import type { PortalRecord, StoreChange } from '../store/token-store.js';
import { ChangeFollower, followChange } from './coherence.js';
import { confirmChain, confirmMove } from './probe.js';
import { ChainSlot } from './slot.js';
import { rememberUser, reseed, type RememberUserContext } from './users.js';
import { runSweep, type SweepOptions, type SweepResult } from './sweep.js';

import { resolveCoordinatorOptions, resolveMax, type PortalClientPoolOptions } from './options.js';
import { RequestBudget, SDK_LIMITER_OFF, type BudgetEvent, type RequestBudgetLimits } from '../sdk/budget.js';

export type { SweepOptions, SweepResult } from './sweep.js';
export type { PortalClientPoolOptions } from './options.js';
export { SDK_REFRESH_TOKEN_PLACEHOLDER } from '../sdk/client.js';

/** A lifecycle change reported to {@link PortalClientPool.notify} (the same as `LifecycleChange`). */
export type PoolLifecycleChange = LifecycleChange;

/** Options of {@link PortalClientPool.clientFor}. */
export interface ClientForOptions {
  /**
   * Act as this Bitrix24 user with the user's own chain (kept by `rememberUser` or the
   * authorization-code flow) instead of the portal's chain. @defaultValue the portal's chain
   */
  readonly userId?: number | undefined;
}

/**
 * A pool of ready `B24OAuth` clients, one per portal chain, whose token refreshes are coordinated
 * and persisted.
 *
 * @example
 * ```ts
 * const pool = new PortalClientPool({ store: new FileTokenStore({ directory: './tokens' }), clientId, clientSecret });
 * const b24 = await pool.clientFor(memberId);
 * const profile = await b24.actions.v2.call.make({ method: 'profile' });
 * ```
 */
export class PortalClientPool implements PortalTokensContext {
  /** The store every record is read from and written to. */
  readonly store: TokenStore;
  /** The OAuth-host client built from the app's credentials (used by the lifecycle handler and the code flow). */
  readonly oauth: OAuthHostClient;
  /** The logger given in the options (warnings and errors on the console by default). */
  readonly logger: Logger;
  /** The clock every reading of the time and every wait goes through. */
  readonly clock: Clock;

  readonly #oauth: OAuthClient;
  readonly #coordinator: RefreshCoordinator;
  readonly #settings: { clientId: string; clientSecret: string; restrictionParams: Partial<RestrictionParams> | undefined };
  readonly #emitter = new EventEmitter();
  readonly #cache: LRUCache<string, ChainSlot>;
  readonly #building = new Map<string, Promise<ChainSlot>>();
  readonly #pendingEvictReason = new Map<string, EvictionReason>();
  readonly #follower: ChangeFollower;
  readonly #trustedHosts: readonly string[];
  #following = false;
  #closed = false;
  #counters = { cacheHits: 0, clientsBuilt: 0, resentRequests: 0, evictions: 0 };
  readonly #budget: RequestBudget | undefined;

  /** Creates a pool; it holds no timers and opens nothing until `clientFor` is called. */
  constructor(options: PortalClientPoolOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { store } = options;
    if (store === null || typeof store !== 'object' || typeof store.get !== 'function' || typeof store.update !== 'function') {
      throw new TypeError('store must implement TokenStore');
    }
    this.store = store;
    const now = options.now;
    this.clock = options.clock ?? (now === undefined ? systemClock : { now, sleep: (ms, signal) => systemClock.sleep(ms, signal) });
    const oauth = new OAuthClient({
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      fetch: options.fetch,
      timeoutMs: options.oauthTimeoutMs,
      now: () => this.clock.now(),
    });
    this.oauth = oauth;
    this.#oauth = oauth;
    this.logger = observedLogger(options.logger ?? consoleLogger);
    observe(() => ({ kind: 'pool', pool: this }));
    this.#budget = createBudget(options, store, this.clock, this.logger, (event, payload) => this.#emit(event, payload));
    this.#settings = {
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      // The pool's budget replaces the SDK's per-process limiter, which would otherwise stack on it.
      restrictionParams: this.#budget === undefined ? options.restrictionParams : { ...options.restrictionParams, ...SDK_LIMITER_OFF },
    };
    this.#coordinator = new RefreshCoordinator({
      store,
      refresh: (record) => oauth.refresh(oauthBaseFromServerEndpoint(record.serverEndpoint), record.refreshToken),
      clock: this.clock,
      logger: this.logger,
      ...resolveCoordinatorOptions(options),
      hooks: {
        emit: (event, payload) => this.#emit(event, payload),
        drop: (memberId, chain, reason) => this.#evict(chainKeyOf(memberId, chain), reason),
      },
    });
    this.#trustedHosts = normalizeTrustedHosts(options.trustedOAuthHosts, 'trustedOAuthHosts');
    this.#follower = new ChangeFollower(store, this.clock, this.logger, {
      changed: (change) => this.#changed(change),
      resync: () => {
        for (const key of [...this.#cache.keys()]) this.#evict(key, 'resync');
      },
    });
    const max = resolveMax(options.max);
    this.#cache = new LRUCache<string, ChainSlot>({
      max,
      dispose: (slot, key) => {
        const reason = this.#pendingEvictReason.get(key) ?? 'capacity';
        this.#pendingEvictReason.delete(key);
        this.#counters.evictions++;
        this.#emit('evicted', { memberId: slot.record.memberId, chain: slot.record.chain, reason });
      },
    });
  }

  /** The pool's clock, unix ms. */
  now(): number {
    return this.clock.now();
  }

  /**
   * Checks at startup that the store can be used (its `ready()`) and, when it offers a change
   * feed, subscribes to it so this process follows other workers' writes. Fails fast with the
   * store's {@link StoreError}; optional (the pool also starts both on first use).
   */
  async ready(): Promise<void> {
    if (this.#closed) throw new PoolClosedError();
    await this.store.ready?.();
    this.#following = true;
    await this.#follower.start();
  }

  /**
   * Keeps the chain of the user who opened the app: proves the page's chain at a trusted OAuth
   * host (refreshing it, which yields the authority's `member_id` and `user_id`) and stores the
   * fresh pair as that user's chain, for `clientFor(memberId, { userId })`. Never touches the
   * portal's chain.
   * @param page a request parsed with `parseAppPageRequest`.
   * @returns the stored record of the user's chain (hold no reference to its tokens).
   * @throws VerificationFailedError when the OAuth host refuses the chain or names another portal.
   */
  async rememberUser(page: AppPageRequest): Promise<PortalRecord> {
    if (this.#closed) throw new PoolClosedError();
    const record = await rememberUser(this.#usersContext(), page);
    this.#evict(chainKeyOf(record.memberId, record.chain), 'lifecycle');
    return record;
  }

  /**
   * Returns the portal's ready client (or, with `userId`, one acting as that user with the user's
   * own chain), building and caching it on first use.
   * @throws PortalNotInstalledError when the store has no record for `memberId`.
   * @throws PortalRevokedError when the portal's chain is revoked.
   * @throws UserChainMissingError when `userId` is given and no live chain is kept for that user.
   * @throws StoreError when the store fails.
   */
  async clientFor(memberId: string, options: ClientForOptions = {}): Promise<B24OAuth> {
    if (this.#closed) throw new PoolClosedError();
    if (typeof memberId !== 'string' || memberId === '') throw new TypeError('memberId must be a non-empty string');
    if (!this.#following) {
      this.#following = true;
      this.#follower.start().catch((error: unknown) => {
        this.logger.warn({ err: describeError(error) }, 'subscribing to the store change feed failed; retrying in the background');
      });
    }
    const chain: ChainId = options.userId === undefined ? 'portal' : userChain(options.userId);
    const key = chainKeyOf(memberId, chain);
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#counters.cacheHits++;
      return cached.client;
    }
    let building = this.#building.get(key);
    if (building === undefined) {
      building = this.#build(memberId, chain).finally(() => this.#building.delete(key));
      this.#building.set(key, building);
    }
    return (await building).client;
  }

  /**
   * Brings back a revoked or suspended chain (an operator's call, after the cause was fixed): tries
   * its stored refresh token once at the OAuth host. A fresh pair makes it active again; a refusal
   * leaves it revoked (with the new reason) and throws the typed error.
   * @returns the chain's record afterwards (active).
   * @throws PortalRevokedError, PortalSuspendedError, PortalNotInstalledError, OAuthUnavailableError.
   */
  async reactivate(memberId: string, options: ClientForOptions = {}): Promise<PortalRecord> {
    if (this.#closed) throw new PoolClosedError();
    const chain: ChainId = options.userId === undefined ? 'portal' : userChain(options.userId);
    const record = await this.#coordinator.reactivate(memberId, chain);
    this.#evict(chainKeyOf(memberId, chain), 'lifecycle');
    this.logger.info({ memberId, chain, state: record.state }, 'reactivated a chain');
    return record;
  }

  /**
   * Brings back a portal whose chain was lost (revoked, or dead at the OAuth host: a rotation
   * whose answer never arrived, a chain idle past its lifetime) when one of its administrators
   * opens the app: proves the page's chain at a trusted OAuth host, checks the user is an
   * administrator (`user.admin`), and makes it the portal's chain. Never replaces a live chain; a
   * page that does not qualify is kept as its user's chain.
   * @param page a request parsed with `parseAppPageRequest`.
   * @returns the portal's new record.
   * @throws VerificationFailedError when the chain is not proven, the user is not an administrator,
   *   or the stored chain still works.
   */
  async reseed(page: AppPageRequest): Promise<PortalRecord> {
    if (this.#closed) throw new PoolClosedError();
    const record = await reseed({ ...this.#usersContext(), confirm: (memberId) => this.confirmChain(memberId) }, page);
    this.#evictPortal(record.memberId, 'lifecycle');
    return record;
  }

  /**
   * Asks the OAuth host whether the portal's stored chain still works (`app.info`, then one
   * coordinated refresh when the stored access token is refused). The lifecycle handler asks this
   * before an uninstall deletes a portal or a non-administrator's install replaces its chain.
   */
  async confirmChain(memberId: string): Promise<ChainStatus> {
    if (this.#closed) throw new PoolClosedError();
    const status = await confirmChain(this.#coordinator, this.#oauth, memberId);
    this.#evict(chainKeyOf(memberId, 'portal'), 'lifecycle');
    return status;
  }

  /**
   * Drops the portal's cached clients (its own chain's and every user's); the next `clientFor`
   * builds new ones from the store.
   * @returns whether a client was cached.
   */
  evict(memberId: string): boolean {
    return this.#evictPortal(memberId, 'manual');
  }

  /**
   * Tells the pool that a lifecycle change was written to the store: drops the portal's cached
   * clients so the next `clientFor` uses the stored chain, and emits the matching event.
   */
  notify(change: PoolLifecycleChange): void {
    this.#evictPortal(change.memberId, 'lifecycle');
    this.#emit(change.type, { memberId: change.memberId });
  }

  /** Subscribes to a typed pool event. Listener errors are caught and logged. */
  on<E extends PoolEventName>(event: E, listener: (payload: PoolEventMap[E]) => void): this {
    this.#emitter.on(event, listener);
    return this;
  }

  /** Unsubscribes a listener added with {@link on}. */
  off<E extends PoolEventName>(event: E, listener: (payload: PoolEventMap[E]) => void): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /** A snapshot of the pool's counters. */
  stats(): PoolStats {
    const c = this.#coordinator.counters;
    return {
      cachedClients: this.#cache.size,
      cacheHits: this.#counters.cacheHits,
      clientsBuilt: this.#counters.clientsBuilt,
      refreshes: c.refreshes,
      adoptions: c.adoptions,
      resentRequests: this.#counters.resentRequests,
      refreshFailures: c.refreshFailures,
      revocations: c.revocations,
      evictions: this.#counters.evictions,
      lockWaits: c.lockWaits,
      ...budgetTotals(this.#budget),
    };
  }

  /**
   * Refreshes every active portal whose chain has not moved for longer than `idleDays`, so idle
   * refresh tokens never lapse. Call it from your scheduler (daily is plenty); workers may run it
   * at the same time: the per-chain lock and the re-read keep each chain to one refresh.
   * Requires a store with `list`.
   */
  async sweep(options: SweepOptions = {}): Promise<SweepResult> {
    if (this.#closed) throw new PoolClosedError();
    return runSweep(this.store, this.#coordinator, this.clock, options, (record) => {
      this.#cache.peek(chainKeyOf(record.memberId, record.chain))?.adopt(record);
    });
  }

  /**
   * Drops every cached client, ends the change-feed subscription and refuses further
   * `clientFor` calls. Does not close the store.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const key of [...this.#cache.keys()]) this.#evict(key, 'closed');
      await this.#follower.close();
    }
  }

  /** Another writer changed a chain: drop it, or re-read and adopt the newer record. */
  #changed(change: StoreChange): void {
    if (change.chain === undefined) {
      this.#evictPortal(change.memberId, 'lifecycle');
      return;
    }
    const key = chainKeyOf(change.memberId, change.chain);
    followChange(change, this.#cache.peek(key), this.#coordinator, {
      current: () => this.#cache.peek(key),
      drop: (reason) => this.#evict(key, reason),
    });
  }

  #usersContext(): RememberUserContext {
    return { store: this.store, oauth: this.#oauth, logger: this.logger, now: () => this.clock.now(), trustedHosts: this.#trustedHosts };
  }

  async #build(memberId: string, chain: ChainId): Promise<ChainSlot> {
    const record = await this.#coordinator.read(memberId, chain);
    if (chain !== 'portal' && (record === undefined || record.state === 'revoked')) {
      throw new UserChainMissingError(memberId, Number(chain.slice(5)));
    }
    if (record === undefined) throw new PortalNotInstalledError(memberId);
    if (record.state !== 'active') await this.#coordinator.readActive(memberId, chain);
    if (this.#closed) throw new PoolClosedError();
    const slot = new ChainSlot(record, {
      coordinator: this.#coordinator,
      clock: this.clock,
      settings: this.#settings,
      countResend: () => this.#counters.resentRequests++,
      confirmMove: (record, move) => confirmMove(this.#oauth, record, move),
      budget: this.#budget,
    });
    this.#cache.set(chainKeyOf(memberId, chain), slot);
    this.#counters.clientsBuilt++;
    return slot;
  }

  #evict(key: string, reason: EvictionReason): boolean {
    if (!this.#cache.has(key)) return false;
    this.#pendingEvictReason.set(key, reason);
    return this.#cache.delete(key);
  }

  #evictPortal(memberId: string, reason: EvictionReason): boolean {
    let any = false;
    const prefix = `${memberId} `;
    for (const key of [...this.#cache.keys()]) {
      if (key.startsWith(prefix) && this.#evict(key, reason)) any = true;
    }
    return any;
  }

  #emit<E extends PoolEventName>(event: E, payload: PoolEventMap[E]): void {
    observe(() => ({ kind: 'event', event, payload }));
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (p: PoolEventMap[E]) => void)(payload);
      } catch (error) {
        this.logger.warn({ event, err: describeError(error) }, 'a pool event listener threw');
      }
    }
  }
}

/** The pool's request budget from its options; `undefined` when turned off. */
function createBudget(
  options: PortalClientPoolOptions,
  store: TokenStore,
  clock: Clock,
  logger: Logger,
  emit: (event: 'budget-wait' | 'budget-push-back' | 'query-limit-exceeded', payload: BudgetEvent) => void,
): RequestBudget | undefined {
  const option = options.requestBudget;
  if (option === false) return undefined;
  const check = (limits: RequestBudgetLimits, where: string): RequestBudgetLimits => {
    if (typeof limits !== 'object' || limits === null || !(limits.ratePerSec > 0) || !Number.isFinite(limits.ratePerSec) || !(limits.burst >= 1) || !Number.isFinite(limits.burst)) {
      throw new TypeError(`${where} must be { ratePerSec > 0, burst >= 1 }`);
    }
    return limits;
  };
  // undefined: the portal's plan (as an app.info answer named it; the standard plan until one does).
  let limitsFor: (memberId: string) => RequestBudgetLimits | undefined;
  if (typeof option === 'function') {
    limitsFor = (memberId) => {
      const limits = option(memberId);
      return limits === undefined ? undefined : check(limits, 'requestBudget(memberId)');
    };
  }
  else {
    const fixed = option === undefined ? undefined : check(option, 'requestBudget');
    limitsFor = () => fixed;
  }
  const headroom = options.budgetHeadroom ?? 0.8;
  if (!(headroom > 0 && headroom <= 1)) throw new TypeError('budgetHeadroom must be in (0, 1]');
  const localShare = options.localBudgetShare ?? 1;
  if (!(localShare > 0 && localShare <= 1)) throw new TypeError('localBudgetShare must be in (0, 1]');
  const maxWaitMs = options.maxBudgetWaitMs ?? Number.POSITIVE_INFINITY;
  if (!(maxWaitMs >= 0)) throw new TypeError('maxBudgetWaitMs must be a number >= 0');
  return new RequestBudget({ store, limitsFor, headroom, maxWaitMs, localShare, clock, logger, emit });
}

/** The budget's fields of PoolStats. */
function budgetTotals(budget: RequestBudget | undefined): Pick<PoolStats, 'budgetWaits' | 'budgetPushBacks' | 'queryLimitExceeded' | 'budgets'> {
  const budgets = budget?.stats() ?? {};
  let budgetWaits = 0;
  let budgetPushBacks = 0;
  let queryLimitExceeded = 0;
  for (const stats of Object.values(budgets)) {
    budgetWaits += stats.waits;
    budgetPushBacks += stats.pushBacks;
    queryLimitExceeded += stats.queryLimitExceeded;
  }
  return { budgetWaits, budgetPushBacks, queryLimitExceeded, budgets };
}
