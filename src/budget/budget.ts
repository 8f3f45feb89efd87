// The pool's request budget: before a REST request of a portal leaves (v2, v3 and batch alike,
// every chain of the portal), it takes a slot of the portal's budget in the store (GCRA,
// `TokenStore.acquire`, key `rest:<memberId>`) and waits what the answer says. A 503
// QUERY_LIMIT_EXCEEDED pushes the shared budget back for every worker; operating time and 429
// OPERATION_TIME_LIMIT are kept per method in operating.ts; the first request of a cold portal or
// method goes alone (gates.ts); a portal's plan comes from plan.ts. Portals never share a key, so
// they never wait for each other.

import type { RestrictionParams } from '@bitrix24/b24jssdk';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../clock.js';
import { RateLimitedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { MemoryTokenStore } from '../store/memory/store.js';
import type { BudgetGrant, BudgetSpec, TokenStore } from '../store/token-store.js';
import { ProbeGates } from './gates.js';
import type { HeadroomLearner } from './headroom.js';
import { shareTurn } from './priority.js';
import { typedBudgetStep } from './store-errors.js';
import { OperatingAccounts, operatingOf, operatingResetAtOf } from './operating.js';
import { BITRIX24_PLAN_LIMITS, planInAnswer, type RequestBudgetLimits } from './plan.js';

export { BITRIX24_PLAN_LIMITS, type RequestBudgetLimits };

/**
 * Per-portal counters of the budget, in `pool.stats().budgets`.
 * @inline
 */
export interface PortalBudgetStats {
  /** Requests that had to wait for a slot. */
  readonly waits: number;
  /** Their total wait, ms. */
  readonly waitedMs: number;
  /** Times a 503 pushed the shared budget back. */
  readonly pushBacks: number;
  /** 503 `QUERY_LIMIT_EXCEEDED` answers that reached this process. */
  readonly queryLimitExceeded: number;
  /** Requests refused with `RateLimitedError` instead of waiting past their limit. */
  readonly rateLimited: number;
  /** Requests delayed because their method was close to its operating-time budget. */
  readonly operatingWaits: number;
  /** 429 `OPERATION_TIME_LIMIT` answers that reached this process; each held the method for every worker. */
  readonly operationTimeLimit: number;
  /**
   * The share of the portal's limits this process's budget uses now: `budgetHeadroom` when it is a
   * number, else the learned one (1 until a 503, lower after one, recovering slowly).
   */
  readonly share: number;
}

/**
 * A caller's limit on how long its REST requests may wait for the budget; see {@link withRequestDeadline}.
 * @inline
 */
export interface RequestDeadline {
  /** Requests started inside the callback wait at most this long for a slot, ms. */
  readonly maxWaitMs?: number | undefined;
  /** When it fires, waiting requests stop with `RateLimitedError` (reason `'aborted'`). */
  readonly signal?: AbortSignal | undefined;
}

const deadlines = new AsyncLocalStorage<RequestDeadline>();

/**
 * Runs `fn` with a limit on how long the REST requests it makes may wait for the portal's request
 * budget. The SDK's `call.make` takes no deadline or `AbortSignal`, so the limit travels with the
 * async context: a request whose wait would pass it fails at once with `RateLimitedError`, taking
 * nothing from the budget.
 *
 * @example
 * ```ts
 * const deal = await withRequestDeadline({ maxWaitMs: 2_000 }, () => b24.actions.v2.call.make({ method: 'crm.deal.get', params: { id } }));
 * ```
 */
export function withRequestDeadline<T>(deadline: RequestDeadline, fn: () => T): T {
  return deadlines.run(deadline, fn);
}

/** What the pool gives the budget. */
export interface RequestBudgetSettings {
  readonly store: TokenStore;
  /** The portal's limits (server numbers; headroom is applied here); `undefined`: its plan's. */
  readonly limitsFor: (memberId: string) => RequestBudgetLimits | undefined;
  /**
   * The share of the server's numbers the budget uses: a fixed fraction (0 < h <= 1), or a learner
   * that starts at the documented numbers and gives way at a 503 (headroom.ts).
   */
  readonly headroom: number | HeadroomLearner;
  /** The share of Bitrix24's operating time (480 s per method in 10 minutes) the budget lets a method use. */
  readonly operatingHeadroom: number;
  /** The pool-wide longest wait for a slot, ms (Infinity: none). */
  readonly maxWaitMs: number;
  /** Without a shared budget in the store: the fraction of each portal's budget this process uses. */
  readonly localShare: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Counts and events for the metrics work. */
  readonly emit: (event: 'budget-wait' | 'budget-push-back' | 'query-limit-exceeded', payload: BudgetEvent) => void;
}

/**
 * The payload of the budget's pool events.
 * @inline
 */
export interface BudgetEvent {
  /** The portal whose budget it is. */
  readonly memberId: string;
  /** The wait (for `budget-wait`) or push-back (for `budget-push-back`), ms; 0 for `query-limit-exceeded`. */
  readonly ms: number;
  /** The REST method, when known. */
  readonly method?: string | undefined;
  /** For `budget-push-back`: a 503 (`'rate'`, the portal's budget) or a 429 (`'operating'`, the method's account). */
  readonly reason?: 'rate' | 'operating' | undefined;
}

/** Which probe gates a request is the probe of (from {@link RequestBudget.beforeRequest}, for {@link RequestBudget.settle}). */
export interface ProbeFlags {
  /** The first request of a portal this process has not heard from lately. */
  readonly portal: boolean;
  /** The first request of a method of the portal this process has not had a good answer for lately. */
  readonly method: boolean;
}

/** What the answer to a request said, for {@link RequestBudget.settle}. */
export type RequestOutcome = 'ok' | 'query-limit' | 'operation-time-limit' | 'no-answer';

const NO_PROBE: ProbeFlags = Object.freeze({ portal: false, method: false });

interface SlotQueue {
  waiting: { resolve: (grant: { waitMs: number; granted: boolean }) => void; reject: (error: unknown) => void }[];
  running: boolean;
}

/** The most slots beyond those asked for that one budget step leases, unless the lease window holds more (see {@link leaseMarginOf}). */
const MAX_LEASE = 4;

/**
 * How many units below its burst every step of a portal's budget asks, for a burst of `burst`
 * (the margin m). It pays for leases: a slot this process leased ahead of its requests may be used
 * from its time until m intervals after it (the lease window, m / rate), and a slot used up to that
 * late arrives at most m units' worth early for the bucket, which every step leaving m units free
 * makes room for. So the fleet stays within the portal's burst whatever mix of leased and unleased
 * slots its workers send (the proof: docs/request-budget.md, "Leases"). The same unit is the room
 * left for requests that reach the server later or earlier than their slot (network, event loop).
 * One unit per 50 of burst: the standard plan (burst 50) keeps one interval (500 ms), Enterprise
 * (250) one second, a budget of a million a second and as much burst a window of 20 ms; a burst of
 * 1 leases nothing.
 */
export function leaseMarginOf(burst: number): number {
  return burst >= 2 ? Math.max(1, Math.floor(burst / 50)) : 0;
}

/**
 * Slots of a portal's budget this process took from the store ahead of its requests. A leased slot
 * may be used from its time until the lease window after it (see {@link leaseMarginOf}); slots not
 * used in time are dropped.
 */
interface Lease {
  /** When each leased slot may be used (unix ms, ascending), from `head` on (an index, not shift(): a lease may hold thousands). */
  times: number[];
  head: number;
  /** How many slots the next step leases beyond those asked for (grows while requests keep coming). */
  extra: number;
  /** When the last step ended (unix ms): a step soon after it means demand that a lease could serve. */
  lastStepAt: number;
  /** Whether the last step's slots had to wait: the budget binds, and slots leased then would lie far ahead. */
  binding: boolean;
}

/** A portal's budget as this process asks for it now. */
interface PortalSpec {
  /** The GCRA numbers every step asks with (the burst already lowered by `margin`). */
  readonly spec: BudgetSpec;
  /** Units below the burst, paying for leases (see {@link leaseMarginOf}). */
  readonly margin: number;
  /** How long after its time a leased slot may still be used, ms. */
  readonly windowMs: number;
}

type MutableStats = { -readonly [K in Exclude<keyof PortalBudgetStats, 'share'>]: PortalBudgetStats[K] };

/** One pool's request budget. */
export class RequestBudget {
  /** Whether the budget is shared through the store (else each process keeps its own share). */
  readonly shared: boolean;
  readonly #settings: RequestBudgetSettings;
  readonly #store: TokenStore;
  readonly #stats = new Map<string, MutableStats>();
  readonly #gates: ProbeGates;
  readonly #operating: OperatingAccounts;
  /** Each portal's plan, as the last `app.info` answer seen named it. */
  readonly #plans = new Map<string, RequestBudgetLimits>();
  /** Requests of a portal waiting to share the next budget step. */
  readonly #queues = new Map<string, SlotQueue>();
  /** Slots of each portal's budget leased ahead of requests. */
  readonly #leases = new Map<string, Lease>();

  constructor(settings: RequestBudgetSettings) {
    this.#settings = settings;
    const store = settings.store;
    // A store that declares the budget keeps it for everyone who shares the store (the memory store: this process).
    this.shared = store.capabilities.budget === true && typeof store.acquire === 'function';
    if (this.shared) this.#store = store;
    else {
      this.#store = new MemoryTokenStore({ now: () => settings.clock.now() });
      settings.logger.warn(
        { localShare: settings.localShare },
        'the token store offers no shared request budget: each process keeps its own share of every portal\'s Bitrix24 limit',
      );
    }
    this.#gates = new ProbeGates(settings.clock);
    this.#operating = new OperatingAccounts((key, spec) => this.#acquire(key, spec), settings.operatingHeadroom, settings.clock);
  }

  /** The GCRA numbers of a portal's REST budget, as every step asks for them (see {@link leaseMarginOf}). */
  specFor(memberId: string): BudgetSpec {
    return this.#portalSpec(memberId).spec;
  }

  /** The share of a portal's limits the budget uses now (fixed, or learned). */
  #shareOf(memberId: string): number {
    const headroom = this.#settings.headroom;
    return typeof headroom === 'number' ? headroom : headroom.share(memberId);
  }

  #portalSpec(memberId: string): PortalSpec {
    const limits = this.#settings.limitsFor(memberId) ?? this.#plans.get(memberId) ?? BITRIX24_PLAN_LIMITS.standard;
    const share = (this.shared ? 1 : this.#settings.localShare) * this.#shareOf(memberId);
    const ratePerSec = limits.ratePerSec * share;
    const burst = Math.max(1, Math.floor(limits.burst * share));
    const margin = leaseMarginOf(burst);
    return { spec: { ratePerSec, burst: burst - margin }, margin, windowMs: (margin * 1000) / ratePerSec };
  }

  /**
   * Waits until the request may leave: the first request of a method, and of a portal, this process
   * has not had a good answer for lately goes alone (a bucket another app filled, or a method the
   * server blocked, then costs one refused request per worker, not one per call), then a slot of the
   * shared budget, then the method's operating-time account (checked for heavy or cold methods).
   * @returns which gates this request is the probe of (pass them to {@link settle}).
   */
  async beforeRequest(memberId: string, method: string | undefined): Promise<ProbeFlags> {
    const deadline = deadlines.getStore();
    const aborted = (): boolean => deadline?.signal?.aborted === true;
    let probe = NO_PROBE;
    try {
      const methodProbe = method === undefined ? false : await this.#gates.pass(`${memberId} ${method}`, aborted);
      if (methodProbe === 'aborted') throw this.#refused(memberId, 0, 'aborted');
      probe = { portal: false, method: methodProbe };
      const portalProbe = await this.#gates.pass(memberId, aborted);
      if (portalProbe === 'aborted') throw this.#refused(memberId, 0, 'aborted');
      probe = { portal: portalProbe, method: methodProbe };
      await this.#take(memberId, method, methodProbe, deadline);
    } catch (error) {
      this.settle(memberId, method, probe, 'no-answer');
      throw error;
    }
    return probe;
  }

  /**
   * The answer of a request arrived (or none will): opens the gates it was the probe of. Any answer
   * but a 503 says the portal's bucket had room; only a good answer says the method is not blocked.
   */
  settle(memberId: string, method: string | undefined, probe: ProbeFlags, outcome: RequestOutcome): void {
    this.#gates.settle(memberId, probe.portal, outcome === 'ok' || outcome === 'operation-time-limit');
    if (method !== undefined) this.#gates.settle(`${memberId} ${method}`, probe.method, outcome === 'ok');
  }

  /** A 503 QUERY_LIMIT_EXCEEDED came back: pushes the shared budget back for every worker. */
  async pushBack(memberId: string, method: string | undefined): Promise<void> {
    const stats = this.#statsOf(memberId);
    stats.queryLimitExceeded++;
    // Slots leased before the server said its bucket is full are not slots any more.
    this.#leases.delete(memberId);
    // A learned headroom gives way (once per burst of refusals); the push-back below holds every worker.
    const headroom = this.#settings.headroom;
    if (typeof headroom !== 'number') headroom.limited(memberId);
    this.#settings.emit('query-limit-exceeded', { memberId, ms: 0, method });
    const spec = this.specFor(memberId);
    // The server's bucket is full: the next request may leave once it drained a unit, with one
    // interval more of margin (the budget's burst is gone too: slots then come one interval apart).
    const ms = Math.ceil(2000 / spec.ratePerSec);
    await this.#acquire(`rest:${memberId}`, { ...spec, cost: 0, pushBackMs: ms });
    stats.pushBacks++;
    this.#settings.emit('budget-push-back', { memberId, ms, method, reason: 'rate' });
  }

  /**
   * A 429 OPERATION_TIME_LIMIT came back for `method` (`data`: the answer's body): holds the method
   * for every worker until the server frees it (`time.operating_reset_at` when the answer has it).
   */
  async operationTimeLimited(memberId: string, method: string, data: unknown): Promise<void> {
    const stats = this.#statsOf(memberId);
    stats.operationTimeLimit++;
    const ms = await this.#operating.pushBack(memberId, method, operatingResetAtOf(data));
    stats.pushBacks++;
    this.#settings.emit('budget-push-back', { memberId, ms, method, reason: 'operating' });
  }

  /**
   * A good answer of `method` (`data`: its body): adds its `time.operating` to the method's shared
   * account, and notes the portal's plan when the answer names it (`app.info`, alone or in a batch).
   */
  async recordAnswer(memberId: string, method: string, data: unknown): Promise<void> {
    const plan = planInAnswer(method, data);
    if (plan !== undefined) this.#plans.set(memberId, plan);
    await this.#operating.record(memberId, method, operatingOf(data), operatingResetAtOf(data));
  }

  /** Per-portal counters. */
  stats(): Record<string, PortalBudgetStats> {
    const out: Record<string, PortalBudgetStats> = {};
    for (const [memberId, stats] of this.#stats) out[memberId] = { ...stats, share: this.#shareOf(memberId) };
    return out;
  }

  async #take(memberId: string, method: string | undefined, coldMethod: boolean, deadline: RequestDeadline | undefined): Promise<void> {
    const clock = this.#settings.clock;
    const started = clock.now();
    const limit = Math.min(this.#settings.maxWaitMs, deadline?.maxWaitMs ?? Number.POSITIVE_INFINITY);
    const maxWaitMs = Number.isFinite(limit) ? Math.max(0, limit) : undefined;
    // inbound (issue 22 case 2): a listener's request first waits for its share of the portal's budget (priority.ts).
    await shareTurn(memberId, this.specFor(memberId), maxWaitMs, deadline?.signal, {
      acquire: (key, spec) => this.#acquire(key, spec),
      clock,
      refused: (waitMs, reason) => this.#refused(memberId, waitMs, reason),
    });
    const grant =
      maxWaitMs === undefined ? await this.#slot(memberId) : await this.#acquire(`rest:${memberId}`, { ...this.specFor(memberId), maxWaitMs });
    if (!grant.granted) throw this.#refused(memberId, grant.waitMs, 'rate');
    let waited = grant.waitMs;
    if (method !== undefined && (coldMethod || this.#operating.watched(memberId, method))) {
      // A method past its share of the operating time, or held after a 429, waits until its account drains.
      const accountWaitMs = await this.#operating.waitMs(memberId, method);
      if (accountWaitMs > 0) {
        if (maxWaitMs !== undefined && accountWaitMs > maxWaitMs) throw this.#refused(memberId, accountWaitMs, 'operating');
        this.#statsOf(memberId).operatingWaits++;
        waited = Math.max(waited, accountWaitMs);
      }
    }
    if (waited <= 0) return;
    const stats = this.#statsOf(memberId);
    stats.waits++;
    stats.waitedMs += waited;
    this.#settings.emit('budget-wait', { memberId, ms: waited, method });
    const left = waited - (clock.now() - started);
    if (left > 0) {
      try {
        await clock.sleep(left, deadline?.signal);
      } catch (error) {
        if (deadline?.signal?.aborted === true) throw this.#refused(memberId, left, 'aborted');
        throw error;
      }
    }
  }

  /**
   * A slot of the portal's budget for a request without a deadline. Requests that arrive while a
   * step for the portal is in flight share the next one: one step of cost k gives k consecutive
   * slots (the i-th waits k - 1 - i intervals less than the last), so a burst of calls costs the
   * store a few round trips instead of one per call.
   */
  #slot(memberId: string): Promise<{ waitMs: number; granted: boolean }> {
    const leased = this.#leased(memberId);
    if (leased !== undefined) return Promise.resolve({ waitMs: leased, granted: true });
    return new Promise((resolve, reject) => {
      let queue = this.#queues.get(memberId);
      if (queue === undefined) {
        queue = { waiting: [], running: false };
        this.#queues.set(memberId, queue);
      }
      queue.waiting.push({ resolve, reject });
      if (!queue.running) void this.#drain(memberId, queue);
    });
  }

  async #drain(memberId: string, queue: SlotQueue): Promise<void> {
    queue.running = true;
    try {
      while (queue.waiting.length > 0) {
        const batch = queue.waiting.splice(0);
        try {
          // Inside the try: the portal's limits come from the user's options and may throw.
          const { spec, margin } = this.#portalSpec(memberId);
          const lease = this.#leaseOf(memberId);
          // Leases serve requests that come one after another while the budget does not bind. Where
          // it binds, waiting requests share steps anyway, and a slot leased behind them would lie
          // seconds ahead and lapse unused when this process's calls end (capacity lost for all).
          const extra = this.shared && margin > 0 && batch.length === 1 && !lease.binding ? lease.extra : 0;
          // One step for the waiting requests and, while requests keep coming, slots more for the
          // next ones (every step asks with the burst lowered by the margin: see leaseMarginOf).
          const cost = batch.length + extra;
          const grant = await this.#acquire(`rest:${memberId}`, { ...spec, cost });
          const interval = 1000 / spec.ratePerSec;
          const now = this.#settings.clock.now();
          const waitOf = (i: number): number => Math.max(0, grant.waitMs - (cost - 1 - i) * interval);
          batch.forEach((waiter, i) => waiter.resolve({ waitMs: waitOf(i), granted: true }));
          for (let i = batch.length; i < cost; i++) lease.times.push(now + waitOf(i));
          lease.lastStepAt = now;
          lease.binding = grant.waitMs > 0;
        } catch (error) {
          for (const waiter of batch) waiter.reject(error);
        }
      }
    } finally {
      queue.running = false;
      if (queue.waiting.length === 0 && this.#queues.get(memberId) === queue) this.#queues.delete(memberId);
    }
  }

  #leaseOf(memberId: string): Lease {
    let lease = this.#leases.get(memberId);
    if (lease === undefined) {
      lease = { times: [], head: 0, extra: 0, lastStepAt: Number.NEGATIVE_INFINITY, binding: false };
      this.#leases.set(memberId, lease);
    }
    return lease;
  }

  /**
   * Takes a leased slot of the portal when one is still usable: its wait, ms; `undefined` when none
   * is. Sizes the next lease by demand: a step needed within the lease window of the last one
   * doubles it (up to {@link MAX_LEASE}, or the units the window holds when more); slots that lapsed
   * unused halve it.
   */
  #leased(memberId: string): number | undefined {
    const lease = this.#leases.get(memberId);
    if (lease === undefined || !this.shared) return undefined;
    const now = this.#settings.clock.now();
    const { margin, windowMs } = this.#portalSpec(memberId);
    const { times } = lease;
    const start = lease.head;
    while (lease.head < times.length && (times[lease.head] as number) + windowMs < now) lease.head++;
    if (lease.head > start) lease.extra = Math.floor(lease.extra / 2);
    if (lease.head < times.length) return Math.max(0, (times[lease.head++] as number) - now);
    times.length = 0;
    lease.head = 0;
    if (now - lease.lastStepAt <= windowMs) lease.extra = Math.min(Math.max(MAX_LEASE, margin), Math.max(1, lease.extra * 2));
    else if (lease.extra === 0) this.#leases.delete(memberId);
    return undefined;
  }

  #acquire(key: string, spec: BudgetSpec): Promise<BudgetGrant> {
    const store = this.#store;
    if (store.acquire === undefined) return Promise.resolve({ waitMs: 0, granted: true });
    return typedBudgetStep(key, () => store.acquire!(key, spec)); // inbound (issue 22 case 6): a raw error arrives as StoreError
  }

  #refused(memberId: string, waitMs: number, reason: 'rate' | 'operating' | 'aborted'): RateLimitedError {
    this.#statsOf(memberId).rateLimited++;
    return new RateLimitedError(memberId, waitMs, reason);
  }

  #statsOf(memberId: string): MutableStats {
    let stats = this.#stats.get(memberId);
    if (stats === undefined) {
      stats = { waits: 0, waitedMs: 0, pushBacks: 0, queryLimitExceeded: 0, rateLimited: 0, operatingWaits: 0, operationTimeLimit: 0 };
      this.#stats.set(memberId, stats);
    }
    return stats;
  }
}

/** The REST method of a request URL (`.../rest/crm.deal.get.json`, `.../rest/api/tasks.task.get`, `batch`). */
export function restMethodOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const path = url.split('?')[0] ?? '';
  const last = path.split('/').filter((part) => part.length > 0).at(-1);
  return last?.replace(/\.json$/i, '').toLowerCase();
}

/**
 * The SDK's own limiter, relaxed so it never stacks on the pool's budget (SDK 2.2.0: its rate
 * limiter starts with `burstLimit` tokens and refills `drainRate` a second, per HTTP client and
 * process; its adaptive delayer and operating limiter pause per process).
 */
export const SDK_LIMITER_OFF: Readonly<Partial<RestrictionParams>> = Object.freeze({
  rateLimit: { burstLimit: 1e9, drainRate: 1e9, adaptiveEnabled: false },
  adaptiveConfig: { enabled: false, thresholdPercent: 100, coefficient: 0, maxDelay: 0 },
  operatingLimit: { windowMs: 600_000, limitMs: 1e12, heavyPercent: 100 },
});
