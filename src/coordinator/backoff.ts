// Not hammering the OAuth host: after a transient failure a chain waits (exponential, with jitter,
// capped) before its next refresh is sent, and after the app's own credentials were refused the
// whole pool waits. Meanwhile callers get the typed error at once.

import { OAuthCredentialsError, OAuthUnavailableError } from '../errors.js';

/**
 * How long refreshes pause after failures.
 * @inline
 */
export interface BackoffPolicy {
  /** First pause after a transient failure of a chain's refresh, ms; doubles per failure. 0 turns it off. */
  readonly transientMinMs: number;
  /** Longest pause after transient failures, ms. */
  readonly transientMaxMs: number;
  /** Pause of every refresh of the pool after the app's credentials were refused, ms. */
  readonly credentialsMs: number;
}

/** The default pauses: 1 s doubling to 5 min; 60 s after refused credentials. */
export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ transientMinMs: 1000, transientMaxMs: 300_000, credentialsMs: 60_000 });

interface ChainBackoff {
  failures: number;
  until: number;
  cause: unknown;
}

/** Back-off state of one coordinator. */
export class Backoff {
  readonly #policy: BackoffPolicy;
  readonly #random: () => number;
  readonly #chains = new Map<string, ChainBackoff>();
  #credentialsUntil = 0;
  #credentialsCause: OAuthCredentialsError | undefined;

  /** Creates empty back-off state. */
  constructor(policy: BackoffPolicy, random: () => number) {
    this.#policy = policy;
    this.#random = random;
  }

  /** Throws the typed error a caller gets at once while `key` (or the whole pool) is backing off. */
  check(key: string, memberId: string, nowMs: number): void {
    if (nowMs < this.#credentialsUntil && this.#credentialsCause !== undefined) {
      throw new OAuthCredentialsError(this.#credentialsCause.oauthError, { memberId, cause: this.#credentialsCause });
    }
    const entry = this.#chains.get(key);
    if (entry !== undefined && nowMs < entry.until) {
      throw new OAuthUnavailableError(
        `Refreshes of portal ${memberId} are paused for ${entry.until - nowMs} ms after ${entry.failures} transient failure(s)`,
        0,
        { memberId, cause: entry.cause },
      );
    }
  }

  /** Records a transient failure of `key`'s refresh. */
  transientFailure(key: string, nowMs: number, cause: unknown): void {
    if (this.#policy.transientMinMs <= 0) return;
    const failures = (this.#chains.get(key)?.failures ?? 0) + 1;
    const ceiling = Math.min(this.#policy.transientMaxMs, this.#policy.transientMinMs * 2 ** Math.min(failures - 1, 30));
    // "Equal jitter": at least half the ceiling, so a failing chain never retries at once.
    const pause = Math.round(ceiling / 2 + this.#random() * (ceiling / 2));
    this.#chains.set(key, { failures, until: nowMs + pause, cause });
  }

  /** Clears `key`'s back-off after a success. */
  succeeded(key: string): void {
    this.#chains.delete(key);
  }

  /**
   * Records refused credentials; returns `true` when this is the first refusal of the current
   * back-off period (the one to log at error level and announce).
   */
  credentialsRefused(error: OAuthCredentialsError, nowMs: number): boolean {
    const first = nowMs >= this.#credentialsUntil;
    this.#credentialsUntil = nowMs + this.#policy.credentialsMs;
    this.#credentialsCause = error;
    return first;
  }
}
