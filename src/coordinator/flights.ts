// Step 1's pieces and step 5's turn: a chain's flight in this process, a caller's bounded wait for
// it, and the cap on refresh requests in flight at once.

import type { Clock } from '../clock.js';
import { OAuthUnavailableError, PoolClosedError } from '../errors.js';
import type { PortalRecord } from '../store/token-store.js';

/** One chain's refresh running in this process, and when its request left for the OAuth host. */
export interface Flight {
  /** Steps 2-7, run to the end whatever the callers do. */
  readonly work: Promise<PortalRecord>;
  /** Resolves when the refresh request was sent (never, when none was needed). */
  readonly sent: Promise<void>;
}

/**
 * A caller's wait for a flight: at most `limit` ms after its request left (or after the caller
 * came, if later). Past that the caller gets `OAuthUnavailableError`; the flight goes on, and its
 * pair is persisted when the answer arrives, for the next caller to adopt. No limit: the flight's
 * own outcome.
 */
export async function waitForFlight(flight: Flight, memberId: string, clock: Clock, limit: number | undefined): Promise<PortalRecord> {
  if (limit === undefined) return flight.work;
  const stop = new AbortController();
  const late = flight.sent
    .then(() => clock.sleep(limit, stop.signal))
    .then((): never => {
      throw new OAuthUnavailableError(
        `The OAuth host has not answered the refresh of portal ${memberId} within ${limit} ms; the refresh goes on and its pair is stored when the answer arrives`,
        0,
        { memberId },
      );
    });
  late.catch(() => undefined);
  try {
    return await Promise.race([flight.work, late]);
  } finally {
    stop.abort();
  }
}

/**
 * Runs requests to OAuth hosts at most `max` at a time: an expiry wave of a thousand portals would
 * otherwise send a thousand requests at once, and answers lost to timeouts under that load cost
 * chains. Once closed, requests not yet started are refused with {@link PoolClosedError}.
 */
export class RequestTurns {
  #running = 0;
  readonly #queue: (() => void)[] = [];
  #closed = false;

  constructor(private readonly max: number) {}

  /** Whether {@link RequestTurns.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `request` in its turn. */
  async run<T>(request: () => Promise<T>): Promise<T> {
    if (!this.#closed && this.#running >= this.max) await new Promise<void>((resolve) => this.#queue.push(resolve));
    if (this.#closed) throw new PoolClosedError();
    this.#running++;
    try {
      return await request();
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  /** Refuses every request still waiting for a turn, and any later one. */
  close(): void {
    this.#closed = true;
    for (const wake of this.#queue.splice(0)) wake();
  }
}
