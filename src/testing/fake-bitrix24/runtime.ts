// What a running stand-in holds besides its ledger: the knobs tests turn (injected OAuth failures,
// delays, custom REST methods), its timers, and the bundle the request handlers work on.

import type { Ledger } from './ledger.js';
import type { FakeBitrix24Stats } from './stats.js';
import type { FakeRestMethod, OAuthFailure } from './types.js';

/** Test-controlled behaviour and the timers to clear on close. */
export class Runtime {
  readonly methods = new Map<string, FakeRestMethod>();
  oauthDelayMs = 0;
  restDelayMs = 0;
  closed = false;
  readonly #timers = new Set<NodeJS.Timeout>();
  #failure: OAuthFailure | null = null;
  #failuresLeft = 0;

  setFailure(failure: OAuthFailure | null, times: number): void {
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
