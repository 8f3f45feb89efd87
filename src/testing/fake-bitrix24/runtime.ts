// What a running stand-in holds besides its ledger: the knobs tests turn (injected OAuth failures,
// delays, custom REST methods), its timers, and the bundle the request handlers work on.

import type { Ledger } from './ledger.js';
import { OperatingBlocks } from './operating-limit.js';
import type { FakeBitrix24Stats } from './stats.js';
import type { FakeRestMethod, OAuthFailure } from './types.js';

/** The documented leaky bucket of a portal's REST traffic, when enforced. */
export interface RequestLimit {
  /** Units the counter loses per second (Bitrix24: 2, Enterprise 5). */
  readonly drainPerSec: number;
  /** The counter's limit: a request that would take it past this is answered 503 (Bitrix24: 50, Enterprise 250). */
  readonly burst: number;
}

/** Test-controlled behaviour and the timers to clear on close. */
export class Runtime {
  readonly methods = new Map<string, FakeRestMethod>();
  /** Seconds of `time.operating` each answer of a method reports (lower-case name; default 0). */
  readonly operating = new Map<string, number>();
  /** Methods whose operating time is spent: answered 429 OPERATION_TIME_LIMIT until they reset. */
  readonly operatingBlocks = new OperatingBlocks();
  /** The enforced bucket, or `null` (the default: no limit). */
  limit: RequestLimit | null = null;
  /** Each portal's bucket: its counter and when it was last drained (real ms). */
  readonly buckets = new Map<string, { level: number; at: number }>();

  /** The portal's counter now, drained by the time since it was last seen. */
  bucket(memberId: string): { level: number; at: number } {
    const now = Date.now();
    const bucket = this.buckets.get(memberId) ?? { level: 0, at: now };
    const drain = this.limit === null ? 0 : ((now - bucket.at) / 1000) * this.limit.drainPerSec;
    bucket.level = Math.max(0, bucket.level - drain);
    bucket.at = now;
    this.buckets.set(memberId, bucket);
    return bucket;
  }

  /** Checks and sets the enforced bucket (defaults: Bitrix24's 2 a second and 50); `null` turns it off. */
  setLimit(options: { drainPerSec?: number; burst?: number } | null): void {
    if (options === null) {
      this.limit = null;
      this.buckets.clear();
      return;
    }
    const drainPerSec = options.drainPerSec ?? 2;
    const burst = options.burst ?? 50;
    if (!(drainPerSec > 0) || !Number.isFinite(drainPerSec)) throw new TypeError('drainPerSec must be a positive number');
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new TypeError('burst must be a number >= 1');
    this.limit = { drainPerSec, burst };
  }

  /** Sets the portal's counter to `level` (default: full); throws while no limit is enforced. */
  fillBucket(memberId: string, level: number | undefined): void {
    const limit = this.limit;
    if (limit === null) throw new Error('limitRequests() is off: there is no bucket to fill');
    const bucket = this.bucket(memberId);
    bucket.level = level ?? limit.burst;
  }

  /** Checks and sets the `time.operating` a method's answers report (0 or `null`: none). */
  setOperatingTime(method: string, seconds: number | null): void {
    if (seconds === null || seconds === 0) {
      this.operating.delete(method.toLowerCase());
      return;
    }
    if (!(seconds > 0) || !Number.isFinite(seconds)) throw new TypeError('seconds must be a non-negative number');
    this.operating.set(method.toLowerCase(), seconds);
  }

  /** Counts one request into the portal's bucket; `false` when it is full (the request is refused, adding nothing). */
  admit(memberId: string): boolean {
    if (this.limit === null) return true;
    const bucket = this.bucket(memberId);
    if (bucket.level + 1 > this.limit.burst) return false;
    bucket.level += 1;
    return true;
  }
  oauthDelayMs = 0;
  restDelayMs = 0;
  closed = false;
  readonly #timers = new Set<NodeJS.Timeout>();
  #failure: OAuthFailure | null = null;
  #failuresLeft = 0;

  /** Checks and sets the injected failure of the next `times` token requests (`null`: none). */
  setFailure(failure: OAuthFailure | null, times: number): void {
    if (failure !== null && 'status' in failure && !(Number.isInteger(failure.status) && failure.status >= 400 && failure.status <= 599)) {
      throw new TypeError('failure.status must be an HTTP error status (400-599)');
    }
    if (!(times > 0)) throw new TypeError('times must be a positive number');
    this.#failure = failure;
    this.#failuresLeft = failure === null ? 0 : times;
  }

  /** The injected failure for this token request, if any is left (it is used up). */
  takeFailure(): OAuthFailure | null {
    const failure = this.#failure;
    if (failure === null || this.#failuresLeft <= 0) return null;
    this.#failuresLeft -= 1;
    if (this.#failuresLeft <= 0) this.#failure = null;
    return failure;
  }

  /** Waits real milliseconds; {@link Runtime.close} cuts every wait short (the promise never settles). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }

  close(): void {
    this.closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

/** Everything a request handler of the stand-in works on. */
export interface StandIn {
  readonly ledger: Ledger;
  readonly stats: FakeBitrix24Stats;
  readonly runtime: Runtime;
}
