// PortalClientPool: ready B24OAuth clients per portal, cached in an LRU, whose refreshes all go
// through one coordinator: one refresh per expiry across v2/v3 clients and across processes
// sharing the store, the new pair persisted before anyone uses it (DESIGN.md steps 1-7).

import { EventEmitter } from 'node:events';
import { ApiVersion, B24OAuth, EnumAppStatus } from '@bitrix24/b24jssdk';
import type { B24OAuthParams, HandlerRefreshAuth, RestrictionParams, TypeHttp } from '@bitrix24/b24jssdk';
import { LRUCache } from 'lru-cache';
import {
  LockTimeoutError,
  OAuthRejectedError,
  PoolClosedError,
  PortalNotInstalledError,
  PortalRevokedError,
  PortalTokensError,
  StoreError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { describeError, silentLogger } from '../logger.js';
import { OAuthClient, oauthBaseFromServerEndpoint } from '../oauth/oauth-client.js';
import type { FetchLike, TokenResponse } from '../oauth/oauth-client.js';
import type { PortalRecord, PortalRecordPatch, StoreLease, TokenStore } from '../store/token-store.js';
import type { EvictionReason, PoolEventMap, PoolEventName, PoolStats, RefreshReason } from './events.js';

/**
 * What the SDK client is given as its refresh token. The pool owns every refresh, so the real
 * refresh token never needs to live inside the SDK; if anyone removes the pool's refresh hook, the
 * SDK's own refresh fails with `invalid_grant` instead of silently branching the chain.
 */
export const SDK_REFRESH_TOKEN_PLACEHOLDER = 'managed-by-b24-portal-tokens';

/** Options of {@link PortalClientPool}. */
export interface PortalClientPoolOptions {
  /** Where portals' records live. Share one store between workers to coordinate their refreshes. */
  readonly store: TokenStore;
  /** The app's `client_id`. */
  readonly clientId: string;
  /** The app's `client_secret`. */
  readonly clientSecret: string;
  /**
   * At most this many clients are cached; the least recently used is dropped beyond it. One
   * `B24OAuth` costs about 19 KB of heap, so the default keeps the cache near 20 MB.
   * @defaultValue 1000
   */
  readonly max?: number | undefined;
  /**
   * Refresh a chain when its access token has less than this many seconds left, so calls rarely
   * meet an expired token. Capped at half the token's lifetime.
   * @defaultValue 300
   */
  readonly refreshAheadSec?: number | undefined;
  /**
   * Up to this many extra seconds, chosen at random per pair, are added to `refreshAheadSec`, so
   * portals installed together do not all refresh in the same second.
   * @defaultValue 60
   */
  readonly refreshJitterSec?: number | undefined;
  /** How long a refresh may hold a portal's lock before another worker may take it over, ms. @defaultValue 15000 */
  readonly lockTtlMs?: number | undefined;
  /** How long to wait for another worker's refresh before giving up with {@link LockTimeoutError}, ms. @defaultValue 20000 */
  readonly lockWaitMs?: number | undefined;
  /** Timeout of one request to an OAuth host, ms. @defaultValue 10000 */
  readonly oauthTimeoutMs?: number | undefined;
  /** The `fetch` used for OAuth hosts. @defaultValue `globalThis.fetch` */
  readonly fetch?: FetchLike | undefined;
  /** A pino-compatible logger. It receives member ids and counts, never tokens. @defaultValue silent */
  readonly logger?: Logger | undefined;
  /** Clock, unix ms. @defaultValue `Date.now` */
  readonly now?: (() => number) | undefined;
  /** Random source in [0, 1) for jitter. @defaultValue `Math.random` */
  readonly random?: (() => number) | undefined;
  /** Passed to every `B24OAuth` as its `restrictionParams` (rate limits, retries). */
  readonly restrictionParams?: Partial<RestrictionParams> | undefined;
}

/** Options of {@link PortalClientPool.sweep}. */
export interface SweepOptions {
  /** Refresh active chains whose pair has not changed for longer than this, days. @defaultValue 20 */
  readonly idleDays?: number | undefined;
  /** At most this many refreshes at once. @defaultValue 4 */
  readonly concurrency?: number | undefined;
  /** Records read per store page. @defaultValue 100 */
  readonly pageSize?: number | undefined;
  /** Stops the sweep between portals when aborted. */
  readonly signal?: AbortSignal | undefined;
}

/** What a sweep did. */
export interface SweepResult {
  /** Records examined. */
  readonly checked: number;
  /** Chains refreshed (or adopted from another worker that refreshed first). */
  readonly refreshed: number;
  /** Portals found revoked by the OAuth server during the sweep. */
  readonly revoked: number;
  /** Refreshes that failed transiently; the sweep goes on. */
  readonly failed: number;
}

/** A lifecycle change the lifecycle handler (or your own code) reports after writing the store. */
export interface PoolLifecycleChange {
  /** What happened. */
  readonly type: 'installed' | 'updated' | 'uninstalled' | 'authorized';
  /** The portal concerned. */
  readonly memberId: string;
}

/** The axios request config fields the pool touches; kept structural so axios stays the SDK's business. */
interface StampedConfig {
  data?: unknown;
  url?: string;
  maxRedirects?: number;
  [SENT_TOKEN]?: string;
  [MOVED]?: boolean;
  [ORIGINAL_DATA]?: Record<string, unknown>;
  [RESENDS]?: number;
}

const SENT_TOKEN = Symbol('b24pt.sentToken');
const ORIGINAL_DATA = Symbol('b24pt.originalData');
const RESENDS = Symbol('b24pt.resends');
const MOVED = Symbol('b24pt.moved');
const MAX_RESENDS = 2;

/** Per-portal state shared by a cached client, its interceptors and its refresh hook. */
interface PortalSlot {
  readonly memberId: string;
  /** The newest record this process knows. Only ever replaced by a persisted one. */
  record: PortalRecord;
  /** Seconds before `expires` at which this pair counts as expiring (refresh-ahead plus jitter). */
  aheadSec: number;
  /** An access token a portal refused while it was the current one. */
  rejectedToken: string | undefined;
  client: B24OAuth;
  /** The REST root the SDK client was built with (the SDK never changes it). */
  readonly sdkEndpoint: string;
}

interface RefreshRequest {
  readonly reason: RefreshReason;
  readonly rejectedToken?: string | undefined;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative finite number`);
  }
  return value;
}

/** The `error` code of a portal REST error body: v2 `{error: 'x'}`, v3 `{error: {code: 'x'}}`. */
function restErrorCode(data: unknown): string | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const error = (data as { error?: unknown }).error;
  if (typeof error === 'string') return error;
  if (error !== null && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/**
 * A pool of ready `B24OAuth` clients, one per portal, whose token refreshes are coordinated and
 * persisted.
 *
 * @example
 * ```ts
 * const pool = new PortalClientPool({ store: new FileTokenStore({ directory: './tokens' }), clientId, clientSecret });
 * const b24 = await pool.clientFor(memberId);
 * const profile = await b24.actions.v2.call.make({ method: 'profile' });
 * ```
 */
export class PortalClientPool {
  /** The store every record is read from and written to. */
  readonly store: TokenStore;
  /** The OAuth-host client built from the app's credentials (also used by the lifecycle handler). */
  readonly oauth: OAuthClient;
  /** The logger given in the options (silent by default). */
  readonly logger: Logger;

  readonly #clientId: string;
  readonly #clientSecret: string;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #refreshAheadSec: number;
  readonly #refreshJitterSec: number;
  readonly #lockTtlMs: number;
  readonly #lockWaitMs: number;
  readonly #restrictionParams: Partial<RestrictionParams> | undefined;
  readonly #emitter = new EventEmitter();
  readonly #cache: LRUCache<string, PortalSlot>;
  readonly #building = new Map<string, Promise<PortalSlot>>();
  readonly #flights = new Map<string, Promise<PortalRecord>>();
  readonly #pendingEvictReason = new Map<string, EvictionReason>();
  #closed = false;
  #counters = {
    cacheHits: 0,
    clientsBuilt: 0,
    refreshes: 0,
    adoptions: 0,
    resentRequests: 0,
    refreshFailures: 0,
    revocations: 0,
    evictions: 0,
    lockWaits: 0,
  };

  constructor(options: PortalClientPoolOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { store } = options;
    if (store === null || typeof store !== 'object' || typeof store.get !== 'function' || typeof store.update !== 'function') {
      throw new TypeError('store must implement TokenStore');
    }
    this.store = store;
    this.#clientId = options.clientId;
    this.#clientSecret = options.clientSecret;
    this.#now = options.now ?? Date.now;
    this.oauth = new OAuthClient({
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      fetch: options.fetch,
      timeoutMs: options.oauthTimeoutMs,
      now: this.#now,
    });
    this.logger = options.logger ?? silentLogger;
    this.#random = options.random ?? Math.random;
    this.#refreshAheadSec = positive('refreshAheadSec', options.refreshAheadSec, 300);
    this.#refreshJitterSec = positive('refreshJitterSec', options.refreshJitterSec, 60);
    this.#lockTtlMs = positive('lockTtlMs', options.lockTtlMs, 15_000);
    this.#lockWaitMs = positive('lockWaitMs', options.lockWaitMs, 20_000);
    this.#restrictionParams = options.restrictionParams;
    const max = options.max ?? 1000;
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('max must be a positive integer');
    this.#cache = new LRUCache<string, PortalSlot>({
      max,
      dispose: (_slot, memberId) => {
        const reason = this.#pendingEvictReason.get(memberId) ?? 'capacity';
        this.#pendingEvictReason.delete(memberId);
        this.#counters.evictions++;
        this.#emit('evicted', { memberId, reason });
      },
    });
    // Listener errors must never break a refresh; EventEmitter would otherwise throw them at us.
    this.#emitter.on('error', () => undefined);
  }

  /** The pool's clock, unix ms (the one given in the options). */
  now(): number {
    return this.#now();
  }

  /**
   * Returns the portal's ready client, building and caching it on first use.
   * @throws PortalNotInstalledError when the store has no record for `memberId`.
   * @throws PortalRevokedError when the portal's chain is revoked.
   * @throws StoreError when the store fails.
   */
  async clientFor(memberId: string): Promise<B24OAuth> {
    if (this.#closed) throw new PoolClosedError();
    if (typeof memberId !== 'string' || memberId === '') throw new TypeError('memberId must be a non-empty string');
    const cached = this.#cache.get(memberId);
    if (cached !== undefined) {
      this.#counters.cacheHits++;
      return cached.client;
    }
    let building = this.#building.get(memberId);
    if (building === undefined) {
      building = this.#build(memberId).finally(() => this.#building.delete(memberId));
      this.#building.set(memberId, building);
    }
    return (await building).client;
  }

  /**
   * Drops the portal's cached client (if any); the next `clientFor` builds a new one from the store.
   * @returns whether a client was cached.
   */
  evict(memberId: string): boolean {
    return this.#evict(memberId, 'manual');
  }

  /**
   * Tells the pool that a lifecycle change was written to the store: drops the cached client so
   * the next `clientFor` uses the stored chain, and emits the matching event.
   */
  notify(change: PoolLifecycleChange): void {
    this.#evict(change.memberId, 'lifecycle');
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
    return { cachedClients: this.#cache.size, ...this.#counters };
  }

  /**
   * Refreshes every active portal whose chain has not moved for longer than `idleDays`, so idle
   * refresh tokens never lapse. Call it from your scheduler (daily is plenty); workers may run it
   * at the same time: the per-portal lock and the re-read keep each chain to one refresh.
   * Requires a store with `list`.
   */
  async sweep(options: SweepOptions = {}): Promise<SweepResult> {
    if (this.#closed) throw new PoolClosedError();
    const list = this.store.list?.bind(this.store);
    if (list === undefined || !this.store.capabilities.list) {
      throw new TypeError('sweep needs a store with the list capability');
    }
    const idleMs = positive('idleDays', options.idleDays, 20) * 86_400_000;
    const concurrency = Math.max(1, Math.floor(positive('concurrency', options.concurrency, 4)));
    const pageSize = Math.max(1, Math.floor(positive('pageSize', options.pageSize, 100)));
    const result = { checked: 0, refreshed: 0, revoked: 0, failed: 0 };
    const running = new Set<Promise<void>>();
    let after: string | undefined;
    do {
      if (options.signal?.aborted) break;
      const page = await list({ after, limit: pageSize });
      for (const record of page.records) {
        if (options.signal?.aborted) break;
        result.checked++;
        if (record.state !== 'active' || this.#now() - record.chainUpdatedAt <= idleMs) continue;
        const job = this.#keepAlive(record, idleMs).then((outcome) => {
          result[outcome]++;
        });
        const tracked: Promise<void> = job.finally(() => running.delete(tracked));
        running.add(tracked);
        if (running.size >= concurrency) await Promise.race(running);
      }
      after = page.next;
    } while (after !== undefined);
    await Promise.all(running);
    return result;
  }

  /** Drops every cached client and refuses further `clientFor` calls. Does not close the store. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const memberId of [...this.#cache.keys()]) this.#evict(memberId, 'closed');
    }
    return Promise.resolve();
  }

  // --- building clients -------------------------------------------------------------------

  async #build(memberId: string): Promise<PortalSlot> {
    const record = await this.#read(memberId);
    if (record === undefined) throw new PortalNotInstalledError(memberId);
    if (record.state === 'revoked') throw new PortalRevokedError(memberId, record.revokedReason ?? undefined);
    if (this.#closed) throw new PoolClosedError();
    const slot = this.#createSlot(record);
    this.#cache.set(memberId, slot);
    this.#counters.clientsBuilt++;
    return slot;
  }

  #createSlot(record: PortalRecord): PortalSlot {
    const aheadSec = this.#aheadFor(record);
    const params: B24OAuthParams = {
      applicationToken: record.applicationToken ?? '',
      userId: record.userId ?? 0,
      memberId: record.memberId,
      accessToken: record.accessToken,
      refreshToken: SDK_REFRESH_TOKEN_PLACEHOLDER,
      expires: record.expires - aheadSec,
      expiresIn: Math.max(1, record.expires - Math.floor(record.chainUpdatedAt / 1000)),
      scope: record.scope,
      domain: record.domain,
      clientEndpoint: record.clientEndpoint,
      serverEndpoint: record.serverEndpoint,
      status: this.#sdkStatus(record.status),
    };
    const client = new B24OAuth(
      params,
      { clientId: this.#clientId, clientSecret: this.#clientSecret },
      this.#restrictionParams === undefined ? undefined : { restrictionParams: this.#restrictionParams },
    );
    const slot: PortalSlot = {
      memberId: record.memberId,
      record,
      aheadSec,
      rejectedToken: undefined,
      client,
      sdkEndpoint: record.clientEndpoint,
    };
    client.setCustomRefreshAuth(() => this.#sdkRefresh(slot));
    for (const version of [ApiVersion.v2, ApiVersion.v3]) {
      this.#instrument(slot, client.getHttpClient(version));
    }
    return slot;
  }

  #sdkStatus(status: string): B24OAuthParams['status'] {
    const known = Object.values(EnumAppStatus) as string[];
    return (known.includes(status) ? status : EnumAppStatus.Local) as B24OAuthParams['status'];
  }

  /**
   * Puts the portal's current token on every request as it leaves (the SDK picks the token before
   * its rate limiter makes the request wait; a request leaving during a refresh waits for it), and
   * re-sends a request refused for a token the chain has already moved past: that needs the
   * current pair, not another refresh.
   */
  #instrument(slot: PortalSlot, http: TypeHttp): void {
    const axios = http.ajaxClient;
    axios.interceptors.request.use(async (config) => {
      const stamped = config as unknown as StampedConfig;
      const data = stamped[ORIGINAL_DATA] ?? stamped.data;
      if (data !== null && typeof data === 'object' && typeof (data as { auth?: unknown }).auth === 'string') {
        // A request leaving while this portal's refresh is in flight would carry the token that
        // refresh is about to kill: hold it until the new pair is persisted.
        const flight = this.#flights.get(slot.memberId);
        if (flight !== undefined) {
          await flight.then(
            (record) => this.#adoptInto(slot, record),
            () => undefined, // the request goes out with the old token; its 401 is handled below
          );
        }
        const original = data as Record<string, unknown>;
        stamped[ORIGINAL_DATA] = original;
        stamped[SENT_TOKEN] = slot.record.accessToken;
        // A renamed portal answers 302; following it would turn the POST into a GET without its
        // body (and token). The response interceptor re-sends it to the new address instead.
        stamped.maxRedirects = 0;
        stamped.data = { ...original, auth: slot.record.accessToken };
      }
      return config;
    });
    axios.interceptors.response.use(undefined, async (error: unknown) => {
      const failure = error as {
        response?: { status?: number; data?: unknown; headers?: Record<string, unknown> };
        config?: StampedConfig;
      };
      const config = failure.config;
      const code = restErrorCode(failure.response?.data);
      const sent = config?.[SENT_TOKEN];
      const status = failure.response?.status ?? 0;
      if (config !== undefined && sent !== undefined && status >= 300 && status < 400 && config[MOVED] !== true) {
        const location = failure.response?.headers?.['location'];
        const moved = typeof location === 'string' ? await this.#moveEndpoint(slot, config.url, location) : undefined;
        if (moved === undefined) throw error;
        config[MOVED] = true;
        config.url = moved;
        return axios.request(config);
      }
      if (
        config === undefined ||
        sent === undefined ||
        failure.response?.status !== 401 ||
        (code !== 'expired_token' && code !== 'invalid_token')
      ) {
        throw error;
      }
      const resends = config[RESENDS] ?? 0;
      if (resends >= MAX_RESENDS) {
        slot.rejectedToken = sent;
        throw error;
      }
      let current = slot.record;
      if (current.accessToken === sent) {
        // The current token itself was refused: the coordinator decides between adopting and refreshing.
        current = await this.#coordinate(slot, { reason: 'rejected', rejectedToken: sent });
      }
      if (current.accessToken === sent) throw error;
      config[RESENDS] = resends + 1;
      this.#counters.resentRequests++;
      return axios.request(config);
    });
  }

  /**
   * A renamed portal answered 3xx to `requestUrl`: derives its new REST root from `location`,
   * stores it (domain included) and evicts the client, whose endpoints the SDK fixed at
   * construction. Returns the URL to re-send to, or `undefined` when the move is not acceptable
   * (not http(s), a downgrade from https, or not the same method under another REST root).
   */
  async #moveEndpoint(slot: PortalSlot, requestUrl: string | undefined, location: string): Promise<string | undefined> {
    const record = slot.record;
    if (requestUrl === undefined) return undefined;
    let target: URL;
    let from: URL;
    try {
      from = new URL(requestUrl);
      target = new URL(location, from);
    } catch {
      return undefined;
    }
    if (!isHttpUrl(target.href) || (from.protocol === 'https:' && target.protocol !== 'https:')) return undefined;
    // The method part of the request (after the REST root), e.g. `profile` or `api/profile`.
    const root = new URL(slot.sdkEndpoint);
    const tail = from.pathname.slice(root.pathname.length).replace(/^\/+/, '');
    const collapsed = target.pathname.replace(/\/{2,}/g, '/');
    if (tail === '' || !collapsed.endsWith(`/${tail.replace(/\/{2,}/g, '/')}`)) return undefined;
    const newRoot = `${target.origin}${collapsed.slice(0, collapsed.length - tail.replace(/\/{2,}/g, '/').length)}`;
    if (newRoot !== record.clientEndpoint) {
      const now = this.#now();
      const result = await this.store.update(record.memberId, record.version, {
        clientEndpoint: newRoot,
        domain: target.host,
        updatedAt: now,
      });
      const current = result.ok ? result.record : result.current;
      if (current === undefined) return undefined;
      this.#adoptInto(slot, current);
      if (result.ok) {
        this.logger.info({ memberId: record.memberId, domain: target.host }, 'portal moved to a new address; stored it');
      }
      this.#evict(record.memberId, 'endpoint-changed');
    }
    return target.href;
  }

  /** The SDK's refresh hook: called when the SDK's (shifted) expiry has passed or after a 401. */
  async #sdkRefresh(slot: PortalSlot): Promise<HandlerRefreshAuth> {
    const rejected = slot.rejectedToken;
    const record = await this.#coordinate(slot, {
      reason: rejected !== undefined && rejected === slot.record.accessToken ? 'rejected' : 'expiring',
      rejectedToken: rejected,
    });
    return {
      access_token: record.accessToken,
      refresh_token: SDK_REFRESH_TOKEN_PLACEHOLDER,
      // The SDK parses these two with Number.parseInt (its types say string).
      expires: String(record.expires - slot.aheadSec),
      expires_in: String(Math.max(1, record.expires - Math.floor(this.#now() / 1000))),
      client_endpoint: record.clientEndpoint,
      server_endpoint: record.serverEndpoint,
      member_id: record.memberId,
      scope: record.scope,
      status: this.#sdkStatus(record.status),
      domain: record.domain,
    };
  }

  // --- the coordinator -----------------------------------------------------------------------

  /** Seconds before expiry at which a pair counts as expiring: refresh-ahead plus jitter, at most half its life. */
  #aheadFor(record: PortalRecord): number {
    const lifetime = Math.max(0, record.expires - Math.floor(record.chainUpdatedAt / 1000));
    const wanted = this.#refreshAheadSec + Math.floor(this.#random() * this.#refreshJitterSec);
    return Math.min(wanted, Math.floor(lifetime / 2));
  }

  #usable(record: PortalRecord, aheadSec: number, rejectedToken: string | undefined): boolean {
    return (
      record.accessToken !== rejectedToken && record.expires - aheadSec > Math.floor(this.#now() / 1000)
    );
  }

  /**
   * Step 1: single flight per portal in this process, shared by the v2 and v3 clients. A caller
   * joining a flight started for another reason checks the outcome against its own need.
   */
  async #coordinate(slot: PortalSlot, request: RefreshRequest): Promise<PortalRecord> {
    for (let round = 0; round < 3; round++) {
      if (this.#usable(slot.record, slot.aheadSec, request.rejectedToken)) return slot.record;
      let flight = this.#flights.get(slot.memberId);
      if (flight === undefined) {
        flight = this.#refresh(slot.memberId, slot.record, request).finally(() => this.#flights.delete(slot.memberId));
        this.#flights.set(slot.memberId, flight);
      }
      const record = await flight;
      this.#adoptInto(slot, record);
      if (record.accessToken !== request.rejectedToken) return record;
    }
    return slot.record;
  }

  #adoptInto(slot: PortalSlot, record: PortalRecord): void {
    if (record.version !== slot.record.version || record.accessToken !== slot.record.accessToken) {
      slot.record = record;
      slot.aheadSec = this.#aheadFor(record);
      slot.rejectedToken = undefined;
    }
  }

  /** Steps 2-7 for one portal; runs at most once at a time per portal in this process. */
  async #refresh(memberId: string, known: PortalRecord, request: RefreshRequest): Promise<PortalRecord> {
    try {
      // Step 2: another worker (or an install) may already have moved the chain on.
      const stored = await this.#readActive(memberId);
      if (this.#movedOn(stored, known, request)) return this.#adopted(stored);

      // Step 3: the store's lock, a re-read under it, the refresh, the conditional write.
      const lease = await this.#acquire(memberId, known, request);
      if ('adopt' in lease) return this.#adopted(lease.adopt);
      try {
        const current = await this.#readActive(memberId);
        if (this.#movedOn(current, known, request)) return this.#adopted(current);
        return await this.#refreshAndPersist(current, request.reason);
      } finally {
        await lease.lease?.release().catch((error: unknown) => {
          this.logger.warn({ memberId, err: describeError(error) }, 'releasing the refresh lock failed');
        });
      }
    } catch (error) {
      if (!(error instanceof PortalRevokedError) && !(error instanceof PortalNotInstalledError)) {
        this.#counters.refreshFailures++;
        const code = error instanceof PortalTokensError ? error.code : 'UNKNOWN';
        this.logger.warn({ memberId, code, err: describeError(error) }, 'refresh failed; stored chain unchanged');
        this.#emit('refresh-failed', { memberId, code });
      }
      throw error;
    }
  }

  /** Whether the stored record already holds a pair this request can use without refreshing. */
  #movedOn(stored: PortalRecord, known: PortalRecord, request: RefreshRequest): boolean {
    if (request.reason === 'keep-alive') return stored.chainUpdatedAt > known.chainUpdatedAt;
    const aheadSec = Math.min(this.#refreshAheadSec, Math.floor(Math.max(0, stored.expires - Math.floor(stored.chainUpdatedAt / 1000)) / 2));
    return stored.accessToken !== known.accessToken && this.#usable(stored, aheadSec, request.rejectedToken);
  }

  #adopted(record: PortalRecord): PortalRecord {
    this.#counters.adoptions++;
    this.logger.debug({ memberId: record.memberId, version: record.version }, 'adopted a pair from the store');
    this.#emit('adopted', { memberId: record.memberId, version: record.version });
    return record;
  }

  /**
   * Takes the portal's lock, waiting with backoff while another worker holds it; while waiting,
   * a pair that worker stored is adopted at once.
   */
  async #acquire(
    memberId: string,
    known: PortalRecord,
    request: RefreshRequest,
  ): Promise<{ lease: StoreLease | undefined } | { adopt: PortalRecord }> {
    const tryLock = this.store.tryLock?.bind(this.store);
    if (tryLock === undefined || !this.store.capabilities.lock) return { lease: undefined };
    const started = this.#now();
    let delay = 10;
    let waited = false;
    for (;;) {
      const lease = await tryLock(memberId, this.#lockTtlMs);
      if (lease !== undefined) return { lease };
      if (!waited) {
        waited = true;
        this.#counters.lockWaits++;
      }
      await new Promise((resolve) => setTimeout(resolve, delay + Math.floor(this.#random() * delay)));
      delay = Math.min(delay * 2, 250);
      const stored = await this.#readActive(memberId);
      if (this.#movedOn(stored, known, request)) return { adopt: stored };
      if (this.#now() - started > this.#lockWaitMs) throw new LockTimeoutError(memberId, this.#now() - started);
    }
  }

  /** Refreshes at the portal's own OAuth host and persists the pair before anyone sees it. */
  async #refreshAndPersist(current: PortalRecord, reason: RefreshReason): Promise<PortalRecord> {
    const memberId = current.memberId;
    let tokens: TokenResponse;
    this.#counters.refreshes++;
    try {
      tokens = await this.oauth.refresh(oauthBaseFromServerEndpoint(current.serverEndpoint), current.refreshToken);
    } catch (error) {
      if (error instanceof OAuthRejectedError && error.terminal) return this.#revoke(current, error);
      throw error;
    }
    const now = this.#now();
    const clientEndpoint =
      tokens.clientEndpoint !== undefined && isHttpUrl(tokens.clientEndpoint) ? tokens.clientEndpoint : current.clientEndpoint;
    const patch: PortalRecordPatch = {
      accessToken: tokens.accessToken,
      // A response without refresh_token keeps the old one (PROTOCOL.md section 3).
      refreshToken: tokens.refreshToken ?? current.refreshToken,
      expires: tokens.expires,
      scope: tokens.scope ?? current.scope,
      status: tokens.status ?? current.status,
      userId: tokens.userId ?? current.userId,
      clientEndpoint,
      domain: clientEndpoint === current.clientEndpoint ? current.domain : new URL(clientEndpoint).host,
      updatedAt: now,
      chainUpdatedAt: now,
    };
    const record = await this.#persist(current, patch);
    if (record.accessToken === tokens.accessToken) {
      this.logger.info({ memberId, version: record.version, reason }, 'refreshed the token pair');
      this.#emit('refreshed', { memberId, version: record.version, expires: record.expires, reason });
      if (record.clientEndpoint !== current.clientEndpoint) this.#evict(memberId, 'endpoint-changed');
    }
    return record;
  }

  /**
   * Writes the new pair with the conditional write. A conflict under our lock means an install or
   * an uninstall happened meanwhile: a new chain from an install wins over ours (ours branched from
   * the old one); a change that left the chain alone is merged and written again.
   */
  async #persist(base: PortalRecord, patch: PortalRecordPatch): Promise<PortalRecord> {
    let expected = base;
    for (let attempt = 0; attempt < 5; attempt++) {
      let result;
      try {
        result = await this.store.update(base.memberId, expected.version, patch);
      } catch (error) {
        // The old refresh token is spent; the new pair exists only here. Try again before giving up.
        this.logger.error({ memberId: base.memberId, attempt, err: describeError(error) }, 'persisting a refreshed pair failed');
        if (attempt === 4) {
          throw error instanceof StoreError
            ? error
            : new StoreError('The token store failed while saving a refreshed pair', { cause: error, memberId: base.memberId });
        }
        await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
        continue;
      }
      if (result.ok) return result.record;
      const now = result.current;
      if (now === undefined) throw new PortalNotInstalledError(base.memberId);
      if (now.state === 'revoked') throw new PortalRevokedError(base.memberId, now.revokedReason ?? undefined);
      if (now.refreshToken !== base.refreshToken || now.accessToken !== base.accessToken) {
        this.logger.warn({ memberId: base.memberId }, 'the chain was replaced while refreshing; adopting the stored one');
        return now;
      }
      expected = now;
    }
    throw new StoreError('The record kept changing while saving a refreshed pair', { memberId: base.memberId });
  }

  /** Step 6: a terminal OAuth error marks the portal revoked, unless the chain moved on meanwhile. */
  async #revoke(current: PortalRecord, error: OAuthRejectedError): Promise<PortalRecord> {
    const memberId = current.memberId;
    const now = this.#now();
    const result = await this.store.update(memberId, current.version, {
      state: 'revoked',
      revokedAt: now,
      revokedReason: error.oauthError,
      updatedAt: now,
    });
    if (!result.ok && result.current !== undefined && result.current.state === 'active' && result.current.refreshToken !== current.refreshToken) {
      // An install or another worker stored a new chain while ours was failing: that one is alive.
      return this.#adopted(result.current);
    }
    this.#counters.revocations++;
    this.logger.error({ memberId, reason: error.oauthError }, 'portal revoked by the OAuth server');
    this.#evict(memberId, 'revoked');
    this.#emit('revoked', { memberId, reason: error.oauthError });
    throw new PortalRevokedError(memberId, error.oauthError, { cause: error });
  }

  async #keepAlive(record: PortalRecord, idleMs: number): Promise<'refreshed' | 'revoked' | 'failed'> {
    const memberId = record.memberId;
    try {
      let flight = this.#flights.get(memberId);
      if (flight === undefined) {
        flight = this.#refresh(memberId, record, { reason: 'keep-alive' }).finally(() => this.#flights.delete(memberId));
        this.#flights.set(memberId, flight);
      }
      const fresh = await flight;
      const slot = this.#cache.peek(memberId);
      if (slot !== undefined) this.#adoptInto(slot, fresh);
      return this.#now() - fresh.chainUpdatedAt <= idleMs ? 'refreshed' : 'failed';
    } catch (error) {
      if (error instanceof PortalRevokedError) return 'revoked';
      if (error instanceof PortalNotInstalledError) return 'failed';
      return 'failed';
    }
  }

  // --- helpers -------------------------------------------------------------------------------

  async #read(memberId: string): Promise<PortalRecord | undefined> {
    try {
      return await this.store.get(memberId);
    } catch (error) {
      throw error instanceof PortalTokensError ? error : new StoreError('The token store failed to read', { cause: error, memberId });
    }
  }

  async #readActive(memberId: string): Promise<PortalRecord> {
    const record = await this.#read(memberId);
    if (record === undefined) {
      this.#evict(memberId, 'lifecycle');
      throw new PortalNotInstalledError(memberId);
    }
    if (record.state === 'revoked') {
      this.#evict(memberId, 'revoked');
      throw new PortalRevokedError(memberId, record.revokedReason ?? undefined);
    }
    return record;
  }

  #evict(memberId: string, reason: EvictionReason): boolean {
    if (!this.#cache.has(memberId)) return false;
    this.#pendingEvictReason.set(memberId, reason);
    return this.#cache.delete(memberId);
  }

  #emit<E extends PoolEventName>(event: E, payload: PoolEventMap[E]): void {
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (p: PoolEventMap[E]) => void)(payload);
      } catch (error) {
        this.logger.warn({ event, err: describeError(error) }, 'a pool event listener threw');
      }
    }
  }
}
