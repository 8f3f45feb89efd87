// Step 1's pieces and step 5's turn: a chain's flight in this process, a caller's bounded wait for
// it, and the cap on refresh requests in flight at once.

import type { Clock } from '../clock.js';
import { OAuthUnavailableError, PoolClosedError } from '../errors.js';
import type { PortalRecord } from '../store/token-store.js';

/** One chain's refresh running in this process, and when its request left for the OAuth host. */
export interface Flight {
  /** Steps 2-7, run to the end whatever the callers do. */
  readonly work: Promise<PortalRecord>;
  /** Resolves when the refresh request was ready to leave: queued for its turn or sent (never, when none was needed). */
  readonly sent: Promise<void>;
}

/**
 * A caller's wait for a flight: at most `limit` ms after its request was ready to leave (queued for
 * a refresh turn or sent), or after the caller came, if later. Past that the caller gets
 * `OAuthUnavailableError`; the flight goes on, and its pair is persisted when the answer arrives,
 * for the next caller to adopt. No limit: the flight's own outcome.
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

/** Whose a refresh request is: the OAuth host it goes to and the portal it refreshes. */
export interface TurnLane {
  /** The OAuth host (its base URL). */
  readonly host: string;
  /** The portal's `member_id`. */
  readonly portal: string;
}

/** The share of the turns one OAuth host may hold: all but a quarter (at least one left for the others). */
export function hostTurns(max: number): number {
  return max <= 1 ? 1 : max - Math.max(1, Math.floor(max / 4));
}

/** The share of the turns one portal's chains may hold: a quarter, at least one. */
export function portalTurns(max: number): number {
  return Math.max(1, Math.floor(max / 4));
}

interface Waiting {
  readonly lane: TurnLane;
  readonly wake: () => void;
}

/**
 * Runs requests to OAuth hosts at most `max` at a time: an expiry wave of a thousand portals would
 * otherwise send a thousand requests at once, and answers lost to timeouts under that load cost
 * chains. The turns are shared fairly: one OAuth host holds at most {@link hostTurns} of them and
 * one portal at most {@link portalTurns}, so a host that never answers (each of its requests keeps
 * a turn until the hard cap) or a portal with many chains cannot stop another's refreshes; waiting
 * requests go in arrival order among those whose host and portal have a turn free. Once closed,
 * requests not yet started are refused with {@link PoolClosedError}.
 */
export class RequestTurns {
  #running = 0;
  readonly #byHost = new Map<string, number>();
  readonly #byPortal = new Map<string, number>();
  readonly #queue: Waiting[] = [];
  /** When each running request got its turn, by clock. */
  readonly #started = new Map<TurnLane, number>();
  readonly #maxPerHost: number;
  readonly #maxPerPortal: number;
  #closed = false;

  constructor(
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#maxPerHost = hostTurns(max);
    this.#maxPerPortal = portalTurns(max);
  }

  /** Whether {@link RequestTurns.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Whether `host` holds all the turns it may and every one of them has been running for longer
   * than `limitMs`: a host that does not answer. Background work (the sweep) does not queue behind it.
   */
  stalled(host: string, limitMs: number): boolean {
    const since = this.now() - limitMs;
    let held = 0;
    for (const [lane, startedAt] of this.#started) {
      if (lane.host !== host) continue;
      if (startedAt > since) return false;
      held++;
    }
    return held >= this.#maxPerHost;
  }

  /** Runs `request` in its turn; `lane` says whose it is (one object per call). */
  async run<T>(request: () => Promise<T>, lane: TurnLane): Promise<T> {
    if (!this.#closed) {
      // Every waiting request does not fit (each release wakes those that do): one that fits goes now.
      if (this.#fits(lane)) this.#take(lane);
      else await new Promise<void>((resolve) => this.#queue.push({ lane, wake: resolve }));
    }
    // A woken request was given its turn by #next; a refused one was not.
    if (this.#closed && !this.#holds.has(lane)) throw new PoolClosedError();
    this.#holds.delete(lane);
    this.#started.set(lane, this.now());
    try {
      return await request();
    } finally {
      this.#started.delete(lane);
      this.#give(lane);
      this.#next();
    }
  }

  /** Refuses every request still waiting for a turn, and any later one. */
  close(): void {
    this.#closed = true;
    for (const { wake } of this.#queue.splice(0)) wake();
  }

  /** Lanes given a turn, until their request starts (so a close in between does not lose the turn). */
  readonly #holds = new Set<TurnLane>();

  #fits(lane: TurnLane): boolean {
    return (
      this.#running < this.max &&
      (this.#byHost.get(lane.host) ?? 0) < this.#maxPerHost &&
      (this.#byPortal.get(lane.portal) ?? 0) < this.#maxPerPortal
    );
  }

  #take(lane: TurnLane): void {
    this.#running++;
    this.#byHost.set(lane.host, (this.#byHost.get(lane.host) ?? 0) + 1);
    this.#byPortal.set(lane.portal, (this.#byPortal.get(lane.portal) ?? 0) + 1);
    this.#holds.add(lane);
  }

  #give(lane: TurnLane): void {
    this.#running--;
    for (const [map, key] of [[this.#byHost, lane.host], [this.#byPortal, lane.portal]] as const) {
      const left = (map.get(key) ?? 1) - 1;
      if (left <= 0) map.delete(key);
      else map.set(key, left);
    }
  }

  /** Gives free turns to the first waiting requests that fit, in arrival order. */
  #next(): void {
    for (let i = 0; i < this.#queue.length && this.#running < this.max; ) {
      const waiting = this.#queue[i]!;
      if (this.#fits(waiting.lane)) {
        this.#queue.splice(i, 1);
        this.#take(waiting.lane);
        waiting.wake();
      } else {
        i++;
      }
    }
  }
}
