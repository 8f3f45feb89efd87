// Keeps this process's cached clients right when another process writes the store: follows the
// store's change feed (when it offers one), re-subscribing after failures, and tells the pool
// which chains to re-read or drop.

import type { Clock } from '../clock.js';
import { describeError, type Logger } from '../logger.js';
import { chainKeyOf, type RefreshCoordinator } from '../coordinator/coordinator.js';
import type { ChangeWait } from '../coordinator/types.js';
import type { EvictionReason } from '../pool-events.js';
import type { ChainRef, PortalRecord, StoreChange, StoreSubscription, TokenStore } from '../store/token-store.js';
import type { ChainSlot } from './slot.js';

/** What the follower asks the pool to do. */
export interface CoherenceTarget {
  /** A chain (or, with `chain` undefined, every chain of a portal) was written by someone. */
  changed(change: StoreChange): void;
  /** Changes may have been missed (the feed was down): everything cached must be re-read. */
  resync(): void;
}

const RETRY_MIN_MS = 250;
/** The shortest lock poll while a cross-process store's change feed is live (see {@link ChangeWaiters}). */
export const FEED_POLL_FLOOR_MS = 2_000;
const RETRY_MAX_MS = 30_000;

/** Subscribes to a store's change feed and keeps the subscription alive. */
export class ChangeFollower {
  readonly #store: TokenStore;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #target: CoherenceTarget;
  #started: Promise<void> | undefined;
  #subscription: StoreSubscription | undefined;
  #closed = false;
  #lost = false;
  readonly #stop = new AbortController();

  /** Creates a follower; nothing is subscribed until {@link start}. */
  constructor(store: TokenStore, clock: Clock, logger: Logger, target: CoherenceTarget) {
    this.#store = store;
    this.#clock = clock;
    this.#logger = logger;
    this.#target = target;
  }

  /** Whether the store offers a change feed. */
  get available(): boolean {
    return this.#store.capabilities.changes === true && typeof this.#store.subscribe === 'function';
  }

  /**
   * Whether changes reach this process now: subscribed, and the store has not reported the feed
   * lost. While it is not, the pool re-reads a cached chain before reusing it ({@link revalidate}).
   */
  get live(): boolean {
    return this.available && this.#subscription !== undefined && !this.#lost && !this.#closed;
  }

  /**
   * Subscribes once (later calls share the first). Resolves when subscribed; rejects with the
   * store's error when the first attempt fails, while attempts go on in the background.
   */
  start(): Promise<void> {
    if (!this.available) return Promise.resolve();
    this.#started ??= this.#subscribe().catch((error: unknown) => {
      void this.#retry();
      throw error;
    });
    return this.#started;
  }

  /** Ends the subscription and any retrying. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await subscription?.close().catch(() => undefined);
  }

  async #subscribe(): Promise<void> {
    const subscribe = this.#store.subscribe?.bind(this.#store);
    if (subscribe === undefined) return;
    const subscription = await subscribe({
      onChange: (change) => {
        if (!this.#closed) this.#target.changed(change);
      },
      onStatus: (status) => {
        if (this.#closed) return;
        if (status === 'lost') {
          this.#lost = true;
          this.#logger.warn({}, 'the store change feed is down; cached clients are re-read before reuse until it is back');
        } else {
          this.#lost = false;
          this.#logger.info({}, 'the store change feed is back; re-reading cached chains');
          this.#target.resync();
        }
      },
    });
    if (this.#closed) {
      await subscription.close();
      return;
    }
    this.#subscription = subscription;
  }

  async #retry(): Promise<void> {
    for (let delay = RETRY_MIN_MS; !this.#closed; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        await this.#clock.sleep(delay, this.#stop.signal);
      } catch {
        return; // closed
      }
      try {
        await this.#subscribe();
        this.#target.resync();
        this.#logger.info({}, 'subscribed to the store change feed');
        return;
      } catch (error) {
        this.#logger.warn({ err: describeError(error), retryInMs: delay }, 'subscribing to the store change feed failed');
      }
    }
  }
}

/**
 * Wakes the workers of this process that wait for another's refresh of a chain (the coordinator's
 * `waitForChange`) as soon as the change feed reports a write of that chain, instead of after
 * their polling pause. Without a feed a wait is the clock's sleep.
 */
export class ChangeWaiters {
  readonly #clock: Clock;
  readonly #feed: () => boolean;
  readonly #floorMs: number;
  readonly #waiting = new Map<string, Set<(changed: boolean) => void>>();

  /**
   * `feed` tells whether the store's change feed is live (checked at each wait). `floorMs`: while it
   * is, a wait lasts at least this long unless a write wakes it: the write wakes the waiters, so the
   * polling between is only the fallback for a holder that fails or dies, and a fleet of workers
   * waiting on the same chains does not flood a shared database with polls.
   */
  constructor(clock: Clock, feed: () => boolean, floorMs = 0) {
    this.#clock = clock;
    this.#feed = feed;
    this.#floorMs = floorMs;
  }

  /** The coordinator's `waitForChange`: a write of `key`'s chain, or `ms` passed. */
  readonly wait: ChangeWait = (key: ChainRef, ms: number, signal?: AbortSignal): Promise<boolean | void> => {
    if (!this.#feed()) return this.#clock.sleep(ms, signal);
    return new Promise<boolean>((resolve, reject) => {
      const id = chainKeyOf(key.memberId, key.chain);
      const timer = new AbortController();
      const waiting = this.#waiting.get(id) ?? new Set();
      this.#waiting.set(id, waiting);
      const end = (): void => {
        waiting.delete(wake);
        if (waiting.size === 0 && this.#waiting.get(id) === waiting) this.#waiting.delete(id);
        timer.abort();
        signal?.removeEventListener('abort', aborted);
      };
      const wake = (changed: boolean): void => {
        end();
        resolve(changed);
      };
      const aborted = (): void => {
        end();
        reject(signal?.reason instanceof Error ? signal.reason : new DOMException('The wait was aborted', 'AbortError'));
      };
      if (signal?.aborted === true) {
        aborted();
        return;
      }
      waiting.add(wake);
      signal?.addEventListener('abort', aborted, { once: true });
      this.#clock.sleep(Math.max(ms, this.#floorMs), timer.signal).then(() => wake(false), () => undefined);
    });
  };

  /** How many waits are pending (for tests). */
  get size(): number {
    let n = 0;
    for (const waiting of this.#waiting.values()) n += waiting.size;
    return n;
  }

  /** A write was reported: wakes the waiters of that chain (of every chain of the portal for a portal-wide write). */
  changed(change: StoreChange): void {
    const ids =
      change.chain === undefined
        ? [...this.#waiting.keys()].filter((id) => id.startsWith(`${change.memberId} `))
        : [chainKeyOf(change.memberId, change.chain)];
    for (const id of ids) for (const wake of [...(this.#waiting.get(id) ?? [])]) wake(true);
  }
}

/**
 * Re-reads a cached chain before it is reused while the change feed is down (the pool's
 * `clientFor`): adopts a newer record, or drops the client when the chain is gone, revoked or
 * moved. Resolves `true` when the cached client may be used, `false` when it was dropped.
 */
export async function revalidate(
  slot: ChainSlot,
  coordinator: RefreshCoordinator,
  cache: { current(): ChainSlot | undefined; drop(reason: EvictionReason): void },
): Promise<boolean> {
  const { memberId, chain } = slot.record;
  const record = await coordinator.read(memberId, chain);
  if (cache.current() !== slot) return false;
  return applyRecord(record, slot, coordinator, cache);
}

function applyRecord(
  record: PortalRecord | undefined,
  slot: ChainSlot,
  coordinator: RefreshCoordinator,
  cache: { drop(reason: EvictionReason): void },
): boolean {
  if (record === undefined) cache.drop('lifecycle');
  else if (record.state === 'revoked') cache.drop('revoked');
  else if (record.clientEndpoint !== slot.record.clientEndpoint) cache.drop('endpoint-changed');
  else {
    if (record.version > slot.record.version) {
      const moved = record.accessToken !== slot.record.accessToken;
      slot.adopt(record);
      if (moved) coordinator.noteAdopted(record);
    }
    return true;
  }
  return false;
}

/**
 * Follows one change of a cached chain: a delete drops it; a newer version is re-read and adopted
 * (or the client dropped when the chain is revoked or moved), unless the slot left the cache
 * meanwhile; the chain's requests leaving during that read wait for it. While this process
 * refreshes the chain, the change is looked at again once that refresh ended (its requests wait
 * for the refresh).
 */
export function followChange(
  change: StoreChange,
  slot: ChainSlot | undefined,
  coordinator: RefreshCoordinator,
  cache: { current(): ChainSlot | undefined; drop(reason: EvictionReason): void },
): void {
  if (slot === undefined || change.chain === undefined) return;
  if (change.deleted) {
    cache.drop('lifecycle');
    return;
  }
  if (change.version !== undefined && change.version <= slot.record.version) return;
  // This process's own refresh of the chain is running: its pair (most likely the very write
  // reported) is adopted when it ends; look again then, a read only if the slot is still behind.
  const running = coordinator.afterFlight(change.memberId, change.chain);
  if (running !== undefined) {
    void running.then(() => followChange(change, cache.current(), coordinator, cache));
    return;
  }
  // The chain's requests wait for this read (slot.following): they would carry the token the
  // announced write most likely replaced.
  const read = coordinator.read(change.memberId, change.chain).then(
    (record) => {
      if (cache.current() === slot) applyRecord(record, slot, coordinator, cache);
    },
    () => cache.drop('lifecycle'),
  );
  slot.following(read);
}
