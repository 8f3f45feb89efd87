// The change feed: one dedicated connection (never one of the pool's, which would be handed to other
// queries and lose the LISTEN) per subscription, re-established with back-off when it drops.

import { StoreError } from '../../errors.js';
import { isChainId } from '../record-checks.js';
import type { StoreChange, StoreChangeListener, StoreSubscription } from '../token-store.js';
import type { PgClientLike, PgNotification } from './driver.js';
import { storeFailure } from './errors.js';

/** Back-off between reconnection attempts: doubling from the first to the last, with jitter. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;

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
  #client: PgClientLike | undefined;
  #closed = false;
  #lost = false;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;

  constructor(open: () => PgClientLike, channel: string, channelIdentifier: string, listener: StoreChangeListener) {
    this.#open = open;
    this.#channel = channel;
    this.#channelIdentifier = channelIdentifier;
    this.#listener = listener;
  }

  /** Connects and listens; rejects with a StoreError if that fails the first time. */
  async start(): Promise<void> {
    try {
      await this.#connect();
    } catch (error) {
      throw storeFailure(error, 'start its change feed');
    }
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
    if (!this.#lost) {
      this.#lost = true;
      this.#deliver(() => this.#listener.onStatus?.('lost'));
    }
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
          this.#lost = false;
          this.#deliver(() => this.#listener.onStatus?.('restored'));
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
    this.#timer = undefined;
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
