// PortalClientPool: ready B24OAuth clients per chain, cached in an LRU, wired to one refresh
// coordinator (src/coordinator) through the SDK layer (src/sdk). The pool holds the cache, the
// wiring and the sweep; the decisions live below it.

import type { B24OAuth } from '@bitrix24/b24jssdk';
import type { Clock } from '../clock.js';
import { chainKeyOf, RefreshCoordinator } from '../coordinator/coordinator.js';
import type { ChainStatus, LifecycleChange, OAuthHostClient, PortalTokensContext } from '../context.js';
import { PoolClosedError, PortalNotInstalledError, UserChainMissingError } from '../errors.js';
import type { AppPageRequest } from '../events/types.js';
import { consoleLogger, describeError, type Logger } from '../logger.js';
import { observe } from '../observe.js';
import { observedLogger } from '../logger.js';
import { OAuthClient } from '../oauth/oauth-client.js';
import type { PoolEventMap, PoolEventName, PoolStats } from '../pool-events.js';
import { normalizeTrustedHosts } from '../protocol/oauth-hosts.js';
import { trustedOAuthBaseOf } from '../guard/trusted-hosts.js';
import type { RequestBudget } from '../budget/budget.js';
import type { SdkClientSettings } from '../sdk/client.js';
import { userChain, userIdOf, type ChainId, type PortalRecord, type StoreChange, type TokenStore } from '../store/token-store.js';
import { budgetTotals, createBudget, sdkSettings } from './budget-wiring.js';
import { SlotCache } from './cache.js';
import { ChangeFollower, ChangeWaiters, FEED_POLL_FLOOR_MS, followChange, revalidate } from './coherence.js';
import { PoolEmitter } from './emitter.js';
import { checkMemberIdArgument, checkUserIdArgument } from './door.js';
import { checkedStore, refreshHardCapMs, resolveClock, resolveCoordinatorOptions, resolveMax, type PortalClientPoolOptions } from './options.js';
import { confirmChain, confirmMove } from './probe.js';
import { ChainSlot } from './slot.js';
import { runSweep, type SweepOptions, type SweepResult } from './sweep.js';
import { rememberUser, reseed, visit, type RememberUserContext, type VisitOutcome } from './users.js';

export type { SweepOptions, SweepResult } from './sweep.js';
export type { PortalClientPoolOptions } from './options.js';
export { SDK_REFRESH_TOKEN_PLACEHOLDER } from '../sdk/client.js';

/** A lifecycle change reported to {@link PortalClientPool.notify} (the same as `LifecycleChange`). */
export type PoolLifecycleChange = LifecycleChange;

/**
 * Options of {@link PortalClientPool.clientFor}.
 * @inline
 */
export interface ClientForOptions {
  /**
   * Act as this Bitrix24 user with the user's own chain (kept by `rememberUser` or the
   * authorization-code flow) instead of the portal's chain. @defaultValue the portal's chain
   */
  readonly userId?: number | undefined;
}

/** Options of {@link PortalClientPool.close}. @inline */
export interface PoolCloseOptions {
  /** Close the pool's store too (its `close()`, once), after the pool. @defaultValue false */
  readonly store?: boolean | undefined;
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
  readonly #settings: SdkClientSettings;
  readonly #events: PoolEmitter;
  readonly #cache: SlotCache;
  readonly #building = new Map<string, Promise<ChainSlot>>();
  readonly #follower: ChangeFollower;
  readonly #waiters: ChangeWaiters;
  readonly #trustedHosts: readonly string[];
  #following = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #storeClosing: Promise<void> | undefined;
  #counters = { cacheHits: 0, clientsBuilt: 0, resentRequests: 0 };
  readonly #budget: RequestBudget | undefined;

  /** Creates a pool; it holds no timers and opens nothing until `clientFor` is called. */
  constructor(options: PortalClientPoolOptions) {
    const store = checkedStore(options);
    this.store = store;
    this.clock = resolveClock(options);
    const hardCap = refreshHardCapMs(options.oauthTimeoutMs);
    const trusted = normalizeTrustedHosts(options.trustedOAuthHosts, 'trustedOAuthHosts');
    const oauth = new OAuthClient({
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      fetch: options.fetch,
      timeoutMs: options.oauthTimeoutMs,
      now: () => this.clock.now(),
      proofLimits: options.proofLimits,
      // Every token or secret this client sends goes to a trusted OAuth host, checked as it leaves.
      trustedOAuthHosts: trusted,
    });
    this.oauth = oauth;
    this.#oauth = oauth;
    this.logger = observedLogger(options.logger ?? consoleLogger);
    this.#events = new PoolEmitter(this.logger);
    observe(() => ({ kind: 'pool', pool: this }));
    this.#budget = createBudget(options, store, this.clock, this.logger, (event, payload) => this.#events.emit(event, payload));
    this.#settings = sdkSettings(options, this.#budget);
    // Workers waiting for another's refresh wake on the change feed (when the store has one).
    this.#waiters = new ChangeWaiters(this.clock, () => this.#follower.live, store.capabilities.crossProcess ? FEED_POLL_FLOOR_MS : 0);
    this.#coordinator = new RefreshCoordinator({
      store,
      waitForChange: this.#waiters.wait,
      // Callers stop waiting after oauthTimeoutMs (answerWaitMs); the request itself only at the hard cap.
      // The OAuth host is checked as the refresh leaves: a re-pointed serverEndpoint gets nothing.
      refresh: (record) => oauth.refresh(trustedOAuthBaseOf(record.serverEndpoint, trusted, record.memberId), record.refreshToken, { timeoutMs: hardCap, proof: false }),
      clock: this.clock,
      logger: this.logger,
      ...resolveCoordinatorOptions(options),
      hooks: {
        emit: this.#events.fromCoordinator,
        drop: (memberId, chain, reason) => this.#cache.evict(chainKeyOf(memberId, chain), reason),
      },
    });
    this.#trustedHosts = trusted;
    this.#follower = new ChangeFollower(store, this.clock, this.logger, {
      changed: (change) => this.#changed(change),
      resync: () => {
        this.#cache.evictAll('resync');
      },
    });
    this.#cache = new SlotCache(resolveMax(options.max), (payload) => this.#events.emit('evicted', payload));
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
   * @throws ProofsThrottledError past a ceiling on proofs (`proofLimits`); nothing was sent.
   */
  async rememberUser(page: AppPageRequest): Promise<PortalRecord> {
    if (this.#closed) throw new PoolClosedError();
    const record = await this.#oauth.proofGate.run(page.auth.memberId, () => rememberUser(this.#usersContext(), page), this.logger);
    this.#cache.evict(chainKeyOf(record.memberId, record.chain), 'lifecycle');
    return record;
  }

  /**
   * Returns the portal's ready client (or, with `userId`, one acting as that user with the user's
   * own chain), building and caching it on first use.
   * @throws PortalNotInstalledError when the store has no record for `memberId`.
   * @throws PortalRevokedError when the portal's chain is revoked.
   * @throws UserChainMissingError when `userId` is given and no live chain is kept for that user.
   * @throws StoreError when the store fails.
   * @throws InvalidArgumentError when `memberId` is no string, empty, over 100 UTF-8 bytes, or holds a
   *   lone surrogate or a control character, or `userId` is not a positive safe integer (checked
   *   before the store is asked).
   */
  async clientFor(memberId: string, options?: ClientForOptions): Promise<B24OAuth> {
    // The hot path: a cached portal chain. Only a checked member id was ever cached, so a hit needs
    // no check beyond the type (a number must not find the client of its decimal string); a slot is
    // cached only after the change feed was started, and close() empties the cache before anything.
    // Where the store's feed is down, a hit is re-read first (#clientFor), so it takes the long way.
    if (typeof memberId === 'string' && options?.userId === undefined && (this.#follower.live || !this.#follower.available)) {
      const hit = this.#cache.get(chainKeyOf(memberId, 'portal'));
      if (hit !== undefined) {
        this.#counters.cacheHits++;
        return hit.client;
      }
    }
    return this.#clientFor(memberId, options ?? {});
  }

  /** {@link clientFor} past the hot path: checks the arguments, builds the chain's client on a miss. */
  async #clientFor(memberId: string, options: ClientForOptions): Promise<B24OAuth> {
    if (this.#closed) throw new PoolClosedError();
    checkMemberIdArgument(memberId);
    checkUserIdArgument(options.userId, 'options.userId');
    if (!this.#following) {
      this.#following = true;
      this.#follower.start().catch((error: unknown) => {
        this.logger.warn({ err: describeError(error) }, 'subscribing to the store change feed failed; retrying in the background');
      });
    }
    const chain: ChainId = options.userId === undefined ? 'portal' : userChain(options.userId);
    const key = chainKeyOf(memberId, chain);
    const cached = this.#cache.get(key);
    // pg helper: where the store has a feed but it is down, a cached chain is re-read before reuse.
    if (cached !== undefined && (!this.#follower.available || this.#follower.live || (await this.#revalidate(key, cached)))) {
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
    this.#cache.evict(chainKeyOf(memberId, chain), 'lifecycle');
    this.logger.info({ memberId, chain, state: record.state }, 'reactivated a chain');
    return record;
  }

  /**
   * Brings back a portal whose chain was lost (revoked, or dead at the OAuth host: a rotation
   * whose answer never arrived, a chain idle past its lifetime) when one of its administrators
   * opens the app: proves the page's chain at a trusted OAuth host, checks the user is an
   * administrator (`user.admin`), and makes it the portal's chain. Never replaces a live
   * administrator's chain (a live chain of anyone else is replaced); a page that does not qualify
   * is kept as its user's chain.
   * @param page a request parsed with `parseAppPageRequest`.
   * @returns the portal's new record.
   * @throws VerificationFailedError when the chain is not proven, the user is not an administrator,
   *   or the stored chain is a live administrator's.
   * @throws ProofsThrottledError past a ceiling on proofs (`proofLimits`); nothing was sent.
   */
  async reseed(page: AppPageRequest): Promise<PortalRecord> {
    if (this.#closed) throw new PoolClosedError();
    const record = await this.#oauth.proofGate.run(page.auth.memberId, () => reseed({ ...this.#usersContext(), confirm: (memberId) => this.confirmChain(memberId) }, page), this.logger);
    this.#cache.evictPortal(record.memberId, 'lifecycle');
    return record;
  }

  /**
   * The one call for the app page: remembers the visitor's chain (as {@link PortalClientPool.rememberUser})
   * and, when the visitor administers the portal and the portal's chain is dead (revoked, lapsed,
   * lost in a rotation, or never stored), makes the page's chain the portal's (as
   * {@link PortalClientPool.reseed}), so a lost portal recovers with no code of yours. A live
   * portal chain is never replaced. The page's pair is stored once, as one chain or the other.
   * @param page a request parsed with `parseAppPageRequest`.
   * @returns which chain was stored, its record, and whether the portal was reseeded.
   * @throws VerificationFailedError when the OAuth host refuses the page's chain or names another portal.
   * @throws ProofsThrottledError past a ceiling on proofs (`proofLimits`); nothing was sent.
   */
  async visit(page: AppPageRequest): Promise<VisitOutcome> {
    if (this.#closed) throw new PoolClosedError();
    const outcome = await this.#oauth.proofGate.run(page.auth.memberId, () => visit({ ...this.#usersContext(), confirm: (memberId) => this.confirmChain(memberId) }, page), this.logger);
    if (outcome.reseeded) this.#cache.evictPortal(outcome.record.memberId, 'lifecycle');
    else this.#cache.evict(chainKeyOf(outcome.record.memberId, outcome.chain), 'lifecycle');
    return outcome;
  }

  /**
   * Asks the OAuth host whether the portal's stored chain still works (`app.info`, then one
   * coordinated refresh when the stored access token is refused). The lifecycle handler asks this
   * before an uninstall deletes a portal or a non-administrator's install replaces its chain.
   */
  async confirmChain(memberId: string, chain: ChainId = 'portal'): Promise<ChainStatus> {
    if (this.#closed) throw new PoolClosedError();
    const status = await confirmChain(this.#coordinator, this.#oauth, memberId, chain);
    this.#cache.evict(chainKeyOf(memberId, chain), 'lifecycle');
    return status;
  }

  /**
   * Drops the portal's cached clients (its own chain's and every user's); the next `clientFor`
   * builds new ones from the store.
   * @returns whether a client was cached.
   */
  evict(memberId: string): boolean {
    return this.#cache.evictPortal(memberId, 'manual');
  }

  /**
   * Tells the pool that a lifecycle change was written to the store: drops the portal's cached
   * clients so the next `clientFor` uses the stored chain, and emits the matching event.
   */
  notify(change: PoolLifecycleChange): void {
    this.#cache.evictPortal(change.memberId, 'lifecycle');
    this.#events.emit(change.type, { memberId: change.memberId });
  }

  /** Subscribes to a typed pool event. Listener errors are caught and logged. */
  on<E extends PoolEventName>(event: E, listener: (payload: PoolEventMap[E]) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Unsubscribes a listener added with {@link on}. */
  off<E extends PoolEventName>(event: E, listener: (payload: PoolEventMap[E]) => void): this {
    this.#events.off(event, listener);
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
      evictions: this.#cache.evictions,
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
   * `clientFor` calls. Refresh requests already sent are waited for, so a refresh token they spent
   * is never lost; those not yet sent are refused. The store stays open (another pool or your code
   * may share it) unless `{ store: true }` asks to close it too, after the pool: then nothing of
   * the library holds a socket or file and the process can exit by itself.
   */
  async close(options: PoolCloseOptions = {}): Promise<void> {
    if (typeof options !== 'object' || options === null) throw new TypeError('close options must be an object such as { store: true }');
    // Every call waits for the one shutdown, so the store is never closed under a refresh's write.
    this.#closing ??= this.#shutDown();
    await this.#closing;
    if (options.store === true) {
      this.#storeClosing ??= this.store.close?.() ?? Promise.resolve();
      await this.#storeClosing;
    }
  }

  async #shutDown(): Promise<void> {
    this.#closed = true;
    this.#cache.evictAll('closed');
    // Refreshes already sent finish and store their pairs; those not yet sent are refused.
    await this.#coordinator.close();
    await this.#follower.close();
  }

  /** Another writer changed a chain: drop it, or re-read and adopt the newer record. */
  #changed(change: StoreChange): void {
    this.#waiters.changed(change);
    if (change.chain === undefined) {
      this.#cache.evictPortal(change.memberId, 'lifecycle');
      return;
    }
    const key = chainKeyOf(change.memberId, change.chain);
    followChange(change, this.#cache.peek(key), this.#coordinator, {
      current: () => this.#cache.peek(key),
      drop: (reason) => this.#cache.evict(key, reason),
    });
  }

  #revalidate(key: string, slot: ChainSlot): Promise<boolean> {
    return revalidate(slot, this.#coordinator, { current: () => this.#cache.peek(key), drop: (reason) => this.#cache.evict(key, reason) });
  }

  #usersContext(): RememberUserContext {
    return { store: this.store, oauth: this.#oauth, logger: this.logger, now: () => this.clock.now(), trustedHosts: this.#trustedHosts };
  }

  async #build(memberId: string, chain: ChainId): Promise<ChainSlot> {
    const record = await this.#coordinator.read(memberId, chain);
    const userId = userIdOf(chain);
    if (userId !== undefined && (record === undefined || record.state === 'revoked')) throw new UserChainMissingError(memberId, userId);
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
}
