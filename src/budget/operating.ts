// Bitrix24's operating-time limit, kept per portal and method for every worker: each answer's
// `time.operating` (server seconds) is added to a shared account (`op:<memberId>:<method>`, a GCRA
// key of the store draining 480 s per 600 s), and a 429 OPERATION_TIME_LIMIT pushes the account to
// the time the server said the method is free again (`time.operating_reset_at`), so every worker
// delays that method for the whole portal instead of being refused one by one.

import type { Clock } from '../clock.js';
import type { BudgetGrant, BudgetSpec } from '../store/token-store.js';

/** Bitrix24's operating-time limit: 480 s of server time per method in 10 minutes. */
const OPERATING_LIMIT_SEC = 480;
const OPERATING_WINDOW_SEC = 600;
/** A method whose single answer took at least this much operating time is checked before it leaves. */
const HEAVY_OPERATING_SEC = 0.5;
/** Added to the server's reset time before a blocked method is tried again, ms (as the SDK does). */
const RESET_MARGIN_MS = 1_000;

/** `time` of an answer's body (success or error), when it is an object. */
function timeOf(data: unknown): Record<string, unknown> | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const time = (data as { time?: unknown }).time;
  return time !== null && typeof time === 'object' ? (time as Record<string, unknown>) : undefined;
}

const finite = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** `time.operating` of an answer's body, seconds. */
export function operatingOf(data: unknown): number | undefined {
  return finite(timeOf(data)?.['operating']);
}

/** `time.operating_reset_at` of an answer's body (unix seconds: when the method's spent time is freed). */
export function operatingResetAtOf(data: unknown): number | undefined {
  return finite(timeOf(data)?.['operating_reset_at']);
}

/** The per-portal, per-method operating-time accounts of one pool. */
export class OperatingAccounts {
  readonly #acquire: (key: string, spec: BudgetSpec) => Promise<BudgetGrant>;
  readonly #headroom: number;
  readonly #clock: Clock;
  /** `memberId method` of methods checked before they leave (heavy, or once refused). */
  readonly #watched = new Set<string>();
  /** The last `operating_reset_at` (ms) an answer gave for `memberId method`. */
  readonly #resetAt = new Map<string, number>();

  constructor(acquire: (key: string, spec: BudgetSpec) => Promise<BudgetGrant>, headroom: number, clock: Clock) {
    this.#acquire = acquire;
    this.#headroom = headroom;
    this.#clock = clock;
  }

  /** Whether requests of the method are checked against its account before they leave. */
  watched(memberId: string, method: string): boolean {
    return this.#watched.has(`${memberId} ${method}`);
  }

  /** Adds an answer's operating time (seconds) to the method's shared account. */
  async record(memberId: string, method: string, operatingSec: number | undefined, resetAtSec: number | undefined): Promise<void> {
    const id = `${memberId} ${method}`;
    if (resetAtSec !== undefined) this.#resetAt.set(id, resetAtSec * 1000);
    if (operatingSec === undefined || !(operatingSec > 0)) return;
    if (operatingSec >= HEAVY_OPERATING_SEC) this.#watched.add(id);
    if (!this.#watched.has(id)) return;
    await this.#acquire(this.#key(memberId, method), { ...this.#spec(), cost: operatingSec });
  }

  /** How long the method must wait before it leaves, ms (0: go); a method found blocked is watched from then on. */
  async waitMs(memberId: string, method: string): Promise<number> {
    const { waitMs } = await this.#acquire(this.#key(memberId, method), { ...this.#spec(), cost: 0 });
    if (waitMs > 0) this.#watched.add(`${memberId} ${method}`);
    return waitMs;
  }

  /**
   * A 429 OPERATION_TIME_LIMIT came back for the method: every worker holds it until the server's
   * reset time (`resetAtSec` from the answer, else the last one an answer of the method gave, else a
   * whole window). Returns the hold, ms.
   */
  async pushBack(memberId: string, method: string, resetAtSec: number | undefined): Promise<number> {
    const id = `${memberId} ${method}`;
    this.#watched.add(id);
    const now = this.#clock.now();
    const resetAt = resetAtSec !== undefined ? resetAtSec * 1000 : this.#resetAt.get(id);
    const window = OPERATING_WINDOW_SEC * 1000;
    const ms = Math.ceil(Math.min(window, resetAt !== undefined && resetAt > now ? resetAt - now : window) + RESET_MARGIN_MS);
    const spec = this.#spec();
    // A step of cost 0 after a push-back of p waits p - one interval: push one interval further.
    await this.#acquire(this.#key(memberId, method), { ...spec, cost: 0, pushBackMs: ms + 1000 / spec.ratePerSec });
    return ms;
  }

  #key(memberId: string, method: string): string {
    return `op:${memberId}:${method}`;
  }

  #spec(): BudgetSpec {
    // The account drains 480 s per 600 s; it may hold the headroom share of 480 s.
    return { ratePerSec: OPERATING_LIMIT_SEC / OPERATING_WINDOW_SEC, burst: OPERATING_LIMIT_SEC * this.#headroom };
  }
}
