// Options of the Redis store and their checks: a URL, a ready client (or Cluster), or the URLs of a
// Redis Cluster's nodes; the key prefix; the deadline; how many replicas must have a chain write.

import { positiveInteger } from '../adapter-options.js';
import { checkKeyPrefix } from './codec.js';
import { checkClient, checkNodes, checkUrl, type RedisClientLike } from './connection.js';

/** Options of `RedisTokenStore`: a `url`, a ready `client` or a cluster's `nodes`, plus the common options. */
export type RedisTokenStoreOptions = RedisTokenStoreCommonOptions &
  (
    | {
        /**
         * A `redis://` or `rediss://` URL (`rediss` for TLS), such as
         * `redis://app:p%40ss@10.0.0.5:6379/0`. Percent-encode special characters in the user name
         * and password. The store opens (and closes) its own connections, which fail fast while
         * Redis is down and reconnect by themselves.
         */
        readonly url: string;
        /** Not with `url`. */
        readonly client?: undefined;
        /** Not with `url`. */
        readonly nodes?: undefined;
      }
    | {
        /**
         * A ready ioredis client: a `Redis`, or a `Cluster` (the store then uses its cluster key
         * layout). The store uses it and never closes it; the change feed opens its own connection
         * (`client.duplicate()`, or on a cluster a duplicate of one node's connection). A client
         * with ioredis's own `keyPrefix` is refused with a `TypeError` (use
         * {@link RedisTokenStoreCommonOptions.keyPrefix} instead).
         */
        readonly client: RedisClientLike;
        /** Not with `client`. */
        readonly url?: undefined;
        /** Not with `client`. */
        readonly nodes?: undefined;
      }
    | {
        /**
         * `redis://` or `rediss://` URLs of some nodes of a Redis Cluster (one is enough; give a
         * few so the store can start while one is down). The store opens its own ioredis `Cluster`
         * with the user name, password and TLS of the first URL, and uses the cluster key layout.
         */
        readonly nodes: readonly string[];
        /** Not with `nodes`. */
        readonly url?: undefined;
        /** Not with `nodes`. */
        readonly client?: undefined;
      }
  );

/** How many replicas must hold a chain write before the store acknowledges it. */
export interface RedisReplicaOptions {
  /**
   * How many replicas must confirm each chain write (Redis `WAIT` after the write): `0` turns the
   * wait off. By default `1` when `ready()` finds a replica connected to the primary (to every
   * primary, on a cluster), else `0`.
   */
  readonly wait?: number | undefined;
  /**
   * How long one write waits for the replicas, in ms. Must be below `timeoutMs`. When fewer
   * replicas confirm in time, the write (which IS applied on the primary) rejects with a
   * `RedisReplicationError`.
   * @defaultValue 1000
   */
  readonly timeoutMs?: number | undefined;
}

/** The options every `RedisTokenStore` takes. */
export interface RedisTokenStoreCommonOptions {
  /**
   * Prefix of every key and of the change channel (`<prefix>:rec:...`, `<prefix>:changes`), so
   * several apps or environments can share one Redis. 1 to 100 of `A-Z a-z 0-9 _ . : -`.
   * @defaultValue `'b24pt'`
   */
  readonly keyPrefix?: string | undefined;
  /**
   * How long one call may wait for Redis before it rejects with a transient `StoreError`.
   * @defaultValue 5000
   */
  readonly timeoutMs?: number | undefined;
  /**
   * Replication of chain writes: by default each write of a chain waits until a replica has it
   * when the primary has replicas (see {@link RedisReplicaOptions}).
   */
  readonly replicas?: RedisReplicaOptions | undefined;
  /**
   * Whether `ready()` records this release's key layout (`<prefix>:layout`) under a prefix that has
   * none yet, as a new store's first start does. Turn it off where the store must change nothing:
   * a read-only tool (the CLI's `status` does). Off, `ready()` only reads: when the prefix holds
   * neither the layout key nor a portal index (a mistyped `keyPrefix`, the wrong database number),
   * `ready()` rejects with a `StoreError` whose `reason` is `'schema-missing'`, naming the keys it
   * looked for. Writes still record the layout as they always do. (The name matches the SQL
   * stores' option: the layout marker is what Redis has for a schema.)
   * @defaultValue true
   */
  readonly createSchema?: boolean | undefined;
}

/** The options after checking. */
export interface CheckedOptions {
  readonly url: string | undefined;
  readonly client: RedisClientLike | undefined;
  readonly nodes: readonly URL[] | undefined;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  /** Replicas each chain write waits for; `undefined`: decided at `ready()` from the replicas connected. */
  readonly waitReplicas: number | undefined;
  readonly waitTimeoutMs: number;
  readonly createSchema: boolean;
}

/** Checks the constructor's options; every mistake is a TypeError naming the option, never its value. */
export function checkOptions(options: unknown): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const { url, client, nodes, keyPrefix, timeoutMs, replicas, createSchema } = options as Record<string, unknown>;
  if (createSchema !== undefined && typeof createSchema !== 'boolean') throw new TypeError('options.createSchema must be a boolean');
  if ([url, client, nodes].filter((given) => given !== undefined).length !== 1) {
    throw new TypeError('options must have exactly one of url, client and nodes');
  }
  const deadline = positiveInteger(timeoutMs, 'options.timeoutMs') ?? 5_000;
  const { wait, waitTimeoutMs } = checkReplicas(replicas, deadline);
  return {
    url: url === undefined ? undefined : checkUrl(url),
    client: client === undefined ? undefined : checkClient(client),
    nodes: nodes === undefined ? undefined : checkNodes(nodes),
    keyPrefix: checkKeyPrefix(keyPrefix ?? 'b24pt'),
    timeoutMs: deadline,
    waitReplicas: wait,
    waitTimeoutMs,
    createSchema: createSchema ?? true,
  };
}

function checkReplicas(replicas: unknown, deadline: number): { wait: number | undefined; waitTimeoutMs: number } {
  const byDefault = Math.max(1, Math.min(1_000, Math.floor(deadline / 2)));
  if (replicas === undefined) return { wait: undefined, waitTimeoutMs: byDefault };
  if (typeof replicas !== 'object' || replicas === null) throw new TypeError('options.replicas must be an object');
  const { wait, timeoutMs } = replicas as Record<string, unknown>;
  if (wait !== undefined && (!Number.isSafeInteger(wait) || (wait as number) < 0)) {
    throw new TypeError('options.replicas.wait must be a non-negative integer');
  }
  const waitTimeoutMs = positiveInteger(timeoutMs, 'options.replicas.timeoutMs') ?? byDefault;
  if (timeoutMs === undefined) return { wait: wait as number | undefined, waitTimeoutMs };
  if (waitTimeoutMs >= deadline) throw new TypeError('options.replicas.timeoutMs must be below options.timeoutMs');
  return { wait: wait as number | undefined, waitTimeoutMs };
}
