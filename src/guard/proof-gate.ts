// The ceiling on what public handlers can make the process send to OAuth hosts. A lifecycle event
// or an app-page post is a claim; proving it costs a token request or an `app.info` call made with
// the app's client credentials, which every tenant shares. So: a process-wide and a per-portal
// ceiling on proofs in flight and per minute (past them a typed refusal, never a queue), identical
// proofs in flight shared, and refusals remembered for a while so the same forgery costs nothing twice.

import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { ProofsThrottledError } from '../errors/limits.js';
import type { Logger } from '../logger.js';

/**
 * The ceilings of a {@link ProofGate}. The defaults serve a backend of a thousand portals: the
 * process's ceilings are far above the rate at which genuine installs, updates and app-page visits
 * arrive, and a portal's are far above what one portal's administrators and users do in a minute.
 */
export interface ProofLimits {
  /** Proofs in flight at once in this process. @defaultValue 32 */
  readonly maxInFlight?: number | undefined;
  /** Proofs in flight at once for one portal. @defaultValue 4 */
  readonly maxInFlightPerPortal?: number | undefined;
  /** Proofs started in one minute in this process. @defaultValue 600 */
  readonly perMinute?: number | undefined;
  /** Proofs started in one minute for one portal. @defaultValue 30 */
  readonly perPortalPerMinute?: number | undefined;
  /** How many refused claims (hashed) are remembered. @defaultValue 10000 */
  readonly refusedEntries?: number | undefined;
  /** How long a refused claim is remembered, ms. @defaultValue 600000 (10 minutes) */
  readonly refusedTtlMs?: number | undefined;
}

/** The {@link ProofLimits} with every default filled in. */
export type ResolvedProofLimits = { readonly [K in keyof ProofLimits]-?: number };

const MINUTE_MS = 60_000;
/** How many portals' minute counts are kept; older ones are forgotten (their window starts over). */
const TRACKED_PORTALS = 20_000;

/** Fills in the defaults of `limits` and checks every value; throws `TypeError` naming a bad one. */
export function resolveProofLimits(limits: ProofLimits = {}): ResolvedProofLimits {
  const positive = (name: keyof ProofLimits, value: number | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`proofLimits.${name} must be a positive integer`);
    return value;
  };
  return {
    maxInFlight: positive('maxInFlight', limits.maxInFlight, 32),
    maxInFlightPerPortal: positive('maxInFlightPerPortal', limits.maxInFlightPerPortal, 4),
    perMinute: positive('perMinute', limits.perMinute, 600),
    perPortalPerMinute: positive('perPortalPerMinute', limits.perPortalPerMinute, 30),
    refusedEntries: positive('refusedEntries', limits.refusedEntries, 10_000),
    refusedTtlMs: positive('refusedTtlMs', limits.refusedTtlMs, 600_000),
  };
}

/** A portal's (or the process's) proofs: in flight now, and started in the current minute. */
interface Tally {
  inFlight: number;
  windowStart: number;
  started: number;
  /** Whether this window's refusal was already logged (one warning per portal per minute). */
  warned: boolean;
}

/** What a {@link ProofGate} did since it was made. */
export interface ProofGateStats {
  /** Proofs admitted. */
  admitted: number;
  /** Proofs refused by a ceiling. */
  throttled: number;
  /** Requests that joined an identical one in flight instead of being sent. */
  shared: number;
  /** Requests answered from the memory of refusals instead of being sent. */
  remembered: number;
}

/**
 * Admits proofs within the ceilings, shares identical requests in flight and remembers refused
 * claims. One gate per OAuth client; the lifecycle handler and the pool's app-page calls admit
 * through the pool's gate, so they share its ceilings.
 */
export class ProofGate {
  /** The ceilings in force. */
  readonly limits: ResolvedProofLimits;
  /** Counts since construction. */
  readonly stats: ProofGateStats = { admitted: 0, throttled: 0, shared: 0, remembered: 0 };
  readonly #now: () => number;
  readonly #process: Tally;
  readonly #portals = new LRUCache<string, Tally>({ max: TRACKED_PORTALS });
  readonly #inFlight = new Map<string, Promise<unknown>>();
  readonly #refused: LRUCache<string, Error>;

  constructor(limits: ProofLimits = {}, now: () => number = Date.now) {
    this.limits = resolveProofLimits(limits);
    this.#now = now;
    this.#process = { inFlight: 0, windowStart: now(), started: 0, warned: false };
    this.#refused = new LRUCache<string, Error>({ max: this.limits.refusedEntries, ttl: this.limits.refusedTtlMs, ttlAutopurge: false });
  }

  /**
   * Admits one proof for `memberId` (`undefined`: the process's ceilings only), or throws
   * {@link ProofsThrottledError} and, once per portal and minute, logs a warning naming the portal.
   * @returns the release, to call once the proof is done (any number of times; the first counts).
   */
  admit(memberId: string | undefined, logger?: Logger): () => void {
    const now = this.#now();
    const portal = memberId === undefined ? undefined : this.#portalTally(memberId, now);
    roll(this.#process, now);
    const refusal =
      portal !== undefined ? this.#check(portal, now, 'portal', this.limits.maxInFlightPerPortal, this.limits.perPortalPerMinute, memberId) : undefined;
    const error = refusal ?? this.#check(this.#process, now, 'process', this.limits.maxInFlight, this.limits.perMinute, memberId);
    if (error !== undefined) {
      this.stats.throttled++;
      const tally = error.scope === 'portal' ? portal : this.#process;
      if (tally !== undefined && !tally.warned) {
        tally.warned = true;
        logger?.warn(
          { memberId, scope: error.scope, bound: error.bound, retryAfterMs: error.retryAfterMs },
          'Proofs refused: a ceiling on proofs sent to the OAuth host for public handlers was reached',
        );
      }
      throw error;
    }
    this.stats.admitted++;
    for (const tally of portal === undefined ? [this.#process] : [this.#process, portal]) {
      tally.inFlight++;
      tally.started++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#process.inFlight--;
      if (portal !== undefined) portal.inFlight--;
    };
  }

  /** Runs `work` as one admitted proof of `memberId` (see {@link ProofGate.admit}). */
  async run<T>(memberId: string | undefined, work: () => Promise<T>, logger?: Logger): Promise<T> {
    const release = this.admit(memberId, logger);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /**
   * Sends `request` unless an identical one (same `key`) is in flight, whose outcome is then
   * shared, or the same claim was refused recently, whose refusal is then thrown again (a copy made
   * again). `remember` decides which failures are remembered (for `refusedTtlMs`).
   */
  async share<T>(key: string, request: () => Promise<T>, remember: (error: unknown) => boolean): Promise<T> {
    const known = this.#refused.get(key);
    if (known !== undefined) {
      this.stats.remembered++;
      throw known;
    }
    const running = this.#inFlight.get(key) as Promise<T> | undefined;
    if (running !== undefined) {
      this.stats.shared++;
      return running;
    }
    const started = request()
      .catch((error: unknown) => {
        if (error instanceof Error && remember(error)) this.#refused.set(key, error);
        throw error;
      })
      .finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, started);
    return started;
  }

  #portalTally(memberId: string, now: number): Tally {
    let tally = this.#portals.get(memberId);
    if (tally === undefined) {
      tally = { inFlight: 0, windowStart: now, started: 0, warned: false };
      this.#portals.set(memberId, tally);
    }
    roll(tally, now);
    return tally;
  }

  #check(
    tally: Tally,
    now: number,
    scope: 'portal' | 'process',
    maxInFlight: number,
    perMinute: number,
    memberId: string | undefined,
  ): ProofsThrottledError | undefined {
    if (tally.inFlight >= maxInFlight) return new ProofsThrottledError(memberId, scope, 'in-flight', 1000);
    if (tally.started >= perMinute) return new ProofsThrottledError(memberId, scope, 'per-minute', Math.max(1000, tally.windowStart + MINUTE_MS - now));
    return undefined;
  }
}

/** Starts a new minute when the current one is over. */
function roll(tally: Tally, now: number): void {
  if (now - tally.windowStart >= MINUTE_MS || now < tally.windowStart) {
    tally.windowStart = now;
    tally.started = 0;
    tally.warned = false;
  }
}

/** A key for a claim or a request: a hash of its parts, so no token is kept in memory as such. */
export function claimKey(...parts: readonly (string | Uint8Array)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(typeof part === 'string' ? Buffer.from(part, 'utf8') : part);
    hash.update('\u0000');
  }
  return hash.digest('base64url');
}
