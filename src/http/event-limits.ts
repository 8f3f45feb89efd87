// The REST event handler's bounds: how many listeners run and wait, per portal and in all (a turn is
// handed to the portals in rotation, so a busy portal cannot hold every turn), and the filter that
// lets an event delivered again while the first delivery still waits for its turn run once.

import { createHash } from 'node:crypto';
import type { RestEvent } from '../events/types.js';

/** The numbers of {@link ListenerLimiter}. */
export interface ListenerLimits {
  /** Listeners running at once, in all. */
  readonly running: number;
  /** Listeners of one portal running at once. */
  readonly runningPerPortal: number;
  /** Listeners waiting for a turn, in all. */
  readonly queued: number;
  /** Listeners of one portal waiting for a turn. */
  readonly queuedPerPortal: number;
}

interface PortalTurns {
  running: number;
  waiting: (() => void)[];
}

/** Why a listener was not admitted: its portal's queue or the handler's is full. */
export type ListenerRefusal = 'portal' | 'total';

/** Hands out listener turns within {@link ListenerLimits}. */
export class ListenerLimiter {
  readonly #limits: ListenerLimits;
  readonly #portals = new Map<string, PortalTurns>();
  #running = 0;
  #queued = 0;

  constructor(limits: ListenerLimits) {
    this.#limits = limits;
  }

  /** Listeners running now, and waiting for a turn. */
  counts(): { running: number; queued: number } {
    return { running: this.#running, queued: this.#queued };
  }

  /**
   * Admits one listener of `memberId`: a promise of its turn (call the `release` it resolves with
   * when the listener is done), or why there is no room.
   */
  admit(memberId: string): Promise<() => void> | ListenerRefusal {
    let portal = this.#portals.get(memberId);
    if (portal === undefined) {
      portal = { running: 0, waiting: [] };
      this.#portals.set(memberId, portal);
    }
    const turns = portal;
    const release = (): void => {
      turns.running--;
      this.#running--;
      if (turns.running === 0 && turns.waiting.length === 0) this.#portals.delete(memberId);
      this.#handOut();
    };
    if (turns.waiting.length === 0 && turns.running < this.#limits.runningPerPortal && this.#running < this.#limits.running) {
      turns.running++;
      this.#running++;
      return Promise.resolve(release);
    }
    if (turns.waiting.length >= this.#limits.queuedPerPortal) return this.#forget(memberId, turns, 'portal');
    if (this.#queued >= this.#limits.queued) return this.#forget(memberId, turns, 'total');
    this.#queued++;
    return new Promise((resolve) => turns.waiting.push(() => resolve(release)));
  }

  #forget(memberId: string, turns: PortalTurns, refusal: ListenerRefusal): ListenerRefusal {
    if (turns.running === 0 && turns.waiting.length === 0) this.#portals.delete(memberId);
    return refusal;
  }

  /** Gives free turns to waiting listeners, one portal after another (the map's order rotates). */
  #handOut(): void {
    let progress = true;
    while (progress && this.#running < this.#limits.running && this.#queued > 0) {
      progress = false;
      for (const [memberId, turns] of this.#portals) {
        if (this.#running >= this.#limits.running) break;
        if (turns.waiting.length === 0 || turns.running >= this.#limits.runningPerPortal) continue;
        const start = turns.waiting.shift() as () => void;
        turns.running++;
        this.#running++;
        this.#queued--;
        // The portal served goes to the back of the rotation.
        this.#portals.delete(memberId);
        this.#portals.set(memberId, turns);
        start();
        progress = true;
      }
    }
  }
}

/** The identity of a delivery: the portal, the event, its `ts` and its `data` as sent. */
export function eventDigest(event: RestEvent): string {
  return createHash('sha256')
    .update(JSON.stringify([event.auth.memberId, event.event, event.ts, event.data]))
    .digest('base64url');
}

/**
 * The digests of events whose listener waits for its turn, in a bounded LRU: an identical delivery
 * that arrives meanwhile is a duplicate (the listener has not run yet, so it will see whatever the
 * second delivery announced). Once the listener started, the next identical delivery is admitted
 * again: two genuine changes within one second look identical, and the second must be re-read.
 */
export class DuplicateFilter {
  readonly #max: number;
  readonly #waiting = new Map<string, true>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Whether an identical event waits for its turn; if not, `digest` is remembered as waiting. */
  waiting(digest: string): boolean {
    if (this.#waiting.has(digest)) return true;
    this.#waiting.set(digest, true);
    if (this.#waiting.size > this.#max) this.#waiting.delete(this.#waiting.keys().next().value as string);
    return false;
  }

  /** The listener of `digest` started (or will not run): the next identical delivery runs again. */
  started(digest: string): void {
    this.#waiting.delete(digest);
  }
}
