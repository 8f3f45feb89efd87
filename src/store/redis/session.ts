// The Redis store's session: its connections (a client passed in, or one it opens and owns), the
// check of the key layout on first use, and every command run under the store's deadline with its
// failures turned into StoreError.

import { StoreError } from '../../errors.js';
import type { Keys } from './codec.js';
import {
  errorSummary,
  loadDriver,
  ownedOptions,
  storeFailure,
  withDeadline,
  type RedisClientLike,
} from './connection.js';
import type { CheckedOptions } from './options.js';
import * as S from './scripts.js';

/** The store's client, and how to open a connection for a change feed. */
export interface Connection {
  readonly client: RedisClientLike;
  /** Opens a connection for a change feed. */
  readonly subscriber: () => RedisClientLike;
}

/** One store's connections and commands. */
export class RedisSession {
  readonly #keyPrefix: string;
  readonly #keys: Keys;
  readonly #timeoutMs: number;
  readonly #url: string | undefined;
  readonly #given: RedisClientLike | undefined;
  #connection: Promise<Connection> | undefined;
  #owned: RedisClientLike | undefined;
  #lastConnectError: string | undefined;
  #prepared: Promise<void> | undefined;
  #closed = false;

  /** Connects nothing until the first call. */
  constructor(options: CheckedOptions, keys: Keys) {
    this.#url = options.url;
    this.#given = options.client;
    this.#keyPrefix = options.keyPrefix;
    this.#timeoutMs = options.timeoutMs;
    this.#keys = keys;
  }

  /** Whether {@link RedisSession.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Marks the session closed, runs `first` (the store ends its change feeds), then ends the
   * connection the session opened; a client passed in is left open. Idempotent.
   */
  async close(first: () => Promise<unknown>): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await first();
    const owned = this.#owned;
    if (owned === undefined) return;
    // QUIT lets pending replies arrive; while Redis is down it would only wait for the deadline.
    if (owned.status === 'ready') await withDeadline(owned.quit(), this.#timeoutMs, 'close').catch(() => undefined);
    owned.disconnect();
  }

  /** The connection, opened once (and again after a failure). */
  connect(): Promise<Connection> {
    if (this.#closed) return Promise.reject(closedError());
    this.#connection ??= this.#open().catch((error: unknown) => {
      this.#connection = undefined;
      throw error;
    });
    return this.#connection;
  }

  async #open(): Promise<Connection> {
    const feedOverrides = { lazyConnect: true, enableOfflineQueue: true, autoResubscribe: false };
    if (this.#given !== undefined) {
      const client = this.#given;
      return { client, subscriber: () => client.duplicate(feedOverrides) };
    }
    const Redis = await loadDriver();
    const url = this.#url as string;
    const options = ownedOptions(this.#timeoutMs);
    const client = new Redis(url, options);
    client.on('error', (error: unknown) => {
      this.#lastConnectError = errorSummary(error);
    });
    client.on('ready', () => {
      this.#lastConnectError = undefined;
    });
    if (this.#closed) {
      client.disconnect();
      throw closedError();
    }
    this.#owned = client;
    return { client, subscriber: () => new Redis(url, { ...options, ...feedOverrides }) };
  }

  /** Checks (once, and again after a failure) that the keys under the prefix use this release's layout. */
  prepare(): Promise<void> {
    this.#prepared ??= this.#checkLayout().catch((error: unknown) => {
      this.#prepared = undefined;
      throw error;
    });
    return this.#prepared;
  }

  async #checkLayout(): Promise<void> {
    const connection = await this.connect();
    const layout = await this.#raw('ready', undefined, () =>
      S.runScript(connection.client, S.LAYOUT, [this.#keys.layout], [S.LAYOUT_VERSION]),
    );
    if (String(layout) !== S.LAYOUT_VERSION) throw layoutError(this.#keyPrefix, String(layout));
  }

  /** Runs one of the store's scripts; see {@link RedisSession.command}. */
  async script(operation: string, memberId: string | undefined, script: S.Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.command(operation, memberId, (client) => S.runScript(client, script, keys, args));
  }

  /** Runs `run` on the prepared connection within the deadline; failures become a {@link StoreError}. */
  async command(operation: string, memberId: string | undefined, run: (client: RedisClientLike) => Promise<unknown>): Promise<unknown> {
    await this.prepare();
    const { client } = await this.connect();
    return this.#raw(operation, memberId, () => run(client));
  }

  async #raw(operation: string, memberId: string | undefined, run: () => Promise<unknown>): Promise<unknown> {
    if (this.#closed) throw closedError();
    try {
      return await withDeadline(run(), this.#timeoutMs, operation);
    } catch (error) {
      const message = (error as { message?: unknown } | null)?.message;
      if (typeof message === 'string' && message.includes(S.VERSION_LIMIT)) {
        throw new StoreError(`Version of portal ${memberId ?? ''} cannot be incremented past Number.MAX_SAFE_INTEGER`, { memberId, cause: error });
      }
      if (typeof message === 'string' && message.includes(S.LAYOUT_MISMATCH)) {
        throw layoutError(this.#keyPrefix, /B24PT_LAYOUT (\S+)/.exec(message)?.[1] ?? '?');
      }
      throw storeFailure(operation, error, memberId, this.#lastConnectError);
    }
  }
}

/** The error of a call on a closed store. */
export function closedError(): StoreError {
  return new StoreError('The RedisTokenStore is closed');
}

function layoutError(prefix: string, found: string): StoreError {
  return new StoreError(
    `Keys under prefix '${prefix}' use layout ${found.slice(0, 20)}, but this release of b24-portal-tokens reads layout ${S.LAYOUT_VERSION}: use a matching release or another keyPrefix`,
  );
}
