// The Redis store's session: its connections (a client passed in, or one it opens and owns), the
// check of the key layout on first use, and every command run under the store's deadline with its
// failures turned into StoreError.

import { StoreError } from '../../errors.js';
import type { Keys } from './codec.js';
import {
  errorSummary,
  loadDrivers,
  ownedClusterOptions,
  ownedOptions,
  storeFailure,
  withDeadline,
  type RedisClientLike,
} from './connection.js';
import type { CheckedOptions } from './options.js';
import { connectionOf, fewestReplicas, RedisReplicationError } from './replication.js';
import * as S from './scripts.js';

/** The store's client, and how to open a connection for a change feed. */
export interface Connection {
  readonly client: RedisClientLike;
  /**
   * Opens a connection for a change feed. On a cluster each call opens a plain connection to the
   * next node (PUBLISH reaches every node of a cluster), and a feed whose node is gone opens another.
   */
  readonly subscriber: () => RedisClientLike;
  /** Whether `client` is a Redis Cluster. */
  readonly cluster: boolean;
}

const FEED_OVERRIDES = { lazyConnect: true, enableOfflineQueue: true, autoResubscribe: false };
// A cluster feed's connection does not reconnect by itself: the feed opens one to another node.
const CLUSTER_FEED_OVERRIDES = { ...FEED_OVERRIDES, retryStrategy: () => null, maxRetriesPerRequest: 1 };

/** Plain connections to a cluster's nodes in turn, each a duplicate of the cluster's own node connection. */
function clusterSubscriber(cluster: RedisClientLike): () => RedisClientLike {
  let turn = 0;
  return () => {
    const nodes = cluster.nodes?.('all') ?? [];
    if (nodes.length === 0) throw new StoreError('The Redis Cluster has no known node to subscribe on', { transient: true });
    const node = nodes[turn++ % nodes.length] as RedisClientLike;
    return node.duplicate(CLUSTER_FEED_OVERRIDES);
  };
}

/** One store's connections and commands. */
export class RedisSession {
  readonly #keyPrefix: string;
  readonly #keys: Keys;
  readonly #timeoutMs: number;
  readonly #url: string | undefined;
  readonly #given: RedisClientLike | undefined;
  readonly #nodes: readonly URL[] | undefined;
  readonly #waitOption: number | undefined;
  readonly #waitTimeoutMs: number;
  readonly #layoutVersion: string;
  readonly #createSchema: boolean;
  #waitReplicas = 0;
  #connection: Promise<Connection> | undefined;
  #owned: RedisClientLike | undefined;
  #lastConnectError: string | undefined;
  #prepared: Promise<void> | undefined;
  #closed = false;

  /** Connects nothing until the first call. */
  constructor(options: CheckedOptions, keys: Keys) {
    this.#url = options.url;
    this.#given = options.client;
    this.#nodes = options.nodes;
    this.#waitOption = options.waitReplicas;
    this.#waitTimeoutMs = options.waitTimeoutMs;
    this.#layoutVersion = keys.cluster ? S.CLUSTER_LAYOUT_VERSION : S.LAYOUT_VERSION;
    this.#keyPrefix = options.keyPrefix;
    this.#createSchema = options.createSchema;
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

  /** The layout this session reads and writes (`'1'`, or the cluster layout). */
  get layoutVersion(): string {
    return this.#layoutVersion;
  }

  /** How many replicas each chain write waits for (known once prepared). */
  get waitReplicas(): number {
    return this.#waitReplicas;
  }

  async #open(): Promise<Connection> {
    if (this.#given !== undefined) {
      const client = this.#given;
      const cluster = client.isCluster === true;
      return { client, cluster, subscriber: cluster ? clusterSubscriber(client) : () => client.duplicate(FEED_OVERRIDES) };
    }
    const { Redis, Cluster } = await loadDrivers();
    let client: RedisClientLike;
    let subscriber: () => RedisClientLike;
    const options = ownedOptions(this.#timeoutMs);
    if (this.#nodes !== undefined) {
      if (Cluster === undefined) throw new StoreError("The 'ioredis' package does not export a Cluster class");
      const first = this.#nodes[0] as URL;
      client = new Cluster(this.#nodes.map((node) => ({ host: node.hostname, port: Number(node.port) })), ownedClusterOptions(this.#timeoutMs, first));
      subscriber = clusterSubscriber(client);
    } else {
      const url = this.#url as string;
      client = new Redis(url, options);
      subscriber = () => new Redis(url, { ...options, ...FEED_OVERRIDES });
    }
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
    return { client, subscriber, cluster: this.#nodes !== undefined };
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
    const layout = this.#createSchema
      ? String(await this.#raw('ready', undefined, () => S.runScript(connection.client, S.LAYOUT, [this.#keys.layout], [this.#layoutVersion])))
      : await this.#readLayout(connection.client);
    if (layout !== undefined && layout !== this.#layoutVersion) throw layoutError(this.#keyPrefix, layout, this.#layoutVersion);
    this.#waitReplicas = this.#waitOption ?? ((await this.#raw('ready', undefined, () => fewestReplicas(connection.client))) as number > 0 ? 1 : 0);
  }

  /**
   * The layout recorded under the prefix, read without writing (`createSchema: false`); `undefined`
   * when there is none but a portal index exists (a layout key lost on its own: the next write
   * records it again). Neither: nothing was ever stored under this prefix, a typed error.
   */
  async #readLayout(client: RedisClientLike): Promise<string | undefined> {
    const layout = await this.#raw('ready', undefined, () => client.call('GET', this.#keys.layout));
    if (typeof layout === 'string' || Buffer.isBuffer(layout)) return layout.toString();
    const slots = this.#keys.slots;
    const found = await Promise.all(slots.map((slot) => this.#raw('ready', undefined, () => client.call('EXISTS', slot.portals))));
    if (found.some((n) => Number(n) > 0)) return undefined;
    const index = slots.length === 1 ? (slots[0] as (typeof slots)[number]).portals : `${slots.length} portal index keys`;
    throw new StoreError(
      `Redis token store: no keys under prefix '${this.#keyPrefix}' (neither ${this.#keys.layout} nor ${index} exists): ` +
        'check keyPrefix and the database number (createSchema is off: nothing was created)',
      { reason: 'schema-missing' },
    );
  }

  /**
   * Runs a chain-write script; when chain writes wait for replicas and `wrote(reply)` says the
   * script changed something, sends `WAIT` on the connection that ran it (on a cluster, the slot's
   * primary) and rejects with a {@link RedisReplicationError} on a shortfall (the write stays applied).
   */
  async write(
    operation: string,
    memberId: string | undefined,
    script: S.Script,
    keys: string[],
    args: (string | number)[],
    wrote: (reply: unknown) => boolean,
  ): Promise<unknown> {
    const reply = await this.script(operation, memberId, script, keys, args);
    const wanted = this.#waitReplicas;
    if (wanted === 0 || !wrote(reply)) return reply;
    const { client } = await this.connect();
    const timeoutMs = this.#waitTimeoutMs;
    // The write is applied: a WAIT that cannot be sent (the node's connection is down) or fails
    // only leaves its durability unknown, which is what RedisReplicationError says.
    const target = connectionOf(client, keys[0] as string);
    const acknowledged =
      target === undefined || target.status !== 'ready'
        ? 0
        : Number(await this.#raw(operation, memberId, () => target.call('WAIT', wanted, timeoutMs)).catch(() => 0));
    if (!(acknowledged >= wanted)) throw new RedisReplicationError(operation, { memberId, acknowledged: Number.isFinite(acknowledged) ? acknowledged : 0, wanted, timeoutMs });
    return reply;
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
        throw layoutError(this.#keyPrefix, /B24PT_LAYOUT (\S+)/.exec(message)?.[1] ?? '?', this.#layoutVersion);
      }
      throw storeFailure(operation, error, memberId, this.#lastConnectError);
    }
  }
}

/** The error of a call on a closed store. */
export function closedError(): StoreError {
  return new StoreError('The RedisTokenStore is closed');
}

function layoutError(prefix: string, found: string, wanted: string): StoreError {
  const cluster = found.startsWith('cluster-') !== wanted.startsWith('cluster-');
  const hint = cluster
    ? found.startsWith('cluster-')
      ? 'the keys were written through a Redis Cluster: open the store on the cluster (nodes or a Cluster client)'
      : 'the keys were written on a single Redis: a cluster reads other key names (copy the portals over, see docs/topologies.md)'
    : 'use a matching release or another keyPrefix';
  return new StoreError(
    `Keys under prefix '${prefix}' use layout ${found.slice(0, 20)}, but this store reads layout ${wanted}: ${hint}`,
  );
}
