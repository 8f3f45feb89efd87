// The options of PortalClientPool, with their defaults.

import type { RestrictionParams } from '@bitrix24/b24jssdk';
import { systemClock, type Clock } from '../clock.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from '../coordinator/backoff.js';
import type { CoordinatorOptions } from '../coordinator/types.js';
import { checkOptionalFunction, checkOptionalMethods, InvalidOptionsError } from '../errors/options.js';
import type { Logger } from '../logger.js';
import type { FetchLike } from '../oauth/oauth-client.js';
import type { TokenStore } from '../store/token-store.js';
import type { RestRootRules } from '../guard/rest-roots.js';
import type { RequestBudgetLimits } from '../budget/budget.js';
import type { HeadroomSettings } from '../budget/headroom.js';
import type { ProofLimits } from '../guard/proof-gate.js';

/** Options of `PortalClientPool`. */
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
  /** How long to wait for another worker's refresh before giving up with `LockTimeoutError`, ms. @defaultValue 20000 */
  readonly lockWaitMs?: number | undefined;
  /**
   * Timeout of one request to an OAuth host, ms. For a refresh it is how long callers wait for the
   * answer (then they get `OAuthUnavailableError`); the refresh request itself goes on, keeping the
   * portal's lock, and its pair is stored when the answer arrives (an answer may have spent the
   * refresh token already). Only after `REFRESH_HARD_CAP_MS` (or 10 times this, if longer) is it given up.
   * @defaultValue 10000
   */
  readonly oauthTimeoutMs?: number | undefined;
  /** The `fetch` used for OAuth hosts. @defaultValue `globalThis.fetch` */
  readonly fetch?: FetchLike | undefined;
  /**
   * A pino-compatible logger. It receives member ids and counts, never tokens. Pass `silentLogger`
   * to turn logging off. @defaultValue `consoleLogger` (warnings and errors on stderr)
   */
  readonly logger?: Logger | undefined;
  /**
   * The clock for every reading of the time and every wait (lock back-off, write retries). Inject
   * a `ManualClock` in tests. @defaultValue the system clock
   */
  readonly clock?: Clock | undefined;
  /** Clock, unix ms, for reading the time only; `clock` wins when both are given. @defaultValue `Date.now` */
  readonly now?: (() => number) | undefined;
  /** Random source in [0, 1) for jitter. @defaultValue `Math.random` */
  readonly random?: (() => number) | undefined;
  /**
   * The OAuth hosts that may receive a refresh token, an access token or the app's credentials:
   * every refresh and `app.info` goes only to one of them, checked as it is sent, whatever a stored
   * `serverEndpoint` says (`UntrustedHostError` otherwise; the chain is left as it is). Also where a
   * user's app-page chain is proven (`PortalClientPool.rememberUser`). A test stand-in passes its own
   * (`FakeBitrix24.trust`).
   * @defaultValue `["https://oauth.bitrix.info", "https://oauth.bitrix24.tech"]`
   */
  readonly trustedOAuthHosts?: readonly string[] | undefined;
  /**
   * Which REST roots may receive a portal's access token, checked as each request leaves:
   * by default https only, the portal's own stored domain, never a loopback, private or link-local
   * address (`UntrustedHostError` otherwise; nothing is sent). On-premise portals on plain http or
   * inside your network, and test stand-ins, opt in here (`FakeBitrix24.trust`).
   * @defaultValue `{ allowHttp: false, allowPrivateAddresses: false }`, host = the portal's domain
   */
  readonly restRoots?: RestRootRules | undefined;
  /**
   * Pauses after failures, so a failing chain or a misconfigured worker cannot hammer the OAuth
   * host: a chain whose refresh failed transiently waits `transientMinMs` (doubling per failure, with
   * jitter, up to `transientMaxMs`) before its next refresh is sent, and after `invalid_client` /
   * `wrong_client` the pool sends none for `credentialsMs`. Callers get the typed error at once
   * meanwhile. @defaultValue `{ transientMinMs: 1000, transientMaxMs: 300000, credentialsMs: 60000 }`
   */
  readonly backoff?: Partial<BackoffPolicy> | undefined;
  /**
   * How long a chain suspended by `PAYMENT_REQUIRED` waits before it is tried again, ms (the
   * portal's admin may pay meanwhile; `reactivate` tries at once). @defaultValue 3600000
   */
  readonly suspendRetryMs?: number | undefined;
  /**
   * At most this many refresh requests to OAuth hosts at once in this process; the rest wait their
   * turn. Keeps an expiry wave from timing out answers (a refresh whose answer is lost may still
   * have rotated the chain). @defaultValue 8
   */
  readonly maxConcurrentRefreshes?: number | undefined;
  /**
   * Passed to every `B24OAuth` as its `restrictionParams` (retries, error codes). While the
   * request budget is on, its `rateLimit`, `adaptiveConfig` and `operatingLimit` are replaced by
   * values that switch the SDK's own per-process limiter off (`SDK_LIMITER_OFF`).
   */
  readonly restrictionParams?: Partial<RestrictionParams> | undefined;
  /**
   * Each portal's Bitrix24 request limits (the server's numbers: `BITRIX24_PLAN_LIMITS.standard`,
   * 2/s and 50, or `.enterprise`, 5/s and 250), or a function giving them per portal (`undefined`
   * for the portal's plan, as by default). The pool keeps one budget per portal, shared by every
   * worker through the store (`capabilities.budget`), below these numbers by `budgetHeadroom`.
   * `false` turns the budget off (the SDK's own per-process limiter then applies, as before).
   * @defaultValue each portal's plan: `.enterprise` once an `app.info` answer through the pool
   * (yours, or the SDK helper's `loadData()`) named an Enterprise plan, else `.standard`
   */
  readonly requestBudget?: false | RequestBudgetLimits | ((memberId: string) => RequestBudgetLimits | undefined) | undefined;
  /**
   * How much of the server's numbers the budget uses. By default the headroom is learned per portal:
   * the documented rate and burst at first (a full portal's capacity where no other app calls it),
   * a step down for every worker at the first 503 `QUERY_LIMIT_EXCEEDED` (the shared budget is
   * pushed back, and the process that heard it lowers its share to 0.7 of what it was), then back
   * up slowly while answers are good (a minute from 0.7 to 1). Settings (`max`, `min`, `decrease`,
   * `recoverPerSec`, `settleMs`) tune the learner.
   *
   * A number in (0, 1] is a fixed share instead, for an app that shares its portals with other apps
   * and must leave them room before any 503 says so (0.5: 1/s and 25 on the standard plan); it also
   * bounds each method's operating time (otherwise 80% of its 480 s).
   * @defaultValue learned, starting at 1
   */
  readonly budgetHeadroom?: number | HeadroomSettings | undefined;
  /**
   * The longest a REST request waits for a slot, ms; a longer wait fails at once with
   * `RateLimitedError` and takes nothing. Per call: `withRequestDeadline`. @defaultValue no limit
   */
  readonly maxBudgetWaitMs?: number | undefined;
  /**
   * For a store without a shared budget: the share of each portal's budget this process keeps in
   * memory (1 / the number of worker processes). @defaultValue 1
   */
  readonly localBudgetShare?: number | undefined;
  /**
   * The ceilings on proofs public handlers make through this pool's OAuth client (the lifecycle
   * handler's, `rememberUser`'s and `reseed`'s token requests and `app.info` calls, the code
   * flow's exchanges): per process and per portal, in flight and per minute (`docs/security.md`,
   * "Tenant isolation"). @defaultValue see `ProofLimits`
   */
  readonly proofLimits?: ProofLimits | undefined;
  /**
   * The largest answer a pooled client reads from a portal's REST root, bytes; a larger one fails
   * with `ResponseTooLargeError` and is not read further. @defaultValue 8388608 (8 MiB)
   */
  readonly maxResponseBytes?: number | undefined;
}


/**
 * The longest a refresh request to an OAuth host is waited for before it is given up (a last
 * resort: callers stopped waiting after `oauthTimeoutMs`), ms. @defaultValue 180000
 */
export const REFRESH_HARD_CAP_MS = 180_000;

/** The hard cap of one refresh request for an `oauthTimeoutMs`. */
export function refreshHardCapMs(oauthTimeoutMs: number | undefined): number {
  return Math.max(REFRESH_HARD_CAP_MS, 10 * (oauthTimeoutMs ?? 10_000));
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionsError(name.split('.')[0] ?? name, `${name} must be a non-negative finite number`);
  }
  return value;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const checked = nonNegative(name, value, fallback);
  if (checked === 0) throw new InvalidOptionsError(name.split('.')[0] ?? name, `${name} must be a positive finite number`);
  return checked;
}

/** The coordinator's numbers from the pool's options, checked, with their defaults. */
export function resolveCoordinatorOptions(
  options: PortalClientPoolOptions,
): Pick<
  CoordinatorOptions,
  'random' | 'refreshAheadSec' | 'refreshJitterSec' | 'lockTtlMs' | 'lockWaitMs' | 'backoff' | 'suspendRetryMs' | 'maxConcurrentRefreshes' | 'answerWaitMs'
> {
  const backoff = options.backoff;
  return {
    random: options.random ?? Math.random,
    refreshAheadSec: nonNegative('refreshAheadSec', options.refreshAheadSec, 300),
    refreshJitterSec: nonNegative('refreshJitterSec', options.refreshJitterSec, 60),
    lockTtlMs: positive('lockTtlMs', options.lockTtlMs, 15_000),
    lockWaitMs: positive('lockWaitMs', options.lockWaitMs, 20_000),
    backoff: {
      transientMinMs: nonNegative('backoff.transientMinMs', backoff?.transientMinMs, DEFAULT_BACKOFF.transientMinMs),
      transientMaxMs: nonNegative('backoff.transientMaxMs', backoff?.transientMaxMs, DEFAULT_BACKOFF.transientMaxMs),
      credentialsMs: nonNegative('backoff.credentialsMs', backoff?.credentialsMs, DEFAULT_BACKOFF.credentialsMs),
    },
    suspendRetryMs: nonNegative('suspendRetryMs', options.suspendRetryMs, 3_600_000),
    maxConcurrentRefreshes: Math.floor(positive('maxConcurrentRefreshes', options.maxConcurrentRefreshes, 8)),
    answerWaitMs: positive('oauthTimeoutMs', options.oauthTimeoutMs, 10_000),
  };
}

/** The cache size from the options. */
export function resolveMax(max: number | undefined): number {
  const value = max ?? 1000;
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidOptionsError('max', 'max must be a positive integer');
  return value;
}

/** The methods every `TokenStore` has; the others, when present, must be functions too. */
const STORE_METHODS = ['get', 'upsert', 'update', 'delete', 'deletePortal'] as const;
const OPTIONAL_STORE_METHODS = ['ready', 'tryLock', 'list', 'listChains', 'subscribe', 'acquire', 'close'] as const;

/**
 * The options checked when they are given (so a bad one is refused by the constructor, not met
 * later inside a timer): the store implements `TokenStore`, every callback option is a function
 * and every object option has its methods. Returns the store.
 * @throws InvalidOptionsError naming the option at fault.
 */
export function checkedStore(options: PortalClientPoolOptions): TokenStore {
  if (options === null || typeof options !== 'object') throw new InvalidOptionsError('options', 'options must be an object');
  const { store } = options;
  const capabilities = (store as Partial<TokenStore> | null | undefined)?.capabilities;
  if (capabilities === null || typeof capabilities !== 'object') {
    throw new InvalidOptionsError('store', 'store must implement TokenStore (missing: capabilities)');
  }
  checkOptionalMethods('store', store, STORE_METHODS, 'a TokenStore');
  const present = OPTIONAL_STORE_METHODS.filter((method) => store[method] !== undefined);
  checkOptionalMethods('store', store, present, 'a TokenStore');
  checkOptionalFunction('fetch', options.fetch);
  checkOptionalMethods('logger', options.logger, ['debug', 'info', 'warn', 'error'], 'a pino-compatible logger');
  checkOptionalMethods('clock', options.clock, ['now', 'sleep'], 'a Clock');
  checkOptionalFunction('now', options.now);
  checkOptionalFunction('random', options.random);
  if (options.backoff !== undefined && (options.backoff === null || typeof options.backoff !== 'object')) {
    throw new InvalidOptionsError('backoff', 'backoff must be an object');
  }
  return store;
}

/** The pool's clock: `clock`, or the system clock reading the time from `now` when given. */
export function resolveClock(options: PortalClientPoolOptions): Clock {
  const now = options.now;
  return options.clock ?? (now === undefined ? systemClock : { now, sleep: (ms, signal) => systemClock.sleep(ms, signal) });
}
