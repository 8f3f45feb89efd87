// The change feed: one dedicated connection (never one of the pool's, which would be handed to other
// queries and lose the LISTEN) per subscription, re-established with back-off when it drops. The feed
// checks itself: a probe notification it sends through the store's pool must come back on its own
// connection within a bound, when it starts and then periodically. Through a transaction-pooling
// PgBouncer the LISTEN succeeds but nothing ever arrives; the probe finds that out and the feed
// reports itself lost, so the pool re-reads before reusing a cached client.

import { randomUUID } from 'node:crypto';
import { StoreError } from '../../errors.js';
import { isChainId } from '../record-checks.js';
import type { StoreChange, StoreChangeListener, StoreSubscription } from '../token-store.js';
import type { PgClientLike, PgNotification } from './driver.js';
import { storeFailure } from './errors.js';

/** Back-off between reconnection attempts: doubling from the first to the last, with jitter. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;

/** How the feed checks that notifications reach it. */
export interface FeedProbe {
  /** Sends `payload` on the feed's channel through the store's pool (not the feed's connection). */
  readonly send: (payload: string) => Promise<void>;
  /** How long a probe may take to come back before the feed counts as deaf, ms. */
  readonly timeoutMs: number;
  /** How often a running feed probes itself, ms. */
  readonly intervalMs: number;
  /** Called each time a probe does not come back (the store warns once). */
  readonly onDeaf: () => void;
}

/** The probe id of a probe payload (`{"probe": "<id>"}`); `undefined` for anything else. */
function probeIdOf(payload: string | undefined): string | undefined {
  if (payload === undefined || !payload.startsWith('{"probe":')) return undefined;
  try {
    const value = JSON.parse(payload) as { probe?: unknown };
    return typeof value.probe === 'string' ? value.probe : undefined;
  } catch {
    return undefined;
  }
}

/** Reads a notification payload; `undefined` for anything that is not one of ours. */
export function parseChange(payload: string | undefined): StoreChange | undefined {
  if (payload === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const { memberId, chain, version, deleted } = value as Record<string, unknown>;
  if (typeof memberId !== 'string' || memberId.length === 0 || typeof deleted !== 'boolean') return undefined;
  if (chain !== null && !isChainId(chain)) return undefined;
  if (version !== null && !Number.isSafeInteger(version)) return undefined;
  return {
    memberId,
    chain: chain === null ? undefined : chain,
    version: version === null ? undefined : (version as number),
    deleted,
  };
}

/** A subscription's connection, opened and kept open until closed. */
export class PgFeed implements StoreSubscription {
  readonly #open: () => PgClientLike;
  readonly #channel: string;
  readonly #channelIdentifier: string;
  readonly #listener: StoreChangeListener;
  readonly #probe: FeedProbe;
  /** Probes in flight: id -> resolve(true when it came back). */
  readonly #probes = new Map<string, (back: boolean | undefined) => void>();
  #client: PgClientLike | undefined;
  #closed = false;
  #lost = false;
  #timer: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #attempt = 0;

  constructor(open: () => PgClientLike, channel: string, channelIdentifier: string, listener: StoreChangeListener, probe: FeedProbe) {
    this.#open = open;
    this.#channel = channel;
    this.#channelIdentifier = channelIdentifier;
    this.#listener = listener;
    this.#probe = probe;
  }

  /** Whether notifications reach the feed (its connection is up and its last probe came back). */
  get live(): boolean {
    return !this.#closed && this.#client !== undefined && !this.#lost;
  }

  /**
   * Connects, listens and probes; rejects with a StoreError if connecting fails the first time. A
   * probe that does not come back does not reject: the feed reports `onStatus('lost')` and keeps
   * probing (a later probe that comes back reports `'restored'`).
   */
  async start(): Promise<void> {
    try {
      await this.#connect();
    } catch (error) {
      throw storeFailure(error, 'start its change feed');
    }
    await this.#check();
    this.#scheduleProbe();
  }

  /** Sends one probe and waits for it; reports the feed lost or restored by the outcome. */
  async #check(): Promise<void> {
    if (this.#closed || this.#client === undefined) return;
    const back = await this.#sendProbe();
    if (this.#closed || this.#client === undefined || back === undefined) return;
    if (back) this.#setLost(false);
    else {
      this.#probe.onDeaf();
      this.#setLost(true);
    }
  }

  /** `true` when the probe came back, `false` when it did not in time, `undefined` when it could not be sent. */
  #sendProbe(): Promise<boolean | undefined> {
    const id = randomUUID();
    return new Promise<boolean | undefined>((resolve) => {
      const timer = setTimeout(() => finish(false), this.#probe.timeoutMs);
      const finish = (back: boolean | undefined): void => {
        clearTimeout(timer);
        this.#probes.delete(id);
        resolve(back);
      };
      this.#probes.set(id, finish);
      // A probe that cannot be sent (the database is down) says nothing about the feed: not deaf.
      this.#probe.send(JSON.stringify({ probe: id })).catch(() => finish(undefined));
    });
  }

  #scheduleProbe(): void {
    if (this.#closed || this.#probeTimer !== undefined) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      void this.#check().finally(() => this.#scheduleProbe());
    }, this.#probe.intervalMs);
    this.#probeTimer.unref();
  }

  #setLost(lost: boolean): void {
    if (this.#lost === lost) return;
    this.#lost = lost;
    this.#deliver(() => this.#listener.onStatus?.(lost ? 'lost' : 'restored'));
  }

  async #connect(): Promise<void> {
    const client = this.#open();
    // Every client gets an error listener before anything else: an unhandled 'error' event would
    // take the whole process down when the database goes away.
    const dropped = (): void => this.#dropped(client);
    client.on('error', dropped);
    client.on('end', dropped);
    client.on('notification', (message: PgNotification) => {
      if (this.#client !== client || message.channel !== this.#channel) return;
      const probe = probeIdOf(message.payload);
      if (probe !== undefined) {
        this.#probes.get(probe)?.(true);
        return;
      }
      const change = parseChange(message.payload);
      if (change !== undefined) this.#deliver(() => this.#listener.onChange(change));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channelIdentifier}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
  }

  #dropped(client: PgClientLike): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    void client.end().catch(() => undefined);
    if (this.#closed) return;
    this.#setLost(true);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.#attempt);
    this.#attempt++;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#connect().then(
        () => {
          if (this.#closed || this.#client === undefined) return;
          this.#attempt = 0;
          // Back only once a probe comes back on the new connection.
          void this.#check();
        },
        () => this.#schedule(),
      );
    }, base / 2 + Math.random() * (base / 2));
    // A feed waiting to reconnect must not keep the process alive on its own.
    this.#timer.unref();
  }

  #deliver(call: () => void): void {
    if (this.#closed) return;
    try {
      call();
    } catch {
      // Listeners must not throw (contract); what they throw is ignored, not allowed to stop the feed.
    }
  }

  /** Stops delivery and ends the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer);
    this.#timer = undefined;
    this.#probeTimer = undefined;
    for (const finish of [...this.#probes.values()]) finish(undefined);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }
}

/** The error of a subscription that cannot open its own connection. */
export function noFeedConfig(): StoreError {
  return new StoreError(
    'PostgresTokenStore cannot open a change-feed connection: the given pool exposes no options; ' +
      'pass { connectionString } or a pg.Pool',
  );
}
