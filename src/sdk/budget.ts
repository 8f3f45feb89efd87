// The pool's request budget: before a REST request of a portal leaves (v2, v3 and batch alike,
// every chain of the portal), it takes a slot of the portal's budget in the store (GCRA,
// `TokenStore.acquire`, key `rest:<memberId>`) and waits what the answer says. A 503
// QUERY_LIMIT_EXCEEDED pushes the shared budget back for every worker; each answer's
// `time.operating` is added to a per-portal, per-method account (`op:<memberId>:<method>`) and a
// method past its share waits cluster-wide. Portals never share a key, so they never wait for each other.

import type { RestrictionParams } from '@bitrix24/b24jssdk';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../clock.js';
import { RateLimitedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { MemoryTokenStore } from '../store/memory.js';
import type { BudgetSpec, TokenStore } from '../store/token-store.js';

/** A portal's REST limits: Bitrix24's leaky bucket drains `ratePerSec` and blocks past `burst`. */
export interface RequestBudgetLimits {
  /** Requests per second the portal's bucket drains (Bitrix24: 2; Enterprise: 5). */
  readonly ratePerSec: number;
  /** Requests the bucket holds before it blocks (Bitrix24: 50; Enterprise: 250). */
  readonly burst: number;
}

/** Bitrix24's documented limits per plan (cloud portals), for `requestBudget`. */
export const BITRIX24_PLAN_LIMITS: Readonly<Record<'standard' | 'enterprise', RequestBudgetLimits>> = Object.freeze({
  /** Every plan but Enterprise. */
  standard: { ratePerSec: 2, burst: 50 },
  /** Enterprise plans. */
  enterprise: { ratePerSec: 5, burst: 250 },
});

/** Bitrix24's operating-time limit: 480 s of server time per method in 10 minutes. */
const OPERATING_LIMIT_SEC = 480;
const OPERATING_WINDOW_SEC = 600;
/** A method whose single answer took at least this much operating time is checked before it leaves. */
const HEAVY_OPERATING_SEC = 0.5;
/** How long a portal counts as known-good after an answer that was not a 503, ms. */
const WARM_MS = 10_000;
/** The longest a request waits for the first request of a cold portal to answer, ms. */
const PROBE_HOLD_MS = 5_000;

/** Per-portal counters of the budget, in `pool.stats().budgets`. */
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
}

/** A caller's limit on how long its REST requests may wait for the budget; see {@link withRequestDeadline}. */
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
  /** The portal's limits (server numbers; headroom is applied here). */
  readonly limitsFor: (memberId: string) => RequestBudgetLimits;
  /** Fraction of the server's numbers the budget uses (0 < h <= 1). */
  readonly headroom: number;
  /** The pool-wide longest wait for a slot, ms (Infinity: none). */
  readonly maxWaitMs: number;
  /** Without a shared budget in the store: the fraction of each portal's budget this process uses. */
  readonly localShare: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Counts and events for the metrics work. */
  readonly emit: (event: 'budget-wait' | 'budget-push-back' | 'query-limit-exceeded', payload: BudgetEvent) => void;
}

/** The payload of the budget's pool events. */
export interface BudgetEvent {
  /** The portal whose budget it is. */
  readonly memberId: string;
  /** The wait (for `budget-wait`) or push-back (for `budget-push-back`), ms; 0 for `query-limit-exceeded`. */
  readonly ms: number;
  /** The REST method, when known. */
  readonly method?: string | undefined;
}

interface Gate {
  okAt: number;
  probe: Promise<void> | undefined;
  open: (() => void) | undefined;
}

interface SlotQueue {
  waiting: { resolve: (grant: { waitMs: number; granted: boolean }) => void; reject: (error: unknown) => void }[];
  running: boolean;
}

type MutableStats = { -readonly [K in keyof PortalBudgetStats]: PortalBudgetStats[K] };

/** One pool's request budget. */
export class RequestBudget {
  /** Whether the budget is shared through the store (else each process keeps its own share). */
  readonly shared: boolean;
  readonly #settings: RequestBudgetSettings;
  readonly #store: TokenStore;
  readonly #stats = new Map<string, MutableStats>();
  readonly #gates = new Map<string, Gate>();
  /** Requests of a portal waiting to share the next budget step. */
  readonly #queues = new Map<string, SlotQueue>();
  /** `memberId method` of methods seen taking HEAVY_OPERATING_SEC or more in one answer. */
  readonly #heavy = new Set<string>();

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
  }

  /** The GCRA numbers of a portal's REST budget. */
  specFor(memberId: string): BudgetSpec {
    const limits = this.#settings.limitsFor(memberId);
    const share = (this.shared ? 1 : this.#settings.localShare) * this.#settings.headroom;
    return { ratePerSec: limits.ratePerSec * share, burst: Math.max(1, Math.floor(limits.burst * share)) };
  }

  /**
   * Waits until the request may leave: the first request of a portal this process has not heard
   * from lately goes alone (a bucket another app filled then costs one 503 per worker, not one per
   * call), then a slot of the shared budget, then the method's operating-time account.
   * @returns whether this request is the cold portal's probe (pass it to {@link settle}).
   */
  async beforeRequest(memberId: string, method: string | undefined): Promise<boolean> {
    const deadline = deadlines.getStore();
    const probe = await this.#passGate(memberId, deadline);
    try {
      await this.#take(memberId, method, deadline);
    } catch (error) {
      if (probe) this.settle(memberId, true, false);
      throw error;
    }
    return probe;
  }

  /** The answer of a request arrived (`limited`: a 503 QUERY_LIMIT_EXCEEDED); opens a cold portal's gate. */
  settle(memberId: string, probe: boolean, limited: boolean): void {
    const gate = this.#gates.get(memberId);
    if (gate === undefined) return;
    if (!limited) gate.okAt = this.#settings.clock.now();
    if (probe || !limited) {
      const open = gate.open;
      gate.probe = undefined;
      gate.open = undefined;
      open?.();
    }
  }

  /** A 503 QUERY_LIMIT_EXCEEDED came back: pushes the shared budget back for every worker. */
  async pushBack(memberId: string, method: string | undefined): Promise<void> {
    const stats = this.#statsOf(memberId);
    stats.queryLimitExceeded++;
    this.#settings.emit('query-limit-exceeded', { memberId, ms: 0, method });
    const spec = this.specFor(memberId);
    // The server's bucket is full: the next request may leave once it drained a unit, with one
    // interval more of margin (the budget's burst is gone too: slots then come one interval apart).
    const ms = Math.ceil(2000 / spec.ratePerSec);
    await this.#store.acquire?.(`rest:${memberId}`, { ...spec, cost: 0, pushBackMs: ms });
    stats.pushBacks++;
    this.#settings.emit('budget-push-back', { memberId, ms, method });
  }

  /** Adds an answer's operating time (seconds) to the method's shared account. */
  async recordOperating(memberId: string, method: string, operatingSec: number): Promise<void> {
    if (!(operatingSec > 0) || !Number.isFinite(operatingSec)) return;
    if (operatingSec >= HEAVY_OPERATING_SEC) this.#heavy.add(`${memberId} ${method}`);
    if (!this.#heavy.has(`${memberId} ${method}`)) return;
    await this.#store.acquire?.(`op:${memberId}:${method}`, { ...this.#operatingSpec(), cost: operatingSec });
  }

  /** Per-portal counters. */
  stats(): Record<string, PortalBudgetStats> {
    const out: Record<string, PortalBudgetStats> = {};
    for (const [memberId, stats] of this.#stats) out[memberId] = { ...stats };
    return out;
  }

  #operatingSpec(): BudgetSpec {
    // The account drains 480 s per 600 s; it may hold the headroom share of 480 s.
    return { ratePerSec: OPERATING_LIMIT_SEC / OPERATING_WINDOW_SEC, burst: OPERATING_LIMIT_SEC * this.#settings.headroom };
  }

  async #passGate(memberId: string, deadline: RequestDeadline | undefined): Promise<boolean> {
    const clock = this.#settings.clock;
    for (;;) {
      let gate = this.#gates.get(memberId);
      if (gate === undefined) {
        gate = { okAt: Number.NEGATIVE_INFINITY, probe: undefined, open: undefined };
        this.#gates.set(memberId, gate);
      }
      if (gate.probe === undefined && clock.now() - gate.okAt < WARM_MS) return false;
      if (gate.probe === undefined) {
        let open: () => void = () => undefined;
        gate.probe = new Promise<void>((resolve) => (open = resolve));
        gate.open = open;
        return true;
      }
      if (deadline?.signal?.aborted === true) throw this.#refused(memberId, 0, 'aborted');
      // Held until the probe answers (bounded, in case its answer never comes back to us).
      const probe = gate.probe;
      const timer = new Promise<void>((resolve) => setTimeout(resolve, PROBE_HOLD_MS).unref());
      await Promise.race([probe, timer]);
      if (gate.probe === probe) this.settle(memberId, true, true);
    }
  }

  async #take(memberId: string, method: string | undefined, deadline: RequestDeadline | undefined): Promise<void> {
    const clock = this.#settings.clock;
    const started = clock.now();
    const limit = Math.min(this.#settings.maxWaitMs, deadline?.maxWaitMs ?? Number.POSITIVE_INFINITY);
    const maxWaitMs = Number.isFinite(limit) ? Math.max(0, limit) : undefined;
    const grant =
      maxWaitMs === undefined ? await this.#slot(memberId) : await this.#acquire(`rest:${memberId}`, { ...this.specFor(memberId), maxWaitMs });
    if (!grant.granted) throw this.#refused(memberId, grant.waitMs, 'rate');
    let waited = grant.waitMs;
    if (method !== undefined && this.#heavy.has(`${memberId} ${method}`)) {
      // A heavy method past its share of the operating time waits until its account drains.
      const account = await this.#acquire(`op:${memberId}:${method}`, { ...this.#operatingSpec(), cost: 0 });
      if (account.waitMs > 0) {
        if (maxWaitMs !== undefined && account.waitMs > maxWaitMs) throw this.#refused(memberId, account.waitMs, 'operating');
        this.#statsOf(memberId).operatingWaits++;
        waited = Math.max(waited, account.waitMs);
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
        const spec = this.specFor(memberId);
        try {
          const grant = await this.#acquire(`rest:${memberId}`, { ...spec, cost: batch.length });
          const interval = 1000 / spec.ratePerSec;
          batch.forEach((waiter, i) => waiter.resolve({ waitMs: Math.max(0, grant.waitMs - (batch.length - 1 - i) * interval), granted: true }));
        } catch (error) {
          for (const waiter of batch) waiter.reject(error);
        }
      }
    } finally {
      queue.running = false;
      if (queue.waiting.length === 0 && this.#queues.get(memberId) === queue) this.#queues.delete(memberId);
    }
  }

  #acquire(key: string, spec: BudgetSpec): Promise<{ waitMs: number; granted: boolean }> {
    const store = this.#store;
    if (store.acquire === undefined) return Promise.resolve({ waitMs: 0, granted: true });
    return store.acquire(key, spec);
  }

  #refused(memberId: string, waitMs: number, reason: 'rate' | 'operating' | 'aborted'): RateLimitedError {
    this.#statsOf(memberId).rateLimited++;
    return new RateLimitedError(memberId, waitMs, reason);
  }

  #statsOf(memberId: string): MutableStats {
    let stats = this.#stats.get(memberId);
    if (stats === undefined) {
      stats = { waits: 0, waitedMs: 0, pushBacks: 0, queryLimitExceeded: 0, rateLimited: 0, operatingWaits: 0 };
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

/** `time.operating` of an answer's body, seconds. */
export function operatingOf(data: unknown): number | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const time = (data as { time?: unknown }).time;
  if (time === null || typeof time !== 'object') return undefined;
  const operating = (time as { operating?: unknown }).operating;
  return typeof operating === 'number' && Number.isFinite(operating) ? operating : undefined;
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
